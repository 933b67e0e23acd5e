/**
 * `replay --html`: every fixture renders to a self-contained page with its lanes and, where
 * the run drawn fails, the violating step highlighted; the divergence, the race history, long
 * arguments and sentinels are on the page; the CLI writes the page besides its text output,
 * fails loudly when it cannot, and refuses bad usage with one line. Headless Chromium (when
 * installed; CI installs it) opens one page and finds the lanes and the highlighted step.
 */
import assert from "node:assert/strict";
import { machineNamed } from "../model/machines.ts";
import { quirkSwitches, replayTrace } from "../model/replay.ts";
import { type MachineTrace, parseTrace } from "../model/trace.ts";
import { replayPage } from "../model/view/page.ts";
import { runCli } from "./run_cli.ts";

const root = new URL("..", import.meta.url).pathname;
const fixtures = ["counterexamples", "race-scenarios", "regressions"].flatMap((dir) =>
  [...Deno.readDirSync(`${root}fixtures/${dir}`)].map((e) => `${root}fixtures/${dir}/${e.name}`)
).sort();

function load(file: string): MachineTrace {
  return parseTrace(Deno.readTextFileSync(file), machineNamed);
}

/** The page `replay FILE --html` writes, rendered in-process. */
async function render(file: string): Promise<string> {
  const trace = load(file);
  const result = await replayTrace(trace, quirkSwitches(trace.meta.quirks), true);
  return replayPage(file, trace, result, trace.meta.quirks.join(", ") || "none");
}

function lanes(page: string): string[] {
  return [...page.matchAll(/<g class="lane" data-lane="([^"]*)"/g)].map((m) => m[1]);
}

const count = (page: string, text: string) => page.split(text).length - 1;

Deno.test("every fixture renders: lanes, the highlighted step, nothing from the network", async (t) => {
  assert.ok(fixtures.length >= 30, `only ${fixtures.length} fixtures`);
  for (const file of fixtures) {
    await t.step(file.slice(root.length), async () => {
      const trace = load(file);
      const page = await render(file);
      assert.match(page, /^<!DOCTYPE html>/);
      assert.doesNotMatch(page, /<(script|link|img|iframe)\b|url\(http|src=/);
      assert.equal(
        page.replace(/xmlns="http:\/\/www\.w3\.org\/2000\/svg"/g, "").match(/https?:/),
        null,
      );
      const drawn = lanes(page);
      // A race that deadlocked completed no operation: nothing to draw on lanes.
      if (trace.steps.length === 0) return;
      assert.ok(drawn.length >= 2, `lanes: ${drawn}`);
      if (trace.meta.mode === "race") {
        const actors = new Set(trace.meta.race!.actors.map((a) => a.name));
        const onLanes = drawn.filter((l) => actors.has(l));
        assert.ok(onLanes.length >= 2, `race actors on lanes: ${onLanes}`);
        assert.match(page, /<section id="history">/);
      }
      // A regression or race scenario passes now: the failure it once was is marked where its
      // message names a step (or the spec refuses the recorded trace), nothing otherwise.
      const fixed = file.includes("/regressions/") || file.includes("/race-scenarios/");
      if (fixed) {
        assert.ok(count(page, 'id="violation"') <= 1, "at most one highlighted step");
      } else if (trace.meta.violation !== undefined) {
        assert.equal(count(page, 'id="violation"'), 1, "one highlighted step");
        assert.match(page, /<g class="step violation[^"]*" id="violation">/);
      }
    });
  }
});

Deno.test("a sequential page: lanes per actor and component, the step, the state diff", async () => {
  const file = `${root}fixtures/counterexamples/unshareUnderflow.itf.json`;
  const page = await render(file);
  // Lanes in order of first use: the prelude's kernel DMA buffer comes first.
  assert.deepEqual(lanes(page), ["kernel", "pid 1", "pid 2", "IOMMU", "VFIO type1"]);
  const last = load(file).steps.length; // the unshare that underflows ends the trace
  const step = page.match(/<g class="step violation" id="violation"><title>([^<]*)</)?.[1];
  assert.match(step ?? "", new RegExp(`^${last}: kernel → .*iommu\\.unshare`));
  assert.match(
    page,
    new RegExp(`<tr class="violation" id="violation-row"><td>${last}</td><td>kernel</td>`),
  );
  assert.match(
    page,
    /<th>state at \$\.iommu\.groups\[\d+\]\.shares\[1\]<\/th><td>absent<\/td><td>-1<\/td>/,
  );
  const qm = await render(`${root}fixtures/counterexamples/kernelConsumesUserCq.itf.json`);
  for (const lane of ["kernel", "pid 1", "device", "IRQ thread", "QM"]) {
    assert.ok(lanes(qm).includes(lane), `${lane} in ${lanes(qm)}`);
  }
  assert.match(qm, /state at \$\.qps\[1\]\.cqDoorbell/);
});

Deno.test("a race page: the history, the longest linearizable prefix, the failing operation", async () => {
  const page = await render(`${root}fixtures/counterexamples/shareWithoutGroupLock.itf.json`);
  const prefix = /Longest linearizable prefix \((\d+) of (\d+) operations/.exec(page);
  assert.ok(prefix && Number(prefix[1]) < Number(prefix[2]), "a prefix short of the history");
  assert.equal(count(page, 'class="op linearized"'), Number(prefix[1]));
  assert.match(page, /<g class="op violation" id="violation-history"><title>actor\d#\d /);
  assert.match(page, /<g class="failed-at">/);
  const regression = await render(`${root}fixtures/regressions/sdmdev-race-close-vs-open.itf.json`);
  assert.match(
    regression,
    /the recorded trace, judged by the spec alone \(the replay passes now\)/,
  );
  assert.match(regression, /<p class="verdict">the replay passes/);
  assert.equal(count(regression, 'class="op linearized"'), 4, "its whole history linearizes");
});

Deno.test("long arguments abbreviated with the full value in the title; sentinels explained", async () => {
  const trace = load(`${root}fixtures/counterexamples/sampleZlibHeaderOnly.itf.json`);
  const data = (trace.steps[0].cmd as unknown as { data: string }).data;
  const page = await render(`${root}fixtures/counterexamples/sampleZlibHeaderOnly.itf.json`);
  assert.ok(data.length > 100);
  assert.ok(page.includes(`<span class="abbr" title="${data}">`), "full hex in a title");
  assert.match(
    page,
    new RegExp(`${data.slice(0, 16)}…${data.slice(-8)} \\(${data.length / 2} bytes\\)`),
  );
  assert.match(page, /<abbr class="sentinel" title="the output is not exactly one valid stream/);
  const qm = await render(`${root}fixtures/counterexamples/userSqHeadFromCqHead.itf.json`);
  assert.match(qm, /seq=<abbr class="sentinel" title="no request recorded in that SQ slot/);
  assert.match(qm, /<section id="sentinels">.*<code>owner=&#34;kernel&#34;<\/code>/s);
});

Deno.test("values from the trace are escaped, in the diagram, the tables and the titles", async () => {
  const file = `${root}fixtures/counterexamples/putQueueStraySemicolon.itf.json`;
  const json = JSON.parse(await Deno.readTextFile(file));
  const evil = `<img src=x onerror="alert('x')">&`;
  json.states.at(-1)["mbt::nondetPicks"].uuid = evil;
  const copy = `${await tempDir()}/evil.itf.json`;
  await Deno.writeTextFile(copy, JSON.stringify(json));
  const page = await render(copy);
  assert.ok(!page.includes("<img"), "raw markup from the trace");
  const shown = "uuid=&#34;&#60;img src=x onerror=\\&#34;alert(&#39;x&#39;)\\&#34;&#62;&#38;&#34;";
  assert.ok(page.includes(`<td>${shown}</td>`), "the argument, JSON, escaped");
});

async function tempDir(): Promise<string> {
  return await Deno.makeTempDir({ prefix: "replay_html_" });
}

const skipUndo = `${root}fixtures/counterexamples/skipUndoOnDetach.itf.json`;

Deno.test("replay --html writes the page and still prints the text; exit codes as without", async () => {
  const dir = await tempDir();
  const failing = await runCli("replay", skipUndo, "--html", `${dir}/a.html`);
  assert.equal(failing.code, 1, failing.stderr);
  assert.match(failing.stdout, /FIRST DIVERGENCE/);
  assert.match(failing.stdout, new RegExp(`wrote ${dir}/a.html`));
  assert.match(await Deno.readTextFile(`${dir}/a.html`), /id="violation"/);
  const passing = await runCli("replay", "--no-quirk", `--html=${dir}/b.html`, skipUndo);
  assert.equal(passing.code, 0, passing.stderr);
  assert.match(passing.stdout, new RegExp(`all ${load(skipUndo).steps.length} steps conform`));
  assert.match(await Deno.readTextFile(`${dir}/b.html`), /the replay passes \(quirks: none/);
});

Deno.test("replay --html that cannot be written: one line, exit 1", async () => {
  const cases: [string, RegExp][] = [
    ["/dev/full", /^replay: error: \/dev\/full: cannot write: No space left/],
    ["/nonexistent/dir/x.html", /^replay: error: \/nonexistent\/dir\/x\.html: cannot write: /],
  ];
  for (const [out, message] of cases) {
    const r = await runCli("replay", "--no-quirk", skipUndo, "--html", out);
    assert.equal(r.code, 1, r.stderr);
    const lines = r.stderr.trim().split("\n");
    assert.equal(lines.length, 1, r.stderr);
    assert.match(lines[0], message);
  }
});

Deno.test("bad usage of --html, --minimize and --out: one line, exit 2", async (t) => {
  const cases: [string, string[], RegExp][] = [
    ["--html without a value", [skipUndo, "--html"], /--html needs a value/],
    ["--html empty", [skipUndo, "--html="], /--html needs a file name/],
    [
      "--html with --seed",
      ["--seed", "1", "--path", "0", "--html", "x.html"],
      /--html takes a trace file/,
    ],
    ["--out without --minimize", [skipUndo, "--out", "x.itf.json"], /--out goes with --minimize/],
    ["--minimize without a file", ["--minimize"], /expected one trace file/],
    ["--minimize with two files", ["--minimize", skipUndo, skipUndo], /expected one trace file/],
    ["--minimize with --no-quirk", ["--minimize", "--no-quirk", skipUndo], /no --no-quirk/],
    ["--minimize with --html", ["--minimize", skipUndo, "--html", "x.html"], /do not go together/],
    ["--minimize=value", ["--minimize=yes", skipUndo], /--minimize takes no value/],
    [
      "--minimize of no file",
      ["--minimize", "/nonexistent/t.itf.json"],
      /t\.itf\.json: no such file/,
    ],
    ["--out the trace itself", ["--minimize", skipUndo, "--out", skipUndo], /the trace itself/],
  ];
  for (const [name, args, message] of cases) {
    await t.step(name, async () => {
      const r = await runCli("replay", ...args);
      assert.equal(r.code, 2, r.stderr);
      const lines = r.stderr.trim().split("\n");
      assert.equal(lines.length, 1, r.stderr);
      assert.match(lines[0], message);
      assert.doesNotMatch(r.stderr, /\bat file:/);
    });
  }
});

function chromium(): string | undefined {
  for (const dir of (Deno.env.get("PATH") ?? "").split(":")) {
    try {
      if (Deno.statSync(`${dir}/chromium`).isFile) return `${dir}/chromium`;
    } catch {
      // not in this directory
    }
  }
  return undefined;
}

Deno.test("headless Chromium opens a page: lanes and the highlighted step in its DOM", async () => {
  const browser = chromium();
  if (!browser) {
    console.log("note: chromium is not installed here, skipping (CI installs it)");
    return;
  }
  const dir = await tempDir();
  const file = `${dir}/shareWithoutGroupLock.html`;
  const fixture = `${root}fixtures/counterexamples/shareWithoutGroupLock.itf.json`;
  assert.equal((await runCli("replay", fixture, "--html", file)).code, 1);
  const out = await new Deno.Command(browser, {
    args: [
      "--headless",
      "--disable-gpu",
      "--no-sandbox",
      `--user-data-dir=${dir}/profile`,
      "--dump-dom",
      `file://${file}`,
    ],
    stdout: "piped",
    stderr: "piped",
  }).output();
  assert.equal(out.code, 0, new TextDecoder().decode(out.stderr));
  const dom = new TextDecoder().decode(out.stdout);
  for (const lane of ["actor1", "actor2", "actor3", "IOMMU", "VFIO type1"]) {
    assert.match(dom, new RegExp(`<g class="lane" data-lane="${lane}">`));
  }
  assert.match(dom, /<g class="step violation" id="violation">/);
  assert.match(dom, /<g class="op violation" id="violation-history">/);
  assert.match(dom, /<\/html>\s*$/);
});
