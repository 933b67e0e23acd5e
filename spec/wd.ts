/**
 * The `wd` user library's contract (RFCv2 7/7 `wd.c`, `wd_adapter.c`, `hisi_qm_udrv.c`) as the
 * processes using it see it, on a machine with one accelerator registered with sdmdev without
 * PASID support (`dma_flag` SINGLE_PROC_MAP: one process at a time).
 *
 * A process requests a queue (`wd_request_queue`: the library finds the accelerator in sysfs,
 * creates an mdev, opens its VFIO group and a container, checks the API version, the IOMMU
 * extension and that the group is viable, sets the container and the type1 IOMMU, takes the
 * device fd and lets the user driver mmap the ring and the doorbell page); it shares buffers
 * with the device (`wd_mem_share`: VFIO_IOMMU_MAP_DMA at IOVA = vaddr, the pages pinned and
 * accounted), sends requests and receives their completions, and releases the queue.
 *
 * Intended behaviour (where the seed differs, that is a quirk of the implementation):
 * - every failure is an errno and leaves nothing open, mapped, shared or pinned;
 * - `send` fails EBUSY when `depth - 1` requests are outstanding (one slot reserved, as in
 *   spec/qm.ts) and loses nothing; `recv` fails EAGAIN when nothing completed;
 * - `recvSync` waits (the WAIT ioctl) until a completion or the timeout. The timeout is in
 *   milliseconds (`__u16`, 0 = forever); the library converts it to the jiffies the WAIT ioctl
 *   takes (the seed passes the milliseconds unconverted). The device completing a request
 *   wakes the caller; what else happens while it sleeps is the scheduler's choice, so the
 *   timeout expires after an arbitrary interleaving. Without a completion by then a bounded
 *   wait ends ETIMEDOUT and a forever wait EAGAIN (a signal ended it, as `sdmdev.wait` says);
 * - `release` closes everything even if a step fails and reports how many requests were still
 *   outstanding (they never complete);
 * - the asynchronous API (`submit` with a callback, `poll(max)`), as the later UADK offers it,
 *   shares the queue with `send`/`recv`: whoever receives a callback request's completion runs
 *   its callback, exactly once; a release runs the callbacks of the requests it drops.
 *
 * **Exit.** `wd.exit` is the process's end without the library (`do_exit`): the kernel unmaps its
 * mappings and closes its files, the process's requests are lost and their callbacks never run,
 * and a new process of that pid starts with nothing. On `uacce` nothing is left: the queue pair
 * goes with the file. On `sdmdev` the mdev the library created stays, and its queue pair with it
 * (sdmdev takes the queue at the mdev's create, only a write to its `remove` gives it back, and
 * only the library writes it): {@link WdState.orphans}. A later request by that pid is EEXIST
 * (the mdev is named after the process), and one that finds no queue pair free is ENODEV.
 *
 * Requests are numbered per queue from 0 in the order they are sent; completions arrive in that
 * order. The device is explicit (`wd.device`: it takes the next published request of a
 * process's queue and completes it), so that races can put it anywhere.
 *
 * **Two backends, one contract.** The library finds its accelerator by device class when a queue
 * is requested: a uacce device (`/sys/class/uacce`, the char-device design of seed 001 as upstream
 * merged it) whose `api` a user driver drives, whose `flags` have `UACCE_DEV_SVA` and with an
 * instance available, else an sdmdev type as above. Which class the machine has is
 * {@link WdState.backend}; every op means the same on both, and the invariants below are the one
 * user-level contract both are checked against. On `uacce` a request opens the char device (the
 * queue's context, one file), lets the user driver mmap the MMIO (doorbell) and DUS (SQ+CQ)
 * regions and ask the queue's number (the QM's SET_QP_CTX ioctl), and starts it (START_Q); a
 * release unmaps, stops the queue (PUT_Q, as UADK's `wd_ctx_stop`) and closes the file. With SVA
 * the device reaches the process's memory through its PASID: `memShare` is only the library's
 * record of the range (the same EINVAL and EEXIST), nothing is mapped, pinned or accounted. A
 * uacce device without SVA is not taken (upstream's QM registers with uacce only with SVA,
 * `qm_alloc_uacce`: "only consider sva case"; without it there would be no way to share a
 * buffer), so a request there is ENODEV like no device at all. Many
 * processes hold queues at once on `uacce` (each its own queue pair, up to the device's); the
 * operator's type1 and host-driver injections have nothing to act on there (ENODEV).
 *
 * **The parent's removal.** `wd.remove` is the accelerator's PCI remove (`hisi_zip_remove`):
 * `sdmdev.unregister` on `sdmdev`, `uacce_remove` on `uacce`. Neither can fail (a PCI remove is
 * void), so it is ENODEV only for an accelerator removed or being removed already (the driver
 * core runs one remove per bound device). From it on every request is ENODEV (no device to
 * find), after the EEXIST of a process holding a queue. The decisions, per backend:
 * - on `sdmdev` the remove waits for the open mdev (`mdev_unregister_device`): the closed mdevs
 *   go at once (an exited process's, with their queue pairs: no orphan stays), and the op
 *   returns ok(the queues it still waits for). The contract shows a pending remove as
 *   {@link WdState.accelerator} `removing`: the holder's queue works as before (its mdev, ring
 *   and IOMMU mappings are all still there) until its release or exit, which takes the mdev and
 *   completes the remove (`removed`);
 * - on `uacce` the remove completes at once and returns ok(0): every queue becomes ZOMBIE, its
 *   queue pair and ring go back to the driver, and every mapping of the process's file is zapped.
 *   The process keeps its file and its (zapped) mappings: its queue is `zombie`, holding the
 *   requests that will never complete. A call through the mappings faults, EFAULT (the uacce
 *   spec's `uacce.access` on a zapped mapping: the user driver's load or store would take a
 *   SIGBUS): `send`, `submit`, `recv`, `recvSync`, `poll`; the device has no queue to execute,
 *   `wd.device` EINVAL; `flush`, `memShare` and `memUnshare` touch no mapping (the library's
 *   record) and behave as before; a release or an exit closes the file and leaves nothing (a
 *   release reports the requests the remove dropped and runs their callbacks).
 * Once removed, the device executes nothing for any queue (none is open), no queue pair or
 * mdev is taken and no process's mapping reaches the device (`wd.removed`).
 *
 * Three operator actions inject the failures the seed's error paths handle, each where the real
 * kernel can fail: `wd.loadType1` (the vfio_iommu_type1 module unloaded: CHECK_EXTENSION says
 * no), `wd.hostDriver` (new mdevs bound to a host driver instead of vfio_mdev, as
 * `driver_override` would: their group is not viable) and `wd.maxMapCount` (`vm.max_map_count`
 * counted over device mappings: mmap fails ENOMEM).
 *
 * @module
 */
// The published spec must import with no import map of its user's (see README).
// deno-lint-ignore no-import-prefix
import { match } from "npm:ts-pattern@5.9.2";
import {
  checkInvariants,
  type CommandSchema,
  type Errno,
  fail,
  type Invariant,
  type MachineSpec,
  ok,
  PAGE_SIZE,
  type ResultsOf,
  type ResultTable,
  type StepResult,
  type TypedStepResult,
  unknownOp,
} from "./types.ts";

/** The device class the library finds the accelerator in (see the module doc). */
export type WdBackend = "sdmdev" | "uacce";

/** Both backends, the one a config omits first. */
export const WD_BACKENDS: readonly WdBackend[] = ["sdmdev", "uacce"];

/** Files a queue holds on each backend: group, container and device; or the char device. */
export const WD_QUEUE_FILES: Readonly<Record<WdBackend, number>> = { sdmdev: 3, uacce: 1 };

/**
 * A process's queue: none, open with its request counters, or zombie (its accelerator removed
 * on `uacce`: the file and zapped mappings held, the requests dropped).
 */
export type WdQueueLife =
  | { readonly state: "none" }
  | {
    readonly state: "open";
    /** Requests sent (the next one's number). */
    readonly sent: number;
    /** Requests the device completed. */
    readonly done: number;
    /** Completions handed to the process. */
    readonly received: number;
    /** Requests submitted with a callback whose callback has not run yet, in order. */
    readonly awaiting: readonly number[];
  }
  | {
    readonly state: "zombie";
    /** Requests sent and not received when the device went: they never complete. */
    readonly outstanding: number;
    /** Of those, the ones submitted with a callback (run at the release), in order. */
    readonly awaiting: readonly number[];
  };

/** A buffer shared with the device: `[vaddr, vaddr + size)` at IOVA = vaddr. */
export interface WdShare {
  /** Start (page-aligned). */
  readonly vaddr: number;
  /** Bytes (page-aligned, > 0). */
  readonly size: number;
}

/** What one process holds. */
export interface WdProcess {
  /** Process id. */
  readonly pid: number;
  /** Its queue. */
  readonly queue: WdQueueLife;
  /** Open files: {@link WD_QUEUE_FILES} with a queue. */
  readonly fds: number;
  /**
   * Mappings that reach the device: the ring (DUS) and the doorbell page (MMIO), 2 with an open
   * queue; a zombie queue's are zapped and reach nothing.
   */
  readonly maps: number;
  /** Buffers shared with the device, by vaddr. */
  readonly shares: readonly WdShare[];
  /** Pages pinned for the device (none on `uacce`: SVA faults pages in). */
  readonly pinned: number;
  /** Pages accounted in its `locked_vm`. */
  readonly lockedVm: number;
  /** Callbacks run so far (completions and cancellations). */
  readonly callbacks: number;
}

/**
 * The accelerator's life: registered; `removing` while its PCI remove waits for an open queue
 * (`sdmdev`); `removed` once the remove completed.
 */
export type WdAccelerator = "present" | "removing" | "removed";

/** The processes and the machine around them. */
export interface WdState {
  /** The device class the accelerator is registered with. */
  readonly backend: WdBackend;
  /** Queue depth (SQ = CQ); at most `depth - 1` requests are outstanding. */
  readonly depth: number;
  /** The processes, by pid. */
  readonly procs: readonly WdProcess[];
  /** mdevs on the accelerator (on `sdmdev` the library creates one per queue and removes it). */
  readonly mdevs: number;
  /** The accelerator's queue pairs taken (one per queue held and per orphaned mdev). */
  readonly qps: number;
  /** The accelerator's queue pairs. */
  readonly queuePairs: number;
  /** Pids whose process exited holding a queue and whose mdev stayed (`sdmdev`), in order. */
  readonly orphans: readonly number[];
  /** Whether the vfio_iommu_type1 module is loaded. */
  readonly type1: boolean;
  /** Whether new mdevs bind to a host driver (their group is not viable). */
  readonly hostDriver: boolean;
  /** `vm.max_map_count`, over device mappings. */
  readonly maxMapCount: number;
  /** Whether the accelerator is registered, being removed or removed (`wd.remove`). */
  readonly accelerator: WdAccelerator;
}

/** How a {@link WdState} starts. */
export interface WdConfig {
  /** The device class (default `sdmdev`). */
  readonly backend?: WdBackend;
  /** Queue depth (default 1024). */
  readonly depth?: number;
  /** Process ids (default 1 and 2). */
  readonly pids?: readonly number[];
  /** The accelerator's queue pairs (default 2). */
  readonly queuePairs?: number;
}

/** Largest `recvSync` timeout (`__u16` milliseconds). */
export const WD_MAX_TIMEOUT_MS = 0xffff;

/** The library's and the operator's commands. */
export type WdCommand =
  | { readonly op: "wd.requestQueue"; readonly by: number }
  | { readonly op: "wd.releaseQueue"; readonly by: number }
  | { readonly op: "wd.send"; readonly by: number }
  | { readonly op: "wd.submit"; readonly by: number }
  | { readonly op: "wd.recv"; readonly by: number }
  | { readonly op: "wd.recvSync"; readonly by: number; readonly timeoutMs: number }
  | { readonly op: "wd.poll"; readonly by: number; readonly max: number }
  | { readonly op: "wd.flush"; readonly by: number }
  | {
    readonly op: "wd.memShare";
    readonly by: number;
    readonly vaddr: number;
    readonly size: number;
  }
  | { readonly op: "wd.memUnshare"; readonly by: number; readonly vaddr: number }
  | { readonly op: "wd.device"; readonly by: number }
  | { readonly op: "wd.exit"; readonly by: number }
  | { readonly op: "wd.loadType1"; readonly loaded: boolean }
  | { readonly op: "wd.hostDriver"; readonly bound: boolean }
  | { readonly op: "wd.maxMapCount"; readonly maps: number }
  | { readonly op: "wd.remove" };

/** A process holding nothing. */
function idle(pid: number): WdProcess {
  return {
    pid,
    queue: { state: "none" },
    fds: 0,
    maps: 0,
    shares: [],
    pinned: 0,
    lockedVm: 0,
    callbacks: 0,
  };
}

/**
 * The machine before any request; RangeError for a depth below 2, bad pids, queue pairs or
 * backend.
 */
export function initialWdState(config: WdConfig = {}): WdState {
  const backend = config.backend ?? "sdmdev";
  if (!WD_BACKENDS.includes(backend)) throw new RangeError(`bad backend ${String(backend)}`);
  const depth = config.depth ?? 1024;
  const pids = config.pids ?? [1, 2];
  const queuePairs = config.queuePairs ?? 2;
  if (!Number.isSafeInteger(depth) || depth < 2) throw new RangeError(`bad depth ${depth}`);
  if (!Number.isSafeInteger(queuePairs) || queuePairs < 1) {
    throw new RangeError(`bad queue pairs ${queuePairs}`);
  }
  if (pids.some((p) => !Number.isSafeInteger(p) || p < 1) || new Set(pids).size !== pids.length) {
    throw new RangeError(`bad pids ${JSON.stringify(pids)}`);
  }
  return {
    backend,
    depth,
    procs: [...pids].sort((a, b) => a - b).map(idle),
    mdevs: 0,
    qps: 0,
    queuePairs,
    orphans: [],
    type1: true,
    hostDriver: false,
    maxMapCount: 65530,
    accelerator: "present",
  };
}

type Open = Extract<WdQueueLife, { state: "open" }>;
type Zombie = Extract<WdQueueLife, { state: "zombie" }>;

function withProc(s: WdState, p: WdProcess): WdState {
  return { ...s, procs: s.procs.map((q) => (q.pid === p.pid ? p : q)) };
}

function done<S>(state: S, value: unknown): StepResult<S> {
  return { state, ret: ok(value), events: [] };
}

/** The next completion handed to `p`: its number, its callback run if it has one. */
function receive(p: WdProcess, q: Open): WdProcess {
  const seq = q.received;
  const called = q.awaiting.includes(seq);
  return {
    ...p,
    queue: { ...q, received: seq + 1, awaiting: q.awaiting.filter((n) => n !== seq) },
    callbacks: p.callbacks + (called ? 1 : 0),
  };
}

/** Pages a share of `size` bytes pins: all on `sdmdev` (MAP_DMA), none on `uacce` (SVA). */
function pinnedPages(backend: WdBackend, size: number): number {
  return backend === "sdmdev" ? size / PAGE_SIZE : 0;
}

function aligned(n: number): boolean {
  return Number.isSafeInteger(n) && n % PAGE_SIZE === 0;
}

/** `wd_request_queue`, in the order the library checks. */
function requestQueue(s: WdState, p: WdProcess): StepResult<WdState> {
  if (p.queue.state !== "none") return fail(s, "EEXIST");
  if (s.accelerator !== "present" || s.qps >= s.queuePairs) return fail(s, "ENODEV");
  const sdmdev = s.backend === "sdmdev";
  const refused: Errno | undefined = !sdmdev
    ? (s.maxMapCount < 2 ? "ENOMEM" : undefined)
    : s.orphans.includes(p.pid)
    ? "EEXIST"
    : !s.type1
    ? "ENODEV"
    : s.hostDriver
    ? "EPERM"
    : s.procs.some((o) => o.queue.state === "open")
    ? "EBUSY"
    : s.maxMapCount < 2
    ? "ENOMEM"
    : undefined;
  if (refused) return fail(s, refused);
  const queue: Open = { state: "open", sent: 0, done: 0, received: 0, awaiting: [] };
  const fds = WD_QUEUE_FILES[s.backend];
  const held = withProc(s, { ...p, queue, fds, maps: 2 });
  return done({ ...held, mdevs: s.mdevs + (sdmdev ? 1 : 0), qps: s.qps + 1 }, 0);
}

/** `wd_release_queue`: ok(requests outstanding, dropped); their callbacks run. */
function releaseQueue(s: WdState, p: WdProcess, q: Open | Zombie): StepResult<WdState> {
  const gone: WdProcess = { ...idle(p.pid), callbacks: p.callbacks + q.awaiting.length };
  if (q.state === "zombie") return done(withProc(s, gone), q.outstanding);
  return done(queueGone(withProc(s, gone)), q.sent - q.received);
}

/**
 * An open queue's file closed: its queue pair (and on sdmdev its mdev) goes; the last one a
 * pending remove waits for completes it.
 */
function queueGone(s: WdState): WdState {
  const mdevs = s.mdevs - (s.backend === "sdmdev" ? 1 : 0);
  const waited = s.accelerator === "removing" && queuesHeld(s) === 0;
  return { ...s, mdevs, qps: s.qps - 1, accelerator: waited ? "removed" : s.accelerator };
}

/**
 * `do_exit` of `p`: all it held goes; on sdmdev its mdev (and queue pair) stays, unless a
 * remove waits for it.
 */
function exit(s: WdState, p: WdProcess): StepResult<WdState> {
  const fresh = withProc(s, idle(p.pid));
  if (p.queue.state !== "open") return done(fresh, 0);
  if (s.backend === "sdmdev" && s.accelerator === "present") {
    return done({ ...fresh, orphans: [...s.orphans, p.pid] }, 0);
  }
  return done(queueGone(fresh), 0);
}

/** The accelerator's PCI remove: ok(the open queues it waits for; see the module doc). */
function remove(s: WdState): StepResult<WdState> {
  if (s.accelerator !== "present") return fail(s, "ENODEV");
  if (s.backend === "sdmdev") {
    const held = queuesHeld(s);
    const left = s.orphans.length;
    const accelerator = held > 0 ? "removing" : "removed";
    return done({ ...s, mdevs: s.mdevs - left, qps: s.qps - left, orphans: [], accelerator }, held);
  }
  const procs = s.procs.map((p): WdProcess => {
    const q = p.queue;
    if (q.state !== "open") return p;
    return {
      ...p,
      queue: { state: "zombie", outstanding: q.sent - q.received, awaiting: q.awaiting },
      maps: 0,
    };
  });
  return done({ ...s, procs, qps: 0, accelerator: "removed" }, 0);
}

function send(s: WdState, p: WdProcess, q: Open, callback: boolean): StepResult<WdState> {
  if (q.sent - q.received >= s.depth - 1) return fail(s, "EBUSY");
  const awaiting = callback ? [...q.awaiting, q.sent] : q.awaiting;
  return done(withProc(s, { ...p, queue: { ...q, sent: q.sent + 1, awaiting } }), q.sent);
}

function recvSync(
  s: WdState,
  p: WdProcess,
  q: Open | Zombie,
  timeoutMs: number,
): StepResult<WdState> {
  if (!Number.isSafeInteger(timeoutMs) || timeoutMs < 0 || timeoutMs > WD_MAX_TIMEOUT_MS) {
    return fail(s, "EINVAL");
  }
  if (q.state === "zombie") return fail(s, "EFAULT");
  if (q.received < q.done) return done(withProc(s, receive(p, q)), q.received);
  return fail(s, timeoutMs === 0 ? "EAGAIN" : "ETIMEDOUT");
}

/** Whether `n` is a count of at least one. */
function isCount(n: number): boolean {
  return Number.isSafeInteger(n) && n >= 1;
}

function poll(s: WdState, p: WdProcess, max: number): StepResult<WdState> {
  if (!isCount(max)) return fail(s, "EINVAL");
  const got: number[] = [];
  let cur = p;
  while (got.length < max) {
    const cq = cur.queue as Open;
    if (cq.received === cq.done) break;
    got.push(cq.received);
    cur = receive(cur, cq);
  }
  return done(withProc(s, cur), got);
}

function memShare(s: WdState, p: WdProcess, vaddr: number, size: number): StepResult<WdState> {
  if (!aligned(vaddr) || !aligned(size) || size <= 0 || vaddr < 0) return fail(s, "EINVAL");
  if (!Number.isSafeInteger(vaddr + size)) return fail(s, "EINVAL");
  if (p.shares.some((m) => vaddr < m.vaddr + m.size && m.vaddr < vaddr + size)) {
    return fail(s, "EEXIST");
  }
  const shares = [...p.shares, { vaddr, size }].sort((a, b) => a.vaddr - b.vaddr);
  const pages = pinnedPages(s.backend, size);
  return done(
    withProc(s, { ...p, shares, pinned: p.pinned + pages, lockedVm: p.lockedVm + pages }),
    0,
  );
}

function memUnshare(s: WdState, p: WdProcess, vaddr: number): StepResult<WdState> {
  const m = p.shares.find((x) => x.vaddr === vaddr);
  if (!m) return fail(s, "EINVAL");
  const pages = pinnedPages(s.backend, m.size);
  const shares = p.shares.filter((x) => x !== m);
  return done(
    withProc(s, { ...p, shares, pinned: p.pinned - pages, lockedVm: p.lockedVm - pages }),
    0,
  );
}

/**
 * A call on the zombie queue `q` of `p` (see the module doc): a call through the zapped
 * mappings EFAULT, the device's EINVAL, the rest as on an open queue.
 */
function zombieCall(s: WdState, p: WdProcess, q: Zombie, cmd: WdCommand): StepResult<WdState> {
  return match(cmd)
    .with({ op: "wd.releaseQueue" }, () => releaseQueue(s, p, q))
    .with({ op: "wd.recvSync" }, (c) => recvSync(s, p, q, c.timeoutMs))
    .with({ op: "wd.poll" }, (c) => (isCount(c.max) ? fail(s, "EFAULT") : fail(s, "EINVAL")))
    .with({ op: "wd.flush" }, () => done(s, 0))
    .with({ op: "wd.memShare" }, (c) => memShare(s, p, c.vaddr, c.size))
    .with({ op: "wd.memUnshare" }, (c) => memUnshare(s, p, c.vaddr))
    .with({ op: "wd.device" }, () => fail(s, "EINVAL"))
    .otherwise(() => fail(s, "EFAULT"));
}

/**
 * Executes one command (every op fails EINVAL for an unknown process, and every op but
 * `requestQueue` and `exit` for a process without a queue):
 * - `wd.requestQueue {by}`: ok(0); EEXIST when `by` holds a queue (the library names its mdev
 *   after the process, and the mdev exists; one queue per process on `uacce` too); ENODEV when
 *   no queue pair is free; on `sdmdev` EEXIST when the mdev of an exited `by` stayed,
 *   ENODEV when the type1 module is unloaded, EPERM when new mdevs bind to a host driver (group
 *   not viable), EBUSY when another process holds a queue (no PASIDs: one process at a time);
 *   on both ENOMEM when `vm.max_map_count` leaves no room for the ring and the doorbell page.
 * - `wd.releaseQueue {by}`: ok(requests still outstanding); everything of the queue goes (the
 *   last queue a pending remove waits for completes it).
 * - `wd.send {by}` / `wd.submit {by}` (with a callback): ok(the request's number); EBUSY when
 *   `depth - 1` are outstanding.
 * - `wd.recv {by}`: ok(the oldest completed request's number); EAGAIN when none.
 * - `wd.recvSync {by, timeoutMs}`: as recv once woken or timed out (see the module doc);
 *   EINVAL for a timeout outside 0..{@link WD_MAX_TIMEOUT_MS}; with nothing completed,
 *   ETIMEDOUT, or EAGAIN for a forever wait.
 * - `wd.poll {by, max}`: ok(the numbers of up to `max` completions received, in order);
 *   EINVAL for `max` < 1.
 * - `wd.flush {by}`: ok(0) (the QM user driver rings the doorbell at each send).
 * - `wd.memShare {by, vaddr, size}`: ok(0); EINVAL for an unaligned or empty range, EEXIST
 *   when it overlaps a share. Its pages are pinned and accounted on `sdmdev` only.
 * - `wd.memUnshare {by, vaddr}`: ok(0); EINVAL when no share starts at `vaddr`.
 * - `wd.device {by}`: the device completes `by`'s next request: ok(its number); EAGAIN when
 *   none is in flight.
 * - `wd.exit {by}`: ok(0); `by` ends (see the module doc) and starts afresh.
 * - `wd.loadType1 {loaded}`: ok(0); unloading is EBUSY while a queue holds the IOMMU.
 * - `wd.hostDriver {bound}`, `wd.maxMapCount {maps}`: ok(0); EINVAL for negative maps.
 * - `wd.remove {}`: ok(the open queues the remove waits for: on `sdmdev` the holder's, none on
 *   `uacce`); ENODEV once removed or removing. Later requests are ENODEV; on `uacce` the calls
 *   on a queue it turned zombie are EFAULT, the device's EINVAL (see the module doc).
 * - On `uacce`, `wd.loadType1` and `wd.hostDriver` are ENODEV (no VFIO, no mdev core).
 */
export function stepWd<C extends WdCommand>(
  state: WdState,
  cmd: C,
): TypedStepResult<WdState, ResultsOf<typeof wdResults>[C["op"]]>;
/** stepWd of any command, its success value untyped. */
export function stepWd(s: WdState, cmd: WdCommand): StepResult<WdState> {
  if (!Object.hasOwn(wdCommandSchema, cmd.op)) unknownOp(cmd);
  const vfioOnly = cmd.op === "wd.loadType1" || cmd.op === "wd.hostDriver";
  if (vfioOnly && s.backend !== "sdmdev") return fail(s, "ENODEV");
  switch (cmd.op) {
    case "wd.loadType1":
      if (!cmd.loaded && s.procs.some((p) => p.queue.state === "open")) return fail(s, "EBUSY");
      return done({ ...s, type1: cmd.loaded === true }, 0);
    case "wd.hostDriver":
      return done({ ...s, hostDriver: cmd.bound === true }, 0);
    case "wd.maxMapCount":
      if (!Number.isSafeInteger(cmd.maps) || cmd.maps < 0) return fail(s, "EINVAL");
      return done({ ...s, maxMapCount: cmd.maps }, 0);
    case "wd.remove":
      return remove(s);
  }
  const p = s.procs.find((x) => x.pid === cmd.by);
  if (!p) return fail(s, "EINVAL");
  if (cmd.op === "wd.requestQueue") return requestQueue(s, p);
  if (cmd.op === "wd.exit") return exit(s, p);
  const q = p.queue;
  if (q.state === "none") return fail(s, "EINVAL");
  if (q.state === "zombie") return zombieCall(s, p, q, cmd);
  return match(cmd)
    .with({ op: "wd.releaseQueue" }, () => releaseQueue(s, p, q))
    .with({ op: "wd.send" }, () => send(s, p, q, false))
    .with({ op: "wd.submit" }, () => send(s, p, q, true))
    .with(
      { op: "wd.recv" },
      () =>
        q.received === q.done ? fail(s, "EAGAIN") : done(withProc(s, receive(p, q)), q.received),
    )
    .with({ op: "wd.recvSync" }, (c) => recvSync(s, p, q, c.timeoutMs))
    .with({ op: "wd.poll" }, (c) => poll(s, p, c.max))
    .with({ op: "wd.flush" }, () => done(s, 0))
    .with({ op: "wd.memShare" }, (c) => memShare(s, p, c.vaddr, c.size))
    .with({ op: "wd.memUnshare" }, (c) => memUnshare(s, p, c.vaddr))
    .with(
      { op: "wd.device" },
      () =>
        q.done === q.sent
          ? fail(s, "EAGAIN")
          : done(withProc(s, { ...p, queue: { ...q, done: q.done + 1 } }), q.done),
    )
    .otherwise(unknownOp);
}

/**
 * The library's invariants:
 * - `wd.released` (between ops): a process without a queue holds no file, mapping, share or
 *   pin of the device, and `locked_vm` counts nothing for it;
 * - `wd.counters` (always): 0 ≤ received ≤ done ≤ sent, at most `depth - 1` outstanding, every
 *   awaited callback belongs to a request not yet received;
 * - `wd.pinned` (between ops): the pages pinned and accounted are those of the shares on
 *   `sdmdev`, none on `uacce`; shares do not overlap;
 * - `wd.one-process` (always): on `sdmdev` at most one process holds a queue (no PASIDs);
 * - `wd.mdevs` (between ops): one mdev per queue held or orphaned on `sdmdev`, none on `uacce`;
 * - `wd.qps` (between ops): one queue pair taken per queue held or orphaned (a released or, on
 *   `uacce`, exited queue's is free), no more than the accelerator has; orphans only on
 *   `sdmdev`, each pid once;
 * - `wd.files` (between ops): a process with an open queue holds its files and both mappings,
 *   one with a zombie queue its files and no mapping that reaches the device;
 * - `wd.removed` (between ops): once the accelerator is removed no queue is open (the device
 *   executes nothing for any), no queue pair, mdev or orphan is left and no process maps the
 *   device; only `sdmdev` has a pending remove, and only while a queue is open; zombie queues
 *   only on a removed `uacce` accelerator.
 *
 * They are the one user-level contract of both backends (DMA isolation, no device access after
 * a release, no lost or duplicated completion, the SQ-full rule); what differs per backend is
 * only what a queue holds.
 */
export const wdInvariants: readonly Invariant<WdState>[] = [
  {
    name: "wd.released",
    scope: "between-ops",
    check: (s) => {
      const p = s.procs.find((x) =>
        x.queue.state === "none" &&
        (x.fds !== 0 || x.maps !== 0 || x.shares.length !== 0 || x.pinned !== 0 ||
          x.lockedVm !== 0)
      );
      return p && `process ${p.pid} has no queue but holds ${p.fds} files, ${p.maps} ` +
          `mappings, ${p.shares.length} shares, ${p.pinned} pinned pages, locked_vm ${p.lockedVm}`;
    },
  },
  {
    name: "wd.counters",
    scope: "always",
    check: (s) => {
      for (const p of s.procs) {
        const q = p.queue;
        if (q.state !== "open") continue;
        if (!(0 <= q.received && q.received <= q.done && q.done <= q.sent)) {
          return `process ${p.pid}: sent ${q.sent}, done ${q.done}, received ${q.received}`;
        }
        if (q.sent - q.received > s.depth - 1) {
          return `process ${p.pid}: ${q.sent - q.received} outstanding at depth ${s.depth}`;
        }
        if (q.awaiting.some((n) => n < q.received || n >= q.sent)) {
          return `process ${p.pid}: callback awaited for a request received or never sent`;
        }
      }
      return undefined;
    },
  },
  {
    name: "wd.pinned",
    scope: "between-ops",
    check: (s) => {
      for (const p of s.procs) {
        const pages = p.shares.reduce((n, m) => n + pinnedPages(s.backend, m.size), 0);
        if (p.pinned !== pages || p.lockedVm !== pages) {
          return `process ${p.pid}: shares of ${pages} pages, ${p.pinned} pinned, locked_vm ` +
            `${p.lockedVm}`;
        }
        const sorted = [...p.shares].sort((a, b) => a.vaddr - b.vaddr);
        if (sorted.some((m, i) => i > 0 && sorted[i - 1].vaddr + sorted[i - 1].size > m.vaddr)) {
          return `process ${p.pid}: overlapping shares`;
        }
      }
      return undefined;
    },
  },
  {
    name: "wd.one-process",
    scope: "always",
    check: (s) => {
      const holders = s.procs.filter((p) => p.queue.state === "open").map((p) => p.pid);
      return s.backend === "sdmdev" && holders.length > 1
        ? `processes ${holders.join(", ")} hold queues`
        : undefined;
    },
  },
  {
    name: "wd.mdevs",
    scope: "between-ops",
    check: (s) => {
      const held = s.backend === "sdmdev" ? queuesHeld(s) + s.orphans.length : 0;
      return s.mdevs === held ? undefined : `${s.mdevs} mdevs for ${held} queues and orphans`;
    },
  },
  {
    name: "wd.qps",
    scope: "between-ops",
    check: (s) => {
      const held = queuesHeld(s) + s.orphans.length;
      if (s.qps !== held) return `${s.qps} queue pairs taken for ${held} queues and orphans`;
      if (s.qps > s.queuePairs) return `${s.qps} queue pairs taken of ${s.queuePairs}`;
      if (s.backend !== "sdmdev" && s.orphans.length > 0) return `orphaned mdevs on ${s.backend}`;
      return new Set(s.orphans).size === s.orphans.length ? undefined : "an orphan twice";
    },
  },
  {
    name: "wd.files",
    scope: "between-ops",
    check: (s) => {
      const files = WD_QUEUE_FILES[s.backend];
      const maps = { none: 0, open: 2, zombie: 0 };
      const p = s.procs.find((x) =>
        x.queue.state !== "none" && (x.fds !== files || x.maps !== maps[x.queue.state])
      );
      return p && `process ${p.pid} holds a ${p.queue.state} queue with ${p.fds} files and ` +
          `${p.maps} mappings reaching the device`;
    },
  },
  {
    name: "wd.removed",
    scope: "between-ops",
    check: (s) => {
      const zombies = s.procs.filter((p) => p.queue.state === "zombie").map((p) => p.pid);
      if (zombies.length > 0 && (s.backend !== "uacce" || s.accelerator !== "removed")) {
        return `processes ${zombies.join(", ")} hold zombie queues, the ${s.backend} ` +
          `accelerator ${s.accelerator}`;
      }
      if (s.accelerator === "removing") {
        if (s.backend !== "sdmdev") return `a pending remove on ${s.backend}`;
        if (queuesHeld(s) === 0) return "a remove pending with no queue open";
        return s.orphans.length > 0 ? "orphaned mdevs while removing" : undefined;
      }
      if (s.accelerator !== "removed") return undefined;
      const mapping = s.procs.find((p) => p.maps > 0 || p.queue.state === "open");
      if (mapping) return `process ${mapping.pid} maps or holds an open queue of a removed device`;
      if (s.qps + s.mdevs + s.orphans.length > 0) {
        return `removed, with ${s.qps} queue pairs, ${s.mdevs} mdevs, ${s.orphans.length} orphans`;
      }
      return undefined;
    },
  },
];

function queuesHeld(s: WdState): number {
  return s.procs.filter((p) => p.queue.state === "open").length;
}

/** Every violated invariant of `state`, as `name: message`. */
export function checkWdInvariants(state: WdState, scope?: Invariant<WdState>["scope"]): string[] {
  return checkInvariants(wdInvariants, state, scope);
}

/** Every op and its argument fields (public API: validates traces, generates commands). */
export const wdCommandSchema: CommandSchema<WdCommand["op"]> = {
  "wd.requestQueue": { by: "int" },
  "wd.releaseQueue": { by: "int" },
  "wd.send": { by: "int" },
  "wd.submit": { by: "int" },
  "wd.recv": { by: "int" },
  "wd.recvSync": { by: "int", timeoutMs: "int" },
  "wd.poll": { by: "int", max: "int" },
  "wd.flush": { by: "int" },
  "wd.memShare": { by: "int", vaddr: "int", size: "int" },
  "wd.memUnshare": { by: "int", vaddr: "int" },
  "wd.device": { by: "int" },
  "wd.exit": { by: "int" },
  "wd.loadType1": { loaded: "bool" },
  "wd.hostDriver": { bound: "bool" },
  "wd.maxMapCount": { maps: "int" },
  "wd.remove": {},
};

/** The shape of every op's success value. */
export const wdResults = {
  "wd.requestQueue": "zero",
  "wd.releaseQueue": "int",
  "wd.send": "int",
  "wd.submit": "int",
  "wd.recv": "int",
  "wd.recvSync": "int",
  "wd.poll": { list: "int" },
  "wd.flush": "zero",
  "wd.memShare": "zero",
  "wd.memUnshare": "zero",
  "wd.device": "int",
  "wd.exit": "zero",
  "wd.loadType1": "zero",
  "wd.hostDriver": "zero",
  "wd.maxMapCount": "zero",
  "wd.remove": "int",
} as const satisfies ResultTable<WdCommand["op"]>;

/** The wd library's contract as one record. */
export const wdSpec: MachineSpec<WdState, WdCommand, WdConfig> = {
  component: "wd",
  initial: initialWdState,
  step: stepWd,
  invariants: wdInvariants,
  schema: wdCommandSchema,
  results: wdResults,
};
