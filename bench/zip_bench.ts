/**
 * `deno bench` for the DEFLATE core against fflate, pako and node:zlib in the same run, on
 * the corpora of bench/zip_corpora.ts. Groups: `<corpus> compress` (ours and node:zlib at
 * levels 1, 6 and 9; fflate and pako at 6) and `<corpus> decompress` (everyone inflates the
 * same pako level-6 stream). bench/zip_ratio.ts prints the ratios against node:zlib.
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
  for (const level of [1, 9]) {
    Deno.bench(`ours level ${level}`, { group, ...runs }, () => {
      compress(data, "deflate", level);
    });
    Deno.bench(`node:zlib level ${level}`, { group, ...runs }, () => {
      zlib.deflateRawSync(data, { level });
    });
  }
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
