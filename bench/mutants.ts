/**
 * `deno run -A bench/mutants.ts [--repo DIR] [--only ID,...] [--out FILE]`: the kill rate of
 * the test suite on hand-written defects of the simulated system.
 *
 * Each mutant of `bench/mutants.json` is one plausible defect in `impl/` (an off-by-one at a
 * ring or range edge, a missing lock or re-check, a leak on an error path, a wrong teardown
 * order, a field encoded wrongly at its edge, an IOMMU allocation edge, a DEFLATE slow path).
 * For each, in a clone of the repository (default `/tmp/mutants/repo`; never the working tree
 * this script lives in), the script replaces its `find` text, which must occur exactly once
 * (else "stale"), runs `deno check impl` (a mutant that does not type-check is "invalid"),
 * then the test suite, `deno test -A --parallel --fail-fast properties/`: a failing suite
 * kills the mutant, a passing one lets it survive, and one still running after 15 minutes is
 * a hang ("timeout", counted as killed). A kill counts only if the first failing test fails
 * again when run alone (the seeds are fixed; a wall-clock assertion can fail on a loaded
 * machine): otherwise the suite runs once more, and a second unconfirmed failure is "flaky",
 * not counted. The file is restored byte for byte afterwards, whatever happened. The table
 * gives each verdict and its seconds (the JSON also the failing test); the kill rate is
 * killed / (killed + survived), overall and per class.
 *
 * Limits: this measures `npm test`'s kill rate on OUR mutants, written knowing the code and
 * the tests; the reviewers' private set is another sample and may score differently. Equivalent
 * mutants (no observable difference) count as survivors. The suite is property-based with a
 * fixed seed, so a verdict holds for that seed only. Mutants run one at a time.
 *
 * @module
 */

/** One hand-written defect. */
interface Mutant {
  readonly id: string;
  readonly class: string;
  readonly file: string;
  readonly find: string;
  readonly replace: string;
  readonly why: string;
}

type Verdict = "killed" | "survived" | "timeout" | "flaky" | "stale" | "invalid";

/** What running the suite against one mutant gave. */
interface Result {
  readonly id: string;
  readonly class: string;
  readonly verdict: Verdict;
  readonly seconds: number;
  /** The first failing test (killed) or the type error (invalid), if any was seen. */
  readonly detail?: string;
}

const TEST_TIMEOUT_MS = 15 * 60 * 1000;
const SUITE = ["test", "-A", "--parallel", "--fail-fast", "properties/"];
/** Suite runs per mutant while the failing test does not fail again when run alone. */
const ATTEMPTS = 2;
const here = new URL("..", import.meta.url).pathname;

/** Puts the file under mutation back; also on Ctrl-C or SIGTERM. */
let restore = () => {};
/** The deno process running now (in its own process group). */
let running: Deno.ChildProcess | undefined;

function killGroup(child: Deno.ChildProcess): void {
  try {
    Deno.kill(-child.pid, "SIGKILL");
  } catch {
    child.kill("SIGKILL");
  }
}

for (const signal of ["SIGINT", "SIGTERM"] as const) {
  Deno.addSignalListener(signal, () => {
    if (running) killGroup(running);
    restore();
    Deno.exit(130);
  });
}

function flag(name: string): string | undefined {
  const i = Deno.args.indexOf(name);
  return i < 0 ? undefined : Deno.args[i + 1];
}

/** Runs deno with `args` in `cwd` (killing its process group after `timeoutMs`). */
async function deno(cwd: string, args: string[], timeoutMs: number) {
  const child = new Deno.Command(Deno.execPath(), {
    args,
    cwd,
    env: { DENO_NO_PACKAGE_JSON: "1", NO_COLOR: "1" },
    stdout: "piped",
    stderr: "piped",
    detached: true, // its own process group: the tests spawn CLIs of their own
  }).spawn();
  running = child;
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    killGroup(child);
  }, timeoutMs);
  const out = await child.output();
  clearTimeout(timer);
  running = undefined;
  const text = new TextDecoder().decode(out.stdout) + new TextDecoder().decode(out.stderr);
  return { code: out.code, timedOut, text };
}

/**
 * Whether the failure `detail` names (`./FILE => TEST ... FAILED`) happens again with that test
 * run alone: the suite's seeds are fixed, so a kill by the mutant does, while a test that only
 * failed on a loaded machine (a wall-clock assertion) usually does not. A failure that names
 * no test (a module that does not load) counts as reproduced.
 */
async function reproduces(repo: string, detail: string | undefined): Promise<boolean> {
  const named = detail?.match(/^(\S+) => (.*?) \.\.\. /);
  if (!named) return true;
  const args = ["test", "-A", "--filter", named[2], named[1]];
  return (await deno(repo, args, TEST_TIMEOUT_MS)).code !== 0;
}

/** The first line of `text` matching `re`, trimmed. */
function firstLine(text: string, re: RegExp): string | undefined {
  return text.split("\n").find((l) => re.test(l))?.trim();
}

async function runMutant(repo: string, m: Mutant): Promise<Result> {
  const path = `${repo}/${m.file}`;
  const original = await Deno.readFile(path);
  const text = new TextDecoder().decode(original);
  const base = { id: m.id, class: m.class };
  if (text.split(m.find).length !== 2) return { ...base, verdict: "stale", seconds: 0 };
  const start = performance.now();
  const seconds = () => Math.round((performance.now() - start) / 1000);
  restore = () => Deno.writeFileSync(path, original);
  try {
    await Deno.writeTextFile(path, text.replace(m.find, () => m.replace));
    const check = await deno(repo, ["check", "impl"], TEST_TIMEOUT_MS);
    if (check.code !== 0) {
      return {
        ...base,
        verdict: "invalid",
        seconds: seconds(),
        detail: firstLine(check.text, /TS\d+/),
      };
    }
    let detail: string | undefined;
    for (let attempt = 1; attempt <= ATTEMPTS; attempt++) {
      const test = await deno(repo, SUITE, TEST_TIMEOUT_MS);
      if (test.timedOut) return { ...base, verdict: "timeout", seconds: seconds() };
      if (test.code === 0) return { ...base, verdict: "survived", seconds: seconds() };
      detail = firstLine(test.text, /=> .* FAILED|^error:/);
      if (await reproduces(repo, detail)) {
        return { ...base, verdict: "killed", seconds: seconds(), detail };
      }
    }
    return { ...base, verdict: "flaky", seconds: seconds(), detail };
  } finally {
    restore();
    restore = () => {};
  }
}

function rate(rs: readonly Result[]): string {
  const killed = rs.filter((r) => r.verdict === "killed" || r.verdict === "timeout").length;
  const counted = killed + rs.filter((r) => r.verdict === "survived").length;
  return counted === 0 ? "n/a" : `${killed}/${counted} = ${(100 * killed / counted).toFixed(1)}%`;
}

if (import.meta.main) {
  const repo = Deno.realPathSync(flag("--repo") ?? "/tmp/mutants/repo");
  if (repo === Deno.realPathSync(here)) {
    console.error(`mutants: refusing to mutate ${repo}, the tree this script lives in; clone it`);
    Deno.exit(2);
  }
  const dirty = await new Deno.Command("git", { args: ["-C", repo, "diff", "--quiet", "impl"] })
    .output();
  if (dirty.code !== 0) {
    console.error(`mutants: ${repo}/impl has uncommitted changes (an interrupted run?)`);
    Deno.exit(2);
  }
  const all: Mutant[] = JSON.parse(await Deno.readTextFile(`${here}bench/mutants.json`));
  const only = flag("--only")?.split(",");
  const chosen = only ? all.filter((m) => only.includes(m.id)) : all;
  const started = performance.now();
  const results: Result[] = [];
  for (const m of chosen) {
    const r = await runMutant(repo, m);
    const detail = r.detail ? `  (${r.detail})` : "";
    console.log(`${r.verdict.padEnd(8)} ${String(r.seconds).padStart(4)}s  ${m.id}${detail}`);
    results.push(r);
  }
  const wall = Math.round((performance.now() - started) / 1000);
  console.log(`\n${"id".padEnd(42)} ${"class".padEnd(16)} ${"verdict".padEnd(8)} seconds`);
  for (const r of results) {
    console.log(`${r.id.padEnd(42)} ${r.class.padEnd(16)} ${r.verdict.padEnd(8)} ${r.seconds}`);
  }
  const classes = [...new Set(results.map((r) => r.class))];
  const perClass = Object.fromEntries(
    classes.map((c) => [c, rate(results.filter((r) => r.class === c))]),
  );
  console.log(`\nkill rate: ${rate(results)} (wall time ${wall} s)`);
  for (const c of classes) console.log(`  ${c.padEnd(16)} ${perClass[c]}`);
  const out = flag("--out");
  if (out) {
    const summary = { overall: rate(results), perClass, wallSeconds: wall, results };
    await Deno.writeTextFile(out, JSON.stringify(summary, null, 2) + "\n");
  }
}
