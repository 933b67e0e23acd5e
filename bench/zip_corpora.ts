/**
 * The corpora the ZIP benchmarks run on, each a few MB, all deterministic:
 *
 * - `mail`: the seed mail archives in /work/shared/seeds concatenated (real English prose
 *   and C source in patch form, about 2 MB); skipped when the directory is absent;
 * - `text`: 4 MB of generated text with light markup (model/zip_fuzz.ts `textCorpus`, seed 1);
 * - `json`: 4 MB of generated JSON records (`jsonCorpus`, seed 1);
 * - `binary`: 4 MB of an executable: the Deno binary installed by `npm ci`
 *   (node_modules/@deno/<platform>/deno, from 16 MB in, i.e. machine code), or /usr/bin/node;
 * - `source tar`: the first 6 MiB of a GNU tar (sorted names, fixed owner and times) of this
 *   repository's TypeScript (impl, spec, model, properties, bench) and npm's JavaScript tree
 *   (/usr/lib/node_modules/npm, when present); skipped without `tar`;
 * - `elf`: 6 MiB of ELF executables from /usr/bin (sorted by name, each under 2 MiB, whole
 *   files concatenated).
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

function sourceTar(): Uint8Array | undefined {
  const trees = ["impl", "spec", "model", "properties", "bench"];
  const npm = "/usr/lib/node_modules/npm";
  const args = ["--sort=name", "--owner=0", "--group=0", "--numeric-owner", "--mtime=@0"];
  args.push("-cf", "-", ...trees);
  if (readIfPresent(`${npm}/package.json`)) args.push("-C", "/usr/lib/node_modules", "npm");
  try {
    const out = new Deno.Command("tar", { args, stdout: "piped", stderr: "null" }).outputSync();
    return out.success ? out.stdout.slice(0, 6 << 20) : undefined;
  } catch {
    return undefined;
  }
}

function elfSet(): Uint8Array | undefined {
  const dir = "/usr/bin", limit = 6 << 20;
  const names = (() => {
    try {
      return [...Deno.readDirSync(dir)].filter((e) => e.isFile).map((e) => e.name).sort();
    } catch {
      return [];
    }
  })();
  const parts: Uint8Array[] = [];
  let total = 0;
  for (const name of names) {
    if (total >= limit) break;
    const bytes = readIfPresent(`${dir}/${name}`);
    if (!bytes || bytes.length >= 2 << 20) continue;
    if (bytes[0] !== 0x7f || bytes[1] !== 0x45 || bytes[2] !== 0x4c || bytes[3] !== 0x46) continue;
    parts.push(bytes);
    total += bytes.length;
  }
  return total >= limit ? concat(parts).slice(0, limit) : undefined;
}

/** The benchmark corpora by name (absent sources are left out). */
export function zipCorpora(): [string, Uint8Array][] {
  const out: [string, Uint8Array | undefined][] = [
    ["mail", mail()],
    ["text", textCorpus(1, size)],
    ["json", jsonCorpus(1, size)],
    ["binary", binary()],
    ["source tar", sourceTar()],
    ["elf", elfSet()],
  ];
  return out.filter((e): e is [string, Uint8Array] => e[1] !== undefined);
}
