/** The controlled scheduler: interleavings, conditions, deadlock detection, exact replay. */
import assert from "node:assert/strict";
import { ControlledSched, prngDriver, replayDriver } from "../impl/sched.ts";

function twoCounters(sched: ControlledSched, log: string[]) {
  for (const name of ["a", "b"]) {
    sched.spawn(name, async () => {
      for (let i = 0; i < 3; i++) {
        log.push(`${name}${i}`);
        await sched.point("tick");
      }
    });
  }
}

Deno.test("different seeds interleave differently; a recorded schedule replays exactly", async () => {
  const runs = new Set<string>();
  for (let seed = 0; seed < 20; seed++) {
    const sched = new ControlledSched();
    const log: string[] = [];
    twoCounters(sched, log);
    const out = await sched.run(prngDriver(seed));
    runs.add(log.join(","));
    const again = new ControlledSched();
    const log2: string[] = [];
    twoCounters(again, log2);
    await again.run(replayDriver(out.schedule));
    assert.deepEqual(log2, log);
  }
  assert.ok(runs.size > 3, `only ${runs.size} distinct interleavings`);
});

Deno.test("a task waiting on a condition runs only once it holds", async () => {
  const sched = new ControlledSched();
  let flag = false;
  const order: string[] = [];
  sched.spawn("waiter", async () => {
    await sched.waitUntil("flag", () => flag);
    order.push("waiter");
  });
  sched.spawn("setter", async () => {
    await sched.point("before");
    order.push("setter");
    flag = true;
  });
  const out = await sched.run(prngDriver(1));
  assert.deepEqual(order, ["setter", "waiter"]);
  assert.deepEqual(out.blocked, []);
});

Deno.test("blocked tasks are reported as a deadlock, daemons are not", async () => {
  const sched = new ControlledSched();
  sched.spawn("stuck", () => sched.waitUntil("never", () => false));
  sched.spawn("device", () => sched.waitUntil("doorbell", () => false), { daemon: true });
  const out = await sched.run(prngDriver(1));
  assert.deepEqual(out.blocked, ["stuck:never"]);
});

Deno.test("a strict replay refuses a schedule it cannot follow", async () => {
  const sched = new ControlledSched();
  twoCounters(sched, []);
  await assert.rejects(sched.run(replayDriver(["c:start"])), /not eligible/);
});
