/**
 * The one source of nondeterminism. Every place where the real system could be preempted, or
 * where hardware acts on its own, is an explicit labelled point: `await sched.point("...")`.
 *
 * Two schedulers implement {@link Sched}:
 * - {@link ImmediateSched}: sequential execution, every point continues at once;
 * - {@link ControlledSched}: tasks run one at a time and, at each point, a {@link Driver}
 *   chooses which pending task continues. Drivers: fast-check's `fc.scheduler()` (tests:
 *   deterministic, shrinkable, replayable), a seeded PRNG, PCT ({@link pctDriver}: priorities
 *   with a few change points), and a recorded schedule (replay of a trace).
 *
 * A task may also block on a condition ({@link Sched.waitUntil}); it is only eligible while the
 * condition holds, so device loops and waiters never spin.
 *
 * @module
 */
import type fc from "fast-check";

/** The scheduling interface the implementation sees. */
export interface Sched {
  /** A preemption point: another task may run before this one continues. */
  point(label: string): Promise<void>;
  /** Blocks until `ready()` holds, then continues (itself a preemption point). */
  waitUntil(label: string, ready: () => boolean): Promise<void>;
  /** Id of the task running now (0 outside a controlled run). */
  currentTask(): number;
  /**
   * True when there is one task and every point continues at once: code may then pass a point
   * without waiting (see {@link afterPoint}). Under any other scheduler every point is awaited.
   */
  readonly immediate: boolean;
}

/** A value, or a promise of it: what a path that only waits under a controlled run returns. */
export type MaybeAsync<T> = T | Promise<T>;

/** Applies `f` to `v`: at once when `v` is a value, once it is fulfilled when a promise. */
export function andThen<T, U>(v: MaybeAsync<T>, f: (v: T) => MaybeAsync<U>): MaybeAsync<U> {
  return v instanceof Promise ? v.then(f) : f(v);
}

/**
 * The point `label`, then `next`: at once under an immediate scheduler (where the point would
 * continue at once anyway), else once the scheduler continues the task.
 */
export function afterPoint<T>(
  sched: Sched,
  label: string,
  next: () => MaybeAsync<T>,
): MaybeAsync<T> {
  return sched.immediate ? next() : sched.point(label).then(next);
}

const RESOLVED: Promise<void> = Promise.resolve();

/** Sequential scheduler: points continue immediately; a wait whose condition is false is a bug. */
export class ImmediateSched implements Sched {
  /** Points continue at once. */
  readonly immediate = true;

  /** Continues at once. */
  point(_label: string): Promise<void> {
    return RESOLVED;
  }

  /** Continues at once when `ready()` holds; otherwise no other task could ever make it hold. */
  waitUntil(label: string, ready: () => boolean): Promise<void> {
    if (!ready()) return Promise.reject(new DeadlockError([`main:${label}`]));
    return RESOLVED;
  }

  /** Always the single main task. */
  currentTask(): number {
    return 0;
  }
}

/** Raised when every remaining task is blocked on a condition that cannot become true. */
export class DeadlockError extends Error {
  /** The blocked `task:label` points. */
  readonly blocked: readonly string[];
  /** Builds the error from the blocked points. */
  constructor(blocked: readonly string[]) {
    super(`deadlock: blocked at ${blocked.join(", ")}`);
    this.blocked = blocked;
  }
}

/** One task waiting at a point. */
export interface PendingPoint {
  /** Task id. */
  readonly task: number;
  /** `taskName:label`, the name recorded in schedules. */
  readonly name: string;
  /** Condition for eligibility; absent for a plain point. */
  readonly ready?: () => boolean;
  /** Continues the task. */
  readonly resume: () => void;
}

/** Chooses which eligible pending point continues next. */
export interface Driver {
  /** Picks one of `eligible` (never empty). */
  choose(eligible: readonly PendingPoint[]): Promise<PendingPoint> | PendingPoint;
}

/** Outcome of {@link ControlledSched.run}. */
export interface RunOutcome {
  /** The `task:label` names in the order they were chosen. */
  readonly schedule: readonly string[];
  /** Non-daemon tasks still blocked when nothing was eligible (empty when all finished). */
  readonly blocked: readonly string[];
  /** True when the step budget ran out before the tasks finished. */
  readonly exhausted: boolean;
}

interface TaskRecord {
  readonly id: number;
  readonly name: string;
  readonly daemon: boolean;
  done: boolean;
  error?: unknown;
  onStop?: () => void;
}

/** Options of {@link ControlledSched.spawn}. */
export interface SpawnOptions {
  /** A daemon (device loop, IRQ thread) may stay blocked forever without being a deadlock. */
  readonly daemon?: boolean;
}

/** Cooperative scheduler whose interleavings are chosen by a {@link Driver}. */
export class ControlledSched implements Sched {
  /** Every point is a scheduling decision. */
  readonly immediate = false;
  #tasks: TaskRecord[] = [];
  #pending: PendingPoint[] = [];
  #current = 0;

  /** Id of the task running now. */
  currentTask(): number {
    return this.#current;
  }

  /** A preemption point of the running task. */
  point(label: string): Promise<void> {
    return this.#park(label, undefined);
  }

  /** Blocks the running task until `ready()` holds. */
  waitUntil(label: string, ready: () => boolean): Promise<void> {
    return this.#park(label, ready);
  }

  #park(label: string, ready: (() => boolean) | undefined): Promise<void> {
    const task = this.#tasks[this.#current - 1];
    if (!task) throw new Error(`sched point "${label}" outside a task`);
    return new Promise<void>((resume) => {
      this.#pending.push({ task: task.id, name: `${task.name}:${label}`, ready, resume });
      const stop = task.onStop;
      task.onStop = undefined;
      stop?.();
    });
  }

  /**
   * Registers a task. It starts at its first scheduling decision, so the start order is
   * chosen by the driver too. Returns a promise of the task's result, settled when it ends.
   */
  spawn<T>(name: string, body: () => Promise<T>, options: SpawnOptions = {}): Promise<T> {
    const task: TaskRecord = {
      id: this.#tasks.length + 1,
      name,
      daemon: options.daemon ?? false,
      done: false,
    };
    this.#tasks.push(task);
    const previous = this.#current;
    this.#current = task.id;
    const started = this.point("start");
    this.#current = previous;
    return started.then(body).finally(() => {
      task.done = true;
      const stop = task.onStop;
      task.onStop = undefined;
      stop?.();
    });
  }

  /**
   * Runs until every non-daemon task has finished, nothing is eligible, or `maxSteps`
   * decisions were made. `onStep` runs after each task stops at its next point (invariants).
   */
  async run(
    driver: Driver,
    options: { maxSteps?: number; onStep?: (name: string) => void } = {},
  ): Promise<RunOutcome> {
    const schedule: string[] = [];
    const maxSteps = options.maxSteps ?? 10_000;
    while (this.#tasks.some((t) => !t.done && !t.daemon)) {
      const eligible = this.#pending.filter((p) => !p.ready || p.ready());
      if (eligible.length === 0) break;
      if (schedule.length >= maxSteps) return { schedule, blocked: [], exhausted: true };
      const chosen = await driver.choose(eligible);
      this.#pending.splice(this.#pending.indexOf(chosen), 1);
      const task = this.#tasks[chosen.task - 1];
      const stopped = new Promise<void>((r) => (task.onStop = r));
      this.#current = task.id;
      chosen.resume();
      await stopped;
      this.#current = 0;
      schedule.push(chosen.name);
      options.onStep?.(chosen.name);
    }
    const blocked = this.#pending
      .filter((p) => !this.#tasks[p.task - 1].daemon)
      .map((p) => p.name);
    return { schedule, blocked, exhausted: false };
  }
}

/** A small seeded PRNG (mulberry32): returns floats in [0, 1). */
export function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** A driver that picks uniformly with a seeded PRNG. */
export function prngDriver(seed: number): Driver {
  const next = prng(seed);
  return { choose: (eligible) => eligible[Math.floor(next() * eligible.length)] };
}

/** What one PCT run follows (see {@link pctDriver}). */
export interface PctPlan {
  /**
   * One key per task, in the order the driver first sees them: a higher key is a higher
   * initial priority, ties go to the task seen first, a task beyond the list has key 0.
   */
  readonly priorities: readonly number[];
  /** Change points: the i-th entry (from 1) is the decision at which priorities drop to i. */
  readonly changes: readonly number[];
}

/**
 * Probabilistic Concurrency Testing (Burckhardt et al., ASPLOS 2010) as a driver: the highest
 * priority eligible task always continues; at decision `changes[i - 1]` (counted from 0) the
 * task that would continue drops to priority i, below every initial priority, and the highest
 * eligible task is chosen again. With `changes.length` = d - 1 drawn uniformly among the first
 * k decisions and random priorities, a bug of depth d among n tasks is hit with probability at
 * least 1/(n·k^(d-1)). Deterministic: the plan alone fixes the schedule.
 */
export function pctDriver(plan: PctPlan): Driver {
  const order = new Map<number, number>();
  const lowered = new Map<number, number>();
  let step = 0;
  const rank = (task: number): readonly [number, number, number] => {
    if (!order.has(task)) order.set(task, order.size);
    const seen = order.get(task)!;
    const drop = lowered.get(task);
    if (drop !== undefined) return [0, drop, 0];
    return [1, plan.priorities[seen] ?? 0, -seen];
  };
  const higher = (a: PendingPoint, b: PendingPoint) => {
    const [x, y] = [rank(a.task), rank(b.task)];
    const i = x.findIndex((v, j) => v !== y[j]);
    return i >= 0 && x[i] > y[i];
  };
  const best = (eligible: readonly PendingPoint[]) =>
    eligible.reduce((top, p) => (higher(p, top) ? p : top));
  return {
    choose(eligible) {
      for (const p of eligible) rank(p.task);
      const change = plan.changes.indexOf(step++);
      if (change < 0) return best(eligible);
      lowered.set(best(eligible).task, change + 1);
      return best(eligible);
    },
  };
}

/** Raised when a recorded schedule cannot be followed. */
export class ScheduleDivergence extends Error {}

/**
 * A driver that follows a recorded schedule (by `task:label` names), then picks the first.
 * Strict mode raises {@link ScheduleDivergence} when the recorded choice is not eligible;
 * lenient mode (replaying against a differently behaving implementation) falls back to the same
 * task, else the first eligible point.
 */
export function replayDriver(schedule: readonly string[], strict = true): Driver {
  let i = 0;
  return {
    choose(eligible) {
      if (i >= schedule.length) return eligible[0];
      const want = schedule[i++];
      const hit = eligible.find((p) => p.name === want);
      if (!hit && !strict) {
        const task = want.slice(0, want.indexOf(":"));
        return eligible.find((p) => p.name.startsWith(`${task}:`)) ?? eligible[0];
      }
      if (!hit) {
        const have = eligible.map((p) => p.name).join(", ");
        throw new ScheduleDivergence(
          `step ${i - 1}: "${want}" is not eligible (eligible: ${have})`,
        );
      }
      return hit;
    },
  };
}

/**
 * A driver that lets fast-check's scheduler choose: every eligible point is scheduled as a
 * promise labelled `task:label`, and the one fc's scheduler releases continues. Shrinking and
 * replay (seed + path) are fast-check's.
 */
export function fcDriver(s: fc.Scheduler): Driver {
  const submitted = new Set<PendingPoint>();
  let fired: PendingPoint | undefined;
  return {
    async choose(eligible) {
      for (const p of eligible) {
        if (submitted.has(p)) continue;
        submitted.add(p);
        s.schedule(Promise.resolve(p), p.name).then((q) => (fired = q));
      }
      for (;;) {
        fired = undefined;
        await s.waitOne();
        for (let i = 0; fired === undefined && i < 8; i++) await Promise.resolve();
        const p = fired as PendingPoint | undefined;
        if (!p) throw new Error("fc scheduler released no point");
        submitted.delete(p);
        if (eligible.includes(p)) return p;
      }
    },
  };
}
