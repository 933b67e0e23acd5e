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

/** The first difference between `a` and `b`, or undefined if they are equal. */
export function difference(a: unknown, b: unknown, path = "$"): Difference | undefined {
  if (Object.is(a, b)) return undefined;
  if (typeof a !== "object" || typeof b !== "object" || a === null || b === null) {
    return { path, a, b };
  }
  if (a instanceof Map || b instanceof Map) {
    if (!(a instanceof Map && b instanceof Map)) return { path, a, b };
    for (const [k, v] of a) {
      const at = `${path}[${JSON.stringify(k)}]`;
      if (!b.has(k)) return { path: at, a: v, b: undefined };
      const d = difference(v, b.get(k), at);
      if (d) return d;
    }
    for (const [k, v] of b) {
      if (!a.has(k)) return { path: `${path}[${JSON.stringify(k)}]`, a: undefined, b: v };
    }
    return undefined;
  }
  if (a instanceof Set || b instanceof Set) {
    if (!(a instanceof Set && b instanceof Set) || a.size !== b.size) return { path, a, b };
    for (const x of a) if (!b.has(x)) return { path, a, b };
    return undefined;
  }
  if (Array.isArray(a) !== Array.isArray(b)) return { path, a, b };
  if (Array.isArray(a)) {
    const bb = b as unknown[];
    for (let i = 0; i < Math.max(a.length, bb.length); i++) {
      const d = difference(a[i], bb[i], `${path}[${i}]`);
      if (d) return d;
    }
    return undefined;
  }
  const ra = a as Record<string, unknown>;
  const rb = b as Record<string, unknown>;
  for (const k of new Set([...Object.keys(ra), ...Object.keys(rb)])) {
    const d = difference(ra[k], rb[k], `${path}.${k}`);
    if (d) return d;
  }
  return undefined;
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

/** Deep structural equality. */
export function deepEqual(a: unknown, b: unknown): boolean {
  return firstDifference(a, b) === undefined;
}
