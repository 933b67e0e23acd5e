/**
 * The spec as a package: a project outside this repository, with no import map or config of
 * its own, imports `spec/mod.ts` and steps the spec.
 */
import assert from "node:assert/strict";

Deno.test("spec/mod.ts imports from a directory outside the repo, with no import map", async () => {
  const dir = await Deno.makeTempDir({ prefix: "warpspec-user-" });
  try {
    const mod = new URL("../spec/mod.ts", import.meta.url).href;
    await Deno.writeTextFile(
      `${dir}/main.ts`,
      `import { initialState, qm, step } from "${mod}";\n` +
        `const r = step(initialState(), { op: "type1.setIommu", container: 1 });\n` +
        `console.log(JSON.stringify(r.ret), typeof qm.step);\n`,
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
    assert.equal(new TextDecoder().decode(out.stdout).trim(), '{"err":"EINVAL"} function');
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
    ["wd", () => spec.wd.stepWd(spec.wd.initialWdState(), bogus)],
    ["stack", () => spec.stack.stepStack(spec.stack.initialStackState(), bogus)],
    [
      "zipcrypto",
      () => spec.zipcrypto.stepZipCrypto(spec.zipcrypto.initialZipCryptoState(), bogus),
    ],
  ];
  for (const [name, run] of steps) {
    await t.step(name, () => {
      assert.throws(run, (e) => e instanceof spec.UnknownOpError && /unknown op "/.test(e.message));
    });
  }
});
