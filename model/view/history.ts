/**
 * How much of a race history the spec explains, as Porcupine draws it: the longest
 * linearizable prefix (a real-time-respecting order of some of the operations whose spec
 * replay reproduces each one's return value and events), and the operation that cannot follow.
 *
 * @module
 */
import { deepEqual } from "../equal.ts";
import type { Machine } from "../machine.ts";
import type { HistoryEntry } from "../race.ts";

/** The longest linearizable prefix of a history. */
export interface LinearizedPrefix {
  /** The operations, in their linearization order. */
  readonly prefix: readonly HistoryEntry[];
  /** The spec state after them. */
  readonly state: unknown;
  /** True when the prefix is the whole history and the spec ends in the observed end state. */
  readonly complete: boolean;
}

/** `a` must come before `b` in any linearization: same actor in program order, or real time. */
function precedes(a: HistoryEntry, b: HistoryEntry): boolean {
  return a.actor === b.actor ? a.index < b.index : a.returned < b.invoked;
}

/**
 * The longest linearizable prefix of `history` from the spec state `start`; a prefix that is
 * the whole history and ends in `end` is preferred (then `complete`). Depth-first search over
 * the orders real time allows, pruned where the spec disagrees with a return value or an
 * event and where an (operations done, state) pair was met before.
 */
export function longestLinearizablePrefix(
  machine: Machine,
  start: unknown,
  history: readonly HistoryEntry[],
  end: unknown,
): LinearizedPrefix {
  let best: LinearizedPrefix = { prefix: [], state: start, complete: history.length === 0 };
  const seen = new Map<string, unknown[]>();
  const order: HistoryEntry[] = [];
  const search = (state: unknown, remaining: readonly HistoryEntry[]): boolean => {
    const key = remaining.map((h) => history.indexOf(h)).join(",");
    const states = seen.get(key) ?? [];
    if (states.some((s) => deepEqual(s, state))) return false;
    seen.set(key, [...states, state]);
    if (order.length > best.prefix.length) best = { prefix: [...order], state, complete: false };
    if (remaining.length === 0) {
      if (!deepEqual(state, end)) return false;
      best = { prefix: [...order], state, complete: true };
      return true;
    }
    for (const op of remaining) {
      if (remaining.some((o) => o !== op && precedes(o, op))) continue;
      const r = machine.step(state, op.cmd);
      if (!deepEqual(r.ret, op.ret) || !deepEqual(r.events, op.events)) continue;
      order.push(op);
      if (search(r.state, remaining.filter((o) => o !== op))) return true;
      order.pop();
    }
    return false;
  };
  search(start, history);
  return best;
}

/**
 * The operation that cannot follow an incomplete prefix: of those not in it that nothing left
 * must precede, the one that responded first. Undefined when the prefix holds every operation.
 */
export function blockingOp(
  history: readonly HistoryEntry[],
  prefix: readonly HistoryEntry[],
): HistoryEntry | undefined {
  const left = history.filter((h) => !prefix.includes(h));
  const next = left.filter((op) => !left.some((o) => o !== op && precedes(o, op)));
  return next.toSorted((a, b) => a.returned - b.returned || a.invoked - b.invoked)[0];
}
