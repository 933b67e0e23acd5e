/**
 * `deno bench` for the DEFLATE core against fflate, pako and node:zlib in the same run, on
 * the corpora of bench/zip_corpora.ts. Groups: `<corpus> compress` (level 6 anchors) and
 * `<corpus> decompress` (everyone inflates the same pako level-6 stream).
 */

import zlib from "node:zlib";
import * as fflate from "fflate";
import pako from "pako";
import { compress, decompress } from "../impl/zip/mod.ts";
import { zipCorpora } from "./zip_corpora.ts";

const runs = { n: 5, warmup: 1 };

for (const [name, data] of zipCorpora()) {
  const group = `${name} compress (${(data.length / 2 ** 20).toFixed(1)} MiB)`;
  Deno.bench(`ours level 6`, { group, baseline: true, ...runs }, () => {
    compress(data, "deflate", 6);
  });
  Deno.bench(`ours level 1`, { group, ...runs }, () => {
    compress(data, "deflate", 1);
  });
  Deno.bench(`fflate level 6`, { group, ...runs }, () => {
    fflate.deflateSync(data, { level: 6 });
  });
  Deno.bench(`pako level 6`, { group, ...runs }, () => {
    pako.deflateRaw(data, { level: 6 });
  });
  Deno.bench(`node:zlib level 6`, { group, ...runs }, () => {
    zlib.deflateRawSync(data, { level: 6 });
  });

  const packed = pako.deflateRaw(data, { level: 6 });
  const dgroup = `${name} decompress`;
  Deno.bench(`ours`, { group: dgroup, baseline: true, ...runs }, () => {
    decompress(packed, "deflate");
  });
  Deno.bench(`fflate`, { group: dgroup, ...runs }, () => {
    fflate.inflateSync(packed);
  });
  Deno.bench(`pako`, { group: dgroup, ...runs }, () => {
    pako.inflateRaw(packed);
  });
  Deno.bench(`node:zlib`, { group: dgroup, ...runs }, () => {
    zlib.inflateRawSync(packed);
  });
}
