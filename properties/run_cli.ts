/** Runs a warpspec CLI the way a user does, for the tests (not a test file itself). */

const root = new URL("..", import.meta.url).pathname;

/** Runs `model/cli/<name>.ts` with `args`: its exit code and what it printed. */
export async function runCli(name: string, ...args: string[]) {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", `${root}model/cli/${name}.ts`, ...args],
    env: { DENO_NO_PACKAGE_JSON: "1" },
    stdout: "piped",
    stderr: "piped",
  }).output();
  const dec = new TextDecoder();
  return { code: out.code, stdout: dec.decode(out.stdout), stderr: dec.decode(out.stderr) };
}
