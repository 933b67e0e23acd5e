/**
 * Argument generators shared by the views: values at and next to the edges a rule or an
 * encoding has, most of the time, and anywhere in the whole range the rest of the time, so a
 * boundary defect is found at ordinary run counts and no value is out of reach.
 *
 * @module
 */
import fc from "fast-check";

/**
 * Integers in `[min, max]`: one of `edges` or a neighbour (edge - 1, edge + 1) four times in
 * five, uniform over the range otherwise. Edges outside the range are left out.
 */
export function aroundEdges(
  edges: readonly number[],
  min: number,
  max: number,
): fc.Arbitrary<number> {
  const near = [...new Set(edges.flatMap((e) => [e - 1, e, e + 1]))]
    .filter((v) => v >= min && v <= max)
    .sort((a, b) => a - b);
  const anywhere = fc.integer({ min, max });
  if (near.length === 0) return anywhere;
  return fc.oneof(
    { weight: 4, arbitrary: fc.constantFrom(...near) },
    { weight: 1, arbitrary: anywhere },
  );
}
