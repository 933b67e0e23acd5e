/**
 * `check`'s progress on stderr. On a terminal, one status line redrawn in place: suites done,
 * failures, and per running suite its runs, runs per second and the time left under its budget
 * (`--runs`, and `--seconds` when given); the lines that stay (a suite passed or failed, where
 * its counterexample went) are printed above it. Elsewhere (a pipe, a CI log) only those lines:
 * one per suite.
 *
 * @module
 */

/** A suite that is running. */
export interface RunningSuite {
  /** Suite name. */
  readonly suite: string;
  /** Runs so far. */
  readonly runs: number;
  /** Runs it will do at most. */
  readonly budget: number;
  /** Milliseconds since it started. */
  readonly elapsedMs: number;
}

/** Where the whole check is. */
export interface CheckProgress {
  /** Suites decided. */
  readonly done: number;
  /** Suites in all. */
  readonly total: number;
  /** Suites failed so far. */
  readonly failed: number;
  /** Milliseconds since the check started. */
  readonly elapsedMs: number;
  /** `--seconds`, when given. */
  readonly seconds?: number;
  /** The suites running now. */
  readonly running: readonly RunningSuite[];
}

/** `s` seconds as `42s`, `3m07s` or `1h02m`. */
export function duration(s: number): string {
  const t = Math.max(0, Math.round(s));
  if (t < 60) return `${t}s`;
  const m = Math.floor(t / 60);
  if (m < 60) return `${m}m${String(t % 60).padStart(2, "0")}s`;
  return `${Math.floor(m / 60)}h${String(m % 60).padStart(2, "0")}m`;
}

/** The time left of a running suite, in seconds, when it can be told. */
function eta(r: RunningSuite, seconds?: number): number | undefined {
  const elapsed = r.elapsedMs / 1000;
  const byTime = seconds === undefined ? Infinity : seconds - elapsed;
  const byRuns = r.runs > 0 ? (r.budget - r.runs) * elapsed / r.runs : Infinity;
  const left = Math.min(byTime, byRuns);
  return Number.isFinite(left) ? left : undefined;
}

/** The status line for `p`, cut to `width` characters. */
export function statusLine(p: CheckProgress, width: number): string {
  const head = `check: ${p.done}/${p.total} suites, ${p.failed} failed, ${
    duration(p.elapsedMs / 1000)
  }`;
  const parts = p.running.map((r) => {
    // Fuzzers report no runs until they are done.
    if (r.runs === 0) return `${r.suite} ${r.budget} runs, running ${duration(r.elapsedMs / 1000)}`;
    const rate = r.elapsedMs > 0 ? Math.round(r.runs * 1000 / r.elapsedMs) : 0;
    const left = eta(r, p.seconds);
    const etaText = left === undefined ? "" : `, ETA ${duration(left)}`;
    return `${r.suite} ${r.runs}/${r.budget} runs, ${rate} runs/s${etaText}`;
  });
  const line = [head, ...parts].join(" | ");
  return line.length <= width ? line : `${line.slice(0, Math.max(0, width - 1))}…`;
}

const encoder = new TextEncoder();

/** Writes all of `text` to stderr, ignoring a stderr that is gone. */
function writeStderr(text: string): void {
  const data = encoder.encode(text);
  try {
    for (let off = 0; off < data.length;) off += Deno.stderr.writeSync(data.subarray(off));
  } catch {
    // nowhere to report progress to
  }
}

/** The progress display: lines that stay, and on a terminal the status line under them. */
export class ProgressDisplay {
  #status = "";
  #timer: ReturnType<typeof setInterval> | undefined;

  /**
   * `tty`: whether stderr is a terminal (then `poll` is drawn every `ms` milliseconds until
   * {@link ProgressDisplay.stop}).
   */
  constructor(readonly tty: boolean, poll: () => CheckProgress, ms = 250) {
    if (!tty) return;
    this.#timer = setInterval(() => {
      const width = (() => {
        try {
          return Deno.consoleSize().columns || 100;
        } catch {
          return 100;
        }
      })();
      this.#status = statusLine(poll(), width - 1);
      writeStderr(`\r\x1b[K${this.#status}`);
    }, ms);
  }

  /** Prints a line that stays (above the status line). */
  line(text: string): void {
    writeStderr(this.tty ? `\r\x1b[K${text}\n${this.#status}` : `${text}\n`);
  }

  /** Stops redrawing and clears the status line. */
  stop(): void {
    if (this.#timer === undefined) return;
    clearInterval(this.#timer);
    this.#timer = undefined;
    writeStderr("\r\x1b[K");
    this.#status = "";
  }
}
