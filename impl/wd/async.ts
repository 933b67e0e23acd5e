/**
 * The asynchronous request API on top of a {@link WdQueue}, as the later UADK offers it
 * (`wd_do_comp_async` with a callback, `wd_comp_poll_ctx` returning completions): `submit`
 * sends a request and keeps its callback, `poll(max)` receives up to `max` completions and
 * runs each one's callback, so several requests can be in flight. Every receipt goes through
 * here, whichever call makes it: a completion runs its request's callback exactly once, and
 * `release` runs the callbacks of the requests it drops with EIO.
 *
 * @module
 */
import type { Errno } from "../../spec/types.ts";
import type { WdMessage, WdQueue } from "./wd.ts";

/** What a callback is told: the completion, or why the request will never complete. */
export type WdCallback = (result: WdMessage | Errno) => void;

/** A {@link WdQueue} with callbacks. */
export class WdAsyncQueue {
  /** The queue underneath. */
  readonly queue: WdQueue;
  readonly #callbacks = new Map<number, WdCallback>();

  /** Wraps `queue` (every receipt of its completions must go through this wrapper). */
  constructor(queue: WdQueue) {
    this.queue = queue;
  }

  /**
   * The numbers of the requests sent and not yet received whose callback is kept, in order
   * (a callback kept for a send still in progress, or for a completion being delivered, is
   * not counted).
   */
  awaiting(): number[] {
    const { received, nextSeq } = this.queue;
    return [...this.#callbacks.keys()].filter((seq) => seq >= received && seq < nextSeq);
  }

  /** `wd_send` without a callback. */
  send(sqe?: Uint8Array): Promise<number | Errno> {
    return this.queue.send(sqe);
  }

  /**
   * Sends a request whose completion runs `callback`: its number, or EBUSY (no callback kept).
   * The callback is kept from before the send on, so a release overlapping the send finds it.
   */
  async submit(callback: WdCallback, sqe?: Uint8Array): Promise<number | Errno> {
    let seq = -1;
    const r = await this.queue.send(sqe, (n) => this.#callbacks.set(seq = n, callback));
    if (typeof r !== "number" && seq >= 0) this.#callbacks.delete(seq);
    return r;
  }

  /** `wd_recv`, running the completion's callback. */
  async recv(): Promise<WdMessage | Errno> {
    return this.#delivered(await this.queue.recv());
  }

  /** `wd_recv_sync`, running the completion's callback. */
  async recvSync(timeoutMs: number): Promise<WdMessage | Errno> {
    return this.#delivered(await this.queue.recvSync(timeoutMs));
  }

  /**
   * Receives up to `max` consecutive completions that are there (no waiting; the queue's
   * other sends and receipts wait for it), running their callbacks:
   * their numbers in order; the first receive's errno other than EAGAIN (a queue released).
   * RangeError for `max` < 1.
   */
  async poll(max: number): Promise<number[] | Errno> {
    if (!Number.isSafeInteger(max) || max < 1) throw new RangeError(`poll: bad max ${max}`);
    return await this.queue.polling(async () => {
      const got: number[] = [];
      while (got.length < max) {
        const r = await this.recv();
        if (r === "EAGAIN") break;
        if (typeof r === "string") return got.length === 0 ? r : got;
        got.push(r.seq);
      }
      return got;
    });
  }

  /** `wd_release_queue`; the dropped requests' callbacks get EIO. The requests dropped. */
  async release(): Promise<number[] | Errno> {
    const dropped = await this.queue.release();
    if (typeof dropped === "string") return dropped;
    for (const seq of dropped) {
      const cb = this.#callbacks.get(seq);
      this.#callbacks.delete(seq);
      cb?.("EIO");
    }
    return dropped;
  }

  #delivered(r: WdMessage | Errno): WdMessage | Errno {
    if (typeof r === "string") return r;
    const cb = this.#callbacks.get(r.seq);
    this.#callbacks.delete(r.seq);
    cb?.(r);
    return r;
  }
}
