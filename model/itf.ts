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

/** How {@link fromItf} treats integers beyond ±(2^53 − 1). */
export interface DecodeOptions {
  /**
   * True (the default): a `#bigint` that large decodes to a BigInt. False: it is an
   * {@link ItfError}, for data whose integers are JavaScript numbers (warpspec's states and
   * commands).
   */
  readonly bigints?: boolean;
}

const BEYOND = "is beyond ±(2^53 − 1), the range of warpspec's integers";

/**
 * Decodes ITF JSON into warpspec values; `path` names where `json` sits, for errors. A plain
 * JSON number must be a safe integer: a larger one has already lost digits in any JSON parser.
 */
export function fromItf(json: unknown, path = "$", options: DecodeOptions = {}): unknown {
  const bigints = options.bigints ?? true;
  const decode = (json: unknown, path: string): unknown => {
    if (typeof json === "boolean" || typeof json === "string") return json;
    if (typeof json === "number") {
      if (Number.isSafeInteger(json)) return json;
      throw new ItfError(
        path,
        Number.isInteger(json)
          ? `number ${json} ${BEYOND} (JSON numbers lose digits there; write {"#bigint": "…"})`
          : `number ${json} is not an integer`,
      );
    }
    if (json === null) throw new ItfError(path, "null is not an ITF value");
    if (Array.isArray(json)) return json.map((x, i) => decode(x, `${path}[${i}]`));
    if (typeof json !== "object") throw new ItfError(path, `unexpected ${typeof json}`);
    const rec = json as Record<string, unknown>;
    if ("#bigint" in rec) {
      const s = rec["#bigint"];
      if (typeof s !== "string" || !/^-?\d+$/.test(s)) {
        throw new ItfError(`${path}.#bigint`, "expected a string of decimal digits");
      }
      const n = BigInt(s);
      if (n >= BigInt(Number.MIN_SAFE_INTEGER) && n <= BigInt(Number.MAX_SAFE_INTEGER)) {
        return Number(n);
      }
      if (!bigints) throw new ItfError(`${path}.#bigint`, `${s} ${BEYOND}`);
      return n;
    }
    if ("#map" in rec) {
      const entries = rec["#map"];
      if (!Array.isArray(entries)) throw new ItfError(`${path}.#map`, "expected a list of pairs");
      return new Map(entries.map((e, i) => {
        const p = `${path}.#map[${i}]`;
        if (!Array.isArray(e) || e.length !== 2) {
          throw new ItfError(p, "expected a [key, value] pair");
        }
        return [decode(e[0], `${p}[0]`), decode(e[1], `${p}[1]`)];
      }));
    }
    if ("#set" in rec) {
      const items = rec["#set"];
      if (!Array.isArray(items)) throw new ItfError(`${path}.#set`, "expected a list");
      return new Set(items.map((x, i) => decode(x, `${path}.#set[${i}]`)));
    }
    if ("#tup" in rec) {
      const items = rec["#tup"];
      if (!Array.isArray(items)) throw new ItfError(`${path}.#tup`, "expected a list");
      return items.map((x, i) => decode(x, `${path}.#tup[${i}]`));
    }
    if (rec.tag === "None" && Object.keys(rec).length === 2 && "value" in rec) return null;
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(rec)) out[k] = decode(v, `${path}.${k}`);
    return out;
  };
  return decode(json, path);
}
