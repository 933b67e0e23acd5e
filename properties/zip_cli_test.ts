/**
 * The `zip` CLI as a user of gzip/pigz meets it: real zlib and gzip both ways through the
 * whole simulated stack, empty input, format detection, flags, one-line errors with exit 1
 * for bad data and 2 for bad usage, the levels, every mode streaming past the one-shot
 * sample's 16 MiB as one stream with output starting before the input ends, and output of any
 * length reaching a file, a pipe read slowly and a non-blocking pipe shared with the parent
 * (where one write takes only what fits) byte for byte.
 */
import assert from "node:assert/strict";
import { deflateSync, gunzipSync, gzipSync, inflateSync } from "node:zlib";
import { prng } from "../impl/sched.ts";
import { Progress } from "../model/cli/zip.ts";
import { concat, equalBytes } from "../model/zip_fuzz.ts";
import { SAMPLE_CHUNK, SAMPLE_MAX_INPUT } from "../impl/wd/zip_sample.ts";

const root = new URL("..", import.meta.url).pathname;
const zipCommand = [Deno.execPath(), "run", "-A", `${root}model/cli/zip.ts`];
const env = { DENO_NO_PACKAGE_JSON: "1" };
const text = (n: number) =>
  new TextEncoder().encode(
    Array.from({ length: n }, (_, i) => `line ${i} of the WarpDrive stream\n`).join(""),
  );

/** Runs the CLI with `stdin`; its exit code, stdout and stderr. */
async function zip(args: readonly string[], stdin: Uint8Array) {
  const child = new Deno.Command(zipCommand[0], {
    args: [...zipCommand.slice(1), ...args],
    env,
    stdin: "piped",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const w = child.stdin.getWriter();
  try {
    await w.write(stdin);
    await w.close();
  } catch (e) {
    if (!(e instanceof Deno.errors.BrokenPipe)) throw e; // it stopped reading: a usage error
  }
  const out = await child.output();
  return { code: out.code, stdout: out.stdout, stderr: new TextDecoder().decode(out.stderr) };
}

/** Asserts exit `code` and exactly one line on stderr matching `message`. */
function assertOneLine(r: { code: number; stderr: string }, code: number, message: RegExp) {
  assert.equal(r.code, code, r.stderr);
  const lines = r.stderr.trim().split("\n");
  assert.equal(lines.length, 1, r.stderr);
  assert.match(lines[0], message);
}

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
  const plain = text(70_000);
  assert.ok(plain.length > 2 * 1024 * 1024);
  const dir = await Deno.makeTempDir();
  const input = `${dir}/in.z`;
  await Deno.writeFile(input, deflateSync(plain));
  const argv = [...zipCommand, "-d"];
  await t.step("into a file", async () => {
    const out = `${dir}/out`;
    const sh = await new Deno.Command("sh", {
      args: ["-c", `"$@" < ${input} > ${out}`, "sh", ...argv],
      env,
    }).output();
    assert.equal(sh.code, 0, new TextDecoder().decode(sh.stderr));
    assert.deepEqual(await Deno.readFile(out), plain);
  });
  await t.step("into a pipe read slowly", async () => {
    assert.deepEqual(await readSlowly(argv, input), plain);
  });
  await t.step({
    name: "into a non-blocking pipe shared with the parent",
    ignore: Deno.build.os !== "linux",
    fn: async () => {
      const parent = [Deno.execPath(), "eval", NONBLOCKING_PARENT];
      const out = await readSlowly(parent, input, { CMD: JSON.stringify(argv) });
      assert.equal(out.length, plain.length);
      assert.deepEqual(out, plain);
    },
  });
});

Deno.test("zip: real zlib and gzip through the whole simulated stack, both ways", async (t) => {
  const input = text(3000);
  await t.step("zlib output inflates with node:zlib and back", async () => {
    const r = await zip([], input);
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(new Uint8Array(inflateSync(r.stdout)), input);
    assert.deepEqual((await zip(["-d"], r.stdout)).stdout, input);
  });
  await t.step("gzip output gunzips with node:zlib; -d detects gzip without -g", async () => {
    const r = await zip(["-g"], input);
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(new Uint8Array(gunzipSync(r.stdout)), input);
    const back = await zip(["-d"], r.stdout);
    assert.equal(back.code, 0, back.stderr);
    assert.deepEqual(back.stdout, input);
  });
  await t.step("node:zlib's streams decompress; gzip members all of them", async () => {
    const gz = new Uint8Array(gzipSync(input));
    const cases = [
      [new Uint8Array(deflateSync(input)), input],
      [gz, input],
      [concat([gz, gz]), concat([input, input])],
    ];
    for (const [stream, decoded] of cases) {
      const r = await zip(["-d"], stream);
      assert.equal(r.code, 0, r.stderr);
      assert.deepEqual(r.stdout, decoded);
    }
  });
  await t.step("with the seed's sample defect: 78 9c, raw deflate, no trailer", async () => {
    const r = await zip(["--quirk", "sampleZlibHeaderOnly"], input);
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual([...r.stdout.subarray(0, 2)], [0x78, 0x9c]);
    assert.throws(() => inflateSync(r.stdout));
  });
});

Deno.test("zip: empty input is a valid empty stream and decompresses back to nothing", async () => {
  for (const [args, inflate] of [[[], inflateSync], [["-g"], gunzipSync]] as const) {
    const r = await zip(args, new Uint8Array());
    assert.equal(r.code, 0, r.stderr);
    assert.equal(inflate(r.stdout).length, 0);
    const back = await zip(["-d"], r.stdout);
    assert.equal(back.code, 0, back.stderr);
    assert.equal(back.stdout.length, 0);
  }
});

Deno.test("zip: flags as gzip has them", async (t) => {
  const input = text(100);
  await t.step("-h and --help print usage, exit 0", async () => {
    for (const flag of ["-h", "--help"]) {
      const r = await zip([flag], input);
      assert.equal(r.code, 0, r.stderr);
      assert.match(new TextDecoder().decode(r.stdout), /^usage: .*-d.*-g.*-1\.\.-9/);
    }
  });
  await t.step("-- ends the options; combined short flags", async () => {
    const r = await zip(["-6g", "-c", "--"], input);
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(new Uint8Array(gunzipSync(r.stdout)), input);
    assert.deepEqual((await zip(["-dc", "--"], r.stdout)).stdout, input);
  });
  await t.step(
    "-1 .. -9 reach the engine: the sizes differ, all decode; -d ignores them",
    async () => {
      const data = text(20_000);
      const sizes: number[] = [];
      for (const level of [1, 6, 9]) {
        const r = await zip([`-${level}`], data);
        assert.equal(r.code, 0, r.stderr);
        assert.deepEqual(new Uint8Array(inflateSync(r.stdout)), data);
        assert.deepEqual((await zip(["-d", `-${level}`], r.stdout)).stdout, data);
        sizes.push(r.stdout.length);
      }
      assert.ok(sizes[0] > sizes[1] && sizes[1] >= sizes[2], `sizes at -1 -6 -9: ${sizes}`);
    },
  );
  const usage: [string[], RegExp][] = [
    [["-x"], /zip: error: unknown option -x/],
    [["--frobnicate"], /unknown option --frobnicate/],
    [["--", "-d"], /unexpected argument "-d"/],
    [["file.txt"], /unexpected argument "file.txt"/],
    [["--quirk", "nope"], /unknown quirk "nope"/],
    [["-0"], /unknown option -0/],
    [["--level", "10"], /--level expects 1..9, got 10/],
  ];
  for (const [args, message] of usage) {
    await t.step(`bad usage ${args.join(" ")}: one line, exit 2`, async () => {
      assertOneLine(await zip(args, input), 2, message);
    });
  }
});

Deno.test("zip -d: each kind of bad data is one line naming it, exit 1", async (t) => {
  const input = text(200);
  const z = new Uint8Array(deflateSync(input));
  const gz = new Uint8Array(gzipSync(input));
  const flip = (s: Uint8Array, at: number) => {
    const c = s.slice();
    c[at < 0 ? c.length + at : at] ^= 1;
    return c;
  };
  const cases: [string, Uint8Array, RegExp][] = [
    ["no input", new Uint8Array(), /stdin: truncated: no zlib or gzip header/],
    ["not a stream", new TextEncoder().encode("hello"), /bad header: neither a zlib nor/],
    ["a zlib preset dictionary", Uint8Array.of(0x78, 0xbb, 0, 0, 0, 1, 3, 0), /bad zlib header/],
    ["a zlib Adler-32", flip(z, -1), /Adler-32 checksum mismatch/],
    ["a gzip CRC-32", flip(gz, -8), /CRC-32 mismatch/],
    ["a gzip ISIZE", flip(gz, -1), /ISIZE mismatch/],
    ["a truncated stream", z.subarray(0, z.length - 3), /truncated: the input ends inside/],
    ["invalid deflate data", Uint8Array.of(0x78, 0x9c, 0xff, 0xff, 0, 0), /invalid deflate data/],
    ["trailing garbage", concat([z, new TextEncoder().encode("xyz")]), /3 bytes of trailing/],
  ];
  for (const [name, stream, message] of cases) {
    await t.step(name, async () => {
      assertOneLine(await zip(["-d"], stream), 1, message);
    });
  }
  await t.step("trailing zeros: a warning, exit 0", async () => {
    const r = await zip(["-d"], concat([z, new Uint8Array(4)]));
    assertOneLine(r, 0, /warning: stdin: 4 trailing zero bytes ignored/);
    assert.deepEqual(r.stdout, input);
  });
  await t.step(
    "trailing bytes over several requests: all counted, a late nonzero is an error",
    async () => {
      const zeros = new Uint8Array(2 * SAMPLE_CHUNK + 5);
      const quiet = await zip(["-d"], concat([z, zeros]));
      assertOneLine(quiet, 0, new RegExp(`warning: stdin: ${zeros.length} trailing zero bytes`));
      assert.deepEqual(quiet.stdout, input);
      const late = await zip(["-d"], concat([gz, zeros, Uint8Array.of(7)]));
      assertOneLine(
        late,
        1,
        new RegExp(`${zeros.length + 1} bytes of trailing data after the gzip`),
      );
    },
  );
});

/** Runs zip `args`; sends `input` in two writes and checks output arrives between them. */
async function zipStreaming(args: readonly string[], input: Uint8Array): Promise<Uint8Array> {
  const child = new Deno.Command(zipCommand[0], {
    args: [...zipCommand.slice(1), ...args],
    env,
    stdin: "piped",
    stdout: "piped",
    stderr: "inherit",
  }).spawn();
  const parts: Uint8Array[] = [];
  const reading = (async () => {
    for await (const p of child.stdout) parts.push(p);
  })();
  const w = child.stdin.getWriter();
  await w.write(input.subarray(0, 2 * SAMPLE_CHUNK));
  for (const deadline = Date.now() + 20_000; parts.length === 0;) { // stdin is still open
    if (Date.now() > deadline) {
      child.kill();
      assert.fail(`zip ${args.join(" ")}: no output before the input ended`);
    }
    await new Promise((r) => setTimeout(r, 10));
  }
  await w.write(input.subarray(2 * SAMPLE_CHUNK));
  await w.close();
  await reading;
  assert.equal((await child.status).code, 0);
  return concat(parts);
}

Deno.test("zip streams every mode past 16 MiB as one stream, output before the input ends", async (t) => {
  const size = SAMPLE_MAX_INPUT + SAMPLE_CHUNK + 1;
  const plain = text(Math.ceil(size / 30)).subarray(0, size);
  const next = prng(8);
  const noise = Uint8Array.from({ length: size }, () => next() * 256);
  await t.step("zlib: one stream (inflate returns it all)", async () => {
    const out = await zipStreaming([], plain);
    assert.ok(equalBytes(new Uint8Array(inflateSync(out)), plain));
  });
  await t.step("gzip: one member (its ISIZE is the whole input's)", async () => {
    const out = await zipStreaming(["-g"], plain);
    assert.equal(new DataView(out.buffer).getUint32(out.length - 4, true), size);
    assert.ok(equalBytes(new Uint8Array(gunzipSync(out)), plain));
  });
  await t.step("-d of zlib and gzip, incompressible", async () => {
    for (const packed of [deflateSync(noise), gzipSync(noise)]) {
      assert.ok(equalBytes(await zipStreaming(["-d"], new Uint8Array(packed)), noise));
    }
  });
});

Deno.test("zip progress: a line once a run has read 4 MiB, ended by a newline", async () => {
  const seen: string[] = [];
  const p = new Progress({
    write: (b) => Promise.resolve(seen.push(new TextDecoder().decode(b)) && b.length),
  });
  await p.add(3 * 2 ** 20, 0);
  assert.deepEqual(seen, []);
  await p.add(2 ** 20, 2 ** 19);
  await p.end();
  assert.deepEqual(seen, ["\rzip: 4.0 MiB in, 0.5 MiB out", "\rzip: 4.0 MiB in, 0.5 MiB out\n"]);
  const quiet = new Progress(undefined);
  await quiet.add(2 ** 30, 0);
  await quiet.end();
});

Deno.test("zip --quirk refuses a defect its path does not exercise: one line, exit 2", async () => {
  const r = await zip(["--quirk", "unshareUnderflow"], new TextEncoder().encode("x"));
  assertOneLine(r, 2, /^zip: error: --quirk unshareUnderflow: the zip path does not exercise it/);
});

/** `n` bytes of `prng(seed)`: incompressible. */
function noiseOf(n: number, seed: number): Uint8Array {
  const next = prng(seed);
  return Uint8Array.from({ length: n }, () => next() * 256);
}

/** Sizes around the CLI's 1 MiB requests: where one request ends and the next begins. */
const BOUNDARIES = [1, SAMPLE_CHUNK - 1, SAMPLE_CHUNK, SAMPLE_CHUNK + 1, 2 * SAMPLE_CHUNK + 1];

Deno.test("zip at 1 MiB request boundaries: 1 byte, and ±1 around them, round trip", async (t) => {
  for (const size of BOUNDARIES) {
    const cases: [string, string[], Uint8Array, (b: Uint8Array) => Uint8Array][] = [
      ["incompressible, zlib", [], noiseOf(size, size), (b) => new Uint8Array(inflateSync(b))],
      ["text, gzip -1", ["-g1"], text(size / 30 + 1).subarray(0, size), (b) => gunzipSync(b)],
    ];
    for (const [what, args, plain, reference] of cases) {
      await t.step(`${size} B, ${what}`, async () => {
        const packed = await zip(args, plain);
        assert.equal(packed.code, 0, packed.stderr);
        assert.ok(equalBytes(new Uint8Array(reference(packed.stdout)), plain));
        const back = await zip(["-d"], packed.stdout);
        assert.equal(back.code, 0, back.stderr);
        assert.ok(equalBytes(back.stdout, plain), `-d gave ${back.stdout.length} bytes`);
      });
    }
  }
});

/**
 * A stored-block zlib stream of exactly `length` bytes (node:zlib at level 0) and what it
 * decodes to: its requests' input then ends at the same boundaries as the stream's bytes.
 */
function storedStreamOf(length: number): { stream: Uint8Array; plain: Uint8Array } {
  const noise = noiseOf(length, 3);
  for (let n = length - 6, tries = 0; n > 0 && tries < 8; tries++) {
    const stream = new Uint8Array(deflateSync(noise.subarray(0, n), { level: 0 }));
    if (stream.length === length) return { stream, plain: noise.subarray(0, n) };
    n += length - stream.length; // a stored stream grows by a byte a byte, plus block headers
  }
  throw new Error(`no stored zlib stream of ${length} bytes`);
}

Deno.test("zip -d of streams ending at and around a request boundary, whole and cut", async (t) => {
  for (const length of [SAMPLE_CHUNK - 1, SAMPLE_CHUNK, SAMPLE_CHUNK + 1]) {
    const { stream, plain } = storedStreamOf(length);
    await t.step(`${length} B: decodes to its input`, async () => {
      const r = await zip(["-d"], stream);
      assert.equal(r.code, 0, r.stderr);
      assert.ok(equalBytes(r.stdout, plain));
    });
  }
  const { stream, plain } = storedStreamOf(2 * SAMPLE_CHUNK + 1);
  for (const cut of [SAMPLE_CHUNK - 1, SAMPLE_CHUNK, SAMPLE_CHUNK + 1, stream.length - 1]) {
    await t.step(
      `cut to ${cut} bytes: truncated, exit 1, what was written is a prefix`,
      async () => {
        const r = await zip(["-d"], stream.subarray(0, cut));
        assertOneLine(r, 1, /stdin: truncated: the input ends inside the stream/);
        assert.ok(r.stdout.length < plain.length);
        assert.ok(equalBytes(r.stdout, plain.subarray(0, r.stdout.length)));
        if (r.stdout.length > 0) assert.match(r.stderr, /the \d+ bytes written are incomplete/);
      },
    );
  }
});

Deno.test({
  name: "zip: an output that cannot be written is one line and exit 1, both ways",
  ignore: Deno.build.os !== "linux",
  fn: async () => {
    const plain = text(10_000);
    const dir = await Deno.makeTempDir();
    const files = { plain: `${dir}/plain`, packed: `${dir}/packed.z` };
    await Deno.writeFile(files.plain, plain);
    await Deno.writeFile(files.packed, deflateSync(plain));
    try {
      for (const [args, input] of [[[], files.plain], [["-d"], files.packed]] as const) {
        const r = await new Deno.Command("sh", {
          args: ["-c", `"$@" < ${input} > /dev/full`, "sh", ...zipCommand, ...args],
          env,
        }).output();
        const stderr = new TextDecoder().decode(r.stderr);
        assertOneLine({ code: r.code, stderr }, 1, /^zip: error: stdout: write failed after 0 /);
      }
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});
