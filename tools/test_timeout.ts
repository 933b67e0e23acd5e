/**
 * `deno run -A tools/test_timeout.ts [DENO TEST ARGS…]`: runs `deno test` with a time limit per
 * test, which `deno test` itself lacks, so a defect that hangs a test (a loop no guard bounds, a
 * promise that never settles while a timer keeps the process alive) fails the run in bounded
 * time with the test's name instead of stalling CI. The tests run one file after another, so
 * the test that is running is the last one `deno test` announced (`name ...`); output passes
 * through unchanged. The limit is `WARPSPEC_TEST_TIMEOUT` seconds (default 300: the slowest test
 * takes about 10 s). Exit code: `deno test`'s, or 1 after a timeout.
 *
 * @module
 */

/** Seconds one test may run. */
const LIMIT_S = Number(Deno.env.get("WARPSPEC_TEST_TIMEOUT") ?? 300);
if (!Number.isFinite(LIMIT_S) || LIMIT_S <= 0) {
  console.error(`test_timeout: WARPSPEC_TEST_TIMEOUT must be a positive number of seconds`);
  Deno.exit(2);
}

/** Strips terminal colour codes. */
function plain(text: string): string {
  // deno-lint-ignore no-control-regex -- the escape character is what is matched
  return text.replace(/\x1b\[[0-9;]*m/g, "");
}

const child = new Deno.Command(Deno.execPath(), {
  args: ["test", ...Deno.args],
  stdout: "piped",
  stderr: "inherit",
  detached: true,
}).spawn();

let file = "";
let running: { name: string; since: number } | undefined;
let timedOut = false;

const watch = setInterval(() => {
  if (!running || performance.now() - running.since < LIMIT_S * 1000) return;
  timedOut = true;
  console.error(
    `\ntest_timeout: ${file}: "${running.name}" ran past ${LIMIT_S} s ` +
      `(WARPSPEC_TEST_TIMEOUT); killed`,
  );
  try {
    Deno.kill(-child.pid, "SIGKILL"); // the whole group: tests spawn CLIs
  } catch {
    child.kill("SIGKILL");
  }
}, 1000);

let pending = "";
const decoder = new TextDecoder();
const out = Deno.stdout.writable.getWriter();
for await (const chunk of child.stdout) {
  await out.write(chunk);
  pending += plain(decoder.decode(chunk, { stream: true }));
  const lines = pending.split("\n");
  pending = lines.pop()!;
  for (const line of [...lines, pending]) {
    const from = line.match(/^running \d+ tests? from (\S+)/);
    if (from) file = from[1];
    const start = line.match(/^(\S.*?) \.\.\.(.*)$/);
    if (!start) continue;
    const finished = /\b(ok|FAILED|ignored)\b/.test(start[2]);
    if (finished) running = undefined;
    else if (running?.name !== start[1]) running = { name: start[1], since: performance.now() };
  }
}
const status = await child.status;
clearInterval(watch);
out.releaseLock();
Deno.exit(timedOut ? 1 : status.code);
