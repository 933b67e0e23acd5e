/**
 * The ZIP driver's kernel crypto path (RFCv2 5/7 `zip_crypto.c`): `zlib-deflate` and `gzip`
 * transforms, each with a compress and a decompress queue pair of the QM and a 64 KiB input
 * and output DMA buffer per queue pair. A request copies the source into the input buffer,
 * sends one ZIP SQE with `hisi_qp_send`, and, while the caller waits, the device executes it
 * and the IRQ thread completes it; the result is read from the written-back SQE and the output
 * buffer.
 *
 * Quirks (impl/quirks.ts): `positiveStatusAsError` (L3464: the hardware status returned as a
 * positive value), `producedNotCheckedAgainstDlen` (L3470: the output copied whatever `dlen`
 * says), `releaseQpBeforeBuffers` (L3382: the buffers freed through the already released qp).
 *
 * @module
 */
import { isZipSuccess, ZipRequestType, ZipStatus } from "../../spec/zip.ts";
import { compressBound, ZIP_ALGS, ZIP_BUFFER_SIZE, type ZipAlg } from "../../spec/zipcrypto.ts";
import type { Errno } from "../../spec/types.ts";
import type { QmDevice } from "../device/qm_device.ts";
import { decodeZipSqe, emptyZipSqe, encodeZipSqe, ZipAlgType } from "../device/zip_engine.ts";
import { type Kernel, Mutex } from "../kernel.ts";
import type { CoherentBuffer, HisiQm, HisiQp } from "./qm.ts";

/** One queue pair of a transform and its buffers (`struct hisi_zip_qp_ctx`). */
interface ZipQpCtx {
  readonly qp: HisiQp;
  readonly input: CoherentBuffer;
  readonly output: CoherentBuffer;
  /** One request at a time uses the buffers (the seed has none: two callers mix their data). */
  readonly lock: Mutex;
}

/** A transform (`struct hisi_zip_ctx`): the compress and the decompress queue pair. */
interface ZipTfm {
  readonly alg: ZipAlg;
  readonly comp: ZipQpCtx;
  readonly decomp: ZipQpCtx;
}

/** What a request returns: the output bytes, or the raw status (quirk), or an errno. */
export type ZipReply = Uint8Array | { readonly status: number } | Errno;

/** The crypto algorithms `zlib-deflate` and `gzip` on one QM. */
export class HisiZipCrypto {
  /** Live transforms by id. */
  readonly tfms: Map<number, ZipTfm> = new Map();
  readonly #k: Kernel;
  readonly #qm: HisiQm;
  readonly #device: QmDevice;
  #tags = 0;
  /** Transforms being set up (a transform is one object: it is set up once). */
  readonly #starting = new Set<number>();
  /** Ghost: the transform of each kernel queue pair, set when it is created. */
  readonly #qpTfm = new Map<number, number>();

  /** The algorithms over `qm`, whose device runs the ZIP engine. */
  constructor(kernel: Kernel, qm: HisiQm, device: QmDevice) {
    this.#k = kernel;
    this.#qm = qm;
    this.#device = device;
  }

  /**
   * Ghost (observation only): each transform's two queue pairs while both are taken from the
   * bitmap (they are taken together and given back together), from before its set-up to
   * after its tear-down.
   */
  tfmQps(): Map<number, readonly [number, number]> {
    const out = new Map<number, readonly [number, number]>();
    for (const [qn, tfm] of this.#qpTfm) {
      if (this.#qm.qps[qn] === null) continue;
      const first = out.get(tfm);
      out.set(tfm, first ? [first[0], qn] : [qn, -1]);
    }
    return out;
  }

  /** Transforms set up or being set up: the kernel users of the QM's queue pairs. */
  get users(): number {
    return this.tfms.size + this.#starting.size;
  }

  /** Ghost: the transform kernel queue pair `qn` serves ({@link tfmQps}). */
  tfmOf(qn: number): number | undefined {
    return this.#qpTfm.get(qn);
  }

  /**
   * `hisi_zip_alloc_comp_ctx`: both queue pairs or neither. They are taken together from
   * the bitmap (atomically, so no other user sees one of them taken), then each is started
   * with its buffers; a failed start gives both back.
   */
  async init(tfm: number, alg: string): Promise<Errno | undefined> {
    if (!Object.hasOwn(ZIP_ALGS, alg) || !Number.isSafeInteger(tfm) || tfm < 1) return "EINVAL";
    if (this.tfms.has(tfm) || this.#starting.has(tfm)) return "EEXIST";
    if (this.#qm.freeQps < 2) return "EBUSY";
    // Two are free: neither create fails.
    const compQp = this.#qm.createQp("kernel", ZipAlgType.compress) as HisiQp;
    const decompQp = this.#qm.createQp("kernel", ZipAlgType.decompress) as HisiQp;
    this.#qpTfm.set(compQp.qn, tfm).set(decompQp.qn, tfm);
    this.#starting.add(tfm);
    try {
      const comp = await this.#startQp(compQp);
      const decomp = typeof comp === "string" ? comp : await this.#startQp(decompQp);
      if (typeof comp === "string" || typeof decomp === "string") {
        await this.#qm.releaseQp(compQp, decompQp);
        for (const qp of [compQp, decompQp]) this.#qpTfm.delete(qp.qn);
        if (typeof comp !== "string") await this.#freeBuffers(comp);
        return typeof comp === "string" ? comp : decomp as Errno;
      }
      this.tfms.set(tfm, { alg: alg as ZipAlg, comp, decomp });
      return undefined;
    } finally {
      this.#starting.delete(tfm);
    }
  }

  /**
   * `hisi_zip_free_comp_ctx`: both queue pairs go back to the bitmap at once (stopped and
   * their rings freed), then their buffers are freed.
   */
  async exit(tfm: number): Promise<Errno | undefined> {
    // The transform object is its init's until that returns: an exit of it comes after.
    const started = () => !this.#starting.has(tfm);
    if (!started()) await this.#k.sched.waitUntil("zip.exit:init-done", started);
    const t = this.tfms.get(tfm);
    if (!t) return "EINVAL";
    this.tfms.delete(tfm);
    const ctxs = [t.decomp, t.comp];
    await this.#qm.releaseQp(t.decomp.qp, t.comp.qp);
    for (const ctx of ctxs) this.#qpTfm.delete(ctx.qp.qn);
    for (const ctx of ctxs) {
      if (this.#k.quirks.releaseQpBeforeBuffers && ctx.qp.freed) {
        this.#k.emit({ fault: "use-after-free", what: "hisi_qp", qn: ctx.qp.qn });
      }
      await this.#freeBuffers(ctx);
    }
    return undefined;
  }

  /** `hisi_zip_compress`: refuses what its buffers or `dlen` could not hold in the worst case. */
  async compress(tfm: number, src: Uint8Array, dlen: number): Promise<ZipReply> {
    const t = this.tfms.get(tfm);
    if (!t) return "EINVAL";
    const bound = compressBound(src.length, t.alg);
    if (src.length > ZIP_BUFFER_SIZE || bound > ZIP_BUFFER_SIZE) return "EINVAL";
    if (dlen < bound) return "ENOSPC";
    return await t.comp.lock.hold(
      this.#k.sched,
      "zip.compress:ctx",
      () => this.#request(t, t.comp, src, dlen),
    );
  }

  /** `hisi_zip_decompress`. */
  async decompress(tfm: number, src: Uint8Array, dlen: number): Promise<ZipReply> {
    const t = this.tfms.get(tfm);
    if (!t) return "EINVAL";
    if (src.length > ZIP_BUFFER_SIZE) return "EINVAL";
    return await t.decomp.lock.hold(
      this.#k.sched,
      "zip.decompress:ctx",
      () => this.#request(t, t.decomp, src, dlen),
    );
  }

  /**
   * `hisi_zip_create_qp` after the bitmap: the input buffer, the output buffer, then the queue
   * pair started; the first that fails undoes what came before and ends it.
   */
  async #startQp(qp: HisiQp): Promise<ZipQpCtx | Errno> {
    const input = this.#qm.allocCoherent(ZIP_BUFFER_SIZE);
    if (typeof input === "string") return "ENOMEM";
    const output = this.#qm.allocCoherent(ZIP_BUFFER_SIZE);
    const started = typeof output === "string" ? "ENOMEM" : await this.#qm.startQp(qp);
    if (started === undefined) return { qp, input, output, lock: new Mutex() } as ZipQpCtx;
    for (const b of [input, output]) if (typeof b !== "string") await this.#qm.freeCoherent(b);
    return started;
  }

  /**
   * The buffers of a released queue pair (`hisi_zip_release_qp` frees them after the qp;
   * with `releaseQpBeforeBuffers` their device is looked up through the freed qp).
   */
  async #freeBuffers(ctx: ZipQpCtx): Promise<void> {
    await this.#qm.freeCoherent(ctx.input);
    await this.#qm.freeCoherent(ctx.output);
  }

  /** One job: fill the input buffer, send the SQE, let the device and IRQ thread complete it. */
  async #request(t: ZipTfm, ctx: ZipQpCtx, src: Uint8Array, dlen: number): Promise<ZipReply> {
    const rings = ctx.qp.rings;
    if (!rings) return "EINVAL";
    ctx.input.mem.write(0, src);
    const sqe = encodeZipSqe({
      ...emptyZipSqe,
      inputDataLength: src.length,
      dw9: ZipRequestType[ZIP_ALGS[t.alg] as "zlib" | "gzip"],
      destAvailOut: ZIP_BUFFER_SIZE,
      sourceAddr: ctx.input.iova,
      destAddr: ctx.output.iova,
    });
    const seq = await this.#qm.send(ctx.qp, rings, this.#tags++, sqe);
    if (typeof seq === "string") return seq;
    // An exit of the transform may release the queue pair under the request (its queue stopped
    // and ring freed, then the buffers): there is no completion to read, and the request ends
    // as one that came after the exit.
    if (ctx.qp.rings !== rings) return "EINVAL";
    await this.#device.step(ctx.qp.qn);
    await this.#qm.irqThread();
    if (ctx.qp.rings !== rings) return "EINVAL";
    const done = decodeZipSqe(rings.sqe(seq % this.#qm.config.sqDepth));
    const status = done.dw3 & 0xff;
    // The seed returns any nonzero status as is, even a successful decompression's 0x13.
    if (this.#k.quirks.positiveStatusAsError && status !== ZipStatus.ok) return { status };
    const success = ctx === t.decomp ? status === ZipStatus.decompressEnd : isZipSuccess(status);
    if (!success) return status === ZipStatus.destInsufficient ? "ENOSPC" : "EINVAL";
    if (done.produced > ZIP_BUFFER_SIZE) return "ENOMEM";
    if (done.produced > dlen) {
      if (!this.#k.quirks.producedNotCheckedAgainstDlen) return "ENOSPC";
      this.#k.emit({ fault: "dst-overflow", dlen, produced: done.produced });
    }
    return ctx.output.mem.read(0, done.produced);
  }
}
