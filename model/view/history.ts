/**
 * How much of a race history the spec explains, as Porcupine draws it: the longest
 * linearizable prefix (a real-time-respecting order of some of the operations whose spec
 * replay reproduces each one's return value and events), and the operation that cannot follow.
 *
 * @module
 */
import type { Machine } from "../machine.ts";
import { checkLinearizable } from "../oracle/race.ts";
import type { HistoryEntry } from "../race.ts";

/** The longest linearizable prefix of a history. */
export interface LinearizedPrefix {
  /** The operations, in their linearization order. */
  readonly prefix: readonly HistoryEntry[];
  /** The spec state after them. */
  readonly state: unknown;
  /** True when the prefix is the whole history and the spec ends in the observed end state. */
  readonly complete: boolean;
  /** When incomplete: each operation that could come next and why it cannot. */
  readonly next: readonly { readonly entry: HistoryEntry; readonly why: string }[];
}

/**
 * The longest linearizable prefix of `history` from the spec state `start`, as the oracle's
 * search ({@link checkLinearizable}) finds it: `complete` when it is the whole history and
 * ends in `end`, with each operation that could come next and why it cannot.
 */
export function linearizedPrefix(
  machine: Machine,
  start: unknown,
  history: readonly HistoryEntry[],
  end: unknown,
): LinearizedPrefix {
  const found = checkLinearizable(machine, start, history, end);
  const state = found.prefix.reduce((s, h) => machine.step(s, h.cmd).state, start);
  return { prefix: found.prefix, state, complete: found.order !== undefined, next: found.blocked };
}

/**
 * The operation that cannot follow an incomplete prefix: of those not in it, the one that
 * responded first (then invoked first, then first in its actor's program). Nothing left
 * precedes it, by real time or program order. Undefined when the prefix holds every operation.
 */
export function blockingOp(
  history: readonly HistoryEntry[],
  prefix: readonly HistoryEntry[],
): HistoryEntry | undefined {
  return history.filter((h) => !prefix.includes(h))
    .toSorted((a, b) => a.returned - b.returned || a.invoked - b.invoked || a.index - b.index)[0];
}
