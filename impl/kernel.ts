/**
 * What every simulated kernel object shares: the scheduler, physical memory, the quirk
 * switches, and the event log (WARNs, faults and violations, attributed to the task that
 * raised them).
 *
 * @module
 */
import type { Event } from "../spec/types.ts";
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
}

/** A mutex whose waiters block through the scheduler (struct mutex). */
export class Mutex {
  #held = false;

  /** mutex_lock: blocks until free, then takes it. */
  async lock(sched: Sched, label: string): Promise<void> {
    await sched.waitUntil(label, () => !this.#held);
    this.#held = true;
  }

  /** mutex_unlock. */
  unlock(): void {
    this.#held = false;
  }
}
