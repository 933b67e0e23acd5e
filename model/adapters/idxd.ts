/**
 * The idxd view's adapter (model side): executes the spec's `idxd.*` commands on an
 * {@link IdxdDriver} and maps it back to the spec's shape with {@link IdxdAdapter.observe} (the
 * abstraction function: each WQ's driver state with the PASID read from the device's WQCFG
 * register, every client handle with whether it is still counted, the processes' PASIDs and the
 * next handle id).
 *
 * @module
 */
import {
  DEFAULT_IDXD_CONFIG,
  type IdxdCommand,
  type IdxdConfig,
  type IdxdHandle,
  type IdxdState,
} from "../../spec/idxd.ts";
import type { Ret } from "../../spec/types.ts";
import { closeCdev, openCdev } from "../../impl/idxd/cdev.ts";
import { IdxdDriver } from "../../impl/idxd/driver.ts";
import type { Outcome } from "../../impl/kernel.ts";
import type { Quirks } from "../../impl/quirks.ts";
import { ImmediateSched, type Sched } from "../../impl/sched.ts";
import type { Implementation } from "../machine.ts";

/** An {@link IdxdDriver} executing spec-shaped commands. */
export class IdxdAdapter implements Implementation<IdxdState, IdxdCommand> {
  /** The driver under test. */
  readonly driver: IdxdDriver;

  /** A driver for `config`'s device with `quirks`, scheduled by `sched`. */
  constructor(
    quirks: Quirks = {},
    sched: Sched = new ImmediateSched(),
    config: IdxdConfig = DEFAULT_IDXD_CONFIG,
  ) {
    this.driver = new IdxdDriver({ wqs: config.wqs, pasids: config.pasids, sched, quirks });
  }

  /** Executes one command (the driver raises no events). */
  async exec(cmd: IdxdCommand): Promise<Outcome> {
    return { ret: await this.#dispatch(cmd), events: [] };
  }

  #dispatch(cmd: IdxdCommand): Promise<Ret> {
    const d = this.driver;
    switch (cmd.op) {
      case "idxd.configure":
        return d.configure(cmd.wq, cmd.use, cmd.mode);
      case "idxd.enable":
        return d.enable(cmd.wq);
      case "idxd.disable":
        return d.disable(cmd.wq);
      case "idxd.open":
        return openCdev(d, cmd.wq, cmd.process);
      case "idxd.close":
        return closeCdev(d, cmd.file);
      case "idxd.claim":
        return d.claim(cmd.wq);
      case "idxd.release":
        return d.put(cmd.claim, "kernel", "idxd.release");
      case "idxd.mdevCreate":
        return d.mdevCreate(cmd.wq);
      case "idxd.mdevRemove":
        return d.put(cmd.mdev, "mdev", "idxd.mdevRemove");
    }
  }

  /** The driver and device in the spec's shape. */
  observe(): IdxdState {
    const d = this.driver;
    const handles = new Map<number, IdxdHandle>();
    for (const [id, ctx] of d.handles) {
      handles.set(id, {
        kind: ctx.kind,
        wq: ctx.wq.id,
        process: ctx.process,
        pasid: ctx.pasid,
        attached: ctx.attached,
      });
    }
    return {
      wqs: d.wqs.map((wq) => ({
        use: wq.use,
        mode: wq.mode,
        state: wq.state,
        clients: wq.clients,
        pasid: d.device.wqcfg[wq.id].pasid,
      })),
      handles,
      pasids: d.pasids,
      nextHandle: d.nextHandle,
    };
  }
}
