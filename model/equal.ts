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
}

/** Deep structural equality (the fast walk: no paths are built). */
export function deepEqual(a: unknown, b: unknown): boolean {
  if (Object.is(a, b)) return true;
  if (typeof a !== "object" || typeof b !== "object" || a === null || b === null) return false;
  if (a instanceof Map || b instanceof Map) {
    if (!(a instanceof Map && b instanceof Map) || a.size !== b.size) return false;
    for (const [k, v] of a) {
      if (!b.has(k) || !deepEqual(v, b.get(k))) return false;
    }
    return true;
  }
  if (a instanceof Set || b instanceof Set) {
    if (!(a instanceof Set && b instanceof Set) || a.size !== b.size) return false;
    for (const x of a) if (!b.has(x)) return false;
    return true;
  }
  if (Array.isArray(a) !== Array.isArray(b)) return false;
  if (Array.isArray(a)) {
    const bb = b as unknown[];
    if (a.length !== bb.length) return false;
    for (let i = 0; i < a.length; i++) if (!deepEqual(a[i], bb[i])) return false;
    return true;
  }
  const ra = a as Record<string, unknown>;
  const rb = b as Record<string, unknown>;
  const keys = Object.keys(ra);
  for (const k of keys) if (!deepEqual(ra[k], rb[k])) return false;
  const other = Object.keys(rb);
  if (other.length === keys.length) return true;
  return other.every((k) => Object.hasOwn(ra, k) || rb[k] === undefined);
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
    for (const [k, v] of a) {
      const at = () => `${path}[${JSON.stringify(k)}]`;
      if (!b.has(k)) return { path: at(), a: v, b: undefined };
      if (!deepEqual(v, b.get(k))) return difference(v, b.get(k), at());
    }
    for (const [k, v] of b) {
      if (!a.has(k)) return { path: `${path}[${JSON.stringify(k)}]`, a: undefined, b: v };
    }
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
  for (const k of new Set([...Object.keys(ra), ...Object.keys(rb)])) {
    if (!deepEqual(ra[k], rb[k])) return difference(ra[k], rb[k], `${path}.${k}`);
  }
  return { path, a, b };
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

function show(v: unknown): string {
  if (v === undefined) return "absent";
  const text = JSON.stringify(
    v,
    (_k, x) =>
      x instanceof Map ? [...x] : x instanceof Set ? [...x] : typeof x === "bigint" ? `${x}n` : x,
  );
  return text.length > 200 ? `${text.slice(0, 200)}…` : text;
}
