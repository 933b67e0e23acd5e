/**
 * fork in the composed stack (issue 11): a child forked from a queue's opener gets no mapping
 * of the queue (VM_DONTCOPY | VM_WIPEONFORK), so its sends and receives on the parent's queue
 * are EFAULT while the parent's go on; its exit drops its copies of the files without
 * releasing them; the files' last close waits for the last holder. Quirk
 * `forkInheritsQueueMappings` lets the child submit into the parent's queue.
 */
import assert from "node:assert/strict";
import { mappingsOf } from "../spec/sdmdev.ts";
import type { StackCommand, StackState } from "../spec/stack.ts";
import { STACK_PRELUDE, stackMachine, USER_IOVA } from "../model/machines/stack.ts";
import { runSequential, type StepRecord } from "../model/runner.ts";
import type { Quirks } from "../impl/quirks.ts";

const U1 = "11111111-2222-3333-4444-555555555555";
const fork: StackCommand = { op: "stack.fork", by: 1, child: 3 };
const send = (by: number): StackCommand => ({ op: "stack.send", uuid: U1, by, iova: USER_IOVA });
const recv = (by: number): StackCommand => ({ op: "stack.recv", uuid: U1, by });
const deviceStep: StackCommand = { op: "stack.deviceStep", parent: 1, qn: 0 };
const exit = (by: number): StackCommand => ({ op: "stack.exit", by });

/** Runs the prelude and `cmds` checked step by step; the records of `cmds` only. */
async function run(
  cmds: StackCommand[],
  quirks: Quirks = {},
): Promise<StepRecord<StackState, StackCommand>[]> {
  const records = await runSequential(stackMachine, [...STACK_PRELUDE, ...cmds], quirks);
  return records.slice(STACK_PRELUDE.length);
}

/** Asserts no step failed conformance and returns each step's implementation return value. */
function rets(records: StepRecord<StackState, StackCommand>[]): unknown[] {
  const failed = records.find((r) => r.failure);
  assert.equal(failed?.failure, undefined);
  return records.map((r) => r.impl.ret);
}

Deno.test("a forked child has no mapping of its parent's queue: EFAULT, the parent's requests go on", async () => {
  const records = await run([fork, send(3), recv(3), send(1), deviceStep, recv(1)]);
  assert.deepEqual(rets(records), [
    { ok: 3 },
    { err: "EFAULT" },
    { err: "EFAULT" },
    { ok: 0 },
    { ok: 0 },
    { ok: { iova: USER_IOVA, status: 0 } },
  ]);
  const s = records.at(-1)!.observed;
  assert.equal(s.type1.processes.get(3), 1, "the child is process 1's");
  const q = s.sdmdev.queues.get(U1)!;
  assert.equal(q.life.state === "closed" ? null : q.life.by, 1, "the queue stays process 1's");
});

Deno.test("a child's exit closes its copies of the files and leaves the parent's queue running", async () => {
  const records = await run([send(1), fork, exit(3), deviceStep, recv(1), send(1)]);
  assert.deepEqual(rets(records), [
    { ok: 0 },
    { ok: 3 },
    { ok: 0 },
    { ok: 0 },
    { ok: { iova: USER_IOVA, status: 0 } },
    { ok: 0 },
  ]);
  const s = records.at(-1)!.observed;
  assert.equal(s.type1.processes.has(3), false, "the child is gone");
  assert.equal(s.sdmdev.queues.get(U1)?.life.state, "started");
  assert.equal(s.type1.groupFds.get(10), 1, "process 1 still holds its group");
});

Deno.test("the parent exits first: the files stay open until the child's exit, then nothing remains", async () => {
  const records = await run([fork, exit(1), send(3), exit(3)]);
  assert.deepEqual(rets(records), [{ ok: 3 }, { ok: 0 }, { err: "EFAULT" }, { ok: 0 }]);
  const afterParent = records[1].observed;
  assert.equal(afterParent.type1.groupFds.get(10), 1, "the child's copy keeps the group file");
  const q = afterParent.sdmdev.queues.get(U1)!;
  assert.equal(q.life.state, "started");
  assert.deepEqual(mappingsOf(q), [], "the parent's mappings went at exit_mm");
  const s = records.at(-1)!.observed;
  assert.equal(s.sdmdev.queues.get(U1)?.life.state, "closed", "the last close released it");
  assert.deepEqual([...s.type1.groupFds.values()].filter((c) => c === 1), []);
  assert.deepEqual(s.type1.containers.get(1)?.dmas, []);
});

Deno.test("an exited process cannot fork; a child id in use is EEXIST", async () => {
  const records = await run([fork, fork, { op: "stack.exit", by: 2 }, {
    op: "stack.fork",
    by: 2,
    child: 4,
  }]);
  assert.deepEqual(rets(records), [{ ok: 3 }, { err: "EEXIST" }, { ok: 0 }, { err: "ENODEV" }]);
});

Deno.test("forkInheritsQueueMappings: the child submits into its parent's queue and the device runs it", async () => {
  const records = await run([fork, send(3)], { forkInheritsQueueMappings: true });
  assert.deepEqual(records[1].impl.ret, { ok: 0 }, "the child's SQE went into the ring");
  assert.deepEqual(records[1].specRet, { err: "EFAULT" });
  assert.match(records[1].failure ?? "", /ret differs/);
  const correct = await run([fork, send(3)]);
  assert.deepEqual(rets(correct)[1], { err: "EFAULT" });
  // On the quirky implementation alone: the device executes the child's SQE, reading the
  // parent's IOVA through the parent's container mapping, and the parent receives it.
  const impl = stackMachine.implementation({ forkInheritsQueueMappings: true });
  for (const cmd of [...STACK_PRELUDE, fork, send(3)]) await impl.exec(cmd);
  assert.deepEqual((await impl.exec(deviceStep)).ret, { ok: 0 });
  assert.deepEqual((await impl.exec(recv(1))).ret, { ok: { iova: USER_IOVA, status: 0 } });
});

Deno.test("a grandchild passes to its grandparent and holds the files to the last", async () => {
  const grandchild: StackCommand = { op: "stack.fork", by: 3, child: 4 };
  const records = await run([fork, grandchild, exit(3), exit(1), send(4), exit(4)]);
  assert.deepEqual(rets(records), [
    { ok: 3 },
    { ok: 4 },
    { ok: 0 },
    { ok: 0 },
    { err: "EFAULT" },
    { ok: 0 },
  ]);
  assert.equal(records[2].observed.type1.processes.get(4), 1, "4 is process 1's after 3 exits");
  assert.equal(records[3].observed.sdmdev.queues.get(U1)?.life.state, "started");
  assert.equal(records[5].observed.sdmdev.queues.get(U1)?.life.state, "closed");
});
