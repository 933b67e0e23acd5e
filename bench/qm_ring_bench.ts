/**
 * `deno bench bench/qm_ring_bench.ts`: the simulated end-to-end ring at the default depth of
 * 1024 — a user process sends a null request, the device executes it (SQE read through the
 * IOMMU, status, CQE, EQE written back), the user driver polls the completion — against the
 * anchor: a plain in-process array queue doing the same bookkeeping (tag in, tag out, in
 * order). One iteration is 1000 requests, issued in bursts of 100 with the IRQ thread run per
 * burst so the EQ never fills. Requests per second = 1000 / time per iteration.
 */
import { DEFAULT_QM_CONFIG } from "../spec/qm.ts";
import { QmAdapter } from "../model/adapters/qm.ts";
import { Platform } from "../impl/platform.ts";

const REQUESTS = 1000;
const BURST = 100;

const qm = new QmAdapter(new Platform(), {
  ...DEFAULT_QM_CONFIG,
  qpNum: 1,
});
await qm.exec({ op: "qm.alloc", owner: 1 });
await qm.exec({ op: "qm.start", qn: 0 });

Deno.bench("anchor: array queue, 1000 requests", { group: "ring", baseline: true }, () => {
  const q: number[] = [];
  let sum = 0;
  for (let done = 0; done < REQUESTS; done += BURST) {
    for (let i = 0; i < BURST; i++) q.push(done + i);
    for (let i = 0; i < BURST; i++) sum += q.shift()!;
  }
  if (sum !== (REQUESTS * (REQUESTS - 1)) / 2) throw new Error("lost a request");
});

Deno.bench("simulated QM ring, depth 1024, 1000 requests", { group: "ring" }, async () => {
  for (let done = 0; done < REQUESTS; done += BURST) {
    for (let i = 0; i < BURST; i++) {
      const r = await qm.exec({ op: "qm.userSend", qn: 0, by: 1, tag: done + i });
      if (!("ok" in r.ret)) throw new Error(`send: ${r.ret.err}`);
    }
    for (let i = 0; i < BURST; i++) {
      const r = await qm.exec({ op: "qm.deviceStep", qn: 0, status: 0 });
      if (!("ok" in r.ret)) throw new Error(`device: ${r.ret.err}`);
    }
    await qm.exec({ op: "qm.irq" });
    for (let i = 0; i < BURST; i++) {
      const r = await qm.exec({ op: "qm.poll", qn: 0, by: 1 });
      if (!("ok" in r.ret)) throw new Error(`poll: ${r.ret.err}`);
    }
  }
});
