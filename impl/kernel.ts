/**
 * What every simulated kernel object shares: the scheduler, physical memory, the quirk
 * switches, the event log (WARNs, faults and violations, attributed to the task that raised
 * them), the file namespace (sysfs, device nodes) and the `vm` sysctls.
 *
 * @module
 */
import type { Event, Ret } from "../spec/types.ts";
import type { PhysMem } from "./mem/phys.ts";
import type { Quirks } from "./quirks.ts";
import { roAttr, Sysfs, woAttr } from "./sysfs.ts";
import { DeadlockError, type MaybeAsync, type Sched } from "./sched.ts";

/** What executing one command produced. */
export interface Outcome {
  /** The return value. */
  readonly ret: Ret;
  /** Events the command's task raised while it ran. */
  readonly events: readonly Event[];
}

/** One logged event and the scheduler task that raised it. */
export interface LoggedEvent {
  /** Scheduler task id. */
  readonly task: number;
  /** The event. */
  readonly event: Event;
}

/** The shared context of the simulated kernel. */
export class Kernel {
  /** The scheduler every preemption point goes through. */
  readonly sched: Sched;
  /** Physical memory. */
  readonly phys: PhysMem;
  /** Seed defects switched on. */
  readonly quirks: Quirks;
  /** Every event so far, in order. */
  readonly log: LoggedEvent[] = [];
  /** sysfs, procfs and device nodes, as kernel pieces mount them. */
  readonly sysfs: Sysfs = new Sysfs();
  /** `vm.max_map_count`: the most mappings a process may have (counted over device mappings). */
  maxMapCount = 65530;

  /** Builds the context. */
  constructor(sched: Sched, phys: PhysMem, quirks: Quirks) {
    this.sched = sched;
    this.phys = phys;
    this.quirks = quirks;
    this.sysfs.mount("/proc/sys/vm/max_map_count", {
      ...roAttr(() => this.maxMapCount),
      ...woAttr((v) => {
        if (!/^\d+\n?$/.test(v)) return "EINVAL";
        this.maxMapCount = Number.parseInt(v, 10);
        return undefined;
      }),
    });
  }

  /** Records an event for the running task. */
  emit(event: Event): void {
    this.log.push({ task: this.sched.currentTask(), event });
  }

  /** Executes one command: its return value and the events its task logged meanwhile. */
  traced(body: () => MaybeAsync<Ret>): Promise<Outcome> {
    const task = this.sched.currentTask();
    const start = this.log.length;
    let ret: MaybeAsync<Ret>;
    try {
      ret = body();
    } catch (e) {
      return Promise.reject(e);
    }
    if (ret instanceof Promise) return ret.then((r) => this.#outcome(task, start, r));
    return Promise.resolve(this.#outcome(task, start, ret));
  }

  /** `ret` with the events `task` logged from `start` on. */
  #outcome(task: number, start: number, ret: Ret): Outcome {
    const events: Event[] = [];
    for (let i = start; i < this.log.length; i++) {
      if (this.log[i].task === task) events.push(this.log[i].event);
    }
    return { ret, events };
  }
}

/**
 * A mutex whose waiters block through the scheduler (struct mutex). The holding task may take
 * it again (nested takes stand for the `_locked` variants a kernel caller already holding the
 * lock would use); it is free once every take is released.
 */
export class Mutex {
  #owner: number | undefined;
  #depth = 0;

  /** Whether some task holds it. */
  get held(): boolean {
    return this.#depth > 0;
  }

  /** mutex_lock: blocks until free (or already ours), then takes it. */
  async lock(sched: Sched, label: string): Promise<void> {
    const me = sched.currentTask();
    if (this.#depth === 0 || this.#owner !== me) {
      await sched.waitUntil(label, () => this.#depth === 0);
    }
    this.#owner = me;
    this.#depth++;
  }

  /** mutex_unlock. */
  unlock(): void {
    this.#depth--;
  }

  /** Runs `body` holding the mutex. */
  async hold<T>(sched: Sched, label: string, body: () => MaybeAsync<T>): Promise<T> {
    await this.lock(sched, label);
    try {
      return await body();
    } finally {
      this.unlock();
    }
  }

  /**
   * {@link Mutex.hold} without waiting under an immediate scheduler: the mutex is taken at once
   * (held by another take there, it is the {@link DeadlockError} the scheduler's wait would
   * raise) and a synchronous `body`'s result is returned as it is.
   */
  holdNow<T>(sched: Sched, label: string, body: () => MaybeAsync<T>): MaybeAsync<T> {
    if (!sched.immediate) return this.hold(sched, label, body);
    if (this.#depth > 0 && this.#owner !== sched.currentTask()) {
      throw new DeadlockError([`main:${label}`]);
    }
    this.#owner = sched.currentTask();
    this.#depth++;
    let r: MaybeAsync<T>;
    try {
      r = body();
    } catch (e) {
      this.unlock();
      throw e;
    }
    if (r instanceof Promise) return r.finally(() => this.unlock());
    this.unlock();
    return r;
  }
}

/** Takes the mutexes of `groups` in id order (deduplicated), the kernel's lock ordering. */
export async function lockAll(
  sched: Sched,
  label: string,
  items: readonly { readonly id: number; readonly mutex: Mutex }[],
): Promise<() => void> {
  const sorted = [...new Set(items)].sort((a, b) => a.id - b.id);
  for (const item of sorted) await item.mutex.lock(sched, label);
  return () => sorted.forEach((item) => item.mutex.unlock());
}
