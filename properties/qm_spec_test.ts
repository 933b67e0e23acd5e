/**
 * Tests of the QM ring spec (`spec/qm.ts`) on its own: one unit test per rule, checks that
 * every invariant can fire, and a property over random command sequences. Seed: the env var
 * WARPSPEC_SEED if set, else a fixed one; it is printed.
 *
 * @module
 */

import assert from "node:assert/strict";
import fc from "fast-check";
import {
  checkQmInvariants,
  decodeDoorbell,
  DOORBELL_CMD,
  encodeDoorbell,
  initialQmState,
  MAILBOX_CMD,
  type QmCommand,
  type QmCompletion,
  type QmConfig,
  qmInvariants,
  type QmIrqOk,
  type QmOwner,
  type QmState,
  type StartedQp,
  step,
} from "../spec/qm.ts";
import type { Ret } from "../spec/types.ts";

const SEED = Number(Deno.env.get("WARPSPEC_SEED") ?? "20180903");
console.log(`qm_spec_test: seed ${SEED} (set WARPSPEC_SEED to change)`);

const U = 1; // a user process id
const V = 2; // another user process id

/** Applies commands in order, asserting the invariants after each; returns rets and state. */
function run(s: QmState, cmds: readonly QmCommand[]): { state: QmState; rets: Ret[] } {
  const rets: Ret[] = [];
  for (const cmd of cmds) {
    const r = step(s, cmd);
    assert.deepEqual(checkQmInvariants(r.state), [], `after ${JSON.stringify(cmd)}`);
    assert.deepEqual(r.events, []);
    rets.push(r.ret);
    s = r.state;
  }
  return { state: s, rets };
}

/** Applies one command and returns [state, ret]. */
function one(s: QmState, cmd: QmCommand): [QmState, Ret] {
  const { state, rets } = run(s, [cmd]);
  return [state, rets[0]];
}

/** A state with queue 0 allocated to `owner` and started. */
function startedQp(config: Partial<QmConfig>, owner: QmOwner = U): QmState {
  const { state, rets } = run(initialQmState(config), [
    { op: "qm.alloc", owner },
    { op: "qm.start", qn: 0 },
  ]);
  assert.deepEqual(rets, [{ ok: 0 }, { ok: 0 }]);
  return state;
}

function qp(s: QmState, qn = 0): StartedQp {
  const q = s.qps[qn];
  assert.ok(q !== null && q.state === "started", `qp ${qn} started`);
  return q;
}

/** The ok value of a ret, failing the test on an errno. */
function okOf<T>(ret: Ret): T {
  assert.ok("ok" in ret, `expected ok, got ${JSON.stringify(ret)}`);
  return ret.ok as T;
}

const userSend = (tag: number, qn = 0, by = U): QmCommand => ({ op: "qm.userSend", qn, by, tag });
const dev = (qn = 0, status?: number): QmCommand => ({ op: "qm.deviceStep", qn, status });
const poll = (qn = 0, by = U): QmCommand => ({ op: "qm.poll", qn, by });
const IRQ: QmCommand = { op: "qm.irq" };

Deno.test("qm doorbell encoding", async (t) => {
  await t.step("hand-computed values of qn | cmd<<16 | (index | priority<<16)<<32", () => {
    // qn 3, CQ, index 5, priority 1: 0x0001 0005 0001 0003
    assert.equal(
      encodeDoorbell({ qn: 3, cmd: DOORBELL_CMD.CQ, index: 5, priority: 1 }),
      0x0001_0005_0001_0003n,
    );
    // qn 0x3f, SQ, index 0x3ff: 0x0000 03ff 0000 003f
    assert.equal(
      encodeDoorbell({ qn: 0x3f, cmd: DOORBELL_CMD.SQ, index: 0x3ff, priority: 0 }),
      0x0000_03ff_0000_003fn,
    );
    // EQ doorbell as the IRQ thread rings it: qn 0, EQ, head 17
    assert.equal(
      encodeDoorbell({ qn: 0, cmd: DOORBELL_CMD.EQ, index: 17, priority: 0 }),
      0x0000_0011_0002_0000n,
    );
    assert.equal(
      encodeDoorbell({ qn: 0xffff, cmd: 0xffff, index: 0xffff, priority: 0xffff }),
      0xffff_ffff_ffff_ffffn,
    );
    assert.deepEqual(decodeDoorbell(0x0001_0005_0001_0003n), {
      qn: 3,
      cmd: 1,
      index: 5,
      priority: 1,
    });
    assert.deepEqual(decodeDoorbell(0x0000_0011_0003_0002n), {
      qn: 2,
      cmd: DOORBELL_CMD.AEQ,
      index: 17,
      priority: 0,
    });
  });

  await t.step("seed constants", () => {
    assert.deepEqual(DOORBELL_CMD, { SQ: 0, CQ: 1, EQ: 2, AEQ: 3 });
    assert.deepEqual(MAILBOX_CMD, { SQC: 0, CQC: 1, EQC: 2, SQC_BT: 4, CQC_BT: 5 });
  });

  await t.step("round trip both ways", () => {
    const u16 = fc.integer({ min: 0, max: 0xffff });
    fc.assert(
      fc.property(fc.record({ qn: u16, cmd: u16, index: u16, priority: u16 }), (db) => {
        assert.deepEqual(decodeDoorbell(encodeDoorbell(db)), { ...db });
      }),
      { seed: SEED, numRuns: 500 },
    );
    fc.assert(
      fc.property(fc.bigInt({ min: 0n, max: (1n << 64n) - 1n }), (v) => {
        assert.equal(encodeDoorbell(decodeDoorbell(v)), v);
      }),
      { seed: SEED, numRuns: 500 },
    );
  });

  await t.step("out-of-range fields are rejected", () => {
    assert.throws(() => encodeDoorbell({ qn: 0x10000, cmd: 0, index: 0, priority: 0 }), RangeError);
    assert.throws(() => encodeDoorbell({ qn: 0, cmd: 0, index: -1, priority: 0 }), RangeError);
    assert.throws(() => encodeDoorbell({ qn: 0, cmd: 0, index: 0, priority: 1.5 }), RangeError);
    assert.throws(() => decodeDoorbell(1n << 64n), RangeError);
    assert.throws(() => decodeDoorbell(-1n), RangeError);
  });
});

Deno.test("qm allocator", async (t) => {
  await t.step("first free queue number, EBUSY when none, release frees", () => {
    let s = initialQmState({ qpNum: 3, sqDepth: 4, cqDepth: 4, eqDepth: 4 });
    const a = run(s, [
      { op: "qm.alloc", owner: "kernel" },
      { op: "qm.alloc", owner: U },
      { op: "qm.alloc", owner: V },
      { op: "qm.alloc", owner: U },
    ]);
    assert.deepEqual(a.rets, [{ ok: 0 }, { ok: 1 }, { ok: 2 }, { err: "EBUSY" }]);
    s = a.state;
    assert.equal(s.qps[1]?.owner, U);
    assert.equal(s.qps[2]?.owner, V);
    const b = run(s, [
      { op: "qm.release", qn: 1 },
      { op: "qm.release", qn: 1 },
      { op: "qm.alloc", owner: V },
    ]);
    assert.deepEqual(b.rets, [{ ok: { dropped: 0 } }, { err: "ENOENT" }, { ok: 1 }]);
    assert.equal(b.state.qps[1]?.owner, V);
  });

  await t.step("bad owners and queue numbers", () => {
    const s = initialQmState({ qpNum: 2 });
    assert.deepEqual(run(s, [{ op: "qm.alloc", owner: 0 }]).rets, [{ err: "EINVAL" }]);
    assert.deepEqual(run(s, [{ op: "qm.start", qn: 2 }]).rets, [{ err: "EINVAL" }]);
    assert.deepEqual(run(s, [{ op: "qm.start", qn: 1 }]).rets, [{ err: "ENOENT" }]);
  });

  await t.step("config validation", () => {
    assert.throws(() => initialQmState({ sqDepth: 1 }), RangeError);
    assert.throws(() => initialQmState({ qpNum: 0 }), RangeError);
    const s = initialQmState();
    assert.deepEqual(s.config, { qpNum: 64, sqDepth: 1024, cqDepth: 1024, eqDepth: 1024 });
    assert.equal(s.qps.length, 64);
    // JSON-representable: a round trip through JSON gives the same state.
    assert.deepEqual(JSON.parse(JSON.stringify(s)), s);
  });
});

Deno.test("qm full ring", async (t) => {
  await t.step("user: depth-1 sends succeed, the next is EBUSY and loses nothing", () => {
    let s = startedQp({ sqDepth: 4, cqDepth: 4, eqDepth: 16 });
    const a = run(s, [userSend(10), userSend(11), userSend(12)]);
    assert.deepEqual(a.rets, [{ ok: 0 }, { ok: 1 }, { ok: 2 }]);
    s = a.state;
    const full = step(s, userSend(13));
    assert.deepEqual(full.ret, { err: "EBUSY" });
    assert.equal(full.state, s, "a refused send leaves the state as it was");
    assert.deepEqual(qp(s).sq.map((e) => e.tag), [10, 11, 12]);
    // One completion frees exactly one slot.
    const b = run(s, [dev(), poll(), userSend(13), userSend(14)]);
    assert.deepEqual(b.rets.slice(1), [
      { ok: { qn: 0, seq: 0, tag: 10, status: 0 } },
      { ok: 3 },
      { err: "EBUSY" },
    ]);
    // A consumed but not yet accepted SQE still holds its slot.
    const c = run(b.state, [dev(), userSend(14)]);
    assert.deepEqual(c.rets[1], { err: "EBUSY" });
  });

  await t.step("kernel: hisi_qp_send gets ENOSPC at the limit", () => {
    const s = startedQp({ sqDepth: 3, cqDepth: 3, eqDepth: 16 }, "kernel");
    const send = (tag: number): QmCommand => ({ op: "qm.send", qn: 0, tag });
    const a = run(s, [send(1), send(2), send(3)]);
    assert.deepEqual(a.rets, [{ ok: 0 }, { ok: 1 }, { err: "ENOSPC" }]);
    const b = run(a.state, [dev(), IRQ, send(3)]);
    assert.deepEqual(okOf<{ completions: QmCompletion[] }>(b.rets[1]).completions, [
      { qn: 0, seq: 0, tag: 1, status: 0 },
    ]);
    assert.deepEqual(b.rets[2], { ok: 2 });
  });

  await t.step("send paths are owner-only", () => {
    const s = startedQp({ sqDepth: 4 });
    assert.deepEqual(run(s, [{ op: "qm.send", qn: 0, tag: 1 }]).rets, [{ err: "EPERM" }]);
    assert.deepEqual(run(s, [userSend(1, 0, V)]).rets, [{ err: "EPERM" }]);
    const k = startedQp({ sqDepth: 4 }, "kernel");
    assert.deepEqual(run(k, [userSend(1)]).rets, [{ err: "EPERM" }]);
  });

  await t.step("send before start is EINVAL", () => {
    const s = run(initialQmState({ sqDepth: 4 }), [{ op: "qm.alloc", owner: U }]).state;
    assert.deepEqual(run(s, [userSend(1), dev()]).rets, [{ err: "EINVAL" }, { err: "EINVAL" }]);
  });
});

Deno.test("qm wrap and phase", async (t) => {
  await t.step("depth 2: indices wrap, the CQE phase and the expected phase flip", () => {
    let s = startedQp({ sqDepth: 2, cqDepth: 2, eqDepth: 2 });
    const phases: number[] = [];
    const cqIndex: number[] = [];
    const expected: number[] = [qp(s).phase];
    for (let i = 0; i < 6; i++) {
      const r = run(s, [userSend(100 + i), dev(), poll(), IRQ]);
      const d = okOf<{ sqIndex: number; cqIndex: number; phase: number }>(r.rets[1]);
      phases.push(d.phase);
      cqIndex.push(d.cqIndex);
      assert.equal(d.sqIndex, i % 2);
      assert.deepEqual(okOf<QmCompletion>(r.rets[2]).tag, 100 + i);
      s = r.state;
      expected.push(qp(s).phase);
    }
    assert.deepEqual(phases, [1, 1, 0, 0, 1, 1]);
    assert.deepEqual(cqIndex, [0, 1, 0, 1, 0, 1]);
    assert.deepEqual(expected, [1, 1, 0, 0, 1, 1, 0]);
    assert.equal(s.eqPhase, 0);
    assert.equal(s.eqHead, 6);
  });

  await t.step("the consumer never accepts a stale CQE from the previous lap", () => {
    let s = startedQp({ sqDepth: 2, cqDepth: 2, eqDepth: 16 });
    s = run(s, [userSend(1), dev(), poll(), userSend(2), dev(), poll()]).state;
    // Head is back at slot 0, which still holds the first lap's CQE (phase 1); expected is 0.
    assert.equal(qp(s).phase, 0);
    assert.equal(qp(s).cqHead % 2, 0);
    const r = step(s, poll());
    assert.deepEqual(r.ret, { err: "EAGAIN" });
    assert.equal(r.state, s);
    // A fresh CQE of the second lap is accepted.
    const b = run(s, [userSend(3), dev(), poll()]);
    assert.deepEqual(b.rets[2], { ok: { qn: 0, seq: 2, tag: 3, status: 0 } });
  });

  await t.step("polling an empty queue on the first lap is EAGAIN", () => {
    const s = startedQp({ sqDepth: 4 });
    assert.deepEqual(run(s, [poll(), userSend(1), poll()]).rets.slice(-1), [{ err: "EAGAIN" }]);
  });
});

Deno.test("qm device stalls", async (t) => {
  await t.step("CQ full: the device stalls and overwrites nothing", () => {
    // SQ of 8 but a CQ of 2: one unreleased CQE fills the CQ.
    let s = startedQp({ sqDepth: 8, cqDepth: 2, eqDepth: 16 });
    const a = run(s, [userSend(1), userSend(2), userSend(3), dev()]);
    s = a.state;
    const stalled = step(s, dev());
    assert.deepEqual(stalled.ret, { err: "EBUSY" });
    assert.equal(stalled.state, s);
    assert.deepEqual(qp(s).cq, [{ sqIndex: 0, phase: 1 }]);
    const b = run(s, [poll(), dev(), dev(), poll(), dev(), poll(), dev()]);
    assert.deepEqual(b.rets, [
      { ok: { qn: 0, seq: 0, tag: 1, status: 0 } },
      { ok: { sqIndex: 1, cqIndex: 1, phase: 1 } },
      { err: "EBUSY" },
      { ok: { qn: 0, seq: 1, tag: 2, status: 0 } },
      { ok: { sqIndex: 2, cqIndex: 0, phase: 0 } },
      { ok: { qn: 0, seq: 2, tag: 3, status: 0 } },
      { err: "EAGAIN" },
    ]);
  });

  await t.step("EQ full: the device stalls until the IRQ thread releases EQEs", () => {
    let s = startedQp({ sqDepth: 8, cqDepth: 8, eqDepth: 3 });
    s = run(s, [userSend(1), userSend(2), userSend(3), dev(), dev(), poll(), poll()]).state;
    // The user polled, but EQEs are released only by the kernel's EQ doorbell.
    assert.equal(s.eq.length, 2);
    assert.deepEqual(step(s, dev()).ret, { err: "EBUSY" });
    const b = run(s, [IRQ, dev(), poll()]);
    assert.deepEqual(b.rets[0], { ok: { eqes: 2, completions: [], woken: [0, 0] } });
    assert.deepEqual(b.rets[1], { ok: { sqIndex: 2, cqIndex: 2, phase: 1 } });
    assert.deepEqual(okOf<QmCompletion>(b.rets[2]).tag, 3);
  });

  await t.step("idle device: EAGAIN; unpublished SQEs are not consumed", () => {
    let s = startedQp({ sqDepth: 4, eqDepth: 16 });
    assert.deepEqual(step(s, dev()).ret, { err: "EAGAIN" });
    const a = run(s, [{ op: "qm.userSend", qn: 0, by: U, tag: 9, ring: false }, dev()]);
    assert.deepEqual(a.rets, [{ ok: 0 }, { err: "EAGAIN" }]);
    s = a.state;
    const db = (index: number): QmCommand => ({
      op: "qm.doorbell",
      by: U,
      qn: 0,
      cmd: DOORBELL_CMD.SQ,
      index,
      priority: 0,
    });
    // Publishing beyond what was written is refused.
    assert.deepEqual(step(s, db(2)).ret, { err: "EINVAL" });
    const b = run(s, [db(1), dev(), poll()]);
    assert.deepEqual(b.rets[2], { ok: { qn: 0, seq: 0, tag: 9, status: 0 } });
  });

  await t.step("a bad status still completes and frees the slot", () => {
    const s = startedQp({ sqDepth: 2, eqDepth: 16 });
    const r = run(s, [userSend(5), dev(0, 0x0d), poll(), userSend(6)]);
    assert.deepEqual(r.rets.slice(2), [{ ok: { qn: 0, seq: 0, tag: 5, status: 0x0d } }, {
      ok: 1,
    }]);
    assert.deepEqual(step(s, dev(0, 256)).ret, { err: "EINVAL" });
  });
});

Deno.test("qm IRQ thread", async (t) => {
  await t.step("kernel queue: one completion per CQE, in order, CQ doorbell rung", () => {
    let s = startedQp({ sqDepth: 4, cqDepth: 4, eqDepth: 8 }, "kernel");
    const send = (tag: number): QmCommand => ({ op: "qm.send", qn: 0, tag });
    s = run(s, [send(7), send(8), send(9), dev(), dev()]).state;
    const [s2, ret] = one(s, IRQ);
    assert.deepEqual(ret, {
      ok: {
        eqes: 2,
        completions: [{ qn: 0, seq: 0, tag: 7, status: 0 }, { qn: 0, seq: 1, tag: 8, status: 0 }],
        woken: [],
      },
    });
    assert.equal(qp(s2).cqHead, 2);
    assert.equal(qp(s2).cqDoorbell, 2);
    assert.equal(s2.eqDoorbell, 2);
    assert.equal(s2.irqPending, false);
    // Nothing pending: the thread has no interrupt to handle.
    assert.deepEqual(step(s2, IRQ).ret, { err: "EAGAIN" });
  });

  await t.step("user queue: the kernel wakes waiters and does not consume the CQ", () => {
    let s = run(initialQmState({ qpNum: 2, sqDepth: 4, cqDepth: 4, eqDepth: 8 }), [
      { op: "qm.alloc", owner: U },
      { op: "qm.alloc", owner: "kernel" },
      { op: "qm.start", qn: 0 },
      { op: "qm.start", qn: 1 },
      userSend(1),
      { op: "qm.send", qn: 1, tag: 50 },
      dev(0),
      dev(1),
    ]).state;
    const before = qp(s, 0);
    const [s2, ret] = one(s, IRQ);
    assert.deepEqual(ret, {
      ok: { eqes: 2, completions: [{ qn: 1, seq: 0, tag: 50, status: 0 }], woken: [0] },
    });
    const after = qp(s2, 0);
    assert.equal(after.cqHead, before.cqHead);
    assert.equal(after.cqDoorbell, before.cqDoorbell);
    assert.deepEqual(after.cq, before.cq);
    assert.equal(after.wakeups, 1);
    // The user still gets its completion.
    s = s2;
    assert.deepEqual(one(s, poll())[1], { ok: { qn: 0, seq: 0, tag: 1, status: 0 } });
    // Nobody else can poll it, and the kernel cannot ring its CQ doorbell.
    assert.deepEqual(step(s, { op: "qm.poll", qn: 0, by: V }).ret, { err: "EPERM" });
    assert.deepEqual(
      step(s, { op: "qm.doorbell", by: "kernel", qn: 0, cmd: 1, index: 1, priority: 0 }).ret,
      { err: "EPERM" },
    );
  });

  await t.step("masking: no interrupt while masked, raised again on unmask", () => {
    let s = startedQp({ sqDepth: 4, eqDepth: 8 }, "kernel");
    s = run(s, [{ op: "qm.setIrqMask", masked: true }, { op: "qm.send", qn: 0, tag: 1 }, dev()])
      .state;
    assert.equal(s.irqPending, false);
    assert.deepEqual(step(s, IRQ).ret, { err: "EAGAIN" });
    const [s2] = one(s, { op: "qm.setIrqMask", masked: false });
    assert.equal(s2.irqPending, true);
    assert.equal(okOf<{ eqes: number }>(one(s2, IRQ)[1]).eqes, 1);
  });

  await t.step("EQEs of a released queue are skipped; a new owner sees nothing stale", () => {
    let s = startedQp({ sqDepth: 4, eqDepth: 8 }, "kernel");
    s = run(s, [{ op: "qm.send", qn: 0, tag: 1 }, { op: "qm.send", qn: 0, tag: 2 }, dev()])
      .state;
    const r = run(s, [
      { op: "qm.release", qn: 0 },
      { op: "qm.alloc", owner: "kernel" },
      { op: "qm.start", qn: 0 },
      IRQ,
    ]);
    assert.deepEqual(r.rets, [
      { ok: { dropped: 2 } },
      { ok: 0 },
      { ok: 0 },
      { ok: { eqes: 1, completions: [], woken: [] } },
    ]);
  });
});

Deno.test("qm doorbells and mailbox", async (t) => {
  await t.step("only a queue's owner rings its doorbells; only the kernel rings the EQ", () => {
    const s = run(initialQmState({ qpNum: 2, sqDepth: 4, eqDepth: 8 }), [
      { op: "qm.alloc", owner: U },
      { op: "qm.alloc", owner: V },
      { op: "qm.start", qn: 0 },
      { op: "qm.start", qn: 1 },
      { op: "qm.userSend", qn: 0, by: U, tag: 1, ring: false },
    ]).state;
    const db = (by: QmOwner, qn: number, cmd: number, index: number): QmCommand => ({
      op: "qm.doorbell",
      by,
      qn,
      cmd,
      index,
      priority: 0,
    });
    const foreign = step(s, db(V, 0, DOORBELL_CMD.SQ, 1));
    assert.deepEqual(foreign.ret, { err: "EPERM" });
    assert.equal(foreign.state, s);
    assert.deepEqual(step(s, db(U, 0, DOORBELL_CMD.EQ, 0)).ret, { err: "EPERM" });
    assert.deepEqual(step(s, db("kernel", 0, DOORBELL_CMD.EQ, 0)).ret, { ok: null });
    assert.deepEqual(step(s, db("kernel", 0, DOORBELL_CMD.EQ, 1)).ret, { err: "EINVAL" });
    assert.deepEqual(step(s, db(U, 0, 7, 0)).ret, { err: "EINVAL" });
    assert.deepEqual(step(s, db(U, 0, DOORBELL_CMD.CQ, 1)).ret, { err: "EINVAL" });
    assert.deepEqual(qp(one(s, db(U, 0, DOORBELL_CMD.SQ, 1))[0]).sqDoorbell, 1);
  });

  await t.step("mailbox busy bit: EBUSY until the device clears it", () => {
    const s = run(initialQmState({ qpNum: 2 }), [{ op: "qm.alloc", owner: U }]).state;
    const r = run(s, [
      { op: "qm.mailbox", cmd: MAILBOX_CMD.SQC_BT, queue: 0 },
      { op: "qm.mailbox", cmd: MAILBOX_CMD.CQC_BT, queue: 0 },
      { op: "qm.start", qn: 0 },
      { op: "qm.mailboxDone" },
      { op: "qm.mailboxDone" },
      { op: "qm.start", qn: 0 },
      { op: "qm.start", qn: 0 },
      { op: "qm.mailbox", cmd: 3, queue: 0 },
    ]);
    assert.deepEqual(r.rets, [
      { ok: null },
      { err: "EBUSY" },
      { err: "EBUSY" },
      { ok: null },
      { err: "EAGAIN" },
      { ok: 0 },
      { err: "EINVAL" },
      { err: "EINVAL" },
    ]);
  });
});

Deno.test("qm invariants can fail", async (t) => {
  // A healthy state with traffic in every ring, then one corruption per invariant.
  const base = run(startedQp({ qpNum: 2, sqDepth: 4, cqDepth: 4, eqDepth: 8 }), [
    userSend(1),
    userSend(2),
    userSend(3),
    dev(),
    dev(),
  ]).state;
  assert.deepEqual(checkQmInvariants(base), []);
  const withQp = (patch: Partial<StartedQp>): QmState => ({
    ...base,
    qps: [{ ...qp(base), ...patch }, null],
  });
  const cases: [string, QmState][] = [
    ["qm.allocator", { ...base, qps: [null, qp(base)] }],
    ["qm.ring-order", withQp({ cqDoorbell: 1, cqHead: 0 })],
    ["qm.outstanding-limit", withQp({ sqTail: 4, sqDoorbell: 4 })],
    ["qm.in-order-once", withQp({ sq: [qp(base).sq[1], qp(base).sq[0], qp(base).sq[2]] })],
    ["qm.in-order-once", withQp({ lastCompleted: 0 })],
    ["qm.phase", withQp({ phase: 0 })],
    ["qm.phase", withQp({ cq: [{ sqIndex: 0, phase: 0 }, qp(base).cq[1]] })],
    ["qm.windows", withQp({ cq: [qp(base).cq[0]] })],
    ["qm.windows", withQp({ sq: qp(base).sq.slice(1) })],
    ["qm.windows", { ...base, eq: [] }],
    ["qm.eq-no-overwrite", { ...base, eqTail: base.eqDoorbell + 8 }],
    ["qm.cq-no-overwrite", withQp({ cqTail: 6, sqHead: 6, sqDoorbell: 6, sqTail: 6 })],
    ["qm.doorbell-owner", withQp({ foreignDoorbells: 1 })],
    ["qm.eq", { ...base, eq: [{ ...base.eq[0], cqn: 0x10000 }, base.eq[1]] }],
    ["qm.eq", { ...base, eqPhase: 0 }],
    ["qm.irq", { ...base, irqPending: false }],
    ["qm.irq", { ...base, irqMasked: true }],
    ["qm.dma-buffers", { ...base, dmaBuffers: base.dmaBuffers + 1 }],
  ];
  for (const [name, state] of cases) {
    await t.step(name, () => {
      const inv = qmInvariants.find((i) => i.name === name);
      assert.ok(inv, `invariant ${name} exists`);
      assert.equal(typeof inv.check(state), "string", `${name} catches the corruption`);
    });
  }
  await t.step("the safety invariants hold at every scheduling point", () => {
    assert.deepEqual(
      qmInvariants.filter((i) => i.scope === "always").map((i) => i.name).sort(),
      ["qm.cq-no-overwrite", "qm.doorbell-owner", "qm.eq-no-overwrite", "qm.outstanding-limit"],
    );
  });
  await t.step("every invariant has a corruption case", () => {
    assert.deepEqual(
      [...new Set(cases.map(([n]) => n))].sort(),
      qmInvariants.map((i) => i.name).sort(),
    );
  });
});

// ---------------------------------------------------------------------------------------------
// Property: random command sequences

/**
 * A generated action; `asOwner` replaces `by` with the queue's real owner when it has one,
 * and makes `qm.start` pick a queue pair that waits to be started.
 */
type Action = { cmd: QmCommand; asOwner: boolean };

function actionArb(qpNum: number): fc.Arbitrary<Action> {
  const qn = fc.integer({ min: 0, max: qpNum }); // qpNum itself is out of range
  const pid = fc.constantFrom(U, V);
  const owner = fc.constantFrom<QmOwner>("kernel", U, V);
  const tag = fc.integer({ min: 0, max: 1_000_000 });
  const index = fc.integer({ min: 0, max: 7 });
  const cmd: fc.Arbitrary<QmCommand> = fc.oneof(
    { arbitrary: owner.map((o) => ({ op: "qm.alloc" as const, owner: o })), weight: 2 },
    { arbitrary: qn.map((n) => ({ op: "qm.start" as const, qn: n })), weight: 2 },
    { arbitrary: qn.map((n) => ({ op: "qm.release" as const, qn: n })), weight: 1 },
    {
      arbitrary: fc.tuple(qn, tag).map(([n, t]) => ({ op: "qm.send" as const, qn: n, tag: t })),
      weight: 5,
    },
    {
      arbitrary: fc.tuple(qn, pid, tag, fc.integer({ min: 0, max: 3 })).map(([n, by, t, r]) => ({
        op: "qm.userSend" as const,
        qn: n,
        by,
        tag: t,
        ring: r === 0 ? false : undefined,
      })),
      weight: 6,
    },
    {
      arbitrary: fc.tuple(owner, qn, fc.integer({ min: 0, max: 4 }), index).map((
        [by, n, c, i],
      ) => ({ op: "qm.doorbell" as const, by, qn: n, cmd: c, index: i, priority: 0 })),
      weight: 2,
    },
    {
      arbitrary: fc.tuple(qn, fc.constantFrom(0, 0, 0, 0x0d, 5)).map(([n, st]) => ({
        op: "qm.deviceStep" as const,
        qn: n,
        status: st,
      })),
      weight: 10,
    },
    {
      arbitrary: fc.tuple(qn, pid).map(([n, by]) => ({ op: "qm.poll" as const, qn: n, by })),
      weight: 6,
    },
    { arbitrary: fc.constant({ op: "qm.irq" as const }), weight: 3 },
    {
      arbitrary: fc.boolean().map((m) => ({ op: "qm.setIrqMask" as const, masked: m })),
      weight: 1,
    },
    {
      arbitrary: fc.tuple(fc.constantFrom(0, 1, 2, 4, 5), qn).map(([c, q]) => ({
        op: "qm.mailbox" as const,
        cmd: c,
        queue: q,
      })),
      weight: 1,
    },
    { arbitrary: fc.constant({ op: "qm.mailboxDone" as const }), weight: 2 },
  );
  return fc.record({ cmd, asOwner: fc.boolean() });
}

function withOwner(s: QmState, a: Action): QmCommand {
  const c = a.cmd;
  if (!a.asOwner || !("qn" in c) || c.qn >= s.qps.length) return c;
  if (c.op === "qm.start") {
    // Start the queue pair that was allocated last and not started yet, if any.
    const waiting = s.qps.find((q) => q !== null && q.state === "created");
    return waiting ? { ...c, qn: waiting.qn } : c;
  }
  const owner = s.qps[c.qn]?.owner;
  if (owner === undefined) return c;
  if (c.op === "qm.userSend" || c.op === "qm.poll") {
    return typeof owner === "number" ? { ...c, by: owner } : c;
  }
  if (c.op === "qm.doorbell") return { ...c, by: owner };
  return c;
}

/** The reference: per queue, the tags submitted and not yet completed, oldest first. */
type Fifo = Map<number, { seq: number; tag: number }[]>;

function completeFrom(fifo: Fifo, c: QmCompletion): void {
  const q = fifo.get(c.qn);
  assert.ok(q && q.length > 0, `completion ${JSON.stringify(c)} with nothing outstanding`);
  const head = q.shift()!;
  assert.deepEqual({ seq: c.seq, tag: c.tag }, head, "completions come in submission order");
}

/** How often each `op` returned each result during the random phase, e.g. `qm.poll:EAGAIN`. */
const coverage = new Map<string, number>();

function applyChecked(s: QmState, cmd: QmCommand, fifo: Fifo, count = false): QmState {
  const r = step(s, cmd);
  if (count) {
    const key = `${cmd.op}:${"err" in r.ret ? r.ret.err : "ok"}`;
    coverage.set(key, (coverage.get(key) ?? 0) + 1);
    // A consumer head that just crossed a lap boundary: the expected phase flipped.
    for (let qn = 0; qn < r.state.qps.length; qn++) {
      const after = r.state.qps[qn];
      const before = s.qps[qn];
      if (
        after?.state === "started" && before?.state === "started" &&
        after.phase !== before.phase
      ) {
        coverage.set("cq-wrap", (coverage.get("cq-wrap") ?? 0) + 1);
      }
    }
  }
  const bad = checkQmInvariants(r.state);
  assert.deepEqual(bad, [], `after ${JSON.stringify(cmd)}`);
  assert.deepEqual(r.events, []);
  if ("err" in r.ret) {
    assert.equal(r.state, s, `a failed ${cmd.op} changes nothing`);
    return s;
  }
  switch (cmd.op) {
    case "qm.start":
      fifo.set(cmd.qn, []);
      break;
    case "qm.release":
      assert.deepEqual(r.ret.ok, { dropped: fifo.get(cmd.qn)?.length ?? 0 });
      fifo.delete(cmd.qn);
      break;
    case "qm.send":
    case "qm.userSend":
      fifo.get(cmd.qn)!.push({ seq: r.ret.ok as number, tag: cmd.tag });
      break;
    case "qm.poll":
      completeFrom(fifo, r.ret.ok as QmCompletion);
      break;
    case "qm.irq":
      for (const c of (r.ret.ok as QmIrqOk).completions) {
        assert.equal(s.qps[c.qn]?.owner, "kernel", "the IRQ thread completes kernel queues only");
        completeFrom(fifo, c);
      }
      break;
  }
  return r.state;
}

/** Drives the device and consumers until quiet; afterwards nothing may be outstanding. */
function drain(s: QmState, fifo: Fifo): QmState {
  s = applyChecked(s, { op: "qm.setIrqMask", masked: false }, fifo);
  for (let round = 0; round < 10_000; round++) {
    let progressed = false;
    for (const q of s.qps) {
      if (q === null || q.state !== "started") continue;
      if (q.sqDoorbell < q.sqTail) {
        const by = q.owner;
        s = applyChecked(s, {
          op: "qm.doorbell",
          by,
          qn: q.qn,
          cmd: DOORBELL_CMD.SQ,
          index: q.sqTail % s.config.sqDepth,
          priority: 0,
        }, fifo);
      }
      const before = s;
      s = applyChecked(s, dev(q.qn), fifo);
      if (typeof q.owner === "number") s = applyChecked(s, poll(q.qn, q.owner), fifo);
      progressed ||= s !== before;
    }
    const before = s;
    s = applyChecked(s, IRQ, fifo);
    progressed ||= s !== before;
    if (!progressed) break;
  }
  for (const [qn, q] of fifo) assert.deepEqual(q, [], `qp ${qn} still has requests after drain`);
  return s;
}

Deno.test("qm random command sequences keep every invariant", () => {
  const config = fc.record({
    qpNum: fc.integer({ min: 1, max: 3 }),
    sqDepth: fc.integer({ min: 2, max: 6 }),
    cqDepth: fc.integer({ min: 2, max: 6 }),
    eqDepth: fc.integer({ min: 2, max: 6 }),
  });
  const owner = fc.constantFrom<QmOwner>("kernel", U, V);
  const scenario = config.chain((c) =>
    fc.tuple(
      fc.constant(c),
      fc.array(owner, { minLength: c.qpNum, maxLength: c.qpNum }),
      fc.array(actionArb(c.qpNum), { minLength: 1, maxLength: 120, size: "max" }),
    )
  );
  let drained = 0;
  fc.assert(
    fc.property(scenario, ([c, owners, actions]) => {
      coverage.set("runs", (coverage.get("runs") ?? 0) + 1);
      const fifo: Fifo = new Map();
      let s = initialQmState(c);
      // Prelude: every queue pair allocated and started, so traffic starts at once.
      for (const [qn, o] of owners.entries()) {
        s = applyChecked(s, { op: "qm.alloc", owner: o }, fifo);
        s = applyChecked(s, { op: "qm.start", qn }, fifo);
      }
      for (const a of actions) {
        s = applyChecked(s, withOwner(s, a), fifo, true);
      }
      drained += [...fifo.values()].reduce((n, q) => n + q.length, 0);
      drain(s, fifo);
    }),
    { seed: SEED, numRuns: 2000 },
  );
  // The generator must reach every rule, or the property proves little.
  const seen = (key: string): number => coverage.get(key) ?? 0;
  console.log(`coverage: ${JSON.stringify(Object.fromEntries([...coverage].sort()))}`);
  for (
    const key of [
      "qm.userSend:ok",
      "qm.userSend:EBUSY",
      "qm.send:ok",
      "qm.send:ENOSPC",
      "qm.deviceStep:ok",
      "qm.deviceStep:EBUSY",
      "qm.deviceStep:EAGAIN",
      "qm.poll:ok",
      "qm.poll:EAGAIN",
      "qm.irq:ok",
      "qm.doorbell:ok",
      "qm.doorbell:EPERM",
      "qm.release:ok",
      "qm.start:EBUSY",
      "cq-wrap",
    ]
  ) {
    assert.ok(seen(key) >= 20, `${key} seen ${seen(key)} times`);
  }
  assert.ok(drained >= 100, `only ${drained} requests left for the final drain`);
});
