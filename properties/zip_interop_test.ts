/**
 * Interoperability with node:zlib in both directions: zlib reads everything we write, and we
 * read everything zlib writes (all levels, strategies, and streams with sync/full flushes),
 * byte for byte; the reference decoder agrees with both.
 */

import assert from "node:assert/strict";
import zlib from "node:zlib";
import fc from "fast-check";
import { referenceDecode, type ZipFormat } from "../spec/zip.ts";
import { compress, CompressStream, decompress, tryDecompress } from "../impl/zip/mod.ts";
import { concat, equalBytes, jsonCorpus, nodeInflate, textCorpus } from "../model/zip_fuzz.ts";
import { prng } from "../impl/sched.ts";

const seed = Number(Deno.env.get("WARPSPEC_SEED") ?? 20180903);
console.log(`zip_interop: WARPSPEC_SEED=${seed}`);
const formats: ZipFormat[] = ["deflate", "zlib", "gzip"];

function nodeDeflate(data: Uint8Array, format: ZipFormat, opts: zlib.ZlibOptions): Uint8Array {
  const out = format === "deflate"
    ? zlib.deflateRawSync(data, opts)
    : format === "zlib"
    ? zlib.deflateSync(data, opts)
    : zlib.gzipSync(data, opts);
  return new Uint8Array(out);
}

function corpora(): [string, Uint8Array][] {
  const rnd = prng(seed);
  return [
    ["text", textCorpus(seed, 120_000)],
    ["json", jsonCorpus(seed, 50_000)],
    ["random", Uint8Array.from({ length: 40_000 }, () => rnd() * 256)],
    ["runs", concat(Array.from({ length: 50 }, (_, i) => new Uint8Array(i * 97).fill(i)))],
    ["empty", new Uint8Array(0)],
    ["one byte", Uint8Array.of(42)],
  ];
}

Deno.test("zip interop: node:zlib inflates our output at every level", async (t) => {
  for (const [name, data] of corpora()) {
    await t.step(name, () => {
      for (const format of formats) {
        for (let level = 0; level <= 9; level++) {
          const ours = compress(data, format, level);
          assert.ok(equalBytes(nodeInflate(ours, format), data), `${format} level ${level}`);
        }
      }
    });
  }
});

Deno.test("zip interop: node:zlib inflates our output (fast-check)", () => {
  fc.assert(
    fc.property(
      fc.oneof(
        fc.uint8Array({ maxLength: 2000 }),
        fc.string({ maxLength: 3000 }).map((s) => new TextEncoder().encode(s.repeat(3))),
      ),
      fc.constantFrom(...formats),
      fc.integer({ min: 0, max: 9 }),
      (data, format, level) => {
        assert.ok(equalBytes(nodeInflate(compress(data, format, level), format), data));
      },
    ),
    { seed, numRuns: 150 },
  );
});

Deno.test("zip interop: we inflate node:zlib output for all levels and strategies", async (t) => {
  const c = zlib.constants;
  const strategies = [
    ["default", c.Z_DEFAULT_STRATEGY],
    ["filtered", c.Z_FILTERED],
    ["huffman only", c.Z_HUFFMAN_ONLY],
    ["rle", c.Z_RLE],
    ["fixed", c.Z_FIXED],
  ] as const;
  for (const [name, data] of corpora()) {
    await t.step(name, () => {
      for (const format of formats) {
        for (let level = 0; level <= 9; level++) {
          for (const [sname, strategy] of strategies) {
            const packed = nodeDeflate(data, format, { level, strategy });
            assert.ok(equalBytes(decompress(packed, format), data), `${format} ${level} ${sname}`);
          }
        }
        const small = nodeDeflate(data, format, { windowBits: 9, memLevel: 1 });
        assert.ok(equalBytes(decompress(small, format), data), `${format} small window`);
      }
    });
  }
});

/** Runs a node:zlib stream with a flush between the pieces; returns the whole output. */
async function nodeFlushedStream(
  format: ZipFormat,
  pieces: Uint8Array[],
  flush: number,
): Promise<Uint8Array> {
  const z = format === "deflate"
    ? zlib.createDeflateRaw()
    : format === "zlib"
    ? zlib.createDeflate()
    : zlib.createGzip();
  const chunks: Uint8Array[] = [];
  z.on("data", (d: Uint8Array) => chunks.push(new Uint8Array(d)));
  const ended = new Promise((resolve) => z.on("end", resolve));
  for (const p of pieces) {
    z.write(p);
    await new Promise<void>((resolve) => z.flush(flush, () => resolve()));
  }
  z.end();
  await ended;
  return concat(chunks);
}

Deno.test("zip interop: we inflate node:zlib streams with sync and full flushes", async () => {
  const pieces = [textCorpus(seed, 20_000), jsonCorpus(seed, 9_000), textCorpus(seed + 1, 500)];
  for (const format of formats) {
    for (const flush of [zlib.constants.Z_SYNC_FLUSH, zlib.constants.Z_FULL_FLUSH]) {
      const packed = await nodeFlushedStream(format, pieces, flush);
      const marker = packed.findIndex((_, i) =>
        packed[i] === 0 && packed[i + 1] === 0 && packed[i + 2] === 0xff && packed[i + 3] === 0xff
      );
      assert.ok(marker > 0 && marker < packed.length - 10, "the stream has a mid-stream flush");
      assert.ok(equalBytes(decompress(packed, format), concat(pieces)), `${format} ${flush}`);
    }
  }
});

Deno.test("zip interop: node:zlib inflates our sync/full-flushed streams", () => {
  const pieces = [textCorpus(seed, 20_000), jsonCorpus(seed, 9_000), new Uint8Array(0)];
  for (const format of formats) {
    const s = new CompressStream(format, 6);
    const out = [
      s.push(pieces[0], Infinity, "sync").output,
      s.push(pieces[1], Infinity, "full").output,
      s.push(pieces[2], Infinity, "finish").output,
    ];
    assert.ok(equalBytes(nodeInflate(concat(out), format), concat(pieces)));
  }
});

Deno.test("zip interop: the reference decoder agrees with node:zlib on zlib's output", () => {
  const data = textCorpus(seed, 6000);
  for (const format of formats) {
    for (const level of [0, 1, 6, 9]) {
      for (const strategy of [zlib.constants.Z_DEFAULT_STRATEGY, zlib.constants.Z_FIXED]) {
        const packed = nodeDeflate(data, format, { level, strategy });
        const ref = referenceDecode(packed, format);
        assert.ok("ok" in ref && equalBytes(ref.ok, data), `${format} ${level} ${strategy}`);
      }
    }
  }
});

Deno.test("zip interop: compression ratio stays close to zlib's at level 6 and 9", () => {
  const data = concat([textCorpus(seed, 200_000), jsonCorpus(seed, 100_000)]);
  for (const level of [6, 9]) {
    const ours = compress(data, "deflate", level).length;
    const theirs = nodeDeflate(data, "deflate", { level }).length;
    assert.ok(ours <= theirs * 1.03, `level ${level}: ours ${ours}, zlib ${theirs}`);
  }
});

/** `z` with its zlib header's CINFO set to `cinfo` and FCHECK fixed (FLEVEL kept). */
function withCinfo(z: Uint8Array, cinfo: number): Uint8Array {
  const out = z.slice();
  out[0] = (cinfo << 4) | (z[0] & 15);
  const flg = z[1] & 0xe0;
  out[1] = flg | ((31 - ((out[0] * 256 + flg) % 31)) % 31);
  return out;
}

/** node:zlib's result, or undefined where it reports an error. */
function nodeInflateOrUndefined(data: Uint8Array, opts: zlib.ZlibOptions) {
  try {
    return nodeInflate(data, "zlib", opts);
  } catch {
    return undefined;
  }
}

/**
 * zlib's inflate (windowBits 15, as inflateInit and python's zlib.decompress use) accepts
 * CINFO 0..7 with distances up to 32 KiB whatever the header declares (it checks the declared
 * window only when built with INFLATE_STRICT) and rejects CINFO 8..15. node:zlib's default
 * (windowBits 0: a window of the declared size) accepts a distance beyond it only while the
 * bytes are still in its output chunk, which depends on chunking; there we accept too.
 */
Deno.test("zip interop: zlib headers with every CINFO decode as zlib decodes them", () => {
  const rnd = prng(seed);
  const random = (n: number) => Uint8Array.from({ length: n }, () => rnd() * 256);
  // Distances beyond every declared window from 256 B to 16 KiB, and up to 32 KiB.
  const far = random(20_000);
  const inputs = [
    concat([far, far]),
    concat([far.subarray(0, 300), far.subarray(0, 300)]),
    textCorpus(seed, 40_000),
    new Uint8Array(0),
  ];
  const streams = inputs.flatMap((data) => [
    { data, z: compress(data, "zlib", 6) },
    { data, z: nodeDeflate(data, "zlib", { windowBits: 9 }) },
  ]);
  for (const { data, z } of streams) {
    for (let cinfo = 0; cinfo < 16; cinfo++) {
      const packed = withCinfo(z, cinfo);
      const node = nodeInflateOrUndefined(packed, { windowBits: 15 });
      const nodeDefault = nodeInflateOrUndefined(packed, {});
      const ours = tryDecompress(packed, "zlib");
      const reference = referenceDecode(packed, "zlib");
      const what = `CINFO ${cinfo}, ${data.length} bytes`;
      if (cinfo <= 7) {
        assert.ok(node && equalBytes(node, data), `node:zlib accepts ${what}`);
        assert.ok("ok" in ours && equalBytes(ours.ok, data), `we accept ${what}`);
        assert.ok("ok" in reference && equalBytes(reference.ok, data), `the spec accepts ${what}`);
        assert.ok(!nodeDefault || equalBytes(nodeDefault, data), `node:zlib default, ${what}`);
      } else {
        assert.equal(node ?? nodeDefault, undefined, `node:zlib rejects ${what}`);
        assert.ok("err" in ours && ours.err.code === "bad-header", `we reject ${what}`);
        assert.ok("err" in reference, `the spec rejects ${what}`);
      }
    }
  }
});
