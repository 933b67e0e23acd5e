/**
 * The Informal Trace Format (ITF, used by Quint and Apalache) for warpspec values:
 * integers are `{"#bigint": "n"}`, Maps `{"#map": [[k, v], ...]}`, Sets `{"#set": [...]}`,
 * arrays are lists, plain objects are records, and null (an absent value) is the variant
 * `{"tag": "None", "value": {"#tup": []}}`.
 *
 * @module
 */

/** A JSON value. */
export type Json = null | boolean | number | string | Json[] | { [key: string]: Json };

/** A problem in ITF input: which JSON path, what is wrong. */
export class ItfError extends Error {
  /** JSON path of the offending value, e.g. `$.states[3].type1`. */
  readonly path: string;
  /** Builds the error. */
  constructor(path: string, message: string) {
    super(`${path}: ${message}`);
    this.path = path;
  }
}

const NONE = { tag: "None", value: { "#tup": [] } };

/** Encodes a warpspec value as ITF JSON. */
export function toItf(value: unknown): Json {
  if (value === null || value === undefined) return NONE;
  switch (typeof value) {
    case "boolean":
    case "string":
      return value;
    case "bigint":
      return { "#bigint": value.toString() };
    case "number":
      if (!Number.isSafeInteger(value)) {
        throw new TypeError(`ITF has no non-integer numbers: ${value}`);
      }
      return { "#bigint": String(value) };
  }
  if (Array.isArray(value)) return value.map(toItf);
  if (value instanceof Map) return { "#map": [...value].map(([k, v]) => [toItf(k), toItf(v)]) };
  if (value instanceof Set) return { "#set": [...value].map(toItf) };
  if (typeof value === "object") {
    const out: { [key: string]: Json } = {};
    for (const [k, v] of Object.entries(value)) if (v !== undefined) out[k] = toItf(v);
    return out;
  }
  throw new TypeError(`cannot encode ${typeof value} as ITF`);
}

/** How {@link fromItf} decodes. */
export interface DecodeOptions {
  /**
   * True (the default): a `#bigint` beyond ±(2^53 − 1) decodes to a BigInt. False: it is an
   * {@link ItfError}, for data whose integers are JavaScript numbers (warpspec's states and
   * commands).
   */
  readonly bigints?: boolean;
  /**
   * An earlier ITF value and its decoding: every part of `json` equal to the corresponding part
   * of `previous.json` (same field, index or Map key position) decodes to the very object
   * decoded before. Consecutive states of a trace differ in little, so they share most of
   * their objects, which is cheaper to build and lets comparisons stop at shared parts.
   */
  readonly previous?: { readonly json: unknown; readonly value: unknown };
}

const BEYOND = "is beyond ±(2^53 − 1), the range of warpspec's integers";

/** Deepest nesting decoded (path segments); deeper input is an error, not a stack overflow. */
export const MAX_NESTING = 1000;

/** Equality of plain JSON values (what JSON.parse returns). */
function jsonEqual(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (typeof a !== "object" || typeof b !== "object" || a === null || b === null) return false;
  if (Array.isArray(a)) {
    if (!Array.isArray(b) || a.length !== b.length) return false;
    for (let i = 0; i < a.length; i++) if (!jsonEqual(a[i], b[i])) return false;
    return true;
  }
  if (Array.isArray(b)) return false;
  const ra = a as Record<string, unknown>;
  const rb = b as Record<string, unknown>;
  let n = 0;
  for (const k in ra) {
    if (!jsonEqual(ra[k], rb[k])) return false;
    n++;
  }
  for (const _ in rb) n--;
  return n === 0;
}

/**
 * Decodes ITF JSON into warpspec values; `path` names where `json` sits, for errors. A plain
 * JSON number must be a safe integer: a larger one has already lost digits in any JSON parser.
 */
export function fromItf(json: unknown, path = "$", options: DecodeOptions = {}): unknown {
  const bigints = options.bigints ?? true;
  // Where the value being decoded sits below `path`: record fields and list indexes, turned
  // into a JSON path only for an error.
  const at: (string | number)[] = [];
  const fail = (message: string, ...more: (string | number)[]): never => {
    const where = [...at, ...more].map((x) => typeof x === "number" ? `[${x}]` : `.${x}`);
    const shown = where.length > 20 ? [...where.slice(0, 20), "…"] : where;
    throw new ItfError(path + shown.join(""), message);
  };
  const decode = (json: unknown, pj?: unknown, pv?: unknown): unknown => {
    if (typeof json === "boolean" || typeof json === "string") return json;
    if (typeof json === "number") {
      if (Number.isSafeInteger(json)) return json;
      return fail(
        Number.isInteger(json)
          ? `number ${json} ${BEYOND} (JSON numbers lose digits there; write {"#bigint": "…"})`
          : `number ${json} is not an integer`,
      );
    }
    if (json === null) return fail("null is not an ITF value");
    if (typeof json !== "object") return fail(`unexpected ${typeof json}`);
    if (at.length > MAX_NESTING) return fail(`nested more than ${MAX_NESTING} levels deep`);
    if (pj !== undefined && pv !== undefined && jsonEqual(json, pj)) return pv;
    if (Array.isArray(json)) return list(json, pj, pv);
    const rec = json as Record<string, unknown>;
    const prev = typeof pj === "object" && pj !== null ? pj as Record<string, unknown> : {};
    if ("#bigint" in rec) {
      const s = rec["#bigint"];
      if (typeof s !== "string" || !/^-?\d+$/.test(s)) {
        return fail("expected a string of decimal digits", "#bigint");
      }
      if (s.length < 16) return Number(s) || 0; // 15 digits are safe; "-0" is 0
      const n = BigInt(s);
      if (n >= BigInt(Number.MIN_SAFE_INTEGER) && n <= BigInt(Number.MAX_SAFE_INTEGER)) {
        return Number(n);
      }
      return bigints ? n : fail(`${s} ${BEYOND}`, "#bigint");
    }
    if ("#map" in rec) {
      const entries = rec["#map"];
      if (!Array.isArray(entries)) return fail("expected a list of pairs", "#map");
      const before = Array.isArray(prev["#map"]) && pv instanceof Map ? prev["#map"] : [];
      const out = new Map<unknown, unknown>();
      at.push("#map", 0);
      for (let i = 0; i < entries.length; i++) {
        at[at.length - 1] = i;
        const e = entries[i];
        if (!Array.isArray(e) || e.length !== 2) return fail("expected a [key, value] pair");
        at.push(0);
        const k = decode(e[0]);
        at[at.length - 1] = 1;
        const old = before[i];
        const same = typeof k !== "object" && Array.isArray(old) && jsonEqual(e[0], old[0]);
        out.set(
          k,
          same ? decode(e[1], old[1], (pv as Map<unknown, unknown>).get(k)) : decode(e[1]),
        );
        at.pop();
      }
      at.length -= 2;
      return out;
    }
    if ("#set" in rec) {
      const items = rec["#set"];
      if (!Array.isArray(items)) return fail("expected a list", "#set");
      at.push("#set");
      const out = new Set(list(items));
      at.pop();
      return out;
    }
    if ("#tup" in rec) {
      const items = rec["#tup"];
      if (!Array.isArray(items)) return fail("expected a list", "#tup");
      at.push("#tup");
      const out = list(items, prev["#tup"], pv);
      at.pop();
      return out;
    }
    if (rec.tag === "None" && Object.keys(rec).length === 2 && "value" in rec) return null;
    const old = typeof pv === "object" && pv !== null ? pv as Record<string, unknown> : {};
    const out: Record<string, unknown> = {};
    for (const k in rec) {
      at.push(k);
      out[k] = decode(rec[k], prev[k], old[k]);
      at.pop();
    }
    return out;
  };
  const list = (items: unknown[], pj?: unknown, pv?: unknown): unknown[] => {
    const pl = Array.isArray(pj) && Array.isArray(pv) ? pj : [];
    const out = new Array(items.length);
    at.push(0);
    for (let i = 0; i < items.length; i++) {
      at[at.length - 1] = i;
      out[i] = decode(items[i], pl[i], (pv as unknown[] | undefined)?.[i]);
    }
    at.pop();
    return out;
  };
  const prev = options.previous;
  return decode(json, prev?.json, prev?.value);
}
