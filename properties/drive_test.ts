/**
 * `drive` against the outside implementations in examples/: the C QM ring (built here with the
 * system `cc`) and the Python IOMMU/type1 world. Each correct one passes `drive` and the trace
 * of its longest run passes `oracle`; each planted defect is found, and the counterexample
 * written is one `oracle` rejects. A crashing or babbling implementation is a divergence with
 * one clear line, bad usage exit 2.
 */
import assert from "node:assert/strict";
import { testSeed } from "../model/seed.ts";
import { runCli } from "./run_cli.ts";

const root = new URL("..", import.meta.url).pathname;

function has(cmd: string): boolean {
  try {
    return new Deno.Command(cmd, { args: ["--version"], stdout: "null", stderr: "null" })
      .outputSync().success;
  } catch {
    return false;
  }
}

const haveCc = has("cc");
if (!haveCc) console.log("drive_test: no cc on this machine: the C example's tests are skipped");
if (!has("python3")) {
  console.log("drive_test: no python3 on this machine: the Python example's tests are skipped");
}

/** Builds examples/qm_ring/qm_ring.c into `dir`; returns the binary's path. */
async function buildQmRing(dir: string): Promise<string> {
  const bin = `${dir}/qm_ring`;
  const cc = await new Deno.Command("cc", {
    args: ["-O2", "-Wall", "-Werror", "-o", bin, `${root}examples/qm_ring/qm_ring.c`, "-lm"],
  }).output();
  assert.equal(cc.code, 0, new TextDecoder().decode(cc.stderr));
  return bin;
}

/** Drives `impl` on `machine`; the exit code, output, and where the counterexample went. */
async function drive(machine: string, runs: number, dir: string, ...impl: string[]) {
  const trace = `${dir}/longest.itf.json`;
  const r = await runCli(
    "drive",
    "--machine",
    machine,
    "--runs",
    String(runs),
    "--seed",
    String(testSeed()),
    "--out",
    dir,
    "--trace",
    trace,
    "--",
    ...impl,
  );
  const counterexample = /written to (\S+\.itf\.json)/.exec(r.stdout)?.[1];
  return { ...r, trace, counterexample };
}

/** The correct implementation passes, and so does its longest run's trace before the oracle. */
async function passes(machine: string, impl: string[]) {
  const dir = await Deno.makeTempDir();
  const r = await drive(machine, 150, dir, ...impl);
  assert.equal(r.code, 0, r.stdout + r.stderr);
  assert.match(r.stdout, /passed: 150 runs.*judged: ret, events and state/);
  const o = await runCli("oracle", r.trace);
  assert.equal(o.code, 0, o.stdout + o.stderr);
  assert.match(o.stdout, /steps conform to the spec/);
}

/** The defect is found: exit 1, a counterexample the oracle rejects too. */
async function finds(machine: string, impl: string[], divergence: RegExp) {
  const dir = await Deno.makeTempDir();
  const r = await drive(machine, 2000, dir, ...impl);
  assert.equal(r.code, 1, r.stdout + r.stderr);
  assert.match(r.stdout, divergence);
  assert.ok(r.counterexample, r.stdout);
  const o = await runCli("oracle", r.counterexample);
  assert.equal(o.code, 1, o.stdout + o.stderr);
  assert.match(o.stdout, /FIRST DIVERGENCE/);
}

Deno.test({
  name: "drive: the C QM ring example",
  ignore: !haveCc,
  async fn(t) {
    const bin = await buildQmRing(await Deno.makeTempDir());
    await t.step("the correct ring passes drive and oracle", () => passes("qm", [bin]));
    await t.step(
      "--bug no-phase-flip is found",
      () => finds("qm", [bin, "--bug", "no-phase-flip"], /qm\.poll.*phase/),
    );
    await t.step(
      "--bug full-ring is found",
      () => finds("qm", [bin, "--bug", "full-ring"], /send.*spec \{"err":"(ENOSPC|EBUSY)"\}/),
    );
  },
});

Deno.test({
  name: "drive: the Python IOMMU/type1 example",
  ignore: !has("python3"),
  async fn(t) {
    const py = ["python3", `${root}examples/type1_py/type1.py`];
    await t.step("the correct world passes drive and oracle", () => passes("type1", py));
    await t.step("--bug keep-mappings-on-detach is found", () =>
      finds(
        "type1",
        [...py, "--bug", "keep-mappings-on-detach"],
        /type1\.(detach|closeGroup).*state differs at \$\.iommu\.domains/,
      ));
  },
});

Deno.test("drive: a crash, a malformed answer, a hang are divergences, one line each", async () => {
  const dir = await Deno.makeTempDir();
  const sh = (script: string) => ["sh", "-c", script];
  const cases: [string[], RegExp][] = [
    [
      sh("read l; echo '{\"ready\":true}'; read l; echo oops >&2; exit 3"),
      /exited with code 3; stderr: oops/,
    ],
    [sh("while read l; do echo nope; done"), /malformed JSON in the answer to reset: "nope"/],
    [sh("while read l; do echo '{\"ready\":true}'; done"), /has no "ret"/],
    [sh("read l; exec sleep 5"), /no answer within 1\.0 s/],
  ];
  for (const [impl, message] of cases) {
    const r = await runCli(
      "drive",
      "--machine",
      "qm",
      "--runs",
      "3",
      "--timeout",
      "1",
      "--out",
      dir,
      "--",
      ...impl,
    );
    assert.equal(r.code, 1, r.stdout + r.stderr);
    assert.match(r.stdout, message);
    assert.doesNotMatch(r.stdout + r.stderr, /\n\s+at /); // no stack trace
  }
});

Deno.test("drive: bad usage is one line and exit 2", async () => {
  const cases: [string[], RegExp][] = [
    [["--", "true"], /--machine is required/],
    [["--machine", "nope", "--", "true"], /unknown machine "nope"/],
    [["--machine", "qm"], /no implementation to drive/],
    [["--machine", "qm", "--", "/nonexistent/impl"], /cannot start \/nonexistent\/impl/],
    [["--machine", "qm", "--ops", "qm.nope", "--", "true"], /--ops: qm has no op "qm.nope"/],
    [["--machine", "qm", "--runs", "0", "--", "true"], /--runs must be at least 1/],
    [["--machine", "qm", "--out", "/proc/nope", "--", "true"], /--out: cannot write/],
  ];
  for (const [args, message] of cases) {
    const r = await runCli("drive", ...args);
    assert.equal(r.code, 2, `${args.join(" ")}: ${r.stdout}${r.stderr}`);
    assert.match(r.stderr, message);
    assert.equal(r.stderr.trim().split("\n").length, 1, r.stderr);
  }
});
