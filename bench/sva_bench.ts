/**
 * `deno run -A bench/sva_bench.ts` (a script): conformance throughput (spec + implementation +
 * `observe()` compared + invariants, as conformance_bench.ts measures it) of the stack view on
 * its SVA path against the same on its non-SVA path, in one run. Both workloads are 50
 * sequences of up to 40 commands after the stack's prelude, drawn with a fixed seed; each is
 * timed, alternately, in 3 rounds of a warm-up pass and 2 timed passes; its best pass counts:
 * - SVA (the measured one): process 2's queue on function 3, its requests PASID-tagged reads of
 *   its own page table (sends, device steps, receives), and its container's binds and unbinds;
 * - anchor: process 1's queue on function 1, its requests untagged reads through the shared
 *   domain (sends, device steps, receives), and its MAP_DMA and UNMAP_DMA.
 * Commands per second = commands of the workload / time of its pass. Under `deno bench` it
 * measures nothing (it is a script).
 */
import fc from "fast-check";
import type { StackCommand } from "../spec/stack.ts";
import { PAGE_SIZE } from "../spec/types.ts";
import { STACK_PRELUDE, stackMachine, USER_IOVA } from "../model/machines/stack.ts";
import { runCli, RunError } from "../model/cli/common.ts";
import { Conformance } from "../model/runner.ts";

const U1 = "11111111-2222-3333-4444-555555555555";
const U3 = "33333333-4444-5555-6666-777777777777";
const USER_VADDR = 0x10000;

/** One queue's traffic (sends, device steps, receives) and its process's `own` ops. */
function traffic(
  uuid: string,
  by: number,
  parent: number,
  own: fc.Arbitrary<StackCommand>,
): fc.Arbitrary<StackCommand> {
  const iova = fc.integer({ min: 0, max: 3 }).map((k) => USER_IOVA + k * PAGE_SIZE);
  return fc.oneof(
    {
      weight: 6,
      arbitrary: iova.map((v): StackCommand => ({ op: "stack.send", uuid, by, iova: v })),
    },
    { weight: 6, arbitrary: fc.constant<StackCommand>({ op: "stack.deviceStep", parent, qn: 0 }) },
    { weight: 5, arbitrary: fc.constant<StackCommand>({ op: "stack.recv", uuid, by }) },
    { weight: 2, arbitrary: own },
  );
}

const sva = traffic(
  U3,
  2,
  3,
  fc.constantFrom<StackCommand>(
    { op: "sva.bind", container: 2 },
    { op: "sva.unbind", container: 2 },
  ),
);
const plain = traffic(
  U1,
  1,
  1,
  fc.constantFrom<StackCommand>(
    {
      op: "type1.map",
      container: 1,
      iova: USER_IOVA + 2 * PAGE_SIZE,
      size: PAGE_SIZE,
      vaddr: USER_VADDR,
    },
    { op: "type1.unmap", container: 1, iova: USER_IOVA + 2 * PAGE_SIZE, size: PAGE_SIZE },
  ),
);

function workload(commands: fc.Arbitrary<StackCommand>): StackCommand[][] {
  return fc.sample(fc.array(commands, { maxLength: 40, size: "max" }), { numRuns: 50, seed: 42 })
    .map((cmds) => [...STACK_PRELUDE, ...cmds]);
}

const svaWork = workload(sva);
const plainWork = workload(plain);
const count = (w: StackCommand[][]) => w.reduce((k, seq) => k + seq.length, 0);

async function conform(w: StackCommand[][]): Promise<void> {
  for (const seq of w) {
    const conf = new Conformance(stackMachine);
    for (const cmd of seq) {
      const r = await conf.step(cmd);
      if (r.failure) throw new RunError(`${cmd.op} fails conformance: ${r.failure}`);
    }
  }
}

/** Commands per second of `w`, its best of `rounds` passes (after one of warm-up). */
async function rate(w: StackCommand[][], rounds: number): Promise<number> {
  await conform(w);
  let best = Infinity;
  for (let k = 0; k < rounds; k++) {
    const t0 = performance.now();
    await conform(w);
    best = Math.min(best, performance.now() - t0);
  }
  return count(w) / (best / 1000);
}

if (import.meta.main) {
  await runCli("sva_bench", async () => {
    // Alternated, so that load on the machine falls on both alike.
    const rates = { plain: [] as number[], sva: [] as number[] };
    for (let k = 0; k < 3; k++) {
      rates.plain.push(await rate(plainWork, 2));
      rates.sva.push(await rate(svaWork, 2));
    }
    const best = (xs: number[]) => Math.max(...xs);
    const plainRate = best(rates.plain);
    const svaRate = best(rates.sva);
    console.log(
      `anchor: stack conformance, non-SVA path: ${count(plainWork)} commands, ` +
        `${plainRate.toFixed(0)} commands/s`,
    );
    console.log(
      `stack conformance, SVA path: ${count(svaWork)} commands, ` +
        `${svaRate.toFixed(0)} commands/s (${(svaRate / plainRate).toFixed(2)}x the anchor)`,
    );
    return 0;
  });
}
