/**
 * idxd work-queue ownership: the spec's rules op by op, each named invariant caught on a state
 * that breaks it, the implementation's WQCFG PASID following a dedicated WQ's client, and the
 * named idxd race scenarios (fixtures/race-scenarios/idxd-race-*, which regressions_test.ts
 * runs on the correct implementation) each broken by `cdevOpenWithoutWqLock`, with the
 * invariant the scenario names.
 */
import assert from "node:assert/strict";
import {
  checkIdxdInvariants,
  type IdxdCommand,
  type IdxdState,
  initialIdxdState,
  stepIdxd,
} from "../spec/idxd.ts";
import type { Ret } from "../spec/types.ts";
import { prngDriver } from "../impl/sched.ts";
import { IdxdAdapter } from "../model/adapters/idxd.ts";
import { idxdMachine } from "../model/machines/idxd.ts";
import { machineNamed } from "../model/machines.ts";
import { runRace } from "../model/race.ts";
import { parseTrace } from "../model/trace.ts";

/** Runs `cmds` from the initial state; returns each ret and the final state. */
function run(cmds: readonly IdxdCommand[], from = initialIdxdState()) {
  let state = from;
  const rets: Ret[] = [];
  for (const cmd of cmds) {
    const r = stepIdxd(state, cmd);
    assert.deepEqual(checkIdxdInvariants(r.state), [], `after ${cmd.op}`);
    rets.push(r.ret);
    state = r.state;
  }
  return { rets, state };
}

const setUp = (wq: number, use: string, mode: string): IdxdCommand[] => [
  { op: "idxd.configure", wq, use, mode },
  { op: "idxd.enable", wq },
];

Deno.test("idxd spec: configure and enable only while disabled, with a use", () => {
  const { rets } = run([
    { op: "idxd.enable", wq: 0 },
    ...setUp(0, "user", "dedicated"),
    { op: "idxd.enable", wq: 0 },
    { op: "idxd.configure", wq: 0, use: "kernel", mode: "shared" },
    { op: "idxd.configure", wq: 2, use: "user", mode: "shared" },
    { op: "idxd.configure", wq: 1, use: "gpu", mode: "shared" },
    { op: "idxd.configure", wq: 1, use: "user", mode: "swq" },
    { op: "idxd.disable", wq: 1 },
  ]);
  assert.deepEqual(rets, [
    { err: "EINVAL" },
    { ok: 0 },
    { ok: 0 },
    { err: "EBUSY" },
    { err: "EPERM" },
    { err: "EINVAL" },
    { err: "EINVAL" },
    { err: "EINVAL" },
    { err: "ENODEV" },
  ]);
});

Deno.test("idxd spec: a dedicated WQ takes one client and its PASID; a shared one many", () => {
  const { rets, state } = run([
    ...setUp(0, "user", "dedicated"),
    ...setUp(1, "user", "shared"),
    { op: "idxd.open", wq: 0, process: 1 },
    { op: "idxd.open", wq: 0, process: 2 },
    { op: "idxd.open", wq: 1, process: 2 },
    { op: "idxd.open", wq: 1, process: 3 },
    { op: "idxd.open", wq: 1, process: 3 },
    { op: "idxd.open", wq: 1, process: 4 },
  ]);
  assert.deepEqual(rets.slice(4), [
    { ok: 1 },
    { err: "EBUSY" },
    { ok: 2 },
    { ok: 3 },
    { ok: 4 },
    { err: "EINVAL" },
  ]);
  assert.equal(state.wqs[0].pasid, 11);
  assert.equal(state.wqs[1].pasid, null, "a shared WQ's configuration carries no PASID");
  assert.deepEqual([...state.handles.values()].map((h) => h.pasid), [11, 12, 13, 13]);
  assert.deepEqual(state.wqs.map((w) => w.clients), [1, 3]);
  const closed = run([{ op: "idxd.close", file: 1 }, { op: "idxd.close", file: 1 }], state);
  assert.deepEqual(closed.rets, [{ ok: 0 }, { err: "EINVAL" }]);
  assert.equal(closed.state.wqs[0].pasid, null);
  assert.deepEqual(run([{ op: "idxd.open", wq: 0, process: 2 }], closed.state).rets, [{ ok: 5 }]);
});

Deno.test("idxd spec: disable cuts every client off; their handles only close", () => {
  const { rets, state } = run([
    ...setUp(0, "user", "shared"),
    { op: "idxd.open", wq: 0, process: 1 },
    { op: "idxd.open", wq: 0, process: 2 },
    { op: "idxd.disable", wq: 0 },
    { op: "idxd.open", wq: 0, process: 3 },
    { op: "idxd.configure", wq: 0, use: "kernel", mode: "dedicated" },
    { op: "idxd.enable", wq: 0 },
    { op: "idxd.claim", wq: 0 },
    { op: "idxd.close", file: 1 },
    { op: "idxd.claim", wq: 0 },
  ]);
  assert.deepEqual(rets.slice(4), [
    { ok: 2 },
    { err: "ENXIO" },
    { ok: 0 },
    { ok: 0 },
    { ok: 3 },
    { ok: 0 },
    { err: "EBUSY" },
  ]);
  assert.equal(state.handles.get(2)?.attached, false);
  assert.equal(state.wqs[0].clients, 1, "closing a cut-off file leaves the new owner counted");
});

Deno.test("idxd spec: one guest per WQ, whatever its mode; handles of another kind are EINVAL", () => {
  const { rets } = run([
    ...setUp(0, "guest", "shared"),
    { op: "idxd.mdevCreate", wq: 0 },
    { op: "idxd.mdevCreate", wq: 0 },
    { op: "idxd.open", wq: 0, process: 1 },
    { op: "idxd.claim", wq: 0 },
    { op: "idxd.close", file: 1 },
    { op: "idxd.release", claim: 1 },
    { op: "idxd.mdevRemove", mdev: 1 },
    { op: "idxd.mdevCreate", wq: 0 },
  ]);
  assert.deepEqual(rets.slice(2), [
    { ok: 1 },
    { err: "EBUSY" },
    { err: "ENXIO" },
    { err: "ENODEV" },
    { err: "EINVAL" },
    { err: "EINVAL" },
    { ok: 0 },
    { ok: 2 },
  ]);
});

Deno.test("idxd spec: a device without WQs, or processes sharing a PASID, is refused in one line", () => {
  assert.throws(
    () => initialIdxdState({ wqs: 0, pasids: new Map() }),
    /^RangeError: idxd: wqs must be a positive integer, got 0$/,
  );
  assert.throws(
    () => initialIdxdState({ wqs: 1, pasids: new Map([[1, 5], [2, 5]]) }),
    /^RangeError: idxd: PASIDs must be distinct positive integers, got 5, 5$/,
  );
});

/** A state with two user clients on WQ 0, then `broken` applied. */
function brokenState(broken: (s: IdxdState) => IdxdState): IdxdState {
  const { state } = run([
    ...setUp(0, "user", "shared"),
    { op: "idxd.open", wq: 0, process: 1 },
    { op: "idxd.open", wq: 0, process: 2 },
  ]);
  return broken(state);
}

const withHandle = (s: IdxdState, id: number, patch: object): IdxdState => ({
  ...s,
  handles: new Map(s.handles).set(id, { ...s.handles.get(id)!, ...patch }),
});
const withWq0 = (s: IdxdState, patch: object): IdxdState => ({
  ...s,
  wqs: [{ ...s.wqs[0], ...patch }, ...s.wqs.slice(1)],
});

Deno.test("idxd spec: each invariant catches the state that breaks it", () => {
  const cases: [string, (s: IdxdState) => IdxdState][] = [
    ["idxd.owned-once", (s) => withHandle(s, 2, { kind: "kernel", process: null, pasid: null })],
    ["idxd.no-switch-while-owned", (s) => withWq0(s, { use: "guest" })],
    ["idxd.dedicated-one-client", (s) => withWq0(s, { mode: "dedicated", pasid: 12 })],
    ["idxd.shared-distinct-pasids", (s) => withHandle(s, 2, { pasid: 11 })],
    ["idxd.disabled-no-clients", (s) => withWq0(s, { state: "disabled" })],
    ["idxd.client-count", (s) => withWq0(s, { clients: 3 })],
    [
      "idxd.dedicated-pasid",
      (s) => withHandle(withWq0(s, { mode: "dedicated" }), 2, { attached: false }),
    ],
  ];
  for (const [name, broken] of cases) {
    const names = checkIdxdInvariants(brokenState(broken)).map((v) => v.slice(0, v.indexOf(":")));
    assert.ok(names.includes(name), `${name} not among ${names.join(", ") || "none"}`);
  }
});

Deno.test("idxd impl: the device's WQCFG PASID is the dedicated WQ's client's, cleared at close", async () => {
  const impl = new IdxdAdapter();
  for (const cmd of [...setUp(0, "user", "dedicated"), { op: "idxd.open", wq: 0, process: 3 }]) {
    await impl.exec(cmd as IdxdCommand);
  }
  assert.equal(impl.driver.device.wqcfg[0].pasid, 13);
  assert.equal(impl.driver.device.wqcfg[0].enabled, true);
  await impl.exec({ op: "idxd.close", file: 1 });
  assert.equal(impl.driver.device.wqcfg[0].pasid, null);
  await impl.exec({ op: "idxd.disable", wq: 0 });
  assert.equal(impl.driver.device.wqcfg[0].enabled, false);
});

const scenarios = new URL("../fixtures/race-scenarios/", import.meta.url);

for (const entry of Deno.readDirSync(scenarios)) {
  if (!entry.name.startsWith("idxd-race-")) continue;
  Deno.test(`race scenario ${entry.name} is broken by cdevOpenWithoutWqLock`, async () => {
    const trace = parseTrace(await Deno.readTextFile(new URL(entry.name, scenarios)), machineNamed);
    assert.equal(trace.machine, idxdMachine);
    const invariant = /with quirk cdevOpenWithoutWqLock: .*\((idxd\.[a-z-]+)\)$/.exec(
      trace.meta.violation ?? "",
    )?.[1];
    assert.ok(invariant, `no invariant named in ${trace.meta.violation}`);
    const failures = new Set<string>();
    for (let seed = 1; seed <= 300; seed++) {
      const r = await runRace(idxdMachine, trace.meta.race!, prngDriver(seed), {
        quirks: { cdevOpenWithoutWqLock: true },
      });
      if (r.failure) failures.add(r.failure.slice(0, r.failure.indexOf(":")));
    }
    assert.ok(failures.has(`invariant ${invariant}`), [...failures].join("; ") || "no failure");
  });
}
