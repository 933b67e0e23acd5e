/**
 * `check --report junit FILE` / `--report json FILE`: every suite of the run is one test case.
 * A failed suite carries its violation, seed, fast-check path and counterexample file (JUnit:
 * a `failure` element); a suite cut short by Ctrl-C is `interrupted` (JUnit: `skipped`). A
 * report is written to a temporary file beside FILE and renamed over it, so FILE is either the
 * whole report or untouched, never half of one.
 *
 * @module
 */
import type { QuirkName } from "../../impl/quirks.ts";
import { RunError } from "../cli/common.ts";
import type { Shard } from "./plan.ts";

/** A counterexample, where it went and how to reproduce it. */
export interface FailureInfo {
  /** What was violated (first line). */
  readonly violation: string;
  /** The seed it was found with. */
  readonly seed: number;
  /** fast-check's path to it (absent for fuzzers and exceptions outside a command). */
  readonly path?: string;
  /** fc.commands' replay path (sequential suites). */
  readonly replayPath?: string;
  /** The counterexample file. */
  readonly counterexample: string;
  /** Its steps. */
  readonly length: number;
  /** The command that reproduces it from the seed and path, when there is one. */
  readonly replay?: string;
}

/** One suite's outcome. */
export interface SuiteOutcome {
  /** Suite name. */
  readonly suite: string;
  /** How it ended. */
  readonly status: "passed" | "failed" | "interrupted";
  /** Runs done (for a failure: up to it). */
  readonly runs: number;
  /** Commands executed (undefined when interrupted). */
  readonly commands?: number;
  /** Wall time from its first piece's start to its verdict, in milliseconds. */
  readonly ms: number;
  /** The failure, when it failed. */
  readonly failure?: FailureInfo;
}

/** A whole check run. */
export interface CheckOutcome {
  /** The seed. */
  readonly seed: number;
  /** `--quirk`s. */
  readonly quirks: readonly QuirkName[];
  /** Race scheduler. */
  readonly sched: "random" | "pct";
  /** `--workers`. */
  readonly workers: number;
  /** `--shard`, when given. */
  readonly shard?: Shard;
  /** `--expect-failure`. */
  readonly expectFailure: boolean;
  /** Whether Ctrl-C cut it short. */
  readonly interrupted: boolean;
  /** When it started. */
  readonly started: Date;
  /** Wall time in milliseconds. */
  readonly wallMs: number;
  /** Each suite of this run (of this shard), in suite order. */
  readonly suites: readonly SuiteOutcome[];
}

/** Report formats. */
export const REPORT_FORMATS = ["junit", "json"] as const;

/** A report format. */
export type ReportFormat = (typeof REPORT_FORMATS)[number];

/**
 * `s` as XML character data or attribute value: markup characters escaped, and characters XML
 * 1.0 cannot carry at all (controls other than tab/newline/return, lone surrogates, U+FFFE/F)
 * replaced by U+FFFD.
 */
export function xmlEscape(s: string): string {
  return s
    .replace(/[^\t\n\r\u0020-\uD7FF\uE000-\uFFFD\u{10000}-\u{10FFFF}]/gu, "\uFFFD")
    .replace(/&/g, "&amp;")
    .replace(/</g, "&lt;")
    .replace(/>/g, "&gt;")
    .replace(/"/g, "&quot;")
    .replace(/'/g, "&apos;")
    .replace(/\r/g, "&#13;");
}

/** `name="value"` pairs, escaped (tabs and newlines too, which attributes would not keep). */
function attrs(pairs: Record<string, string | number>): string {
  const value = (v: string | number) =>
    xmlEscape(String(v)).replace(/\n/g, "&#10;").replace(/\t/g, "&#9;");
  return Object.entries(pairs).map(([k, v]) => ` ${k}="${value(v)}"`).join("");
}

/** Seconds, as JUnit writes them. */
function secs(ms: number): string {
  return (ms / 1000).toFixed(3);
}

/** The failure's details, one per line. */
function failureText(f: FailureInfo): string {
  return [
    `violation: ${f.violation}`,
    `seed: ${f.seed}`,
    ...(f.path === undefined ? [] : [`path: ${f.path}`]),
    ...(f.replayPath === undefined ? [] : [`replay path: ${f.replayPath}`]),
    `counterexample: ${f.counterexample} (${f.length} steps)`,
    `replay: npm run replay -- ${f.counterexample}`,
    ...(f.replay === undefined ? [] : [`replay from the seed: ${f.replay}`]),
  ].join("\n");
}

/** The run's name in reports (with the shard, so that the shards' reports can sit side by side). */
function runName(o: CheckOutcome): string {
  return o.shard ? `warpspec check (shard ${o.shard.index}/${o.shard.count})` : "warpspec check";
}

/** The run as JUnit XML: one testsuite, a testcase per suite. */
export function junitXml(o: CheckOutcome): string {
  const failures = o.suites.filter((s) => s.status === "failed").length;
  const skipped = o.suites.filter((s) => s.status === "interrupted").length;
  const counts = { tests: o.suites.length, failures, errors: 0, skipped, time: secs(o.wallMs) };
  const props = {
    seed: o.seed,
    quirks: o.quirks.join(","),
    sched: o.sched,
    workers: o.workers,
    shard: o.shard ? `${o.shard.index}/${o.shard.count}` : "",
    "expect-failure": String(o.expectFailure),
    interrupted: String(o.interrupted),
  };
  const lines = [
    `<?xml version="1.0" encoding="UTF-8"?>`,
    `<testsuites${attrs({ name: runName(o), ...counts })}>`,
    `  <testsuite${
      attrs({ name: runName(o), ...counts, timestamp: o.started.toISOString().slice(0, 19) })
    }>`,
    `    <properties>`,
    ...Object.entries(props).map(([name, value]) => `      <property${attrs({ name, value })}/>`),
    `    </properties>`,
  ];
  for (const s of o.suites) {
    const head = `    <testcase${
      attrs({ classname: "warpspec.check", name: s.suite, time: secs(s.ms) })
    }`;
    const counts = s.commands === undefined
      ? `${s.runs} runs before the interrupt`
      : `${s.runs} runs, ${s.commands} commands`;
    const out = `      <system-out>${xmlEscape(counts)}</system-out>`;
    if (s.status === "passed") {
      lines.push(`${head}>`, out, `    </testcase>`);
    } else if (s.status === "interrupted") {
      lines.push(`${head}>`, `      <skipped message="interrupted"/>`, out, `    </testcase>`);
    } else {
      const f = s.failure!;
      lines.push(
        `${head}>`,
        `      <failure${attrs({ message: f.violation, type: "counterexample" })}>${
          xmlEscape(failureText(f))
        }</failure>`,
        out,
        `    </testcase>`,
      );
    }
  }
  lines.push(`  </testsuite>`, `</testsuites>`);
  return lines.join("\n") + "\n";
}

/** The run as JSON (version 1). */
export function jsonReport(o: CheckOutcome): string {
  const count = (status: SuiteOutcome["status"]) =>
    o.suites.filter((s) => s.status === status).length;
  return JSON.stringify(
    {
      version: 1,
      seed: o.seed,
      quirks: o.quirks,
      sched: o.sched,
      workers: o.workers,
      shard: o.shard ?? null,
      expectFailure: o.expectFailure,
      interrupted: o.interrupted,
      started: o.started.toISOString(),
      seconds: o.wallMs / 1000,
      passed: count("passed"),
      failed: count("failed"),
      interruptedSuites: count("interrupted"),
      suites: o.suites.map((s) => ({
        suite: s.suite,
        status: s.status,
        runs: s.runs,
        commands: s.commands ?? null,
        seconds: s.ms / 1000,
        failure: s.failure ?? null,
      })),
    },
    null,
    1,
  ) + "\n";
}

/** Writes `text` to `file` whole (temporary file, then rename), or a {@link RunError}. */
export async function writeReport(file: string, text: string): Promise<void> {
  const tmp = `${file}.${Deno.pid}.tmp`;
  try {
    await Deno.writeTextFile(tmp, text);
    await Deno.rename(tmp, file);
  } catch (e) {
    await Deno.remove(tmp).catch(() => {});
    throw new RunError(`--report: cannot write ${file}: ${(e as Error).message}`);
  }
}
