/**
 * The wd user library as a {@link Machine}: spec/wd.ts against the library on the simulated
 * machine (model/adapters/wd.ts), two processes, queues of depth 4 (three requests in flight).
 * One machine per backend, the same commands, macros and invariants (the one user-level
 * contract): `wd` on sdmdev (the seed's design, with the library's five quirks) and
 * `wd-uacce` on the char-device design (an SVA-capable uacce device), which exercises the
 * quirks of the library and user driver that do not depend on VFIO.
 *
 * Commands mostly come from processes 1 and 2 (process 3 does not exist: EINVAL); shares at a
 * few pages of one region (IOVA = vaddr, far above the kernel's DMA allocations in the shared
 * domain), sometimes unaligned or empty; timeouts 0 (forever), 1, 10 ms and the `__u16` edges.
 * Macros set a queue up and put it to work, fill the ring, share and unshare, wrap a
 * request in one of the operator's failure injections, let a process exit with a request
 * in flight, and remove the accelerator under a queue at work (the only way `wd.remove` is
 * drawn: nothing is requested after it, so it ends a run's use of the device).
 *
 * Races start from a set-up without the `vm.max_map_count` injection and without exits (see
 * {@link Machine.raceSetup}): a request failing at its mmaps has held the device open for a
 * while, and another process's request failing EBUSY meanwhile is real but no atomic request
 * explains it; likewise, once an exit left an mdev behind on sdmdev, a request still setting up
 * can hold the last queue pair while another finds none. Each actor is a thread of one process
 * (the process of its first command, see {@link Machine.bindActors}), and the device steps a
 * queue in its process's timeline: a request is not atomic to other processes (it can fail EBUSY
 * on another's request still setting up), so a process only observes its own queue; the operator
 * acts in the set-up. The accelerator's removal is no actor's step (the named races of
 * properties/wd_test.ts race it): on sdmdev it destroys the mdev of a request still setting up
 * while another process's request fails EBUSY on it, and on uacce a request it overlaps fails
 * with the core's ENXIO, and the device still completes a request after the mappings were zapped
 * and before the queue is stopped (`uacce_remove` zaps first): real, but no atomic removal
 * explains them.
 *
 * @module
 */
import fc from "fast-check";
import { PAGE_SIZE } from "../../spec/types.ts";
import {
  checkWdInvariants,
  initialWdState,
  stepWd,
  type WdBackend,
  type WdCommand,
  wdCommandSchema,
  wdResults,
  type WdState,
} from "../../spec/wd.ts";
import type { QuirkName } from "../../impl/quirks.ts";
import { ImmediateSched } from "../../impl/sched.ts";
import { WdAdapter } from "../adapters/wd.ts";
import { parseWithSchema } from "../commands.ts";
import type { Machine } from "../machine.ts";

/** Queue depth of the machine. */
const DEPTH = 4;

/** The processes. */
const PIDS = [1, 2];

/** The accelerator's queue pairs: one for each process. */
const QUEUE_PAIRS = 2;

/** Where shares go: a region far above the kernel's IOVAs. */
const BASE = 0x4000_0000;

const by = fc.oneof({ weight: 12, arbitrary: fc.constantFrom(...PIDS) }, {
  weight: 1,
  arbitrary: fc.constant(3),
});

const vaddr = fc.oneof(
  { weight: 8, arbitrary: fc.integer({ min: 0, max: 3 }).map((p) => BASE + p * PAGE_SIZE) },
  { weight: 1, arbitrary: fc.constant(BASE + 0x800) },
);

const size = fc.oneof(
  { weight: 8, arbitrary: fc.integer({ min: 1, max: 2 }).map((p) => p * PAGE_SIZE) },
  { weight: 1, arbitrary: fc.constantFrom(0, 100) },
);

const timeoutMs = fc.constantFrom(0, 1, 10, 0xffff, 0x10000, -1);

/** Commands a process issues. */
function processCommand(): fc.Arbitrary<WdCommand> {
  return fc.oneof(
    { weight: 8, arbitrary: fc.record({ op: fc.constant("wd.requestQueue" as const), by }) },
    { weight: 1, arbitrary: fc.record({ op: fc.constant("wd.releaseQueue" as const), by }) },
    { weight: 5, arbitrary: fc.record({ op: fc.constant("wd.send" as const), by }) },
    { weight: 3, arbitrary: fc.record({ op: fc.constant("wd.submit" as const), by }) },
    { weight: 4, arbitrary: fc.record({ op: fc.constant("wd.recv" as const), by }) },
    {
      weight: 3,
      arbitrary: fc.record({ op: fc.constant("wd.recvSync" as const), by, timeoutMs }),
    },
    {
      weight: 2,
      arbitrary: fc.record({
        op: fc.constant("wd.poll" as const),
        by,
        max: fc.constantFrom(0, 1, 2, 4),
      }),
    },
    { weight: 1, arbitrary: fc.record({ op: fc.constant("wd.flush" as const), by }) },
    {
      weight: 3,
      arbitrary: fc.record({ op: fc.constant("wd.memShare" as const), by, vaddr, size }),
    },
    { weight: 2, arbitrary: fc.record({ op: fc.constant("wd.memUnshare" as const), by, vaddr }) },
    { weight: 5, arbitrary: fc.record({ op: fc.constant("wd.device" as const), by }) },
  );
}

/** Mostly `healthy`, now and then `faulty`: an injection left on blocks every request. */
function mostly<T>(healthy: T, ...faulty: T[]): fc.Arbitrary<T> {
  return fc.oneof({ weight: 3, arbitrary: fc.constant(healthy) }, {
    weight: 1,
    arbitrary: fc.constantFrom(...faulty),
  });
}

/** The operator's failure injections, `vm.max_map_count` only with room for a queue if `safe`. */
function operatorCommand(safe: boolean): fc.Arbitrary<WdCommand> {
  return fc.oneof(
    fc.record({ op: fc.constant("wd.loadType1" as const), loaded: mostly(true, false) }),
    fc.record({ op: fc.constant("wd.hostDriver" as const), bound: mostly(false, true) }),
    fc.record({
      op: fc.constant("wd.maxMapCount" as const),
      maps: safe ? mostly(65530, 2) : mostly(65530, 0, 1, 2, -1),
    }),
  );
}

/** Any command but an exit; `safe` (race set-ups): no injection that leaves no room for a queue. */
function commands(safe: boolean): fc.Arbitrary<WdCommand> {
  return fc.oneof(
    { weight: 20, arbitrary: processCommand() },
    { weight: 1, arbitrary: operatorCommand(safe) },
  );
}

/** A request between an injected failure and its undoing. */
function injected(pid: number, safe: boolean): fc.Arbitrary<readonly WdCommand[]> {
  const request: WdCommand = { op: "wd.requestQueue", by: pid };
  const around = (on: WdCommand, off: WdCommand): WdCommand[] => [on, request, off];
  const choices = [
    around({ op: "wd.loadType1", loaded: false }, { op: "wd.loadType1", loaded: true }),
    around({ op: "wd.hostDriver", bound: true }, { op: "wd.hostDriver", bound: false }),
  ];
  if (!safe) {
    choices.push(
      around({ op: "wd.maxMapCount", maps: 1 }, { op: "wd.maxMapCount", maps: 65530 }),
    );
  }
  return fc.constantFrom(...choices);
}

/**
 * A process exits (`do_exit`) with a request in flight and a share, then asks again: a macro
 * of sequential runs only (an exit is no thread's command), and the only way an exit is drawn,
 * since on sdmdev each one that holds a queue leaves a queue pair taken for the rest of the run.
 */
function exited(pid: number): fc.Arbitrary<readonly WdCommand[]> {
  return fc.constant(
    (["wd.requestQueue", "wd.memShare", "wd.submit", "wd.exit", "wd.requestQueue"] as const).map(
      (
        op,
      ) => (op === "wd.memShare" ? { op, by: pid, vaddr: BASE, size: PAGE_SIZE } : { op, by: pid }),
    ),
  );
}

/**
 * The accelerator removed under a queue with a request in flight, a completion not received and
 * a share; the process calls on, then releases and asks again. A macro of sequential runs only.
 */
function removedUnder(pid: number): fc.Arbitrary<readonly WdCommand[]> {
  const c = (op: WdCommand["op"], extra = {}) => ({ op, by: pid, ...extra }) as WdCommand;
  return fc.constant([
    c("wd.requestQueue"),
    c("wd.memShare", { vaddr: BASE, size: PAGE_SIZE }),
    c("wd.submit"),
    c("wd.send"),
    c("wd.device"),
    { op: "wd.remove" },
    c("wd.send"),
    c("wd.recv"),
    c("wd.device"),
    c("wd.releaseQueue"),
    c("wd.requestQueue"),
  ]);
}

/**
 * Chains that reach the interesting states; with a request between an injected failure and
 * its undoing unless `injections` is `none`, and an exit if it is `all` (`safe`: race set-ups,
 * no injection that leaves no room for a queue and no exit; `none`: actors).
 */
function macros(injections: "none" | "safe" | "all"): fc.Arbitrary<readonly WdCommand[]> {
  return fc.constantFrom(...PIDS).chain((pid): fc.Arbitrary<readonly WdCommand[]> => {
    const c = <O extends WdCommand["op"]>(op: O, extra = {}) =>
      ({ op, by: pid, ...extra }) as WdCommand;
    return fc.oneof(
      // a queue at work: a share, a request through the device and back
      fc.constant([
        c("wd.requestQueue"),
        c("wd.memShare", { vaddr: BASE, size: PAGE_SIZE }),
        c("wd.send"),
        c("wd.device"),
        c("wd.recv"),
      ]),
      // the ring filled: the fourth send is EBUSY
      fc.constant([c("wd.send"), c("wd.submit"), c("wd.send"), c("wd.send")]),
      // in flight, not completed: recvSync waits for the device
      fc.constant([c("wd.requestQueue"), c("wd.send"), c("wd.recvSync", { timeoutMs: 10 })]),
      // a share undone
      fc.constant([
        c("wd.memShare", { vaddr: BASE + PAGE_SIZE, size: 2 * PAGE_SIZE }),
        c("wd.memUnshare", { vaddr: BASE + PAGE_SIZE }),
      ]),
      ...(injections === "none" ? [] : [injected(pid, injections === "safe")]),
      ...(injections === "all" ? [exited(pid), removedUnder(pid)] : []),
    );
  });
}

/** The quirks each backend's machine exercises. */
const QUIRKS_OF: Readonly<Record<WdBackend, readonly QuirkName[]>> = {
  sdmdev: [
    "checkExtensionFailureReturnsZero",
    "groupNotViableReturnsZero",
    "recvSyncNeverWaits",
    "unshareIsNoop",
    "mmapFailureUnchecked",
  ],
  uacce: ["recvSyncNeverWaits", "mmapFailureUnchecked"],
};

/** The wd library with two processes on `backend`'s accelerator. */
function wdMachineOn(backend: WdBackend): Machine<WdState, WdCommand> {
  return {
    name: backend === "sdmdev" ? "wd" : `wd-${backend}`,
    vars: [
      "backend",
      "depth",
      "procs",
      "mdevs",
      "qps",
      "queuePairs",
      "orphans",
      "type1",
      "hostDriver",
      "maxMapCount",
      "accelerator",
    ],
    prelude: [],
    quirks: QUIRKS_OF[backend],
    runs: 2000,
    initial: () => initialWdState({ backend, depth: DEPTH, pids: PIDS, queuePairs: QUEUE_PAIRS }),
    step: stepWd,
    violations: checkWdInvariants,
    parseCommand: (op, args, opPath, argsPath) =>
      parseWithSchema<WdCommand>(wdCommandSchema, op, args, opPath, argsPath),
    schema: wdCommandSchema,
    results: wdResults,
    commands: () => commands(false),
    macros: () => macros("all"),
    raceMacros: () => macros("none"),
    raceCommands: processCommand,
    bindActors: (actors) =>
      actors.map((a) => {
        const pid = (a.program[0] as { by: number }).by;
        return { ...a, program: a.program.map((c) => ({ ...c, by: pid }) as WdCommand) };
      }),
    raceSetup: () =>
      fc.oneof({ weight: 3, arbitrary: commands(true).map((x) => [x]) }, {
        weight: 1,
        arbitrary: macros("safe"),
      }),
    implementation: (quirks, sched) =>
      new WdAdapter(quirks, sched ?? new ImmediateSched(), {
        backend,
        depth: DEPTH,
        pids: PIDS,
        queuePairs: QUEUE_PAIRS,
      }),
  };
}

/** The wd library with two processes on the sdmdev accelerator. */
export const wdMachine: Machine<WdState, WdCommand> = wdMachineOn("sdmdev");

/** The same library, the same contract, on the uacce accelerator. */
export const wdUacceMachine: Machine<WdState, WdCommand> = wdMachineOn("uacce");
