/**
 * The corpora the ZIP benchmarks run on, each a few MB, all deterministic:
 *
 * - `mail`: the seed mail archives in /work/shared/seeds concatenated (real English prose
 *   and C source in patch form, about 2 MB); skipped when the directory is absent;
 * - `text`: 4 MB of generated text with light markup (model/zip_fuzz.ts `textCorpus`, seed 1);
 * - `json`: 4 MB of generated JSON records (`jsonCorpus`, seed 1);
 * - `binary`: 4 MB of an executable: the Deno binary installed by `npm ci`
 *   (node_modules/@deno/<platform>/deno, from 16 MB in, i.e. machine code), or /usr/bin/node.
 *
 * @module
 */

import { concat, jsonCorpus, textCorpus } from "../model/zip_fuzz.ts";

const size = 4 << 20;

function readIfPresent(path: string): Uint8Array | undefined {
  try {
    return Deno.readFileSync(path);
  } catch {
    return undefined;
  }
}

function mail(): Uint8Array | undefined {
  const dir = "/work/shared/seeds";
  const files = (() => {
    try {
      return [...Deno.readDirSync(dir)].map((e) => e.name).filter((n) => n.endsWith(".txt"));
    } catch {
      return [];
    }
  })().sort();
  if (files.length === 0) return undefined;
  return concat(files.map((f) => Deno.readFileSync(`${dir}/${f}`)));
}

function binary(): Uint8Array | undefined {
  const candidates: string[] = [];
  try {
    for (const e of Deno.readDirSync("node_modules/@deno")) {
      candidates.push(`node_modules/@deno/${e.name}/deno`);
    }
  } catch {
    // no local Deno package: fall back to the system node binary
  }
  candidates.push("/usr/bin/node");
  for (const path of candidates) {
    const bytes = readIfPresent(path);
    if (bytes && bytes.length >= 16 * 1024 * 1024 + size) {
      return bytes.slice(16 * 1024 * 1024, 16 * 1024 * 1024 + size);
    }
  }
  return undefined;
}

/** The benchmark corpora by name (absent sources are left out). */
export function zipCorpora(): [string, Uint8Array][] {
  const out: [string, Uint8Array | undefined][] = [
    ["mail", mail()],
    ["text", textCorpus(1, size)],
    ["json", jsonCorpus(1, size)],
    ["binary", binary()],
  ];
  return out.filter((e): e is [string, Uint8Array] => e[1] !== undefined);
}
