/**
 * `deno bench bench/foundation_bench.ts`: the IOMMU/type1 spec alone (conformance throughput of
 * every machine is in conformance_bench.ts). The anchor is a plain copy-on-write update of a Map per
 * command (the floor of any immutable state machine), so the ratio shows what the spec's logic
 * costs on top. Commands per second = commands per iteration / time per iteration.
 */
import { initialState, step } from "../spec/system.ts";
import { commandCount, workload } from "./workload.ts";

const w = workload(50);
const n = commandCount(w);
console.log(`workload: ${n} commands per iteration`);

Deno.bench(
  `anchor: Map copy-on-write per command (${n})`,
  { group: "spec", baseline: true },
  () => {
    for (const seq of w) {
      let m: ReadonlyMap<number, number> = new Map([[1, 0], [2, 0], [10, 0], [11, 0]]);
      for (let i = 0; i < seq.length; i++) {
        const copy = new Map(m);
        copy.set(1, i);
        m = copy;
      }
    }
  },
);

Deno.bench(`spec step (${n} commands)`, { group: "spec" }, () => {
  for (const seq of w) {
    let s = initialState();
    for (const cmd of seq) s = step(s, cmd).state;
  }
});
