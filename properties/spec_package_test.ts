/**
 * The spec as a package: a project outside this repository, with no import map or config of
 * its own, imports `spec/mod.ts` and steps the spec.
 */
import assert from "node:assert/strict";
import {
  checkInvariants,
  type FieldKind,
  initialState,
  PAGE_SIZE,
  SPECS,
  step,
  UnknownOpError,
} from "../spec/mod.ts";

Deno.test("spec/mod.ts imports from a directory outside the repo, with no import map", async () => {
  const dir = await Deno.makeTempDir({ prefix: "warpspec-user-" });
  try {
    const mod = new URL("../spec/mod.ts", import.meta.url).href;
    await Deno.writeTextFile(
      `${dir}/main.ts`,
      `import { initialState, qm, SPECS, step } from "${mod}";\n` +
        `const r = step(initialState(), { op: "type1.setIommu", container: 1 });\n` +
        `console.log(JSON.stringify(r.ret), typeof qm.step, Object.keys(SPECS).join());\n`,
    );
    const out = await new Deno.Command(Deno.execPath(), {
      args: ["run", "--no-lock", `${dir}/main.ts`],
      cwd: dir,
      env: { DENO_NO_PACKAGE_JSON: "1" },
      stdout: "piped",
      stderr: "piped",
    }).output();
    const stderr = new TextDecoder().decode(out.stderr);
    assert.equal(out.code, 0, stderr);
    assert.equal(
      new TextDecoder().decode(out.stdout).trim(),
      '{"err":"EINVAL"} function type1,mdev,sdmdev,qm,zipc,wdzip,stack,ioasid,idxd,uacce,wd',
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("every component's step throws the same typed error for an unknown op", async (t) => {
  const spec = await import("../spec/mod.ts");
  const bogus = { op: "nosuch.op" } as never;
  const steps: [string, () => unknown][] = [
    ["system", () => spec.step(spec.initialState(), bogus)],
    ["type1", () => spec.stepType1(spec.initialState(), { op: "type1.nosuch" } as never)],
    ["iommu", () => spec.stepIommu(spec.initialState().iommu, bogus)],
    ["mdev", () => spec.stepMdev(spec.initialMdevState(), bogus)],
    ["sdmdev", () => spec.stepSdmdev(spec.initialSdmdevWorld(), bogus)],
    ["qm", () => spec.qm.step(spec.qm.initialQmState(), bogus)],
    ["wdzip", () => spec.wdzip.stepWdzip(spec.wdzip.initialWdzipState(), bogus)],
    ["wd", () => spec.wd.stepWd(spec.wd.initialWdState(), bogus)],
    ["stack", () => spec.stack.stepStack(spec.stack.initialStackState(), bogus)],
    [
      "zipcrypto",
      () => spec.zipcrypto.stepZipCrypto(spec.zipcrypto.initialZipCryptoState(), bogus),
    ],
    ["idxd", () => spec.idxd.stepIdxd(spec.idxd.initialIdxdState(), bogus)],
  ];
  for (const [name, run] of steps) {
    await t.step(name, () => {
      assert.throws(run, (e) => e instanceof spec.UnknownOpError && /unknown op "/.test(e.message));
    });
  }
});

/** A value of each argument kind that no op accepts as meaningful. */
const PLACEHOLDER: Record<FieldKind, unknown> = {
  int: -1,
  string: "",
  bool: false,
  owner: "kernel",
  "int?": null,
  "bool?": null,
};

Deno.test("every SPECS record: the initial state holds, every op of its table steps, no other", async (t) => {
  for (const [name, spec] of Object.entries(SPECS)) {
    await t.step(name, () => {
      const s0 = spec.initial();
      assert.deepEqual(checkInvariants(spec.invariants, s0), [], "the initial state holds");
      const ops = Object.entries(spec.schema as Record<string, Record<string, FieldKind>>);
      assert.ok(ops.length > 0);
      for (const [op, fields] of ops) {
        assert.ok(op.startsWith(`${spec.component}.`) || name === "type1" || name === "stack", op);
        const args = Object.fromEntries(
          Object.entries(fields).map(([k, kind]) => [k, PLACEHOLDER[kind]]),
        );
        const r = spec.step(s0, { op, ...args });
        assert.ok("ok" in r.ret || "err" in r.ret, `${op}: ${JSON.stringify(r.ret)}`);
      }
      assert.throws(() => spec.step(s0, { op: `${spec.component}.nosuch` }), UnknownOpError);
    });
  }
});

Deno.test("step's success value has its op's type (Type1Results) at compile time", () => {
  let s = initialState();
  for (
    const cmd of [
      { op: "type1.openGroup", container: 1, group: 2 },
      { op: "type1.attach", container: 1, group: 2 },
      { op: "type1.setIommu", container: 1 },
    ] as const
  ) s = step(s, cmd).state;
  const r = step(s, { op: "type1.unmap", container: 1, iova: 0, size: PAGE_SIZE });
  assert.ok("ok" in r.ret, JSON.stringify(r.ret));
  const bytes: number = r.ret.ok;
  assert.equal(bytes, 0, "nothing was mapped");
  // @ts-expect-error: unmap's success value is a number of bytes, not a string
  const wrong: string = r.ret.ok;
  assert.equal(typeof wrong, "number");
});
