/**
 * Op × result coverage of the machine suites (`check --coverage`): how often each op of a
 * machine returned ok and each errno, counted from the spec's return values (the spec says what
 * happened) over the generated commands of sequential runs and races alike (the machine's
 * prelude is left out), plus the ops of the machine's command schema never generated and those
 * that only ever failed. Collected only when a suite is given a {@link Coverage}.
 *
 * @module
 */
import type { Ret } from "../spec/types.ts";
import type { Machine } from "./machine.ts";

/** A tally of spec results per op: op → `ok` or errno → count. */
export class Coverage {
  /** The counts so far. */
  readonly counts: Map<string, Map<string, number>> = new Map();

  /** Counts one executed command `op` whose spec result was `ret`. */
  record(op: string, ret: Ret): void {
    const result = "ok" in ret ? "ok" : ret.err;
    let row = this.counts.get(op);
    if (!row) this.counts.set(op, row = new Map());
    row.set(result, (row.get(result) ?? 0) + 1);
  }

  /** Commands counted. */
  total(): number {
    let n = 0;
    for (const row of this.counts.values()) for (const c of row.values()) n += c;
    return n;
  }
}

/** One machine's coverage as plain data (what `--coverage FILE` writes). */
export interface MachineCoverage {
  /** Generated commands counted. */
  readonly commands: number;
  /** Op → result → count; results `ok` first, then errnos by descending count. */
  readonly ops: Readonly<Record<string, Readonly<Record<string, number>>>>;
  /** Ops of the machine's schema that were never generated. */
  readonly neverGenerated: readonly string[];
  /** Ops that were generated but never returned ok. */
  readonly onlyErrors: readonly string[];
}

/** The coverage of `machine` as plain data. */
export function summarize(machine: Machine, coverage: Coverage): MachineCoverage {
  const schema = Object.keys(machine.schema);
  const seen = [...coverage.counts.keys()];
  const order = [
    ...schema.filter((op) => coverage.counts.has(op)),
    ...seen.filter((op) => !schema.includes(op)),
  ];
  const ops = Object.fromEntries(order.map((op) => {
    const row = [...coverage.counts.get(op)!].sort(([a, m], [b, n]) =>
      a === "ok" ? -1 : b === "ok" ? 1 : n - m || a.localeCompare(b)
    );
    return [op, Object.fromEntries(row)];
  }));
  return {
    commands: coverage.total(),
    ops,
    neverGenerated: schema.filter((op) => !coverage.counts.has(op)),
    onlyErrors: order.filter((op) => !coverage.counts.get(op)!.has("ok")),
  };
}

/**
 * The coverage table as text: per machine a heading, one line per op
 * (`sdmdev.mmap  ok 4123  EINVAL 812`), then the ops never generated and those never ok.
 */
export function formatCoverage(machines: Readonly<Record<string, MachineCoverage>>): string[] {
  const lines: string[] = [];
  for (const [name, c] of Object.entries(machines)) {
    lines.push("", `coverage ${name}: ${c.commands} generated commands (spec results)`);
    const width = Math.max(0, ...Object.keys(c.ops).map((op) => op.length));
    for (const [op, row] of Object.entries(c.ops)) {
      const cells = Object.entries(row).map(([result, n]) => `${result} ${n}`);
      lines.push(`  ${op.padEnd(width)}  ${cells.join("  ")}`);
    }
    lines.push(`  never generated: ${c.neverGenerated.join(", ") || "-"}`);
    lines.push(`  never ok: ${c.onlyErrors.join(", ") || "-"}`);
  }
  return lines;
}
