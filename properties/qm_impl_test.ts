/**
 * Conformance of the simulated QM (model/adapters/qm.ts) to its spec (spec/qm.ts) beyond the
 * `qm` suite's fixed configuration: random configurations (depths 2-16, one to three queue
 * pairs), a hand-written ring lifecycle, and a long run at the default depth of 1024. Then the
 * device's encodings below what the abstraction function sees: the drivers' doorbell encoder
 * against the spec's, every MMIO doorbell decoder against the spec's, and the status byte the
 * device writes into an SQE that is not zero.
 * Quirk detection is in quirks_test.ts (the `qm` machine lists them).
 */
import assert from "node:assert/strict";
import { isDeepStrictEqual } from "node:util";
import fc from "fast-check";
import {
  decodeDoorbell,
  DEFAULT_QM_CONFIG,
  encodeDoorbell,
  type QmCommand,
  type QmConfig,
} from "../spec/qm.ts";
import {
  QM_DOORBELL,
  QM_SQE_SIZE,
  type QmMmio,
  sqeStatus,
  writeDoorbell,
} from "../impl/device/qm_device.ts";
import { COMPLETE_ALL, Platform } from "../impl/platform.ts";
import { userQueue } from "../impl/hisi/qm_user.ts";
import { QmAdapter } from "../model/adapters/qm.ts";
import { aroundEdges } from "../model/arbitraries.ts";
import { qmMachineWith } from "../model/machines/qm.ts";
import { Conformance, runSequential } from "../model/runner.ts";
import { testSeed } from "../model/seed.ts";

const depth = fc.oneof(
  { arbitrary: fc.integer({ min: 2, max: 4 }), weight: 4 },
  { arbitrary: fc.integer({ min: 5, max: 16 }), weight: 1 },
);

const config: fc.Arbitrary<QmConfig> = fc.record({
  qpNum: fc.integer({ min: 1, max: 3 }),
  sqDepth: depth,
  cqDepth: depth,
  eqDepth: depth,
});

Deno.test("qm conforms at random configurations", async () => {
  const scenario = config.chain((c) => {
    const machine = qmMachineWith(c);
    return fc.tuple(fc.constant(machine), fc.array(machine.commands(), { maxLength: 60 }));
  });
  await fc.assert(
    fc.asyncProperty(scenario, async ([machine, cmds]) => {
      const records = await runSequential(machine, [...machine.prelude, ...cmds]);
      assert.equal(records.at(-1)?.failure, undefined);
    }),
    { seed: testSeed(), numRuns: 1000 },
  );
});

/** Runs `cmds` on spec and implementation, asserting every step conforms. */
async function conforms(
  c: QmConfig,
  cmds: readonly QmCommand[],
): Promise<Conformance<unknown, QmCommand>> {
  const conf = new Conformance(qmMachineWith(c));
  for (const cmd of cmds) {
    const r = await conf.step(cmd);
    assert.equal(r.failure, undefined, `${JSON.stringify(cmd)}: ${r.failure}`);
  }
  return conf as Conformance<unknown, QmCommand>;
}

Deno.test("a hand-written ring lifecycle conforms (kernel and user queues)", async () => {
  const cmds: QmCommand[] = [
    { op: "qm.alloc", owner: "kernel" },
    { op: "qm.alloc", owner: 7 },
    { op: "qm.start", qn: 0 },
    { op: "qm.start", qn: 1 },
  ];
  for (let i = 0; i < 9; i++) {
    cmds.push(
      { op: "qm.send", qn: 0, tag: i },
      { op: "qm.userSend", qn: 1, by: 7, tag: 100 + i },
      { op: "qm.deviceStep", qn: 0 },
      { op: "qm.irq" },
      { op: "qm.deviceStep", qn: 1, status: i % 2 === 0 ? 0 : 5 },
      { op: "qm.irq" },
      { op: "qm.poll", qn: 1, by: 7 },
    );
  }
  cmds.push({ op: "qm.release", qn: 1 }, { op: "qm.release", qn: 0 });
  const conf = await conforms({ qpNum: 2, sqDepth: 3, cqDepth: 2, eqDepth: 2 }, cmds);
  const spec = conf.spec as { qps: unknown[]; eqTail: number };
  assert.equal(spec.qps[0], null);
  assert.equal(spec.eqTail, 18, "every request went through the EQ");
});

Deno.test("qm at the default depth of 1024: wraps, full rings, phase flips", async () => {
  const cmds: QmCommand[] = [
    { op: "qm.alloc", owner: "kernel" },
    { op: "qm.alloc", owner: 3 },
    { op: "qm.start", qn: 0 },
    { op: "qm.start", qn: 1 },
  ];
  for (let round = 0; round < 3; round++) {
    for (let i = 0; i < 1023; i++) {
      cmds.push({ op: "qm.send", qn: 0, tag: i }, { op: "qm.userSend", qn: 1, by: 3, tag: i });
    }
    cmds.push({ op: "qm.send", qn: 0, tag: -1 }, { op: "qm.userSend", qn: 1, by: 3, tag: -1 });
    for (let i = 0; i < 1023; i++) {
      cmds.push({ op: "qm.deviceStep", qn: 0 });
      if (i % 2 === 1) cmds.push({ op: "qm.irq" });
      cmds.push({ op: "qm.deviceStep", qn: 1 }, { op: "qm.irq" }, { op: "qm.poll", qn: 1, by: 3 });
    }
    cmds.push({ op: "qm.irq" });
  }
  const conf = await conforms({ ...DEFAULT_QM_CONFIG, qpNum: 2 }, cmds);
  const spec = conf.spec as { eqTail: number; qps: { cqHead: number; lastCompleted: number }[] };
  assert.ok(spec.eqTail > 2 * 1024, "the EQ wrapped");
  assert.equal(spec.qps[1].cqHead, 3 * 1023, "every user request completed");
  assert.equal(spec.qps[0].lastCompleted, 3 * 1023 - 1, "every kernel request completed");
});

// ---------------------------------------------------------------------------------------------
// The device's encodings, below what the abstraction function sees: a doorbell field at its
// bit edges, a status byte over a non-zero SQE.

/** A u16 doorbell field: at the edges where a field's bits meet the next one's, or any. */
const u16Field = aroundEdges([0, 2, 0xff, 0x100, 0x7fff, 0x8000, 0xffff], 0, 0xffff);

/** A doorbell field that is not a u16: past the edge, negative, fractional, not finite. */
const notU16Field = fc.oneof(
  aroundEdges([0x10000, 0x1ffff, 0x20000, 2 ** 31, 2 ** 32], 0x10000, 2 ** 53),
  fc.constantFrom(-1, -0x10000, 1.5, 0xffff + 0.5, NaN, Infinity),
);

/** A QmMmio that records every 64-bit write as the value it stands for. */
function recordingMmio(): { mmio: QmMmio; writes: { offset: number; value: bigint }[] } {
  const writes: { offset: number; value: bigint }[] = [];
  const u32 = (v: number) => BigInt(v >>> 0);
  const mmio: QmMmio = {
    readl: () => 0,
    writel: () => assert.fail("a doorbell is a 64-bit write, not writel"),
    writeq: (offset, value) => writes.push({ offset, value }),
    writeq32: (offset, lo, hi) => writes.push({ offset, value: u32(hi) << 32n | u32(lo) }),
    write128: () => assert.fail("a doorbell is a 64-bit write, not write128"),
  };
  return { mmio, writes };
}

Deno.test("writeDoorbell writes encodeDoorbell's value, or refuses a field that is not a u16", () => {
  const field = fc.oneof({ weight: 6, arbitrary: u16Field }, { weight: 1, arbitrary: notU16Field });
  const db = fc.record({ qn: field, cmd: field, index: field, priority: field });
  const seen = { written: 0, refused: 0 };
  const hex = (ws: { offset: number; value: bigint }[]) =>
    ws.map((w) => `${w.offset.toString(16)}: ${w.value.toString(16).padStart(16, "0")}`);
  fc.assert(
    fc.property(db, (d) => {
      const { mmio, writes } = recordingMmio();
      const fits = [d.qn, d.cmd, d.index, d.priority].every((v) =>
        Number.isInteger(v) && v >= 0 && v <= 0xffff
      );
      const write = () => writeDoorbell(mmio, d.qn, d.cmd, d.index, d.priority);
      if (!fits) {
        assert.throws(write, RangeError, `${JSON.stringify(d)} is not all u16`);
        assert.deepEqual(writes, [], "a refused doorbell writes nothing");
        seen.refused++;
        return;
      }
      write();
      const expected = [{ offset: QM_DOORBELL, value: encodeDoorbell(d) }];
      assert.deepEqual(hex(writes), hex(expected), JSON.stringify(d));
      seen.written++;
    }),
    { seed: testSeed(), numRuns: 3000 },
  );
  // Both outcomes, often: neither half of the property is vacuous.
  assert.ok(seen.written > 500 && seen.refused > 500, JSON.stringify(seen));
});

/** Owner of queue 1 in the decoder test (queue 0 is the kernel's). */
const DECODER_PID = 7;

/** A QM with kernel queue 0 and user queue 1 started, at odd depths (high index bits show). */
async function startedQm(): Promise<QmAdapter> {
  const qm = new QmAdapter(new Platform(), { qpNum: 3, sqDepth: 5, cqDepth: 3, eqDepth: 7 });
  for (
    const cmd of [
      { op: "qm.alloc", owner: "kernel" },
      { op: "qm.alloc", owner: DECODER_PID },
      { op: "qm.start", qn: 0 },
      { op: "qm.start", qn: 1 },
    ] as QmCommand[]
  ) {
    const out = await qm.exec(cmd);
    assert.ok("ok" in out.ret, `${JSON.stringify(cmd)}: ${JSON.stringify(out.ret)}`);
  }
  return qm;
}

/** What the device shows of its doorbell state: every queue's positions and the EQ's. */
function deviceView(qm: QmAdapter): unknown {
  return {
    queues: [0, 1, 2].map((qn) => qm.device.observeQueue(qn) ?? null),
    eq: qm.device.observeEq(),
  };
}

/** The register mappings a doorbell can be written through. */
const MAPPINGS = ["kernel", "owner", "stranger", "queue 0", "queue 1"] as const;

function mapping(qm: QmAdapter, which: (typeof MAPPINGS)[number]): QmMmio {
  switch (which) {
    case "kernel":
      return qm.device.mmio("kernel");
    case "owner":
      return qm.device.mmio(DECODER_PID);
    case "stranger":
      return qm.device.mmio(DECODER_PID + 1);
    case "queue 0":
      return qm.device.queueMmio(0);
    case "queue 1":
      return qm.device.queueMmio(1);
  }
}

Deno.test("every doorbell decoder of the device reads a split write as decodeDoorbell reads the value", async () => {
  // Fields at the bit edges; the cmd often a known command plus one high bit (2^8..2^15), which
  // a decoder keeping fewer than 16 bits takes for the known one; the queue mostly a loaded one.
  const cmd = fc.oneof(
    { weight: 2, arbitrary: fc.integer({ min: 0, max: 4 }) },
    {
      weight: 2,
      arbitrary: fc.tuple(fc.integer({ min: 8, max: 15 }), fc.integer({ min: 0, max: 3 }))
        .map(([bit, known]) => 2 ** bit + known),
    },
    { weight: 1, arbitrary: u16Field },
  );
  const qn = fc.oneof({ weight: 3, arbitrary: fc.integer({ min: 0, max: 2 }) }, {
    weight: 1,
    arbitrary: u16Field,
  });
  const index = fc.oneof({ weight: 2, arbitrary: fc.nat(9) }, { weight: 1, arbitrary: u16Field });
  const write = fc.record({
    via: fc.constantFrom(...MAPPINGS),
    value: fc.tuple(qn, cmd, index, u16Field).map(([qn, cmd, index, priority]) =>
      encodeDoorbell({ qn, cmd, index, priority })
    ),
    // writeDoorbell hands the low half over as an int32 (`qn | cmd << 16`); a u32 is as good.
    signed: fc.boolean(),
  });
  let moved = 0;
  // writeq32 of the halves on one device, writeq of the value on its twin: the same effect.
  await fc.assert(
    fc.asyncProperty(fc.array(write, { minLength: 1, maxLength: 12 }), async (writes) => {
      const split = await startedQm();
      const whole = await startedQm();
      for (const { via, value, signed } of writes) {
        const before = deviceView(split);
        const lo = Number(value & 0xffff_ffffn);
        mapping(split, via).writeq32(QM_DOORBELL, signed ? lo | 0 : lo, Number(value >> 32n));
        mapping(whole, via).writeq(QM_DOORBELL, value);
        const db = decodeDoorbell(value);
        assert.deepEqual(deviceView(split), deviceView(whole), `${via}: ${JSON.stringify(db)}`);
        if (!isDeepStrictEqual(deviceView(split), before)) moved++;
      }
    }),
    { seed: testSeed(), numRuns: 500 },
  );
  // Some writes moved a ring: the comparison is not between two idle devices.
  assert.ok(moved > 100, `${moved} writes moved a ring`);
});

/** The status byte of an SQE: the low byte of dw3, the fourth dword ({@link sqeStatus}). */
const STATUS_BYTE = 12;

Deno.test("the device writes the status byte of an SQE and leaves its other bytes alone", async () => {
  const request = fc.record({
    sqe: fc.uint8Array({ minLength: QM_SQE_SIZE, maxLength: QM_SQE_SIZE }),
    tag: fc.nat(999),
    // The engine's result: the device keeps its low 8 bits.
    result: fc.oneof(fc.integer({ min: 0, max: 0xff }), fc.integer({ min: 0x100, max: 2 ** 31 })),
  });
  let stale = 0;
  await fc.assert(
    fc.asyncProperty(fc.array(request, { minLength: 1, maxLength: 6 }), async (reqs) => {
      const qm = await startedQm();
      const qp = qm.qm.lookup(0);
      assert.ok(typeof qp !== "string" && qp.rings);
      const rings = qp.rings;
      for (const { sqe, tag, result } of reqs) {
        const slot = rings.sqTail.index;
        assert.equal(typeof await qm.qm.send(qp, rings, tag, sqe), "number");
        const before = rings.sqe(slot);
        if (sqeStatus(before) !== (result & 0xff)) stale++;
        const step = await qm.device.step(0, { execute: () => result });
        assert.equal(typeof step, "object", `device step: ${step}`);
        const after = rings.sqe(slot);
        assert.equal(sqeStatus(after), result & 0xff, "the status is the engine's low byte");
        const expected = before.slice();
        expected[STATUS_BYTE] = result & 0xff;
        assert.deepEqual(after, expected, "only the status byte changed");
        const irq = await qm.exec({ op: "qm.irq" });
        assert.ok("ok" in irq.ret, JSON.stringify(irq.ret));
      }
    }),
    { seed: testSeed(), numRuns: 300 },
  );
  // Most SQEs came with a status byte the device had to replace.
  assert.ok(stale > 300, `${stale} SQEs held a stale status byte`);
});

Deno.test("a queue's pending device event is handled when it stops, not by the queue started next on its number", async () => {
  const platform = new Platform();
  const fn = platform.probeQm(1, { qpNum: 1, sqDepth: 4, cqDepth: 4 }, COMPLETE_ALL);
  const start = async (pid: number) => {
    const qp = fn.qm.createQp(pid);
    assert.ok(typeof qp !== "string" && await fn.qm.startQp(qp) === undefined);
    return qp;
  };
  const old = await start(1);
  const queue = userQueue(platform.kernel, fn, old, 1);
  assert.equal(await queue.send(7, true), 0);
  const done = await fn.device.step(old.qn);
  assert.ok(typeof done !== "string", String(done)); // the EQE is written, the interrupt raised
  await fn.qm.stopQp(old);
  assert.equal(old.wakeups, 1, "the stop ran the IRQ thread's pass for the queue's event");
  await fn.qm.releaseQp(old);
  const next = await start(2);
  assert.equal(next.qn, old.qn);
  assert.equal(await fn.qm.irqThread(), "EAGAIN");
  assert.equal(next.wakeups, 0, "the new queue is not woken by the old one's event");
});
