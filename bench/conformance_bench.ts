/**
 * `deno bench bench/conformance_bench.ts`: spec + implementation conformance throughput of
 * every machine on a fixed workload (200 generated sequences after the machine's prelude):
 * each command runs on the spec and the implementation, `observe()` is taken and compared,
 * and the invariants are checked. Commands per second = commands per iteration / time.
 */
import fc from "fast-check";
import { MACHINES } from "../model/machines.ts";
import { Conformance } from "../model/runner.ts";

for (const machine of MACHINES) {
  const workload = fc.sample(fc.array(machine.commands(), { maxLength: 40, size: "max" }), {
    numRuns: 200,
    seed: 42,
  }).map((cmds) => [...machine.prelude, ...cmds]);
  const n = workload.reduce((k, seq) => k + seq.length, 0);
  Deno.bench(`conformance ${machine.name}: ${n} commands`, async () => {
    for (const seq of workload) {
      const conf = new Conformance(machine);
      for (const cmd of seq) {
        const r = await conf.step(cmd);
        if (r.failure) throw new Error(r.failure);
      }
    }
  });
}
