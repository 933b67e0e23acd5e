/**
 * The oracle for race traces: is the history linearizable, and if not, how far does it get?
 *
 * A search over the orders real time allows (an operation that returned before another was
 * invoked comes first; an actor's operations stay in program order): each operation replayed
 * through the spec must give the recorded return value and events, and the last must leave
 * the observed part of the end state. Subproblems already refuted (the same operations left,
 * an equal spec state) are not searched again, as in Wing and Gong's algorithm with Lowe's
 * memoisation. When no order works, the report names the longest prefix that fits and, for
 * each operation that could come next, why it cannot. An operation whose outcome is unknown
 * (Knossos' `info`) may take effect at any point after its invocation, whatever it returned,
 * or never; the order found says which of them it left out.
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
  /** Operations of unknown outcome that the order (or the prefix) leaves out: no effect. */
  readonly skipped: readonly HistoryEntry[];
  /** After that prefix: each operation that could come next and why it cannot. */
  readonly blocked: readonly { readonly entry: HistoryEntry; readonly why: string }[];
  /** When the prefix holds every operation: how its end state differs from the recorded one. */
  readonly endDiffers?: readonly string[];
}

/** What else a linearizability check is told. */
export interface LinearizeOptions {
  /** Only this part of the end state is compared (default: all of it). */
  readonly projection?: Projection;
  /** Operations of unknown outcome: each may take effect after its invocation, or never. */
  readonly unknown?: ReadonlySet<HistoryEntry>;
}

/** `actor1#0 type1.attach(container=1, group=10)`. */
function name(h: HistoryEntry): string {
  return `${h.actor}#${h.index}`;
}

/**
 * Searches for an order of `history` (at most 31 operations) that real time allows and the
 * spec explains from `start`, ending in a state whose observed part equals `end`.
 */
export function checkLinearizable(
  machine: Machine<unknown, Cmd>,
  start: unknown,
  history: readonly HistoryEntry[],
  end: unknown,
  options: LinearizeOptions = {},
): Linearizability {
  if (history.length > 31) throw new RangeError("a history of more than 31 operations");
  const { projection, unknown = new Set() } = options;
  // An operation of unknown outcome may take effect long after its caller gave up: it comes
  // before no other actor's operation.
  const precedes = (a: HistoryEntry, b: HistoryEntry) =>
    a.actor === b.actor ? a.index < b.index : !unknown.has(a) && a.returned < b.invoked;
  // 2 ** n, not 1 << n: a shift by 31 gives a negative int32, and no set of 31 would be full.
  const full = 2 ** history.length - 1;
  const refuted = new Map<number, unknown[]>();
  const order: HistoryEntry[] = [];
  const skipped: HistoryEntry[] = [];
  let best = { prefix: [] as HistoryEntry[], skipped: [] as HistoryEntry[], state: start, done: 0 };
  let bestDecided = 0;
  /** Remembers the furthest point reached, `done` the operations decided there. */
  const reached = (state: unknown, done: number) => {
    if (order.length + skipped.length <= bestDecided) return;
    bestDecided = order.length + skipped.length;
    best = { prefix: [...order], skipped: [...skipped], state, done };
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
      const open = unknown.has(op);
      if (open || (deepEqual(r.ret, op.ret) && deepEqual(r.events, op.events))) {
        order.push(op);
        reached(r.state, done | (1 << k));
        if (search(r.state, done | (1 << k))) return true;
        order.pop();
      }
      if (open) {
        skipped.push(op);
        reached(state, done | (1 << k));
        if (search(state, done | (1 << k))) return true;
        skipped.pop();
      }
    }
    if (seen) seen.push(state);
    else refuted.set(done, [state]);
    return false;
  };
  if (search(start, 0)) return { order, prefix: order, skipped, blocked: [] };
  if (best.done === full) {
    const endDiffers = describeDivergence(observed(best.state), end, ["spec", "history"]);
    return { prefix: best.prefix, skipped: best.skipped, blocked: [], endDiffers };
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
    // Not held back, so its ret or its events differ: had both fitted (or were its outcome
    // unknown), the search would have placed it and gone further.
    const r = machine.step(best.state, entry.cmd);
    const why = !deepEqual(r.ret, entry.ret)
      ? `ret differs: spec ${showRet(r.ret)}, history ${showRet(entry.ret)}`
      : `events differ: spec ${JSON.stringify(r.events)}, history ${JSON.stringify(entry.events)}`;
    return [{ entry, why }];
  });
  return { prefix: best.prefix, skipped: best.skipped, blocked };
}

/** The history of a race trace: its steps as operations. */
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
  // Setup commands may hold placeholders, resolved against the spec's state as the race ran.
  for (const generated of trace.meta.race!.setup) {
    start = machine.step(start, machine.resolve?.(start, generated) ?? generated).state;
  }
  const whole = trace.meta.observed === undefined;
  const observe = (s: unknown) => whole ? s : project(s, trace.projection);
  const startDiff = describeDivergence(observe(start), trace.initial, ["spec", "trace"]);
  if (startDiff.length > 0) {
    const lines = ["✗ the state after the setup differs from the spec's:", ...startDiff];
    return { passed: false, report: () => lines.map((l, i) => i === 0 ? l : `    ${l}`) };
  }
  const history = historyOf(trace);
  const unknown = new Set(history.filter((_, i) => trace.steps[i].unknown));
  const end = trace.steps.at(-1)?.state ?? trace.initial;
  const result = checkLinearizable(machine, start, history, end, {
    projection: whole ? undefined : trace.projection,
    unknown,
  });
  const left = result.skipped.length > 0
    ? ` (no effect: ${result.skipped.map(name).join(" ")})`
    : "";
  const order = (hs: readonly HistoryEntry[]) => (hs.map(name).join(" ") || "(none)") + left;
  return {
    passed: result.order !== undefined,
    report: () =>
      result.order ? [`linearizable as: ${order(result.order)}`] : [
        "✗ not linearizable: no order of the history is explained by the spec",
        `  longest linearizable prefix (${
          result.prefix.length + result.skipped.length
        } of ${history.length}): ${order(result.prefix)}`,
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
