/**
 * Streams 64 MiB through the DEFLATE core with bounded chunks, for measuring peak memory:
 * `deno run -A bench/zip_rss.ts compress FILE` writes a gzip stream of 64 MiB of generated
 * input (words, with every fourth MiB random bytes) to FILE, feeding 1 MiB per call into
 * one reused 256 KiB output buffer (`pushInto`); `… decompress FILE` reads it back in 256 KiB
 * chunks into one reused 256 KiB buffer, discarding the output (the gzip CRC-32 and ISIZE
 * check it). With `push` instead, each call returns a new buffer, and V8 collects those only
 * after about 64 MB of them. Run each under
 * `/usr/bin/time -v` and read "Maximum resident set size".
 */

import { CompressStream, DecompressStream, type StreamResult } from "../impl/zip/mod.ts";
import { prng } from "../impl/sched.ts";

const total = 64 << 20, chunk = 1 << 20, budget = 256 << 10;
const [mode, path] = Deno.args;
const words = new TextEncoder().encode(
  "the queue device memory kernel page table domain group mapping interrupt doorbell " +
    "compress stream window buffer engine request status completion submission accelerator ",
).reduce((list: number[][], b) => {
  if (list.length === 0 || list[list.length - 1].at(-1) === 32) list.push([]);
  list[list.length - 1].push(b);
  return list;
}, []);
const input = new Uint8Array(chunk);
const dest = new Uint8Array(budget);

/**
 * The i-th MiB of input, generated into one reused buffer (so the generator holds no
 * memory of its own): words drawn with a skewed distribution, every fourth MiB random.
 */
function inputChunk(i: number): Uint8Array {
  const rnd = prng(i + 1);
  if (i % 4 === 3) {
    for (let k = 0; k < chunk; k++) input[k] = rnd() * 256;
    return input;
  }
  for (let k = 0; k < chunk;) {
    const w = words[Math.floor(rnd() * rnd() * words.length)];
    for (let j = 0; j < w.length && k < chunk; j++) input[k++] = w[j];
  }
  return input;
}

/** Writes all of `bytes` to `file`. */
function writeAll(file: Deno.FsFile, bytes: Uint8Array): void {
  for (let at = 0; at < bytes.length;) at += file.writeSync(bytes.subarray(at));
}

if (mode === "compress") {
  const file = Deno.openSync(path, { write: true, create: true, truncate: true });
  const s = new CompressStream("gzip", 6);
  let out = 0;
  for (let i = 0; i < total / chunk; i++) {
    let data = inputChunk(i);
    const last = i === total / chunk - 1;
    for (;;) {
      const r: StreamResult = s.pushInto(data, dest, last ? "finish" : "none");
      writeAll(file, r.output);
      out += r.produced;
      data = data.subarray(r.consumed);
      if (r.status !== 0x0e && data.length === 0) break;
    }
  }
  file.close();
  console.log(`compressed ${total} bytes to ${out}`);
} else if (mode === "decompress") {
  const file = Deno.openSync(path, { read: true });
  const s = new DecompressStream("gzip", { trailing: "zeros" });
  const buf = new Uint8Array(budget);
  let produced = 0, status = 0;
  for (let eof = false; !eof;) {
    const n = file.readSync(buf);
    eof = n === null;
    let data = buf.subarray(0, n ?? 0);
    for (;;) {
      const r = s.pushInto(data, dest, eof);
      if (r.error) throw r.error;
      produced += r.produced;
      status = r.status;
      data = data.subarray(r.consumed);
      if (r.status !== 0x0e && data.length === 0) break;
    }
  }
  file.close();
  console.log(`decompressed to ${produced} bytes, status 0x${status.toString(16)}`);
} else {
  console.error("usage: zip_rss.ts compress|decompress FILE");
  Deno.exit(2);
}
