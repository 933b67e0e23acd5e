/**
 * The implementation under test as a child process speaking JSON lines: requests are written
 * in one batch, answers read back line by line, with a deadline. A process that exits, closes
 * its output or misses the deadline is reported as such (with the tail of its stderr), never
 * as an exception of the driver.
 *
 * @module
 */

/** Why a process could not be started: the command line is wrong (a usage error). */
export class SpawnError extends Error {}

/** What one exchange got back. */
export interface Exchange {
  /** The answer lines, in order (fewer than the requests when the process ended early). */
  readonly answers: string[];
  /** Set when the process did not answer everything: what happened to it. */
  readonly ended?: string;
}

const STDERR_TAIL = 2000;

/** `p`'s value, or undefined when it takes longer than `ms` (the timer is always cleared). */
async function within<T>(p: Promise<T>, ms: number): Promise<T | undefined> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const late = new Promise<undefined>((resolve) => {
    timer = setTimeout(() => resolve(undefined), ms);
  });
  try {
    return await Promise.race([p, late]);
  } finally {
    clearTimeout(timer);
  }
}

/** One running implementation. */
export class LineProcess {
  readonly #child: Deno.ChildProcess;
  readonly #writer: WritableStreamDefaultWriter<Uint8Array>;
  readonly #reader: ReadableStreamDefaultReader<Uint8Array>;
  readonly #decoder = new TextDecoder();
  readonly #encoder = new TextEncoder();
  #pending = "";
  #lines: string[] = [];
  #stderr = "";
  #stderrDone: Promise<void>;
  #alive = true;

  /** Starts `argv[0]` with the rest as arguments; a {@link SpawnError} if that fails. */
  constructor(argv: readonly string[]) {
    try {
      this.#child = new Deno.Command(argv[0], {
        args: argv.slice(1),
        stdin: "piped",
        stdout: "piped",
        stderr: "piped",
      }).spawn();
    } catch (e) {
      const why = e instanceof Deno.errors.NotFound
        ? "no such file or command"
        : e instanceof Deno.errors.PermissionDenied
        ? "permission denied"
        : (e as Error).message;
      throw new SpawnError(`cannot start ${argv[0]}: ${why}`);
    }
    this.#writer = this.#child.stdin.getWriter();
    this.#reader = this.#child.stdout.getReader();
    this.#stderrDone = this.#drainStderr();
  }

  /** Whether the process can still be talked to. */
  get alive(): boolean {
    return this.#alive;
  }

  async #drainStderr(): Promise<void> {
    const dec = new TextDecoder();
    try {
      for await (const chunk of this.#child.stderr) {
        this.#stderr = (this.#stderr + dec.decode(chunk, { stream: true })).slice(-STDERR_TAIL);
      }
    } catch {
      // the pipe went away with the process
    }
  }

  /** Writes `requests` (one line each) in one go and reads as many answer lines. */
  async exchange(requests: readonly string[], timeoutMs: number): Promise<Exchange> {
    const answers: string[] = [];
    if (!this.#alive) return { answers, ended: "the implementation is not running" };
    if (this.#lines.length > 0) {
      const extra = JSON.stringify(this.#lines[0].slice(0, 120));
      return { answers, ended: `the implementation wrote lines nobody asked for: ${extra}` };
    }
    const data = this.#encoder.encode(requests.join("\n") + "\n");
    let writeFailed: string | undefined;
    const written = this.#writer.write(data).catch((e) => {
      writeFailed = (e as Error).message;
    });
    let timer: ReturnType<typeof setTimeout> | undefined;
    const deadline = new Promise<"timeout">((resolve) => {
      timer = setTimeout(() => resolve("timeout"), timeoutMs);
    });
    try {
      while (answers.length < requests.length) {
        if (this.#lines.length > 0) {
          const take = this.#lines.splice(0, requests.length - answers.length);
          for (const l of take) answers.push(l);
          continue;
        }
        const r = await Promise.race([this.#reader.read(), deadline]);
        if (r === "timeout") {
          await this.kill();
          const s = (timeoutMs / 1000).toFixed(1);
          return { answers, ended: `no answer within ${s} s (killed)${this.#stderrTail()}` };
        }
        if (r.done) {
          return { answers, ended: await this.#exitReason(writeFailed) };
        }
        const parts = (this.#pending + this.#decoder.decode(r.value, { stream: true })).split("\n");
        this.#pending = parts.pop()!;
        for (const p of parts) this.#lines.push(p);
      }
    } finally {
      clearTimeout(timer);
    }
    await written;
    return { answers };
  }

  #stderrTail(): string {
    const tail = this.#stderr.trim().split("\n").slice(-3).join(" | ");
    return tail ? `; stderr: ${tail}` : "";
  }

  async #exitReason(writeFailed: string | undefined): Promise<string> {
    this.#alive = false;
    const status = await within(this.#child.status, 1000);
    await within(this.#stderrDone, 200);
    const how = status === undefined
      ? "closed its output"
      : status.signal
      ? `was killed by ${status.signal}`
      : `exited with code ${status.code}`;
    const write = writeFailed ? ` (writing to it failed: ${writeFailed})` : "";
    return `the implementation ${how}${write}${this.#stderrTail()}`;
  }

  /** Kills the process and waits for it. */
  async kill(): Promise<void> {
    if (this.#alive) {
      this.#alive = false;
      try {
        this.#child.kill("SIGKILL");
      } catch {
        // already gone
      }
    }
    await this.#child.status;
    // A grandchild may still hold stderr open: do not wait for it.
    await within(this.#stderrDone, 200);
  }

  /** Closes its input (the end of the session) and waits for it, killing it after `ms`. */
  async close(ms = 2000): Promise<void> {
    try {
      await this.#writer.close();
    } catch {
      // already closed by its exit
    }
    const status = await within(this.#child.status, ms);
    if (status === undefined) await this.kill();
    else {
      this.#alive = false;
      await this.#reader.cancel().catch(() => {});
      await within(this.#stderrDone, 200);
    }
  }
}
