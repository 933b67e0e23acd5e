/**
 * Throughput of the QM ring spec (`spec/qm.ts`): one bench iteration is 1000 spec steps of
 * send / deviceStep / poll / irq cycles on one queue pair at a small depth. The anchor does the
 * same bookkeeping with plain mutable arrays (push/shift of tagged entries), so the ratio shows
 * what the pure, copy-on-write spec costs. Target: at least 1,000,000 spec steps per second,
 * that is at most 1 ms per iteration.
 *
 * @module
 */

import { initialQmState, type QmCommand, type QmState, step } from "../spec/qm.ts";

const STEPS = 1000;
const DEPTH = 8;
const PID = 42;

function started(owner: "kernel" | number): QmState {
  let s = initialQmState({ sqDepth: DEPTH, cqDepth: DEPTH, eqDepth: DEPTH });
  s = step(s, { op: "qm.alloc", owner }).state;
  s = step(s, { op: "qm.start", qn: 0 }).state;
  return s;
}

function mustOk(ret: { ok: unknown } | { err: string }): void {
  if ("err" in ret) throw new Error(`bench step failed: ${ret.err}`);
}

// User path: userSend, deviceStep, poll, irq (the irq pass drains the shared EQ).
const userCycle: readonly QmCommand[] = [
  { op: "qm.userSend", qn: 0, by: PID, tag: 7 },
  { op: "qm.deviceStep", qn: 0 },
  { op: "qm.poll", qn: 0, by: PID },
  { op: "qm.irq" },
];

// Kernel path: send, deviceStep, irq (completion by the IRQ thread's per-CQE callback).
const kernelCycle: readonly QmCommand[] = [
  { op: "qm.send", qn: 0, tag: 7 },
  { op: "qm.deviceStep", qn: 0 },
  { op: "qm.irq" },
];

// Burst: fill the SQ to its limit, let the device drain it, then poll everything.
const burst: QmCommand[] = [];
for (let i = 0; i < DEPTH - 1; i++) burst.push({ op: "qm.userSend", qn: 0, by: PID, tag: i });
for (let i = 0; i < DEPTH - 1; i++) burst.push({ op: "qm.deviceStep", qn: 0 });
for (let i = 0; i < DEPTH - 1; i++) burst.push({ op: "qm.poll", qn: 0, by: PID });
burst.push({ op: "qm.irq" });

// Depth 1024 with 100 requests in flight: a step copies what is in flight, not the ring.
const deep: QmCommand[] = [];
for (let i = 0; i < 100; i++) deep.push({ op: "qm.userSend", qn: 0, by: PID, tag: i });
for (let i = 0; i < 100; i++) deep.push({ op: "qm.deviceStep", qn: 0 });
for (let i = 0; i < 100; i++) deep.push({ op: "qm.poll", qn: 0, by: PID });
deep.push({ op: "qm.irq" });

let userState = started(PID);
let kernelState = started("kernel");
let burstState = started(PID);
let deepState = step(
  step(initialQmState(), { op: "qm.alloc", owner: PID }).state,
  { op: "qm.start", qn: 0 },
).state;
let sink = 0;

function run(s: QmState, cycle: readonly QmCommand[]): QmState {
  for (let i = 0; i < STEPS; i++) {
    const r = step(s, cycle[i % cycle.length]);
    s = r.state;
    sink += r.events.length;
  }
  return s;
}

// Sanity check once, outside the timed loops: every step of every cycle succeeds.
for (const cycle of [userCycle, kernelCycle, burst]) {
  let s = started(cycle === kernelCycle ? "kernel" : PID);
  for (const c of cycle) {
    const r = step(s, c);
    mustOk(r.ret);
    s = r.state;
  }
}

Deno.bench({
  name: "spec: 1000 steps, user send/deviceStep/poll/irq",
  group: "qm-ring",
  baseline: true,
  fn() {
    userState = run(userState, userCycle);
  },
});

Deno.bench({
  name: "spec: 1000 steps, kernel send/deviceStep/irq",
  group: "qm-ring",
  fn() {
    kernelState = run(kernelState, kernelCycle);
  },
});

Deno.bench({
  name: "spec: 1000 steps, user bursts of depth-1",
  group: "qm-ring",
  fn() {
    burstState = run(burstState, burst);
  },
});

Deno.bench({
  name: "spec: 1000 steps, depth 1024, bursts of 100",
  group: "qm-ring",
  fn() {
    deepState = run(deepState, deep);
  },
});

// Anchor: the same bookkeeping on plain mutable arrays, no copying, no pattern matching.
interface AnchorQueue {
  sq: { seq: number; tag: number; status: number }[];
  cq: number[];
  eq: number[];
  sqTail: number;
  sqHead: number;
  cqHead: number;
}

const anchor: AnchorQueue = { sq: [], cq: [], eq: [], sqTail: 0, sqHead: 0, cqHead: 0 };

function anchorStep(q: AnchorQueue, k: number): void {
  switch (k) {
    case 0: // send
      if (q.sqTail - q.cqHead < DEPTH - 1) q.sq.push({ seq: q.sqTail++, tag: 7, status: -1 });
      break;
    case 1: // device consumes one SQE, writes CQE and EQE
      if (q.sqHead < q.sqTail) {
        q.sq[q.sqHead - q.cqHead].status = 0;
        q.cq.push(q.sqHead++ % DEPTH);
        q.eq.push(0);
      }
      break;
    case 2: // poll one completion
      if (q.cq.length > 0) {
        q.cq.shift();
        sink += q.sq.shift()!.tag;
        q.cqHead++;
      }
      break;
    default: // irq: drain the EQ
      q.eq.length = 0;
  }
}

Deno.bench({
  name: "anchor: 1000 steps, mutable arrays push/shift",
  group: "qm-ring",
  fn() {
    for (let i = 0; i < STEPS; i++) anchorStep(anchor, i & 3);
  },
});

globalThis.addEventListener("unload", () => {
  if (sink < 0) console.log(sink);
});
