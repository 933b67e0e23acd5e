/**
 * What every simulated kernel object shares: the scheduler, physical memory, the quirk
 * switches, and the event log (WARNs, faults and violations, attributed to the task that
 * raised them).
 *
 * @module
 */
import type { Event, Ret } from "../spec/types.ts";
import type { PhysMem } from "./mem/phys.ts";
import type { Quirks } from "./quirks.ts";
import type { Sched } from "./sched.ts";

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

  /** Builds the context. */
  constructor(sched: Sched, phys: PhysMem, quirks: Quirks) {
    this.sched = sched;
    this.phys = phys;
    this.quirks = quirks;
  }

  /** Records an event for the running task. */
  emit(event: Event): void {
    this.log.push({ task: this.sched.currentTask(), event });
  }

  /** Executes one command: its return value and the events its task logged meanwhile. */
  async traced(body: () => Promise<Ret> | Ret): Promise<{ ret: Ret; events: Event[] }> {
    const task = this.sched.currentTask();
    const start = this.log.length;
    const ret = await body();
    const events = this.log.slice(start).filter((e) => e.task === task).map((e) => e.event);
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
  async hold<T>(sched: Sched, label: string, body: () => Promise<T> | T): Promise<T> {
    await this.lock(sched, label);
    try {
      return await body();
    } finally {
      this.unlock();
    }
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
