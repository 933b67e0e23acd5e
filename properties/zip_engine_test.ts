/**
 * The ZIP engine executing SQEs through a fake in-memory DMA: round trips, statuses,
 * short destinations, DMA faults, the SQE layout, the spec's SQE result rules, and the
 * stateful mode (a stream split into SQEs of any size, tiny output budgets, resubmission
 * after 0x0e).
 */

import assert from "node:assert/strict";
import zlib from "node:zlib";
import fc from "fast-check";
import { isZipSuccess, sqeResultViolations, ZipRequestType, ZipStatus } from "../spec/zip.ts";
import {
  decodeZipSqe,
  emptyZipSqe,
  encodeZipSqe,
  executeZipSqe,
  ZipAlgType,
  type ZipDma,
  type ZipSqe,
  zipSqeStatus,
  ZipStreamCtl,
} from "../impl/device/zip_engine.ts";
import type { CompressStream, DecompressStream } from "../impl/zip/mod.ts";
import { concat, equalBytes, textCorpus } from "../model/zip_fuzz.ts";
import { prng } from "../impl/sched.ts";

const seed = Number(Deno.env.get("WARPSPEC_SEED") ?? 20180903);
console.log(`zip_engine: WARPSPEC_SEED=${seed}`);

/** Memory with mapped regions; anything else faults. Records every write. */
class FakeDma implements ZipDma {
  readonly regions = new Map<number, Uint8Array>();
  readonly writes: { iova: number; length: number }[] = [];

  map(iova: number, bytes: Uint8Array): void {
    this.regions.set(iova, bytes);
  }

  private find(iova: number, length: number): [Uint8Array, number] | undefined {
    for (const [base, bytes] of this.regions) {
      if (iova >= base && iova + length <= base + bytes.length) return [bytes, iova - base];
    }
    return undefined;
  }

  /** The bytes at `iova` (the test's look at memory; the engine uses {@link readInto}). */
  read(iova: number, length: number): Uint8Array {
    const hit = this.find(iova, length);
    if (!hit) throw new Error(`nothing mapped at 0x${iova.toString(16)}+${length}`);
    return hit[0].slice(hit[1], hit[1] + length);
  }

  readInto(iova: number, out: Uint8Array): { fault: string } | undefined {
    const hit = this.find(iova, out.length);
    if (!hit) return { fault: `read fault at 0x${iova.toString(16)}+${out.length}` };
    out.set(hit[0].subarray(hit[1], hit[1] + out.length));
    return undefined;
  }

  write(iova: number, data: Uint8Array): { fault: string } | undefined {
    const hit = this.find(iova, data.length);
    if (!hit) return { fault: `write fault at 0x${iova.toString(16)}+${data.length}` };
    hit[0].set(data, hit[1]);
    this.writes.push({ iova, length: data.length });
    return undefined;
  }
}

const src = 0x10000, dst = 0x200000, guard = 64;

/** Runs one job: input at `src`, a destination of `space` bytes followed by guard bytes. */
function job(input: Uint8Array, space: number, dw9: number, algType: number, level = 6) {
  const dma = new FakeDma();
  dma.map(src, input.slice());
  const dest = new Uint8Array(space + guard).fill(0xa5);
  dma.map(dst, dest);
  const sqe: ZipSqe = Object.freeze({
    ...emptyZipSqe,
    inputDataLength: input.length,
    destAvailOut: space,
    dw9,
    sourceAddr: src,
    destAddr: dst,
  });
  const before = encodeZipSqe(sqe);
  const r = executeZipSqe(sqe, dma, { algType, level });
  assert.ok(equalBytes(encodeZipSqe(sqe), before), "the input SQE is not modified");
  assert.ok(dest.subarray(space).every((b) => b === 0xa5), "no byte written past dest_avail_out");
  const violations = sqeResultViolations(
    { inputLength: input.length, destAvailOut: space },
    { consumed: r.sqe.consumed, produced: r.sqe.produced, status: zipSqeStatus(r.sqe) },
  );
  assert.deepEqual(violations, []);
  return { ...r, out: dest.subarray(0, r.sqe.produced), dma };
}

const types = [ZipRequestType.deflate, ZipRequestType.zlib, ZipRequestType.gzip];

Deno.test("zip engine: compress then decompress through SQEs; zlib reads the output", () => {
  const data = textCorpus(seed, 50_000);
  for (const dw9 of types) {
    const c = job(data, 1 << 20, dw9, ZipAlgType.compress);
    assert.equal(zipSqeStatus(c.sqe), ZipStatus.ok);
    assert.equal(c.sqe.consumed, data.length);
    const node = dw9 === 1 ? zlib.inflateRawSync : dw9 === 2 ? zlib.inflateSync : zlib.gunzipSync;
    assert.ok(equalBytes(new Uint8Array(node(c.out)), data));
    const d = job(c.out, 1 << 20, dw9, ZipAlgType.decompress);
    assert.equal(zipSqeStatus(d.sqe), ZipStatus.decompressEnd);
    assert.equal(d.sqe.consumed, c.out.length);
    assert.ok(equalBytes(d.out, data));
  }
});

Deno.test("zip engine: negative compression is 0x0d and still complete", () => {
  const next = prng(seed);
  const rnd = Uint8Array.from({ length: 3000 }, () => next() * 256);
  const c = job(rnd, 10_000, ZipRequestType.gzip, ZipAlgType.compress);
  assert.equal(zipSqeStatus(c.sqe), ZipStatus.negativeCompression);
  assert.ok(equalBytes(new Uint8Array(zlib.gunzipSync(c.out)), rnd));
});

Deno.test("zip engine: short destinations give 0x0e and never overrun (fast-check)", () => {
  const data = textCorpus(seed, 20_000);
  const packed = job(data, 1 << 20, ZipRequestType.zlib, ZipAlgType.compress).out;
  fc.assert(
    fc.property(fc.integer({ min: 0, max: packed.length - 1 }), (space) => {
      const c = job(data, space, ZipRequestType.zlib, ZipAlgType.compress);
      assert.equal(zipSqeStatus(c.sqe), ZipStatus.destInsufficient);
      assert.equal(c.sqe.produced, space);
      assert.ok(equalBytes(c.out, packed.subarray(0, space)));
      const d = job(packed, Math.min(space, data.length - 1), ZipRequestType.zlib, 1);
      assert.equal(zipSqeStatus(d.sqe), ZipStatus.destInsufficient);
      assert.ok(equalBytes(d.out, data.subarray(0, d.sqe.produced)));
    }),
    { seed, numRuns: 40 },
  );
});

Deno.test("zip engine: a stream context continues a job after 0x0e", () => {
  const data = textCorpus(seed, 30_000);
  const packed = job(data, 1 << 20, ZipRequestType.gzip, ZipAlgType.compress).out;
  const contexts = new Map<number, CompressStream | DecompressStream>();
  const dma = new FakeDma();
  dma.map(src, packed.slice());
  const dest = new Uint8Array(data.length);
  dma.map(dst, dest);
  let consumed = 0, produced = 0, status = -1;
  for (let round = 0; round < 100 && status !== ZipStatus.decompressEnd; round++) {
    const sqe = {
      ...emptyZipSqe,
      dw9: ZipRequestType.gzip,
      sourceAddr: src + consumed,
      inputDataLength: packed.length - consumed,
      destAddr: dst + produced,
      destAvailOut: Math.min(4096, data.length - produced),
      streamCtxAddr: 0x7000,
    };
    const r = executeZipSqe(sqe, dma, { algType: ZipAlgType.decompress, contexts });
    consumed += r.sqe.consumed;
    produced += r.sqe.produced;
    status = zipSqeStatus(r.sqe);
  }
  assert.equal(status, ZipStatus.decompressEnd);
  assert.ok(equalBytes(dest, data));
  assert.equal(contexts.size, 0, "the context is released when the job ends");
});

Deno.test("zip engine: DMA faults become statuses with the fault", () => {
  const data = textCorpus(seed, 1000);
  const sqe = { ...emptyZipSqe, dw9: 2, inputDataLength: data.length, destAvailOut: 4096 };
  const dma = new FakeDma();
  dma.map(src, data);
  const readFault = executeZipSqe({ ...sqe, sourceAddr: 0x999000, destAddr: dst }, dma, {
    algType: 0,
  });
  assert.equal(zipSqeStatus(readFault.sqe), ZipStatus.dmaReadFault);
  assert.match(readFault.fault ?? "", /read fault/);
  assert.equal(readFault.sqe.produced, 0);
  const writeFault = executeZipSqe({ ...sqe, sourceAddr: src, destAddr: 0x999000 }, dma, {
    algType: 0,
  });
  assert.equal(zipSqeStatus(writeFault.sqe), ZipStatus.dmaWriteFault);
  assert.match(writeFault.fault ?? "", /write fault/);
  assert.equal(dma.writes.length, 0);
});

Deno.test("zip engine: bad requests and corrupt input give error statuses", () => {
  const data = textCorpus(seed, 1000);
  for (const [dw9, alg] of [[0, 0], [4, 0], [0x13, 1], [2, 2]]) {
    const r = job(data, 4096, dw9, alg);
    assert.equal(zipSqeStatus(r.sqe), ZipStatus.badRequest);
    assert.equal(r.sqe.produced, 0);
  }
  const packed = job(data, 4096, ZipRequestType.zlib, 0).out.slice();
  packed[packed.length - 1] ^= 1;
  assert.equal(zipSqeStatus(job(packed, 4096, 2, 1).sqe), ZipStatus.checksumError);
  assert.equal(zipSqeStatus(job(packed.subarray(0, 20), 4096, 2, 1).sqe), ZipStatus.truncatedInput);
  assert.equal(
    zipSqeStatus(job(Uint8Array.of(0x78, 0xbb, 0), 4096, 2, 1).sqe),
    ZipStatus.headerError,
  );
  assert.equal(zipSqeStatus(job(Uint8Array.of(0xff), 4096, 1, 1).sqe), ZipStatus.dataError);
});

Deno.test("zip engine: the 128-byte SQE layout round trips (fast-check)", () => {
  const u32 = fc.integer({ min: 0, max: 0xffffffff });
  const addr = fc.integer({ min: 0, max: Number.MAX_SAFE_INTEGER });
  const sqeArb = fc.record({
    consumed: u32,
    produced: u32,
    compDataLength: u32,
    dw3: u32,
    inputDataLength: u32,
    lba: addr,
    dw7: u32,
    dw8: u32,
    dw9: u32,
    dw10: u32,
    privInfo: u32,
    dw12: u32,
    tag: u32,
    destAvailOut: u32,
    rsvd0: u32,
    compHeadAddr: addr,
    sourceAddr: addr,
    destAddr: addr,
    streamCtxAddr: addr,
    cipherKey1Addr: addr,
    cipherKey2Addr: addr,
    rsvd1: fc.tuple(u32, u32, u32, u32),
  });
  fc.assert(
    fc.property(sqeArb, (sqe) => {
      const bytes = encodeZipSqe(sqe);
      assert.equal(bytes.length, 128);
      assert.deepEqual(decodeZipSqe(bytes), { ...sqe });
    }),
    { seed, numRuns: 200 },
  );
  const bytes = encodeZipSqe({
    ...emptyZipSqe,
    dw9: 3,
    destAvailOut: 0x800000,
    sourceAddr: 2 ** 40 + 5,
  });
  const view = new DataView(bytes.buffer);
  assert.equal(view.getUint32(9 * 4, true), 3, "dw9 is word 9");
  assert.equal(view.getUint32(14 * 4, true), 0x800000, "dest_avail_out is word 14");
  assert.equal(view.getUint32(18 * 4, true), 5, "source_addr_l is word 18");
  assert.equal(view.getUint32(19 * 4, true), 256, "source_addr_h is word 19");
});

/** What {@link streamSqes} did: the output and the SQEs it took. */
interface Streamed {
  readonly out: Uint8Array;
  readonly sqes: number;
  readonly status: number;
}

/**
 * Runs `input` through stateful SQEs at one stream context: one request per chunk of
 * `chunks` (new stream on the first, finish on the last), each resubmitted with the
 * unconsumed rest while the engine answers 0x0e, with `budget()` bytes of output room each.
 * Stops at the first status that is neither 0 nor 0x0e, and at 0x13.
 */
function streamSqes(
  input: Uint8Array,
  chunks: readonly number[],
  dw9: number,
  algType: number,
  budget: () => number,
  contexts = new Map<number, CompressStream | DecompressStream>(),
  level = 6,
): Streamed {
  const dma = new FakeDma();
  dma.map(src, input.slice());
  const parts: Uint8Array[] = [];
  let at = 0, sqes = 0, status = -1;
  for (const [i, length] of chunks.entries()) {
    const end = at + length;
    const flags = ZipStreamCtl.stateful | (i === chunks.length - 1 ? ZipStreamCtl.finish : 0);
    do {
      const room = budget();
      const dest = new Uint8Array(room + guard).fill(0xa5);
      dma.map(dst, dest);
      const sqe = {
        ...emptyZipSqe,
        dw7: flags | (sqes === 0 ? ZipStreamCtl.newStream : 0),
        dw9,
        sourceAddr: src + at,
        inputDataLength: end - at,
        destAddr: dst,
        destAvailOut: room,
        streamCtxAddr: 0x7000,
      };
      const r = executeZipSqe(sqe, dma, { algType, contexts, level });
      sqes++;
      status = zipSqeStatus(r.sqe);
      const violations = sqeResultViolations(
        { inputLength: end - at, destAvailOut: room },
        { consumed: r.sqe.consumed, produced: r.sqe.produced, status },
      );
      assert.deepEqual(violations, []);
      assert.ok(dest.subarray(room).every((b) => b === 0xa5), "no byte past dest_avail_out");
      parts.push(dest.slice(0, r.sqe.produced));
      at += r.sqe.consumed;
    } while (status === ZipStatus.destInsufficient);
    if (status !== ZipStatus.ok) break;
    assert.equal(at, end, "status 0 takes all of the request's input");
  }
  return { out: concat(parts), sqes, status };
}

/** Splits `n` into chunks of the sizes `sizes` gives in turn (the rest last). */
function chunking(n: number, sizes: readonly number[]): number[] {
  const out: number[] = [];
  let left = n;
  for (const s of sizes) {
    if (left <= s) break;
    out.push(s);
    left -= s;
  }
  out.push(left);
  return out;
}

const inflaters = {
  [ZipRequestType.deflate]: zlib.inflateRawSync,
  [ZipRequestType.zlib]: zlib.inflateSync,
  [ZipRequestType.gzip]: zlib.gunzipSync,
} as const;

Deno.test("zip engine stateful: any chunking and output budget is one stream (fast-check)", () => {
  const next = prng(seed);
  const corpora = [
    textCorpus(seed, 12_000),
    Uint8Array.from({ length: 6000 }, () => next() * 256), // incompressible
  ];
  const contexts = new Map<number, CompressStream | DecompressStream>();
  fc.assert(
    fc.property(
      fc.constantFrom(...types),
      fc.constantFrom(...corpora.keys()),
      fc.array(fc.oneof(fc.constant(1), fc.integer({ min: 1, max: 5000 })), { maxLength: 8 }),
      fc.integer({ min: 1, max: 200 }),
      fc.integer(),
      fc.constantFrom(1, 6, 9),
      (dw9, corpus, sizes, maxBudget, budgetSeed, level) => {
        const data = corpora[corpus];
        const rnd = prng(budgetSeed);
        const tiny = () => 1 + Math.floor(rnd() * maxBudget);
        const chunks = chunking(data.length, sizes);
        const c = streamSqes(data, chunks, dw9, ZipAlgType.compress, tiny, contexts, level);
        assert.ok(isZipSuccess(c.status), `compress status 0x${c.status.toString(16)}`);
        assert.ok(equalBytes(new Uint8Array(inflaters[dw9](c.out)), data), "node:zlib decodes");
        const roomy = streamSqes(data, chunks, dw9, ZipAlgType.compress, () => 1 << 20);
        if (level === 6) assert.ok(equalBytes(roomy.out, c.out), "budgets do not change bytes");
        const back = chunking(c.out.length, sizes);
        const d = streamSqes(c.out, back, dw9, ZipAlgType.decompress, tiny, contexts);
        assert.equal(d.status, ZipStatus.decompressEnd);
        assert.ok(equalBytes(d.out, data), "chunked decompression gives the input back");
        assert.equal(contexts.size, 0, "a finished stream releases its context");
      },
    ),
    { seed, numRuns: 30 },
  );
});

Deno.test("zip engine stateful: node:zlib's streams decode in 1-byte requests", () => {
  const data = textCorpus(seed + 1, 3000);
  const streams = [
    [ZipRequestType.deflate, zlib.deflateRawSync(data, { level: 9 })],
    [ZipRequestType.zlib, zlib.deflateSync(data, { level: 1 })],
    [ZipRequestType.gzip, concat([zlib.gzipSync(data), zlib.gzipSync(data)])],
  ] as const;
  for (const [dw9, stream] of streams) {
    const bytes = new Uint8Array(stream);
    const ones = Array.from({ length: bytes.length }, () => 1);
    const d = streamSqes(bytes, ones, dw9, ZipAlgType.decompress, () => 4096);
    assert.equal(d.status, ZipStatus.decompressEnd);
    const want = dw9 === ZipRequestType.gzip ? concat([data, data]) : data;
    assert.ok(equalBytes(d.out, want));
  }
});

Deno.test("zip engine stateful: the flush bits and the context's life", async (t) => {
  const data = textCorpus(seed + 2, 4000);
  const half = data.length >> 1;
  const contexts = new Map<number, CompressStream | DecompressStream>();
  const dma = new FakeDma();
  dma.map(src, data.slice());
  dma.map(dst, new Uint8Array(1 << 16));
  /** Runs one SQE over the first half of `data` at context 0x7000; its status and output. */
  const run = (dw9: number, dw7: number) => {
    const r = executeZipSqe(
      {
        ...emptyZipSqe,
        dw7,
        dw9,
        sourceAddr: src,
        inputDataLength: half,
        destAddr: dst,
        destAvailOut: 1 << 16,
        streamCtxAddr: 0x7000,
      },
      dma,
      { algType: ZipAlgType.compress, contexts },
    );
    return { status: zipSqeStatus(r.sqe), out: dma.read(dst, r.sqe.produced) };
  };
  const { stateful, newStream, finish } = ZipStreamCtl;
  await t.step("a sync request is all of its input, flushed to a byte boundary", () => {
    const r = run(ZipRequestType.deflate, stateful | newStream);
    assert.equal(r.status, ZipStatus.ok);
    assert.deepEqual([...r.out.subarray(-4)], [0, 0, 0xff, 0xff]);
    const sync = { finishFlush: zlib.constants.Z_SYNC_FLUSH };
    assert.ok(equalBytes(new Uint8Array(zlib.inflateRawSync(r.out, sync)), data.subarray(0, half)));
    assert.equal(contexts.size, 1, "kept after a sync flush");
  });
  await t.step("a new stream drops the context left at the address", () => {
    const oneShot = job(data.subarray(0, half), 1 << 16, ZipRequestType.zlib, 0).out;
    const other = run(ZipRequestType.zlib, stateful | newStream | finish);
    assert.ok(equalBytes(other.out, oneShot), "over a raw deflate context");
    assert.equal(contexts.size, 0, "dropped when the stream finishes");
    // A zlib compression context, the same kind as the new stream: only the new-stream bit
    // tells the engine not to continue it (which would emit no zlib header and go on with
    // the old stream's history and checksum).
    assert.equal(run(ZipRequestType.zlib, stateful | newStream).status, ZipStatus.ok);
    assert.equal(contexts.size, 1, "a zlib context is left at the address");
    const r = run(ZipRequestType.zlib, stateful | newStream | finish);
    assert.equal(r.status, ZipStatus.ok);
    const node = new Uint8Array(zlib.inflateSync(r.out));
    assert.ok(equalBytes(node, data.subarray(0, half)), "node:zlib reads one whole zlib stream");
    assert.ok(equalBytes(r.out, oneShot), "the bytes of a one-shot job");
    assert.equal(contexts.size, 0, "dropped when the stream finishes");
  });
  await t.step("an SQE without the stateful bit finishes the stream left there", () => {
    const first = run(ZipRequestType.zlib, stateful | newStream);
    const rest = run(ZipRequestType.zlib, 0);
    const both = new Uint8Array(zlib.inflateSync(concat([first.out, rest.out])));
    assert.ok(equalBytes(both, concat([data.subarray(0, half), data.subarray(0, half)])));
    assert.equal(contexts.size, 0);
  });
  await t.step("decompression without finish expects more (0); finish says truncated", () => {
    const packed = job(data, 1 << 20, ZipRequestType.zlib, ZipAlgType.compress).out;
    const cut = packed.subarray(0, packed.length - 5);
    const d = streamSqes(cut, [cut.length, 0], 2, 1, () => 1 << 20, contexts);
    assert.equal(d.status, ZipStatus.truncatedInput, "from the empty finishing request");
    assert.equal(d.sqes, 2);
    assert.equal(contexts.size, 0, "an error drops the context");
  });
});
