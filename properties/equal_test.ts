/** Divergence reports name the path of the first difference and what each side holds there. */
import assert from "node:assert/strict";
import { deepEqual, describeDifference, firstDifference } from "../model/equal.ts";

Deno.test("describeDifference names the path and both values", () => {
  const spec = { iommu: { domains: new Map([[100, { pages: new Map([[65536, 7]]) }]]) } };
  const impl = { iommu: { domains: new Map([[100, { pages: new Map([[65536, 9]]) }]]) } };
  assert.equal(
    describeDifference(spec, impl, ["spec", "impl"]),
    "at $.iommu.domains[100].pages[65536]: spec 7, impl 9",
  );
  const extra = { iommu: { domains: new Map([[100, { pages: new Map() }]]) } };
  assert.equal(
    describeDifference(extra, impl, ["spec", "impl"]),
    "at $.iommu.domains[100].pages[65536]: spec absent, impl 9",
  );
  assert.equal(describeDifference([1, { a: "x" }], [1, { a: "x" }], ["a", "b"]), undefined);
  assert.equal(firstDifference({ a: [1, 2] }, { a: [1] }), "$.a[1]");
  const long = "y".repeat(500);
  assert.ok(describeDifference({ v: long }, { v: 1 }, ["a", "b"])!.includes("…, b 1"));
});

Deno.test("deepEqual: records, arrays, Maps and Sets by content; an undefined field is absent", () => {
  assert.ok(deepEqual({ a: 1, b: undefined }, { a: 1 }));
  assert.ok(deepEqual({ a: 1 }, { a: 1, b: undefined }));
  assert.ok(!deepEqual({ a: 1 }, { a: 1, b: 0 }));
  assert.ok(!deepEqual({ a: 1, b: 0 }, { a: 1 }));
  assert.ok(deepEqual(new Map([[1, [2, 3]]]), new Map([[1, [2, 3]]])));
  assert.ok(!deepEqual(new Map([[1, 2]]), new Map([[1, 2], [3, 4]])));
  assert.ok(!deepEqual(new Map([[1, 2]]), new Map([[2, 2]])));
  assert.ok(deepEqual(new Set([1, 2]), new Set([2, 1])));
  assert.ok(!deepEqual(new Set([1, 2]), new Set([1, 3])));
  assert.ok(!deepEqual([1, 2], [1, 2, 3]));
  assert.ok(!deepEqual([1], { 0: 1 }));
  assert.ok(!deepEqual(new Map(), {}));
  assert.equal(firstDifference(new Map([[1, 2]]), new Map([[1, 2], [3, 4]])), "$[3]");
  assert.equal(firstDifference(new Set([1]), new Set([2])), "$");
});
