/** Divergence reports name the path of the first difference and what each side holds there. */
import assert from "node:assert/strict";
import { describeDifference, firstDifference } from "../model/equal.ts";

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
