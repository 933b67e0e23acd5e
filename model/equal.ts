/**
 * Structural equality over spec-shaped data (records, arrays, Maps, Sets, primitives), with
 * the JSON-path of the first difference for reports.
 *
 * @module
 */

/** The path of the first difference between `a` and `b` (like `$.iommu.groups[1].sharedRef`), or undefined if equal. */
export function firstDifference(a: unknown, b: unknown, path = "$"): string | undefined {
  if (Object.is(a, b)) return undefined;
  if (typeof a !== "object" || typeof b !== "object" || a === null || b === null) return path;
  if (a instanceof Map || b instanceof Map) {
    if (!(a instanceof Map && b instanceof Map)) return path;
    for (const [k, v] of a) {
      if (!b.has(k)) return `${path}[${JSON.stringify(k)}]`;
      const d = firstDifference(v, b.get(k), `${path}[${JSON.stringify(k)}]`);
      if (d) return d;
    }
    for (const k of b.keys()) if (!a.has(k)) return `${path}[${JSON.stringify(k)}]`;
    return undefined;
  }
  if (a instanceof Set || b instanceof Set) {
    if (!(a instanceof Set && b instanceof Set) || a.size !== b.size) return path;
    for (const x of a) if (!b.has(x)) return path;
    return undefined;
  }
  if (Array.isArray(a) !== Array.isArray(b)) return path;
  if (Array.isArray(a)) {
    const bb = b as unknown[];
    for (let i = 0; i < Math.max(a.length, bb.length); i++) {
      if (i >= a.length || i >= bb.length) return `${path}[${i}]`;
      const d = firstDifference(a[i], bb[i], `${path}[${i}]`);
      if (d) return d;
    }
    return undefined;
  }
  const ra = a as Record<string, unknown>;
  const rb = b as Record<string, unknown>;
  for (const k of new Set([...Object.keys(ra), ...Object.keys(rb)])) {
    if (!(k in ra) || !(k in rb)) return `${path}.${k}`;
    const d = firstDifference(ra[k], rb[k], `${path}.${k}`);
    if (d) return d;
  }
  return undefined;
}

/** Deep structural equality. */
export function deepEqual(a: unknown, b: unknown): boolean {
  return firstDifference(a, b) === undefined;
}
