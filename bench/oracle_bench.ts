/**
 * Speed of the oracle (model/oracle/). A generated 100,000-step type1 trace (fast-check's
 * command generator, seed 1, kept from growing without bound: no kernel DMA allocation past
 * four buffers, no MAP_DMA past four mappings per container), judged with the whole state
 * recorded, with `vars-observed: ["type1"]`, and with actions, returns and events only; one
 * iteration judges the whole trace, so steps/s = 100,000 × iter/s. Target: at least 200,000
 * steps/s with the whole state. The trace is decoded by traceFromJson, as parseTrace does (each
 * state shares the objects of the one before where equal); "unshared" decodes every state on
 * its own, the comparison's worst case (on the first 10,000 steps). Decoding, and JSON text
 * parsing plus decoding, are measured on those 10,000 steps too.
 *
 * Linearizability: histories of 8 operations (4 actors × 2 type1 commands, all overlapping in
 * time, so only program order constrains), recorded from a random sequential order through
 * the spec; the same histories with one return value changed, which no order explains, make
 * the search exhaust what memoisation leaves. One iteration checks 100 histories.
 *
 * @module
 */
import fc from "fast-check";
import type { Command, SystemState } from "../spec/system.ts";
import { fromItf, toItf } from "../model/itf.ts";
import { type1Machine as m } from "../model/machines/type1.ts";
import { checkTrace } from "../model/oracle/mod.ts";
import { checkLinearizable } from "../model/oracle/race.ts";
import type { HistoryEntry } from "../model/race.ts";
import { type MachineTrace, parseTrace, sequentialTrace, traceFromJson } from "../model/trace.ts";
import { machineNamed } from "../model/machines.ts";

const STEPS = 100_000;

/** Commands of a session that does not grow without bound. */
function session(n: number): Command[] {
  const pool = fc.sample(m.commands(), { numRuns: 3 * n, seed: 1 });
  const out: Command[] = [];
  let s: SystemState = m.initial();
  for (const c of pool) {
    if (out.length === n) break;
    if (c.op === "iommu.dmaAlloc" && s.iommu.buffers.size >= 4) continue;
    if (c.op === "type1.map" && [...s.type1.containers.values()].some((x) => x.dmas.length >= 4)) {
      continue;
    }
    s = m.step(s, c).state;
    out.push(c);
  }
  return out;
}

const copy = (v: unknown) => fromItf(JSON.parse(JSON.stringify(toItf(v))));

const meta = { machine: "type1", mode: "sequential" as const, quirks: [] };
const records = (() => {
  let s: SystemState = m.initial();
  return session(STEPS).map((cmd) => {
    const r = m.step(s, cmd);
    s = r.state;
    const impl = { ret: r.ret, events: r.events };
    return { cmd, specState: s, specRet: r.ret, specEvents: r.events, impl, observed: s };
  });
})();
const SLICE = 10_000;
const [whole, sliceText] = (() => {
  const doc = sequentialTrace(m, meta, m.initial(), records) as { states: unknown[] };
  const slice = JSON.stringify({ ...doc, states: doc.states.slice(0, SLICE + 1) });
  return [traceFromJson(doc, machineNamed), slice] as const;
})();
const sliceJson = JSON.parse(sliceText);
const type1Only: MachineTrace = {
  ...whole,
  meta: { ...meta, observed: ["type1"] },
  initial: { type1: (whole.initial as SystemState).type1 },
  steps: whole.steps.map((s) => ({ ...s, state: { type1: (s.state as SystemState).type1 } })),
  projection: { type1: true },
};
const actions: MachineTrace = {
  ...whole,
  meta: { ...meta, observed: [] },
  initial: {},
  steps: whole.steps.map((s) => ({ ...s, state: {} })),
  projection: {},
};
// The worst case for the comparison: no state shares an object with the one before.
const unshared: MachineTrace = {
  ...whole,
  steps: whole.steps.slice(0, SLICE).map((s) => ({ ...s, state: copy(s.state) })),
};

function judged(trace: MachineTrace): void {
  if (!checkTrace(trace).passed) throw new Error("the generated trace must conform");
}

Deno.bench({ name: "oracle: 100k type1 steps, whole state", n: 5, warmup: 1 }, () => {
  judged(whole);
});
Deno.bench({ name: "oracle: 100k type1 steps, vars-observed type1", n: 5, warmup: 1 }, () => {
  judged(type1Only);
});
Deno.bench({ name: "oracle: 100k type1 steps, actions only", n: 5, warmup: 1 }, () => {
  judged(actions);
});
Deno.bench({ name: "oracle: 10k type1 steps, whole state, unshared", n: 5, warmup: 1 }, () => {
  judged(unshared);
});
Deno.bench({ name: "traceFromJson: 10k type1 steps, whole state", n: 5, warmup: 1 }, () => {
  traceFromJson(sliceJson, machineNamed);
});
Deno.bench({ name: "parseTrace: 10k type1 steps of text, whole state", n: 5, warmup: 1 }, () => {
  parseTrace(sliceText, machineNamed);
});

/** Histories of 4 actors × 2 commands, all concurrent, recorded in a random spec order. */
function histories(count: number): { start: SystemState; h: HistoryEntry[]; end: SystemState }[] {
  const start = m.prelude.reduce((s, c) => m.step(s, c).state, m.initial());
  const programs = fc.sample(fc.array(m.raceCommands!(), { minLength: 8, maxLength: 8 }), {
    numRuns: count,
    seed: 2,
  });
  // Which actor runs its next command: a shuffle of each actor twice.
  const turns = fc.sample(fc.shuffledSubarray([0, 0, 1, 1, 2, 2, 3, 3], { minLength: 8 }), {
    numRuns: count,
    seed: 3,
  });
  return programs.map((program, i) => {
    let s = start;
    const done = [0, 0, 0, 0];
    const h = turns[i].map((a): HistoryEntry => {
      const index = done[a]++;
      const cmd = program[2 * a + index];
      const r = m.step(s, cmd);
      s = r.state;
      const at = { invoked: 0, returned: 100 };
      return { actor: `actor${a}`, index, cmd, ...at, ret: r.ret, events: r.events, observed: s };
    });
    return { start, h, end: copy(s) as SystemState };
  });
}

const good = histories(100);
const bad = good.map(({ start, h, end }) => ({
  start,
  end,
  h: h.map((e, i) => (i === h.length - 1 ? { ...e, ret: { ok: -1 } } : e)),
}));

Deno.bench({ name: "linearizability: 100 histories of 8 operations, linearizable" }, () => {
  for (const { start, h, end } of good) {
    if (!checkLinearizable(m, start, h, end).order) throw new Error("must linearize");
  }
});
Deno.bench({ name: "linearizability: 100 histories of 8 operations, one ret wrong" }, () => {
  for (const { start, h, end } of bad) {
    if (checkLinearizable(m, start, h, end).order) throw new Error("must not linearize");
  }
});
