/**
 * The `zip` CLI as a user meets it: output of any length reaches a file, a pipe read slowly
 * and a non-blocking pipe shared with the parent (where one write takes only what fits)
 * byte for byte.
 */
import assert from "node:assert/strict";
import { deflateSync } from "node:zlib";

const root = new URL("..", import.meta.url).pathname;
const zipCommand = [Deno.execPath(), "run", "-A", `${root}model/cli/zip.ts`];
const env = { DENO_NO_PACKAGE_JSON: "1" };

/** Runs `argv` with stdin from `file`, reading its stdout from a pipe in small, slow steps. */
async function readSlowly(argv: string[], file: string, extraEnv = {}): Promise<Uint8Array> {
  const child = new Deno.Command(argv[0], {
    args: argv.slice(1),
    env: { ...env, ...extraEnv },
    stdin: "piped",
    stdout: "piped",
    stderr: "inherit",
  }).spawn();
  const feed = (async () => {
    using f = await Deno.open(file);
    await f.readable.pipeTo(child.stdin);
  })();
  const parts: Uint8Array[] = [];
  const reader = child.stdout.getReader({ mode: "byob" });
  for (;;) {
    const { value, done } = await reader.read(new Uint8Array(16 * 1024));
    if (done) break;
    parts.push(value);
    await new Promise((r) => setTimeout(r, 1));
  }
  await feed;
  const { code } = await child.status;
  assert.equal(code, 0, `${argv.join(" ")} exited ${code}`);
  return concat(parts);
}

function concat(parts: readonly Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) out.set(p, (at += p.length) - p.length);
  return out;
}

/**
 * A parent whose stdout is a non-blocking pipe (as a shell or a test harness may leave it)
 * and a child writing through it: sets O_NONBLOCK on its fd 1 with libc's fcntl, then runs
 * the command in $CMD with inherited stdio.
 */
const NONBLOCKING_PARENT = `
const libc = Deno.dlopen("libc.so.6", { fcntl: { parameters: ["i32", "i32", "i32"], result: "i32" } });
const [F_GETFL, F_SETFL, O_NONBLOCK] = [3, 4, 0o4000];
libc.symbols.fcntl(1, F_SETFL, libc.symbols.fcntl(1, F_GETFL, 0) | O_NONBLOCK);
const [cmd, ...args] = JSON.parse(Deno.env.get("CMD"));
const io = { stdin: "inherit", stdout: "inherit", stderr: "inherit" };
Deno.exit((await new Deno.Command(cmd, { args, ...io }).output()).code);`;

Deno.test("zip -d writes all of a 2 MiB output: a file, a slow pipe, a non-blocking pipe", async (t) => {
  const text = new TextEncoder().encode(
    Array.from({ length: 70_000 }, (_, i) => `line ${i} of the WarpDrive stream\n`).join(""),
  );
  assert.ok(text.length > 2 * 1024 * 1024);
  const dir = await Deno.makeTempDir();
  const input = `${dir}/in.z`;
  await Deno.writeFile(input, deflateSync(text));
  const argv = [...zipCommand, "-d"];
  await t.step("into a file", async () => {
    const out = `${dir}/out`;
    const sh = await new Deno.Command("sh", {
      args: ["-c", `"$@" < ${input} > ${out}`, "sh", ...argv],
      env,
    }).output();
    assert.equal(sh.code, 0, new TextDecoder().decode(sh.stderr));
    assert.deepEqual(await Deno.readFile(out), text);
  });
  await t.step("into a pipe read slowly", async () => {
    assert.deepEqual(await readSlowly(argv, input), text);
  });
  await t.step({
    name: "into a non-blocking pipe shared with the parent",
    ignore: Deno.build.os !== "linux",
    fn: async () => {
      const parent = [Deno.execPath(), "eval", NONBLOCKING_PARENT];
      const out = await readSlowly(parent, input, { CMD: JSON.stringify(argv) });
      assert.equal(out.length, text.length);
      assert.deepEqual(out, text);
    },
  });
});
