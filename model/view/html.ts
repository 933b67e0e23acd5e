/**
 * The HTML view of a replayed counterexample (`replay --html`): one self-contained page, no
 * script and no network, with
 * - a sequence diagram: a lane per actor (process, kernel, admin, IRQ thread, device, race
 *   actor) and per component (IOMMU, VFIO, sdmdev, QM, ...), each operation an arrow from its
 *   caller to its component and its return value back, the violating step highlighted
 *   (`id="violation"`, class `violation`);
 * - the divergence: spec against implementation at the first differing step (return value,
 *   events, the first state difference as {@link difference} finds it, both states in full);
 * - for races, the history: operations as intervals on their actors' lanes, the longest
 *   linearizable prefix numbered in its order and the operation that cannot follow it marked;
 * - every step in a table, long arguments abbreviated (full value in the title) and sentinel
 *   values explained.
 *
 * @module
 */
import type { Event, Ret } from "../../spec/types.ts";
import { difference } from "../equal.ts";
import type { Cmd, Machine } from "../machine.ts";
import type { HistoryEntry } from "../race.ts";
import type { RaceRun, SequentialRun } from "../replay.ts";
import type { MachineTrace } from "../trace.ts";
import { blockingOp, type LinearizedPrefix, linearizedPrefix } from "./history.ts";
import { callerOf, componentOf } from "./lanes.ts";
import { escapeHtml, fieldsHtml, retHtml, retText, toJson, valueHtml } from "./show.ts";

/** What to draw. */
export interface PageInput {
  /** The trace file's name, for the title. */
  readonly file: string;
  /** The trace (its `#meta` and steps). */
  readonly trace: MachineTrace;
  /** The run to draw: a replay, or the oracle's reading of the recorded trace. */
  readonly run: SequentialRun | RaceRun;
  /** What the run is, e.g. "replay against the implementation with quirks: x". */
  readonly drawn: string;
  /** True when the run is the recorded trace as the spec judges it (not a replay). */
  readonly recorded: boolean;
  /** The replay's verdict, one line. */
  readonly verdict: string;
  /** Whether the replay passed. */
  readonly passed: boolean;
}

/** One row of the diagram and the table. */
interface Row {
  /** Step label: `1`, `2`, … (setup steps `s1`, …). */
  readonly label: string;
  /** The command. */
  readonly cmd: Cmd;
  /** Lane issuing it. */
  readonly caller: string;
  /** Spec return value, when known. */
  readonly spec?: Ret;
  /** Implementation's (or the trace's) return value, when it ran. */
  readonly impl?: Ret;
  /** Implementation's events. */
  readonly events: readonly Event[];
  /** Logical invocation and response times (race operations). */
  readonly interval?: readonly [number, number];
  /** Verdict text. */
  readonly verdict: string;
  /** CSS classes: `violation`, `setup`, `not-run`, `linearized`. */
  readonly kind: string;
}

/** The divergence: what differs, as table rows, and both states. */
interface Divergence {
  /** One line. */
  readonly why: string;
  /** [what, spec, implementation] rows, the values as HTML. */
  readonly rows: readonly (readonly [string, string, string])[];
  /** The two states compared, when there are states to compare. */
  readonly states?: readonly [unknown, unknown];
  /** Races: why each operation that could follow the linearizable prefix cannot. */
  readonly next?: readonly string[];
}

const LANE = 132;
const ROW = 46;
const TOP = 44;

/** Values in the divergence table are cut later than in the step table. */
const WIDE = 160;

/** A divergence row: what, and both values as HTML. */
function row(what: string, spec: unknown, impl: unknown): [string, string, string] {
  return [escapeHtml(what), valueHtml(spec, WIDE), valueHtml(impl, WIDE)];
}

function diffRows(
  spec: Ret,
  specEvents: readonly Event[],
  impl: Ret,
  implEvents: readonly Event[],
): [string, string, string][] {
  const rows: [string, string, string][] = [];
  if (difference(spec, impl)) rows.push(row("return value", spec, impl));
  if (difference(specEvents, implEvents)) rows.push(row("events", specEvents, implEvents));
  return rows;
}

/** Keys listed for a Map or record whose keys differ, before "…". */
const KEYS = 8;

/** `; only in spec: k1, k2` when more keys than the one at the path are on one side only. */
function keys(which: string, ks: readonly string[] | undefined): string {
  if (!ks || ks.length < 2) return "";
  return `; only ${which}: ${ks.slice(0, KEYS).join(", ")}${ks.length > KEYS ? ", …" : ""}`;
}

/**
 * One row per top-level state field that differs: the first difference in it (its path and
 * both values) and, where a Map or record there has keys on one side only, which.
 */
function stateRows(spec: unknown, impl: unknown): [string, string, string][] {
  const fields = (v: unknown) =>
    typeof v === "object" && v !== null && !(v instanceof Map) && !Array.isArray(v)
      ? Object.keys(v)
      : [];
  const names = [...new Set([...fields(spec), ...fields(impl)])];
  const field = (v: unknown, k: string) => (v as Record<string, unknown>)[k];
  const found = names.length > 0
    ? names.map((k) => difference(field(spec, k), field(impl, k), `$.${k}`))
    : [difference(spec, impl)];
  return found.flatMap((d) => {
    if (!d) return [];
    return [
      row(`state at ${d.path}${keys("in spec", d.missing)}${keys("in impl", d.extra)}`, d.a, d.b),
    ];
  });
}

/** Rows and divergence of a sequential run; steps the run did not reach are `not-run`. */
function sequentialView(machine: Machine, trace: MachineTrace, run: SequentialRun) {
  const rows: Row[] = run.records.map((r, i) => ({
    label: String(i + 1),
    cmd: r.cmd,
    caller: callerOf(r.cmd),
    spec: r.specRet,
    impl: r.impl.ret,
    events: r.impl.events,
    verdict: r.failure ?? "ok",
    kind: r.failure ? "violation" : "",
  }));
  trace.steps.slice(run.records.length).forEach((s, i) =>
    rows.push({
      label: String(run.records.length + i + 1),
      cmd: s.cmd,
      caller: callerOf(s.cmd),
      events: [],
      verdict: "not run: after the divergence",
      kind: "not-run",
    })
  );
  const bad = run.records.find((r) => r.failure);
  const divergence: Divergence | undefined = bad && {
    why: `step ${run.records.indexOf(bad) + 1}, ${bad.cmd.op}: ${bad.failure}`,
    rows: [
      ...diffRows(bad.specRet, bad.specEvents, bad.impl.ret, bad.impl.events),
      ...stateRows(bad.specState, bad.observed),
      ...machine.violations(bad.observed).map((v): [string, string, string] => [
        "invariant",
        "holds",
        escapeHtml(v),
      ]),
    ],
    states: [bad.specState, bad.observed],
  };
  return { rows, divergence, violation: bad ? run.records.indexOf(bad) : undefined };
}

/** The history entry a race's failure points at, if one. */
function failingOp(run: RaceRun, lin: LinearizedPrefix): HistoryEntry | undefined {
  if (!run.failure) return undefined;
  if (run.failedAt !== undefined && run.failedAt >= 0) {
    const name = run.schedule[run.failedAt];
    const actor = name.slice(0, name.indexOf(":"));
    const ops = run.history.filter((h) => h.actor === actor).toSorted((a, b) => a.index - b.index);
    return ops.find((h) => h.returned >= run.failedAt!) ?? ops.at(-1);
  }
  const unsafe = run.failure.startsWith("device safety: ")
    ? run.history.find((h) => h.events.some((e) => `device safety: ${toJson(e)}` === run.failure))
    : undefined;
  return unsafe ?? (lin.complete ? undefined : blockingOp(run.history, lin.prefix));
}

/** Rows, divergence and linearization of a race run. */
function raceView(machine: Machine, run: RaceRun) {
  const lin = linearizedPrefix(machine, run.start, run.history, run.end);
  const bad = failingOp(run, lin);
  const setup: Row[] = run.setup.map((s, i) => ({
    label: `s${i + 1}`,
    cmd: s.cmd,
    caller: callerOf(s.cmd),
    spec: s.ret,
    events: [],
    verdict: "setup (spec)",
    kind: "setup",
  }));
  const blocked = bad && !lin.prefix.includes(bad) ? machine.step(lin.state, bad.cmd) : undefined;
  const ops: Row[] = run.history.map((h, i) => {
    const at = lin.prefix.indexOf(h);
    const verdict = at >= 0
      ? `linearized #${at + 1}`
      : h === bad
      ? "cannot follow the linearizable prefix"
      : "not linearized";
    return {
      label: String(i + 1),
      cmd: h.cmd,
      caller: h.actor,
      spec: at >= 0 ? h.ret : h === bad ? blocked?.ret : undefined,
      impl: h.ret,
      events: h.events,
      interval: [h.invoked, h.returned],
      verdict: h === bad && run.failure ? `${verdict}; ${run.failure}` : verdict,
      kind: [h === bad ? "violation" : "", at >= 0 ? "linearized" : ""].join(" ").trim(),
    };
  });
  const next = lin.complete
    ? undefined
    : lin.next.map((n) => `${n.entry.actor}#${n.entry.index} ${n.entry.cmd.op}: ${n.why}`);
  let divergence: Divergence | undefined;
  if (run.failure && blocked && bad) {
    divergence = {
      why: `${bad.actor} ${bad.cmd.op} [${bad.invoked}..${bad.returned}]: ${run.failure}`,
      rows: [
        ...diffRows(blocked.ret, blocked.events, bad.ret, bad.events),
        ...stateRows(blocked.state, bad.observed),
      ],
      states: [blocked.state, bad.observed],
      next,
    };
  } else if (run.failure && lin.prefix.length === run.history.length && !lin.complete) {
    divergence = {
      why: `every operation linearizes, but not into the observed end state: ${run.failure}`,
      rows: stateRows(lin.state, run.end),
      states: [lin.state, run.end],
      next,
    };
  } else if (run.failure) {
    divergence = {
      why: bad ? `${bad.actor} ${bad.cmd.op}: ${run.failure}` : run.failure,
      rows: [],
    };
  }
  const violation = bad ? setup.length + run.history.indexOf(bad) : undefined;
  return { rows: [...setup, ...ops], divergence, violation, lin, bad };
}

function arrowHead(id: string, cls: string): string {
  return `<marker id="${id}" class="${cls}" viewBox="0 0 10 10" refX="9" refY="5" ` +
    `markerWidth="7" markerHeight="7" orient="auto-start-reverse">` +
    `<path d="M0,0 L10,5 L0,10 z"/></marker>`;
}

/**
 * The sequence diagram of `rows` (setup rows left out: they are in the table): caller lanes in
 * the order they first call (race actors by name), then the components.
 */
function sequenceSvg(rows: readonly Row[], violation: number | undefined, race: boolean): string {
  const drawn = rows.map((r, i) => ({ r, i })).filter(({ r }) => r.kind !== "setup");
  const callers = [...new Set(drawn.map(({ r }) => r.caller))];
  if (race) callers.sort();
  const lanes = [...new Set([...callers, ...drawn.map(({ r }) => componentOf(r.cmd))])];
  const x = (lane: string) => 40 + LANE / 2 + lanes.indexOf(lane) * LANE;
  const height = TOP + drawn.length * ROW + 20;
  const width = 40 + lanes.length * LANE + 40;
  const out = [
    `<svg class="sequence" xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}"` +
    ` viewBox="0 0 ${width} ${height}" role="img" aria-label="sequence diagram">`,
    `<defs>${arrowHead("call", "call")}${arrowHead("back", "back")}${
      arrowHead("bad", "bad")
    }</defs>`,
  ];
  for (const lane of lanes) {
    const lx = x(lane);
    out.push(
      `<g class="lane" data-lane="${escapeHtml(lane)}">` +
        `<rect x="${lx - LANE / 2 + 6}" y="6" width="${LANE - 12}" height="26" rx="4"/>` +
        `<text x="${lx}" y="24" text-anchor="middle">${escapeHtml(lane)}</text>` +
        `<line x1="${lx}" y1="32" x2="${lx}" y2="${height - 6}"/></g>`,
    );
  }
  drawn.forEach(({ r, i }, k) => {
    const y = TOP + k * ROW + 14;
    const [from, to] = [x(r.caller), x(componentOf(r.cmd))];
    const id = i === violation ? ` id="violation"` : ` id="seq-${escapeHtml(r.label)}"`;
    const head = i === violation ? "bad" : "call";
    const mid = (from + to) / 2;
    const when = r.interval ? ` [${r.interval[0]}..${r.interval[1]}]` : "";
    const differs = r.spec !== undefined && r.impl !== undefined && difference(r.spec, r.impl);
    const ret = r.impl === undefined
      ? ""
      : retText(r.impl) + (differs ? `  (spec: ${retText(r.spec!)})` : "");
    const detail = `${r.label}: ${r.caller} → ${toJson(r.cmd)}${when}, spec ${
      toJson(r.spec)
    }, impl ${toJson(r.impl)}; ${r.verdict}`;
    out.push(
      `<g class="${["step", r.kind].join(" ").trim()}"${id}><title>${escapeHtml(detail)}</title>` +
        (i === violation
          ? `<rect class="mark" x="4" y="${y - 16}" width="${width - 8}" ` +
            `height="${ROW - 4}" rx="4"/>`
          : "") +
        `<text class="num" x="8" y="${y + 4}">${escapeHtml(r.label)}</text>` +
        `<text class="op" x="${mid}" y="${y - 4}" text-anchor="middle">${
          escapeHtml(r.cmd.op + when)
        }</text>` +
        `<line class="call" x1="${from}" y1="${y}" x2="${to}" y2="${y}" ` +
        `marker-end="url(#${head})"/>` +
        (ret
          ? `<line class="back" x1="${to}" y1="${y + 14}" x2="${from}" y2="${y + 14}" ` +
            `marker-end="url(#back)"/><text class="ret" x="${mid}" y="${y + 26}" ` +
            `text-anchor="middle">${escapeHtml(ret)}</text>`
          : "") +
        `</g>`,
    );
  });
  out.push("</svg>");
  return out.join("\n");
}

/**
 * Event columns of a history: every invocation and response in time order, a response before
 * the same actor's next invocation at the same clock, invocations before other actors'
 * responses at the same clock (so `a.returned == b.invoked` draws as an overlap, which it is).
 */
function columns(history: readonly HistoryEntry[]): Map<string, number> {
  const events = history.flatMap((h) => {
    const earlier = (t: number) =>
      history.filter((o) =>
        o.actor === h.actor && o.index < h.index && (o.invoked === t || o.returned === t)
      ).length;
    return [
      { key: `${h.actor}#${h.index}<`, t: h.invoked, sub: 2 * earlier(h.invoked) },
      { key: `${h.actor}#${h.index}>`, t: h.returned, sub: 2 * earlier(h.returned) + 1 },
    ];
  });
  events.sort((a, b) => a.t - b.t || a.sub - b.sub);
  return new Map(events.map((e, i) => [e.key, i]));
}

/** The history as Porcupine draws it: intervals on actor lanes, the linearized prefix in order. */
function historySvg(run: RaceRun, lin: LinearizedPrefix, bad: HistoryEntry | undefined): string {
  const actors = [...new Set(run.history.map((h) => h.actor))].sort();
  const col = columns(run.history);
  const W = 66;
  const left = 90;
  const width = left + (col.size + 1) * W;
  const height = 30 + actors.length * 54 + 40;
  const cx = (h: HistoryEntry, end: "<" | ">") =>
    left + col.get(`${h.actor}#${h.index}${end}`)! * W;
  const out = [
    `<svg class="history" xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}"` +
    ` viewBox="0 0 ${width} ${height}" role="img" aria-label="history">`,
  ];
  actors.forEach((a, i) => {
    const y = 30 + i * 54;
    out.push(
      `<g class="lane" data-lane="${escapeHtml(a)}"><text x="8" y="${y + 26}">${
        escapeHtml(a)
      }</text><line x1="${left - 10}" y1="${y + 44}" x2="${width - 10}" y2="${y + 44}"/></g>`,
    );
  });
  const ticks = new Map<number, number>();
  for (const h of run.history) {
    for (const [t, end] of [[h.invoked, "<"], [h.returned, ">"]] as const) {
      ticks.set(t, Math.min(ticks.get(t) ?? Infinity, cx(h, end)));
    }
  }
  for (const [t, px] of ticks) {
    out.push(
      `<g class="tick"><line x1="${px}" y1="18" x2="${px}" y2="${height - 30}"/>` +
        `<text x="${px}" y="${height - 16}" text-anchor="middle">t${t}</text></g>`,
    );
  }
  if (run.failedAt !== undefined && run.failedAt >= 0) {
    const px = Math.max(...[...ticks].filter(([t]) => t <= run.failedAt!).map(([, p]) => p)) +
      W / 2;
    const step = run.schedule[run.failedAt];
    out.push(
      `<g class="failed-at"><title>${
        escapeHtml(`failure seen after step ${run.failedAt}: ${step}`)
      }` +
        `</title><line x1="${px}" y1="14" x2="${px}" y2="${height - 30}"/>` +
        `<text x="${px + 4}" y="12">failure seen</text></g>`,
    );
  }
  for (const h of run.history) {
    const y = 30 + actors.indexOf(h.actor) * 54;
    const [x0, x1] = [cx(h, "<"), cx(h, ">") + W * 0.8];
    const at = lin.prefix.indexOf(h);
    const kind = h === bad ? "violation" : at >= 0 ? "linearized" : "unlinearized";
    const id = h === bad ? ` id="violation-history"` : "";
    const label = at >= 0 ? `#${at + 1} ${h.cmd.op}` : h.cmd.op;
    const ret = retText(h.ret);
    const tip =
      `${h.actor}#${h.index} ${toJson(h.cmd)} [${h.invoked}..${h.returned}] → ${toJson(h.ret)}` +
      (at >= 0 ? `; linearized #${at + 1}` : h === bad ? "; cannot follow the prefix" : "");
    out.push(
      `<g class="op ${kind}"${id}><title>${escapeHtml(tip)}</title>` +
        `<rect x="${x0}" y="${y + 6}" width="${x1 - x0}" height="32" rx="5"/>` +
        `<text x="${x0 + 5}" y="${y + 20}">${escapeHtml(label)}</text>` +
        `<text class="ret" x="${x0 + 5}" y="${y + 33}">${escapeHtml(ret)}</text></g>`,
    );
  }
  out.push("</svg>");
  return out.join("\n");
}

function tableHtml(
  rows: readonly Row[],
  violation: number | undefined,
  legend: Map<string, string>,
) {
  const head = "<tr><th>#</th><th>caller</th><th>op</th><th>arguments</th><th>time</th>" +
    "<th>spec</th><th>implementation</th><th>events</th><th>verdict</th></tr>";
  const body = rows.map((r, i) => {
    const { op, ...args } = r.cmd;
    const id = i === violation ? ` id="violation-row"` : "";
    const events = r.events.length ? valueHtml(r.events) : "";
    const time = r.interval ? `${r.interval[0]}..${r.interval[1]}` : "";
    return `<tr class="${r.kind}"${id}><td>${escapeHtml(r.label)}</td><td>${
      escapeHtml(r.caller)
    }</td><td><code>${escapeHtml(op)}</code></td><td>${
      fieldsHtml(op, args, legend)
    }</td><td>${time}</td><td>${retHtml(op, r.spec, legend)}</td><td>${
      retHtml(op, r.impl, legend)
    }</td><td>${events}</td><td>${escapeHtml(r.verdict)}</td></tr>`;
  });
  return `<table class="steps">${head}\n${body.join("\n")}</table>`;
}

function divergenceHtml(d: Divergence | undefined): string {
  if (!d) return "<p>No divergence: every step conforms.</p>";
  const rows = d.rows.map(([what, spec, impl]) =>
    `<tr><th>${what}</th><td>${spec}</td><td>${impl}</td></tr>`
  );
  const table = rows.length
    ? `<table class="diff"><tr><th></th><th>spec</th><th>implementation</th></tr>${
      rows.join("")
    }</table>`
    : "";
  const states = d.states
    ? `<details><summary>both states in full</summary><div class="states"><div><h3>spec</h3>` +
      `<pre>${escapeHtml(toJson(d.states[0], 1))}</pre></div><div><h3>implementation</h3>` +
      `<pre>${escapeHtml(toJson(d.states[1], 1))}</pre></div></div></details>`
    : "";
  const next = d.next?.length
    ? `<p>After the longest linearizable prefix, the spec cannot take:</p><ul class="next">${
      d.next.map((n) => `<li>${escapeHtml(n)}</li>`).join("")
    }</ul>`
    : "";
  return `<p class="why">${escapeHtml(d.why)}</p>${table}${next}${states}`;
}

const CSS = `
body { font: 14px/1.4 system-ui, sans-serif; margin: 1.5em; color: #1d232a; }
h1 { font-size: 1.3em; } h2 { font-size: 1.1em; margin-top: 1.6em; }
dl.meta { display: grid; grid-template-columns: max-content 1fr; gap: 2px 12px; }
dl.meta dt { font-weight: 600; } dl.meta dd { margin: 0; }
.verdict { padding: 6px 10px; border-radius: 4px; background: #e8f5e9; display: inline-block; }
.verdict.failed { background: #fdecea; border-left: 4px solid #c62828; }
.scroll { overflow-x: auto; border: 1px solid #d0d7de; border-radius: 4px; padding: 4px; }
svg text { font: 12px system-ui, sans-serif; fill: #1d232a; }
svg .lane rect { fill: #eef2f7; stroke: #8c99a6; }
svg .lane line { stroke: #b8c2cc; stroke-dasharray: 4 3; }
svg .step line.call { stroke: #37474f; stroke-width: 1.5; }
svg .step line.back { stroke: #78909c; stroke-dasharray: 5 3; }
svg marker.call path { fill: #37474f; } svg marker.back path { fill: #78909c; }
svg marker.bad path { fill: #c62828; }
svg .step .num { fill: #6b7785; } svg .step .ret { fill: #455a64; font-size: 11px; }
svg .step.not-run { opacity: 0.35; }
svg .step.violation line.call { stroke: #c62828; stroke-width: 2.5; }
svg .step.violation text.op { fill: #b71c1c; font-weight: 700; }
svg .step.violation rect.mark { fill: #fdecea; stroke: #c62828; }
svg.history .tick line { stroke: #e3e8ee; } svg.history .tick text { fill: #8c99a6; font-size: 10px; }
svg.history .lane line { stroke: #b8c2cc; stroke-dasharray: none; }
svg.history .op rect { fill: #eceff1; stroke: #90a4ae; }
svg.history .op.linearized rect { fill: #e3f4e5; stroke: #43a047; }
svg.history .op.violation rect { fill: #fdecea; stroke: #c62828; stroke-width: 2.5; }
svg.history .op .ret { font-size: 10px; fill: #546e7a; }
svg.history .failed-at line { stroke: #c62828; stroke-dasharray: 3 3; }
svg.history .failed-at text { fill: #c62828; font-size: 10px; }
table { border-collapse: collapse; margin: 6px 0; }
td, th { border: 1px solid #d0d7de; padding: 3px 6px; text-align: left; vertical-align: top; }
table.steps tr.violation td { background: #fdecea; font-weight: 600; }
table.steps tr.setup td { color: #6b7785; } table.steps tr.not-run td { color: #9aa5b1; }
.err { color: #b71c1c; } .abbr, abbr.sentinel { text-decoration: underline dotted; cursor: help; }
.states { display: flex; gap: 12px; } .states pre { max-height: 420px; overflow: auto;
  background: #f6f8fa; padding: 6px; font-size: 12px; }
`;

/**
 * A recorded race the spec finds linearizable whose recorded violation names the scheduling
 * step it was seen at (`… (when actor:label ran on)`): the run with that violation, at the
 * first step of the recorded schedule so named.
 */
function withRecordedViolation(run: RaceRun, violation: string | undefined): RaceRun {
  const name = violation?.match(/\(when (\S+) ran on\)$/)?.[1];
  const at = name === undefined ? -1 : run.schedule.indexOf(name);
  if (run.failure || at < 0) return run;
  return { ...run, failure: `recorded: ${violation}`, failedAt: at };
}

/** The race view and its history section. */
function raceSections(machine: Machine, run: RaceRun) {
  const v = raceView(machine, run);
  const order = v.lin.prefix.map((h) => `${h.actor}#${h.index}`).join(" ") || "(empty)";
  const cannot = v.bad && !v.lin.prefix.includes(v.bad)
    ? ` ${v.bad.actor}#${v.bad.index} (${v.bad.cmd.op}, red) cannot follow it.`
    : "";
  const note = v.lin.complete
    ? `The whole history linearizes, in this order: ${order}.`
    : `Longest linearizable prefix (${v.lin.prefix.length} of ${run.history.length}` +
      ` operations, numbered in green): ${order}.${cannot}`;
  const schedule = run.schedule.map((s, i) =>
    `<li${i === run.failedAt ? ` class="err"` : ""}>${escapeHtml(s)}</li>`
  ).join("");
  const history = `<section id="history"><h2>History</h2><p>${escapeHtml(note)} ` +
    `Boxes span an operation's invocation to its response (logical time t = scheduling ` +
    `steps taken).</p><div class="scroll">${historySvg(run, v.lin, v.bad)}</div>` +
    `<details><summary>schedule (${run.schedule.length} steps)</summary><ol start="0">` +
    `${schedule}</ol></details></section>`;
  return { ...v, history };
}

/** The whole page for `input`, as one HTML document. */
export function renderHtml(input: PageInput): string {
  const { trace } = input;
  const run = input.recorded && input.run.mode === "race"
    ? withRecordedViolation(input.run, trace.meta.violation)
    : input.run;
  const machine = trace.machine;
  const meta = trace.meta;
  const view = run.mode === "sequential"
    ? { ...sequentialView(machine, trace, run), history: "" }
    : raceSections(machine, run);
  const legend = new Map<string, string>();
  const table = tableHtml(view.rows, view.violation, legend);
  const failed = view.divergence !== undefined;
  const marked = view.violation === undefined && failed ? ` id="violation"` : "";
  const legendHtml = legend.size
    ? `<section id="sentinels"><h2>Sentinel values</h2><dl class="meta">${
      [...legend].map(([k, v]) => `<dt><code>${escapeHtml(k)}</code></dt><dd>${escapeHtml(v)}</dd>`)
        .join("")
    }</dl></section>`
    : "";
  const metaRows: [string, string][] = [
    ["machine", meta.machine],
    ["mode", meta.mode],
    ["quirks", meta.quirks.join(", ") || "none"],
    ["recorded violation", meta.violation ?? "none"],
    ["drawn", input.drawn],
  ];
  return `<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<title>${escapeHtml(input.file)} — warpspec counterexample</title>
<style>${CSS}</style></head>
<body>
<h1>${escapeHtml(input.file)}</h1>
<dl class="meta">${metaRows.map(([k, v]) => `<dt>${k}</dt><dd>${escapeHtml(v)}</dd>`).join("")}</dl>
<p class="verdict${input.passed ? "" : " failed"}"${marked}>${escapeHtml(input.verdict)}</p>
<section id="sequence"><h2>Sequence</h2><div class="scroll">${
    sequenceSvg(view.rows, view.violation, run.mode === "race")
  }</div></section>
<section id="divergence"><h2>Divergence</h2>${divergenceHtml(view.divergence)}</section>
${view.history}
<section id="steps"><h2>Steps</h2>${table}</section>
${legendHtml}
</body></html>
`;
}
