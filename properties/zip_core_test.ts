/**
 * The DEFLATE core on its own: round trips at every level and framing, boundary sizes,
 * agreement with the specification's reference decoder, bounded output and resumability.
 */

import assert from "node:assert/strict";
import fc from "fast-check";
import {
  adler32Reference,
  crc32Reference,
  isZipError,
  referenceDecode,
  type ZipFormat,
  ZipStatus,
} from "../spec/zip.ts";
import {
  adler32,
  compress,
  CompressStream,
  crc32,
  decompress,
  DecompressStream,
  type FlushMode,
  tryDecompress,
} from "../impl/zip/mod.ts";
import { concat, equalBytes, jsonCorpus, nodeInflate, textCorpus } from "../model/zip_fuzz.ts";
import { prng } from "../impl/sched.ts";

const seed = Number(Deno.env.get("WARPSPEC_SEED") ?? 20180903);
console.log(`zip_core: WARPSPEC_SEED=${seed}`);
const formats: ZipFormat[] = ["deflate", "zlib", "gzip"];
const allLevels = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9];

/** Inputs of the shapes that exercise different compressor paths. */
const inputArb: fc.Arbitrary<Uint8Array> = fc.oneof(
  fc.uint8Array({ maxLength: 3000 }),
  fc.array(
    fc.record({ b: fc.integer({ min: 0, max: 255 }), n: fc.integer({ min: 1, max: 600 }) }),
    {
      maxLength: 12,
    },
  ).map((runs) => concat(runs.map(({ b, n }) => new Uint8Array(n).fill(b)))),
  fc.tuple(fc.integer({ min: 1, max: 1000 }), fc.integer({ min: 0, max: 6000 })).map(([s, n]) =>
    textCorpus(s, n)
  ),
  fc.tuple(fc.uint8Array({ minLength: 1, maxLength: 40 }), fc.integer({ min: 1, max: 300 })).map((
    [pattern, times],
  ) => concat(Array.from({ length: times }, () => pattern))),
  fc.constantFrom(new Uint8Array(0), Uint8Array.of(0), Uint8Array.of(255)),
);

/** Deterministic large and boundary-sized inputs. */
function boundaryInputs(): [string, Uint8Array][] {
  const rnd = prng(seed);
  const random = (n: number) => Uint8Array.from({ length: n }, () => rnd() * 256);
  return [
    ["text 100 KiB", textCorpus(seed, 100_000)],
    ["json 70 KiB", jsonCorpus(seed, 70_000)],
    ["random 32 KiB", random(32768)],
    ["random 64 KiB", random(65536)],
    ["random 65535", random(65535)],
    ["random 65536", random(65536)],
    ["random 131071", random(131071)],
    ["zeros 300 KiB", new Uint8Array(300_000)],
    ["text 32 KiB + 1", textCorpus(seed + 1, 32769)],
  ];
}

Deno.test("zip core: round trip at every level and framing (fast-check)", async (t) => {
  for (const format of formats) {
    await t.step(format, () => {
      fc.assert(
        fc.property(inputArb, fc.constantFrom(...allLevels), (data, level) => {
          const packed = compress(data, format, level);
          assert.ok(equalBytes(decompress(packed, format), data));
        }),
        { seed, numRuns: 60 },
      );
    });
  }
});

Deno.test("zip core: boundary sizes round trip, and level 0 stays stored", async (t) => {
  for (const [name, data] of boundaryInputs()) {
    await t.step(name, () => {
      for (const format of formats) {
        for (const level of [0, 1, 6, 9]) {
          const packed = compress(data, format, level);
          assert.ok(equalBytes(decompress(packed, format), data), `${format} level ${level}`);
        }
      }
      const stored = compress(data, "deflate", 0);
      const blocks = Math.max(1, Math.ceil(data.length / 65535));
      assert.equal(stored.length, data.length + 5 * blocks);
    });
  }
});

Deno.test("zip core: higher levels never lose much to lower ones on text", () => {
  const data = textCorpus(seed, 200_000);
  const sizes = allLevels.map((level) => compress(data, "deflate", level).length);
  assert.ok(sizes[6] < sizes[1], `level 6 ${sizes[6]} vs level 1 ${sizes[1]}`);
  assert.ok(sizes[9] <= sizes[6] * 1.001, `level 9 ${sizes[9]} vs level 6 ${sizes[6]}`);
  assert.ok(sizes[1] < data.length / 2);
});

Deno.test("zip core: the fast decoder agrees with the reference decoder", () => {
  fc.assert(
    fc.property(
      inputArb,
      fc.constantFrom(...formats),
      fc.constantFrom(...allLevels),
      (data, format, level) => {
        const packed = compress(data, format, level);
        const ref = referenceDecode(packed, format);
        assert.ok("ok" in ref, `reference rejects our stream: ${"err" in ref && ref.err}`);
        assert.ok(equalBytes(ref.ok, data));
        assert.equal(ref.consumed, packed.length);
      },
    ),
    { seed, numRuns: 80 },
  );
});

/** Decompresses with every input split point and output space given (small inputs). */
function decodeSplit(packed: Uint8Array, format: ZipFormat, cut: number, space: number) {
  const s = new DecompressStream(format);
  const out: Uint8Array[] = [];
  let pos = 0;
  for (let guard = 0; guard < 100_000; guard++) {
    const end = pos < cut ? cut : packed.length;
    const r = s.push(packed.subarray(pos, end), space, end === packed.length);
    assert.ok(r.produced <= space);
    pos += r.consumed;
    out.push(r.output);
    if (r.status === ZipStatus.decompressEnd) return { bytes: concat(out), consumed: pos };
    assert.ok(r.status === ZipStatus.ok || r.status === ZipStatus.destInsufficient, `${r.status}`);
  }
  throw new Error("decoder made no progress");
}

/** Compresses with one input split point and a fixed output space per call. */
function encodeSplit(
  data: Uint8Array,
  format: ZipFormat,
  level: number,
  cut: number,
  space: number,
) {
  const s = new CompressStream(format, level);
  const out: Uint8Array[] = [];
  let pos = 0;
  for (let guard = 0; guard < 100_000; guard++) {
    const end = pos < cut ? cut : data.length;
    const flush: FlushMode = end === data.length ? "finish" : "none";
    const r = s.push(data.subarray(pos, end), space, flush);
    assert.ok(r.produced <= space);
    pos += r.consumed;
    out.push(r.output);
    if (flush === "finish" && r.status !== ZipStatus.destInsufficient) {
      assert.ok(r.status === ZipStatus.ok || r.status === ZipStatus.negativeCompression);
      return concat(out);
    }
  }
  throw new Error("encoder made no progress");
}

Deno.test("zip core: resumability — every split point gives identical bytes", async (t) => {
  const data = textCorpus(seed, 700);
  for (const format of formats) {
    await t.step(format, () => {
      for (const level of [0, 1, 6]) {
        const whole = compress(data, format, level);
        for (let cut = 0; cut <= data.length; cut += 7) {
          assert.ok(
            equalBytes(encodeSplit(data, format, level, cut, 1 << 20), whole),
            `cut ${cut}`,
          );
        }
        for (const space of [1, 2, 3, 5, 64]) {
          assert.ok(equalBytes(encodeSplit(data, format, level, data.length, space), whole));
        }
        for (let cut = 0; cut <= whole.length; cut++) {
          const r = decodeSplit(whole, format, cut, 1 << 20);
          assert.ok(equalBytes(r.bytes, data), `input cut ${cut}`);
          assert.equal(r.consumed, whole.length);
        }
        for (const space of [1, 2, 7, 100]) {
          assert.ok(equalBytes(decodeSplit(whole, format, 0, space).bytes, data));
        }
      }
    });
  }
});

Deno.test("zip core: resumability over random chunkings of large inputs (fast-check)", () => {
  const data = concat([textCorpus(seed, 150_000), jsonCorpus(seed, 60_000)]);
  const whole = compress(data, "gzip", 6);
  fc.assert(
    fc.property(
      fc.array(fc.integer({ min: 1, max: 40_000 }), { minLength: 1, maxLength: 8 }),
      fc.integer({ min: 1, max: 50_000 }),
      (chunks, space) => {
        const s = new CompressStream("gzip", 6);
        const out: Uint8Array[] = [];
        let pos = 0, i = 0;
        for (let guard = 0; guard < 100_000; guard++) {
          const end = Math.min(data.length, pos + chunks[i++ % chunks.length]);
          const last = end === data.length;
          const r = s.push(data.subarray(pos, end), space, last ? "finish" : "none");
          pos += r.consumed;
          out.push(r.output);
          if (last && r.status !== ZipStatus.destInsufficient) break;
        }
        assert.ok(equalBytes(concat(out), whole));
      },
    ),
    { seed, numRuns: 6 },
  );
});

Deno.test("zip core: a zip bomb stops at the output space with 0x0e", () => {
  const bomb = compress(new Uint8Array(20_000_000), "zlib", 9);
  assert.ok(bomb.length < 40_000);
  const s = new DecompressStream("zlib");
  const r = s.push(bomb, 1_000_000, true);
  assert.equal(r.status, ZipStatus.destInsufficient);
  assert.equal(r.produced, 1_000_000);
  assert.ok(r.consumed < bomb.length);
  const more = s.push(bomb.subarray(r.consumed), 19_000_000, true);
  assert.equal(more.status, ZipStatus.decompressEnd);
  assert.ok(s.ended && !new DecompressStream("zlib").ended);
  assert.equal(r.produced + more.produced, 20_000_000);
});

Deno.test("zip core: status codes of compression calls", () => {
  const rnd = prng(seed);
  const random = Uint8Array.from({ length: 5000 }, () => rnd() * 256);
  const incompressible = new CompressStream("zlib", 6).push(random, 1e6, "finish");
  assert.equal(incompressible.status, ZipStatus.negativeCompression);
  const text = new CompressStream("gzip", 6).push(textCorpus(seed, 5000), 1e6, "finish");
  assert.equal(text.status, ZipStatus.ok);
  const short = new CompressStream("gzip", 6).push(textCorpus(seed, 5000), 10, "finish");
  assert.equal(short.status, ZipStatus.destInsufficient);
  assert.equal(short.produced, 10);
  const partial = new CompressStream("deflate", 6).push(textCorpus(seed, 5000), 1e6, "none");
  assert.equal(partial.status, ZipStatus.ok);
  assert.equal(partial.consumed, 5000);
  assert.throws(() => new CompressStream("zlib", 10), RangeError);
});

Deno.test("zip core: sync and full flush points are decodable prefixes", () => {
  const a = textCorpus(seed, 9000), b = jsonCorpus(seed, 7000), c = textCorpus(seed + 5, 3000);
  for (const format of formats) {
    const s = new CompressStream(format, 6);
    const p1 = s.push(a, 1e6, "sync").output;
    const p2 = s.push(b, 1e6, "full").output;
    const repeat = s.push(new Uint8Array(0), 1e6, "full").output;
    assert.equal(repeat.length, 0, "a repeated flush without new input adds nothing");
    const p3 = s.push(c, 1e6, "finish").output;
    const prefix = new DecompressStream(format).push(p1, 1e6, false);
    assert.equal(prefix.status, ZipStatus.ok);
    assert.ok(equalBytes(prefix.output, a));
    assert.ok(equalBytes(decompress(concat([p1, p2, p3]), format), concat([a, b, c])));
    if (format === "deflate") {
      // After a full flush no distance reaches back: the rest decodes on its own.
      assert.ok(equalBytes(decompress(p3, "deflate"), c));
    }
  }
});

Deno.test("zip core: framing details", () => {
  const data = textCorpus(seed, 1000);
  const z = compress(data, "zlib", 6);
  assert.equal(((z[0] << 8) | z[1]) % 31, 0);
  assert.equal(z[0], 0x78);
  const g = compress(data, "gzip", 6);
  assert.deepEqual([g[0], g[1], g[2], g[3]], [0x1f, 0x8b, 8, 0]);
  const isize = g[g.length - 4] | (g[g.length - 3] << 8) | (g[g.length - 2] << 16);
  assert.equal(isize, 1000);
  // Multi-member gzip decodes to the concatenation; zero padding after it is ignored.
  const two = concat([g, compress(Uint8Array.of(1, 2, 3), "gzip", 1), new Uint8Array(4)]);
  assert.ok(equalBytes(decompress(two, "gzip"), concat([data, Uint8Array.of(1, 2, 3)])));
});

Deno.test("zip core: checksums match the spec's bitwise definitions, also incrementally", () => {
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 9000 }), fc.nat(), (data, at) => {
      const cut = data.length === 0 ? 0 : at % data.length;
      assert.equal(crc32(data), crc32Reference(data));
      assert.equal(adler32(data), adler32Reference(data));
      assert.equal(crc32(data.subarray(cut), crc32(data.subarray(0, cut))), crc32Reference(data));
      assert.equal(adler32(data, adler32(data, 1, 0, cut), cut), adler32Reference(data));
    }),
    { seed, numRuns: 100 },
  );
});

Deno.test("zip core: tryDecompress returns typed errors", () => {
  const packed = compress(textCorpus(seed, 3000), "gzip", 6);
  const bad = packed.slice();
  bad[bad.length - 8] ^= 0x40;
  const r = tryDecompress(bad, "gzip");
  assert.ok("err" in r && r.err.code === "checksum-mismatch");
  assert.equal("err" in r && r.err.status, ZipStatus.checksumError);
  const ok = tryDecompress(concat([packed, new Uint8Array(3)]), "gzip");
  assert.ok("ok" in ok && ok.consumed === packed.length + 3 && ok.trailingZeros === 3);
  const raw = tryDecompress(Uint8Array.of(0x07), "deflate");
  assert.ok("err" in raw && raw.err.code === "bad-block-type");
});

/** Issue 8 defect 2: 64 incompressible bytes, a flush, one more byte (0x48). */
const flushAfterIncompressible = Uint8Array.from(
  "419627c4f995d99cbf0f0a3123af7dc4e2d2e2e3e99350282c7542b34de4f7efee56e1ca31ad9969b53b7d101b7adeb4e3617a8328e09f4b85fa28873875498f48"
    .match(/../g)!,
  (h) => parseInt(h, 16),
);

Deno.test("zip core: a flush after incompressible data keeps the next byte (issue 8 defect 2)", () => {
  const data = flushAfterIncompressible;
  assert.equal(data.length, 65);
  for (const format of formats) {
    for (const mode of ["sync", "full"] as FlushMode[]) {
      for (const level of allLevels) {
        const s = new CompressStream(format, level);
        const packed = concat([
          s.push(data.subarray(0, 64), 1e6, mode).output,
          s.push(data.subarray(64), 1e6, "finish").output,
        ]);
        const what = `${format} level ${level} ${mode} flush`;
        assert.ok(equalBytes(nodeInflate(packed, format), data), `node:zlib, ${what}`);
        assert.ok(equalBytes(decompress(packed, format), data), `ours, ${what}`);
      }
    }
  }
});

Deno.test("zip core: a full flush right after a sync flush still forgets the history", () => {
  const a = textCorpus(seed, 3000);
  for (const format of formats) {
    const s = new CompressStream(format, 6);
    const head = concat([
      s.push(a, 1e6, "sync").output,
      s.push(a.subarray(0, 0), 1e6, "full").output,
    ]);
    const tail = s.push(a, 1e6, "finish").output;
    assert.ok(equalBytes(nodeInflate(concat([head, tail]), format), concat([a, a])), format);
    const trailer = format === "zlib" ? 4 : format === "gzip" ? 8 : 0;
    const alone = tail.subarray(0, tail.length - trailer);
    assert.ok(equalBytes(nodeInflate(alone, "deflate"), a), `${format}: no distance reaches back`);
  }
});

Deno.test("zip core: what may follow a gzip member (issue 8 defect 4)", async (t) => {
  const a = textCorpus(seed, 3000), b = jsonCorpus(seed, 2000);
  const ga = compress(a, "gzip", 6), gb = compress(b, "gzip", 1);
  const zeros = new Uint8Array(5);
  await t.step("concatenated members all decode, also as node:zlib decodes them", () => {
    const both = concat([ga, gb, ga]);
    assert.ok(equalBytes(decompress(both, "gzip"), concat([a, b, a])));
    assert.ok(equalBytes(nodeInflate(both, "gzip"), concat([a, b, a])));
  });
  await t.step("trailing zeros are consumed and counted", () => {
    const r = tryDecompress(concat([ga, gb, zeros]), "gzip");
    assert.ok("ok" in r && equalBytes(r.ok, concat([a, b])));
    assert.equal(r.consumed, ga.length + gb.length + zeros.length);
    assert.equal(r.trailingZeros, zeros.length);
  });
  await t.step("a member after zero padding is trailing data: an error, not lost", () => {
    const r = tryDecompress(concat([ga, Uint8Array.of(0), gb]), "gzip");
    assert.ok("err" in r && r.err.code === "bad-header", "member + 00 + member");
  });
  await t.step("other trailing bytes are an error", () => {
    for (const tail of [[1, 2], [0, 0, 7], [0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 3, 0xff]]) {
      const r = tryDecompress(concat([ga, Uint8Array.from(tail)]), "gzip");
      assert.ok("err" in r, `member + ${tail}`);
    }
    const cut = tryDecompress(concat([ga, Uint8Array.of(0x1f)]), "gzip");
    assert.ok("err" in cut && cut.err.code === "truncated");
  });
  await t.step("streamed byte by byte, zeros and garbage in later calls", () => {
    for (const [tail, bad] of [[zeros, false], [Uint8Array.of(0, 0, 9, 0), true]] as const) {
      const data = concat([ga, tail]);
      const s = new DecompressStream("gzip", { trailing: "zeros" });
      const out: Uint8Array[] = [];
      let status = 0;
      for (let i = 0; i < data.length && !isZipError(status); i++) {
        const r = s.push(data.subarray(i, i + 1), 1 << 20, i === data.length - 1);
        status = r.status;
        assert.equal(r.consumed, isZipError(status) ? 0 : 1);
        out.push(r.output);
      }
      if (bad) assert.equal(status, ZipStatus.headerError);
      else {
        assert.equal(status, ZipStatus.decompressEnd);
        assert.equal(s.trailingZeros, tail.length);
        assert.ok(equalBytes(concat(out), a));
      }
    }
  });
  await t.step("the engine's rule (default): the stream ends at the zero byte, unread", () => {
    const data = concat([ga, Uint8Array.of(0), gb]);
    const r = new DecompressStream("gzip").push(data, 1 << 20, true);
    assert.equal(r.status, ZipStatus.decompressEnd);
    assert.equal(r.consumed, ga.length);
    assert.ok(equalBytes(r.output, a));
  });
});

Deno.test("zip core: pushInto writes into the caller's reused buffer, same bytes as push", () => {
  const data = concat([textCorpus(seed, 50_000), jsonCorpus(seed, 30_000)]);
  for (const format of formats) {
    const whole = compress(data, format, 6);
    for (const size of [1, 7, 4096, 300_000]) {
      const dest = new Uint8Array(size);
      const c = new CompressStream(format, 6);
      const packed: Uint8Array[] = [];
      for (let pos = 0;;) {
        const r = c.pushInto(data.subarray(pos), dest, "finish");
        assert.ok(r.output.buffer === dest.buffer && r.produced <= size);
        packed.push(r.output.slice());
        pos += r.consumed;
        if (r.status !== ZipStatus.destInsufficient) break;
      }
      assert.ok(equalBytes(concat(packed), whole), `compress, ${format}, ${size}`);
      const d = new DecompressStream(format);
      const out: Uint8Array[] = [];
      for (let pos = 0;;) {
        const r = d.pushInto(whole.subarray(pos), dest, true);
        assert.ok(r.output.buffer === dest.buffer && r.produced <= size);
        out.push(r.output.slice());
        pos += r.consumed;
        if (r.status !== ZipStatus.destInsufficient) break;
      }
      assert.ok(equalBytes(concat(out), data), `decompress, ${format}, ${size}`);
    }
  }
});
