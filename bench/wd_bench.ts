/**
 * `deno bench bench/wd_bench.ts`: null requests through the wd library on the simulated stack
 * at the default depth of 1024 — `wd_send` (the user QM driver writes the SQE, rings the
 * doorbell), the QM device executing each (SQE read through the IOMMU, CQE and EQE written),
 * the IRQ thread waking the queue, `wd_recv` polling each completion — against the anchor of
 * qm_ring_bench.ts: a plain array queue doing the same bookkeeping. One iteration is 1023
 * requests, a full ring (one slot reserved). Requests per second = 1023 / time per iteration.
 */
import { COMPLETE_ALL, Platform } from "../impl/platform.ts";
import { bootWdHost } from "../impl/wd/host.ts";
import { WdSys } from "../impl/wd/sys.ts";
import { WdQueue } from "../impl/wd/wd.ts";

const DEPTH = 1024;
const REQUESTS = DEPTH - 1;

const host = await bootWdHost(new Platform(), {
  config: { qpNum: 2, sqDepth: DEPTH, cqDepth: DEPTH, eqDepth: DEPTH },
  engine: COMPLETE_ALL,
  pids: [1],
});
const queue = await WdQueue.request(new WdSys(host, 1));
if (typeof queue === "string") throw new Error(`wd_request_queue: ${queue}`);
const q = queue;

Deno.bench("anchor: array queue, 1023 requests", { group: "wd", baseline: true }, () => {
  const fifo: number[] = [];
  let sum = 0;
  for (let i = 0; i < REQUESTS; i++) fifo.push(i);
  for (let i = 0; i < REQUESTS; i++) sum += fifo.shift()!;
  if (sum !== (REQUESTS * (REQUESTS - 1)) / 2) throw new Error("lost a request");
});

Deno.bench("wd_send/wd_recv, depth 1024, 1023 null requests", { group: "wd" }, async () => {
  for (let i = 0; i < REQUESTS; i++) {
    const r = await q.send();
    if (typeof r !== "number") throw new Error(`wd_send: ${r}`);
  }
  for (let i = 0; i < REQUESTS; i++) {
    const r = await host.fn.device.step(q.qn);
    if (typeof r === "string") throw new Error(`device: ${r}`);
  }
  await host.fn.qm.irqThread();
  for (let i = 0; i < REQUESTS; i++) {
    const r = await q.recv();
    if (typeof r === "string") throw new Error(`wd_recv: ${r}`);
  }
});
