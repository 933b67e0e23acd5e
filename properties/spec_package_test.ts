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
