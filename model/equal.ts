/**
 * Structural equality over spec-shaped data (records, arrays, Maps, Sets, primitives), with
 * the JSON-path of the first difference for reports.
 *
 * @module
 */

/** Where two values first differ, and what each side holds there (undefined: absent). */
export interface Difference {
  /** JSON-path, like `$.iommu.groups[1].sharedRef`. */
  readonly path: string;
  /** The first value's part at `path`. */
  readonly a: unknown;
  /** The second value's part at `path`. */
  readonly b: unknown;
  /**
   * When the difference is a key one side lacks: every key (shown) of the Map or record
   * holding `path` that only the first side has.
   */
  readonly missing?: readonly string[];
  /** Likewise the keys only the second side has. */
  readonly extra?: readonly string[];
}

/**
 * Deep structural equality (the fast walk: no paths are built, nothing is allocated). With
 * `proven`, pairs of objects found equal are remembered there and not walked again: for
 * immutable data that keeps sharing objects from one version to the next (spec states, trace
 * states decoded against the state before), comparing version after version then costs what
 * changed, not the whole.
 */
export function deepEqual(a: unknown, b: unknown, proven?: WeakMap<object, object>): boolean {
  if (Object.is(a, b)) return true;
  if (typeof a !== "object" || typeof b !== "object" || a === null || b === null) return false;
  if (proven === undefined) return sameObjects(a, b);
  if (proven.get(a) === b) return true;
  if (!sameObjects(a, b, proven)) return false;
  proven.set(a, b);
  return true;
}

function sameObjects(a: object, b: object, proven?: WeakMap<object, object>): boolean {
  if (Array.isArray(a)) {
    if (!Array.isArray(b) || a.length !== b.length) return false;
    for (let i = 0; i < a.length; i++) if (!deepEqual(a[i], b[i], proven)) return false;
    return true;
  }
  if (a instanceof Map) {
    if (!(b instanceof Map) || a.size !== b.size) return false;
    for (const [k, v] of a) {
      const w = b.get(k);
      if (w === undefined ? !b.has(k) || v !== undefined : !deepEqual(v, w, proven)) return false;
    }
    return true;
  }
  if (a instanceof Set) {
    if (!(b instanceof Set) || a.size !== b.size) return false;
    for (const x of a) if (!b.has(x)) return false;
    return true;
  }
  if (Array.isArray(b) || b instanceof Map || b instanceof Set) return false;
  return sameFields(a as Record<string, unknown>, b as Record<string, unknown>, proven);
}

/** Records with equal fields, an undefined field counting as absent. */
function sameFields(
  a: Record<string, unknown>,
  b: Record<string, unknown>,
  proven?: WeakMap<object, object>,
): boolean {
  let defined = 0;
  for (const k in a) {
    const v = a[k];
    if (v !== undefined) defined++;
    if (!deepEqual(v, b[k], proven)) return false;
  }
  for (const k in b) {
    if (b[k] !== undefined && --defined < 0) return false;
  }
  return defined === 0;
}

/**
 * The first difference between `a` and `b`, or undefined if they are equal. Paths are built
 * only along the way down to the difference; equal parts are walked by {@link deepEqual}.
 */
export function difference(a: unknown, b: unknown, path = "$"): Difference | undefined {
  if (deepEqual(a, b)) return undefined;
  if (typeof a !== "object" || typeof b !== "object" || a === null || b === null) {
    return { path, a, b };
  }
  if (a instanceof Map && b instanceof Map) {
    const at = (k: unknown) => `${path}[${showKey(k)}]`;
    const keyDelta = () => ({
      missing: [...a.keys()].filter((k) => !b.has(k)).map(showKey),
      extra: [...b.keys()].filter((k) => !a.has(k)).map(showKey),
    });
    for (const [k, v] of a) {
      if (!b.has(k)) return { path: at(k), a: v, b: undefined, ...keyDelta() };
      if (!deepEqual(v, b.get(k))) return difference(v, b.get(k), at(k));
    }
    for (const [k, v] of b) {
      if (!a.has(k)) return { path: at(k), a: undefined, b: v, ...keyDelta() };
    }
  }
  if (a instanceof Set && b instanceof Set) {
    const only = (x: Set<unknown>, y: Set<unknown>) => [...x].filter((e) => !y.has(e)).map(showKey);
    return { path, a, b, missing: only(a, b), extra: only(b, a) };
  }
  if (a instanceof Map || b instanceof Map || a instanceof Set || b instanceof Set) {
    return { path, a, b };
  }
  if (Array.isArray(a) !== Array.isArray(b)) return { path, a, b };
  if (Array.isArray(a)) {
    const bb = b as unknown[];
    for (let i = 0; i < Math.max(a.length, bb.length); i++) {
      if (!deepEqual(a[i], bb[i])) return difference(a[i], bb[i], `${path}[${i}]`);
    }
  }
  const ra = a as Record<string, unknown>;
  const rb = b as Record<string, unknown>;
  const has = (r: Record<string, unknown>, k: string) => r[k] !== undefined;
  for (const k of new Set([...Object.keys(ra), ...Object.keys(rb)])) {
    if (deepEqual(ra[k], rb[k])) continue;
    if (has(ra, k) && has(rb, k)) return difference(ra[k], rb[k], `${path}.${k}`);
    return {
      path: `${path}.${k}`,
      a: ra[k],
      b: rb[k],
      missing: Object.keys(ra).filter((x) => has(ra, x) && !has(rb, x)),
      extra: Object.keys(rb).filter((x) => has(rb, x) && !has(ra, x)),
    };
  }
  return { path, a, b };
}

/** A Map key as paths show it: JSON (strings quoted, numbers bare). */
function showKey(k: unknown): string {
  return typeof k === "bigint" ? `${k}` : JSON.stringify(k);
}

/** The path of the first difference between `a` and `b`, or undefined if equal. */
export function firstDifference(a: unknown, b: unknown): string | undefined {
  return difference(a, b)?.path;
}

/**
 * `at PATH: NAME_A V, NAME_B W` for the first difference, values shown as JSON (Maps as
 * entry lists, absent as `absent`) and cut at 200 characters; undefined if equal.
 */
export function describeDifference(
  a: unknown,
  b: unknown,
  names: readonly [string, string],
): string | undefined {
  const d = difference(a, b);
  if (!d) return undefined;
  return `at ${d.path}: ${names[0]} ${show(d.a)}, ${names[1]} ${show(d.b)}`;
}

/**
 * Every difference between two states, one line per top-level field that differs (the first
 * difference inside it): `FIELD: at PATH: NAME_A V, NAME_B W`, and where the Map, record or
 * Set there has more than that one key on one side only, `(NAME_B lacks K…; NAME_B has extra
 * K…)`. Values are JSON
 * cut at 200 characters, key lists at {@link KEYS_SHOWN}. Empty when the states are equal.
 */
export function describeDivergence(
  a: unknown,
  b: unknown,
  names: readonly [string, string],
): string[] {
  const isRecord = (v: unknown) =>
    typeof v === "object" && v !== null && !Array.isArray(v) && !(v instanceof Map) &&
    !(v instanceof Set);
  if (!isRecord(a) || !isRecord(b)) {
    const d = difference(a, b);
    return d ? [showDifference(d, names)] : [];
  }
  const ra = a as Record<string, unknown>;
  const rb = b as Record<string, unknown>;
  return [...new Set([...Object.keys(ra), ...Object.keys(rb)])].flatMap((k) => {
    const d = difference(ra[k], rb[k], `$.${k}`);
    return d ? [`${k}: ${showDifference(d, names)}`] : [];
  });
}

/** How many keys a divergence line lists before it says how many there are in all. */
export const KEYS_SHOWN = 5;

function showDifference(d: Difference, names: readonly [string, string]): string {
  const keys = (ks: readonly string[]) =>
    ks.length > KEYS_SHOWN
      ? `${ks.slice(0, KEYS_SHOWN).join(", ")}, … (${ks.length} in all)`
      : ks.join(", ");
  const alone = (d.missing?.length ?? 0) + (d.extra?.length ?? 0) <= 1;
  const delta = alone ? "" : [
    d.missing?.length ? `${names[1]} lacks ${keys(d.missing)}` : "",
    d.extra?.length ? `${names[1]} has extra ${keys(d.extra)}` : "",
  ].filter((x) => x !== "").join("; ");
  const values = `at ${d.path}: ${names[0]} ${show(d.a)}, ${names[1]} ${show(d.b)}`;
  return delta ? `${values} (${delta})` : values;
}

function show(v: unknown): string {
  if (v === undefined) return "absent";
  const text = JSON.stringify(
    v,
    (_k, x) =>
      x instanceof Map ? [...x] : x instanceof Set ? [...x] : typeof x === "bigint" ? `${x}n` : x,
  );
  return text.length > 200 ? `${text.slice(0, 200)}…` : text;
}
