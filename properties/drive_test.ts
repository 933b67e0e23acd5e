/**
 * `drive` against the outside implementations in examples/: the C QM ring (built here with the
 * system `cc`) and the Python IOMMU/type1 world. Each correct one passes `drive` and the trace
 * of its longest run passes `oracle`; each planted defect is found, and the counterexample
 * written is one `oracle` rejects. A crashing or babbling implementation is a divergence with
 * one clear line, bad usage exit 2. Requests and answers follow
 * fixtures/schemas/drive-protocol.schema.json.
 */
import assert from "node:assert/strict";
import { Ajv2020 } from "ajv/dist/2020.js";
import fc from "fast-check";
import { ERRNOS } from "../spec/types.ts";
import { DRIVE_TARGETS } from "../model/drive/driver.ts";
import { applyRequest, resetRequest } from "../model/drive/protocol.ts";
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

const schema = JSON.parse(
  await Deno.readTextFile(`${root}fixtures/schemas/drive-protocol.schema.json`),
);
const ajv = new Ajv2020({ allErrors: true, strict: false });
const validLine = ajv.compile(schema);

/** A reset, the prelude and `n` generated commands of `machine`, as request lines. */
function session(machine: string, n: number): string[] {
  const { machine: m, config } = DRIVE_TARGETS[machine];
  const cmds = fc.sample(m.commands(), { numRuns: n, seed: testSeed() });
  return [resetRequest(m.name, config), ...[...m.prelude, ...cmds].map(applyRequest)];
}

/** Every request of a session and every answer `impl` gives validate against the schema. */
async function speaksTheSchema(machine: string, impl: string[]) {
  const requests = session(machine, 200);
  const child = new Deno.Command(impl[0], { args: impl.slice(1), stdin: "piped", stdout: "piped" })
    .spawn();
  const w = child.stdin.getWriter();
  await w.write(new TextEncoder().encode(requests.join("\n") + "\n"));
  await w.close();
  const answers = new TextDecoder().decode((await child.output()).stdout).trimEnd().split("\n");
  assert.equal(answers.length, requests.length);
  for (const line of [...requests, ...answers]) {
    assert.ok(validLine(JSON.parse(line)), `${line}: ${ajv.errorsText(validLine.errors)}`);
  }
}

Deno.test("the protocol schema names every errno and drivable machine, and refuses junk", () => {
  assert.deepEqual(schema.$defs.ret.oneOf[1].properties.err.enum, ERRNOS);
  assert.deepEqual(schema.$defs.reset.properties.machine.enum, Object.keys(DRIVE_TARGETS));
  for (
    const junk of [
      { type: "apply" },
      { ret: { ok: 1, err: "EINVAL" } },
      { ret: { err: "ENOPE" } },
      { ready: false },
      { ret: { ok: 0 }, events: [{ level: "warn" }] },
    ]
  ) {
    assert.equal(validLine(junk), false, JSON.stringify(junk));
  }
});

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
    await t.step("its answers follow the protocol schema", () => speaksTheSchema("qm", [bin]));
    await t.step("the correct ring passes drive and oracle", () => passes("qm", [bin]));
    await t.step(
      "--bug no-phase-flip is found",
      () => finds("qm", [bin, "--bug", "no-phase-flip"], /qm\.poll.*phase/),
    );
    await t.step(
      "--bug full-ring is found",
      // A kernel send (ENOSPC) or a user send (EBUSY) to a full ring.
      () =>
        finds(
          "qm",
          [bin, "--bug", "full-ring"],
          /\.(s|userS)end\(.*spec \{"err":"(ENOSPC|EBUSY)"\}/,
        ),
    );
  },
});

Deno.test({
  name: "drive: the Python IOMMU/type1 example",
  ignore: !has("python3"),
  async fn(t) {
    const py = ["python3", `${root}examples/type1_py/type1.py`];
    await t.step("its answers follow the protocol schema", () => speaksTheSchema("type1", py));
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
