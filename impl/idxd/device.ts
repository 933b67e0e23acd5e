/**
 * The DSA hardware as far as WQ ownership needs it: each WQ's configuration registers (WQCFG:
 * mode, PASID, enable bit) and the command interface that enables, drains and disables a WQ.
 * One command runs at a time, under the device lock (upstream: `idxd->dev_lock` around the
 * register writes and the command register, `idxd_cmd_exec`); a command in flight is a
 * scheduling point, since the driver waits for its completion.
 *
 * @module
 */
import type { WqMode } from "../../spec/idxd.ts";
import { Mutex } from "../kernel.ts";
import type { Sched } from "../sched.ts";

/** One WQ's configuration registers. */
export interface WqConfigRegs {
  /** Dedicated or shared, written when the WQ is enabled. */
  mode: WqMode;
  /** The PASID descriptors of a dedicated WQ are tagged with; null for none. */
  pasid: number | null;
  /** The WQ's enable bit (WQ state in the WQCFG). */
  enabled: boolean;
}

/** The device: its WQs' registers and its command interface. */
export class IdxdDevice {
  /** WQCFG of each WQ. */
  readonly wqcfg: WqConfigRegs[];
  /** The device lock: one command or register update at a time. */
  readonly lock: Mutex = new Mutex();
  readonly #sched: Sched;

  /** A device with `wqs` WQs, all disabled and cleared. */
  constructor(wqs: number, sched: Sched) {
    this.wqcfg = Array.from({ length: wqs }, () => ({
      mode: "dedicated",
      pasid: null,
      enabled: false,
    }));
    this.#sched = sched;
  }

  /** Writes WQ `id`'s configuration (mode, no PASID) and enables it. */
  enableWq(id: number, mode: WqMode): Promise<void> {
    return this.#command(
      "enable-wq",
      () => Object.assign(this.wqcfg[id], { mode, pasid: null, enabled: true }),
    );
  }

  /** Drains WQ `id`, disables it and resets its configuration (the PASID with it). */
  disableWq(id: number): Promise<void> {
    return this.#command(
      "disable-wq",
      () => Object.assign(this.wqcfg[id], { pasid: null, enabled: false }),
    );
  }

  /**
   * Sets WQ `id`'s PASID (upstream `idxd_wq_set_pasid` / `idxd_wq_disable_pasid`: disable the
   * WQ, write the WQCFG PASID field, enable it again; one command sequence here).
   */
  setPasid(id: number, pasid: number | null): Promise<void> {
    return this.#command("wqcfg-pasid", () => {
      this.wqcfg[id].pasid = pasid;
    });
  }

  /** Runs one command under the device lock; its completion is a scheduling point. */
  #command(name: string, apply: () => void): Promise<void> {
    return this.lock.hold(this.#sched, `idxd.cmd:${name}:lock`, async () => {
      await this.#sched.point(`idxd.cmd:${name}`);
      apply();
    });
  }
}
