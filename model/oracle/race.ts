/**
 * The oracle for race traces: is the history linearizable, and if not, how far does it get?
 *
 * A search over the orders real time allows (an operation that returned before another was
 * invoked comes first; an actor's operations stay in program order): each operation replayed
 * through the spec must give the recorded return value and events, and the last must leave
 * the observed part of the end state. Subproblems already refuted (the same operations left,
 * an equal spec state) are not searched again, as in Wing and Gong's algorithm with Lowe's
 * memoisation. When no order works, the report names the longest prefix that fits and, for
 * each operation that could come next, why it cannot.
 *
 * A history shows only what each operation returned and the state after the last response:
 * a transient violation inside an operation that the operations' results do not show is
 * invisible to it (the race checker's invariants at every scheduling point catch those).
 *
 * @module
 */
import { deepEqual, describeDivergence } from "../equal.ts";
import type { Cmd, Machine } from "../machine.ts";
import { showCommand } from "../machine.ts";
import type { HistoryEntry } from "../race.ts";
import type { MachineTrace } from "../trace.ts";
import { project, type Projection } from "./project.ts";
import { type OracleResult, showRet } from "./report.ts";

/** A history's linearizability, and when it fails, where the search got furthest. */
export interface Linearizability {
  /** An order that explains the history, when there is one. */
  readonly order?: readonly HistoryEntry[];
  /** The longest prefix of an order that fits (the whole order when linearizable). */
  readonly prefix: readonly HistoryEntry[];
  /** After that prefix: each operation that could come next and why it cannot. */
  readonly blocked: readonly { readonly entry: HistoryEntry; readonly why: string }[];
  /** When the prefix holds every operation: how its end state differs from the recorded one. */
  readonly endDiffers?: readonly string[];
}

function precedes(a: HistoryEntry, b: HistoryEntry): boolean {
  return a.actor === b.actor ? a.index < b.index : a.returned < b.invoked;
}

/** `actor1#0 type1.attach(container=1, group=10)`. */
function name(h: HistoryEntry): string {
  return `${h.actor}#${h.index}`;
}

/**
 * Searches for an order of `history` (at most 31 operations) that real time allows and the
 * spec explains from `start`, ending in a state whose `projection` equals `end`'s.
 */
export function checkLinearizable(
  machine: Machine<unknown, Cmd>,
  start: unknown,
  history: readonly HistoryEntry[],
  end: unknown,
  projection?: Projection,
): Linearizability {
  if (history.length > 31) throw new RangeError("a history of more than 31 operations");
  const full = (1 << history.length) - 1;
  const refuted = new Map<number, unknown[]>();
  const order: HistoryEntry[] = [];
  let best: { prefix: HistoryEntry[]; state: unknown; done: number } = {
    prefix: [],
    state: start,
    done: 0,
  };
  const observed = (state: unknown) => projection ? project(state, projection) : state;
  const ends = (state: unknown) => deepEqual(observed(state), end);
  const ready = (done: number, k: number) =>
    history.every((o, j) => j === k || (done & (1 << j)) !== 0 || !precedes(o, history[k]));

  const search = (state: unknown, done: number): boolean => {
    if (done === full) return ends(state);
    const seen = refuted.get(done);
    if (seen?.some((s) => s === state || deepEqual(s, state))) return false;
    for (let k = 0; k < history.length; k++) {
      if ((done & (1 << k)) !== 0 || !ready(done, k)) continue;
      const op = history[k];
      const r = machine.step(state, op.cmd);
      if (!deepEqual(r.ret, op.ret) || !deepEqual(r.events, op.events)) continue;
      order.push(op);
      if (order.length > best.prefix.length) {
        best = { prefix: [...order], state: r.state, done: done | (1 << k) };
      }
      if (search(r.state, done | (1 << k))) return true;
      order.pop();
    }
    if (seen) seen.push(state);
    else refuted.set(done, [state]);
    return false;
  };
  if (search(start, 0)) return { order, prefix: order, blocked: [] };
  if (best.done === full) {
    const endDiffers = describeDivergence(observed(best.state), end, ["spec", "history"]);
    return { prefix: best.prefix, blocked: [], endDiffers };
  }

  const blocked = history.flatMap((entry, k) => {
    if ((best.done & (1 << k)) !== 0) return [];
    const before = history.find((o, j) =>
      j !== k && (best.done & (1 << j)) === 0 && precedes(o, entry)
    );
    if (before) {
      const why = before.actor === entry.actor
        ? `program order: ${name(before)} comes first`
        : `real time: ${name(before)} returned (t=${before.returned}) before it was invoked ` +
          `(t=${entry.invoked})`;
      return [{ entry, why }];
    }
    // Not held back, so its ret or its events differ: had both fitted, the search would have
    // placed it and found a longer prefix.
    const r = machine.step(best.state, entry.cmd);
    const why = !deepEqual(r.ret, entry.ret)
      ? `ret differs: spec ${showRet(r.ret)}, history ${showRet(entry.ret)}`
      : `events differ: spec ${JSON.stringify(r.events)}, history ${JSON.stringify(entry.events)}`;
    return [{ entry, why }];
  });
  return { prefix: best.prefix, blocked };
}

/** The history of a race trace: its steps as completed operations. */
function historyOf(trace: MachineTrace): HistoryEntry[] {
  const counts = new Map<string, number>();
  return trace.steps.map((s) => {
    const index = counts.get(s.actor!) ?? 0;
    counts.set(s.actor!, index + 1);
    return {
      actor: s.actor!,
      index,
      cmd: s.cmd,
      invoked: s.invoked!,
      returned: s.returned!,
      ret: s.ret,
      events: s.events,
      observed: s.state,
    };
  });
}

/** Checks a race trace: its setup replayed through the spec, then its history linearized. */
export function checkRace(trace: MachineTrace): OracleResult {
  const machine = trace.machine as Machine<unknown, Cmd>;
  let start = machine.initial();
  for (const cmd of trace.meta.race!.setup) start = machine.step(start, cmd).state;
  const whole = trace.meta.observed === undefined;
  const observe = (s: unknown) => whole ? s : project(s, trace.projection);
  const startDiff = describeDivergence(observe(start), trace.initial, ["spec", "trace"]);
  if (startDiff.length > 0) {
    const lines = ["✗ the state after the setup differs from the spec's:", ...startDiff];
    return { passed: false, report: () => lines.map((l, i) => i === 0 ? l : `    ${l}`) };
  }
  const history = historyOf(trace);
  const end = trace.steps.at(-1)?.state ?? trace.initial;
  const result = checkLinearizable(
    machine,
    start,
    history,
    end,
    whole ? undefined : trace.projection,
  );
  const order = (hs: readonly HistoryEntry[]) => hs.map(name).join(" ") || "(none)";
  return {
    passed: result.order !== undefined,
    report: () =>
      result.order ? [`linearizable as: ${order(result.order)}`] : [
        "✗ not linearizable: no order of the history is explained by the spec",
        `  longest linearizable prefix (${result.prefix.length} of ${history.length}): ${
          order(result.prefix)
        }`,
        ...(result.endDiffers
          ? [
            "  every operation fits in that order, but the end state differs:",
            ...result.endDiffers.map((l) => `    ${l}`),
          ]
          : [
            "  then:",
            ...result.blocked.map((b) =>
              `    ${name(b.entry)} ${showCommand(b.entry.cmd)}: ${b.why}`
            ),
          ]),
      ],
  };
}
