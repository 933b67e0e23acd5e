/**
 * The kernel users of a QM's queue pairs (RFCv2 5/7, `hisi_zip_alloc_comp_ctx` /
 * `hisi_zip_free_comp_ctx`): each crypto transform takes two qps, one to compress and one to
 * decompress, all or none. Starting them (`hisi_qm_start_qp` with PASID 0, the ZIP driver's
 * own buffers) is left to the QM driver: sdmdev only sees which qps are taken.
 *
 * @module
 */
import type { Errno } from "../../spec/types.ts";
import type { PoolQp, QmQueues } from "../hisi/qm_sdmdev.ts";

/** The live transforms on one QM. */
export class ZipTfms {
  /** Transform id to its two qps. */
  readonly ctxs: Map<number, readonly [PoolQp, PoolQp]> = new Map();
  #qm: QmQueues;

  /** No transform yet on `qm`. */
  constructor(qm: QmQueues) {
    this.#qm = qm;
  }

  /** `hisi_zip_alloc_comp_ctx`: the two qp numbers; EINVAL, EEXIST, or EBUSY (< 2 free). */
  init(tfm: number): readonly [number, number] | Errno {
    if (!Number.isSafeInteger(tfm) || tfm < 1) return "EINVAL";
    if (this.ctxs.has(tfm)) return "EEXIST";
    const taken: PoolQp[] = [];
    for (let i = 0; i < 2; i++) {
      const qp = this.#qm.createQp({ tfm });
      if (typeof qp === "string") {
        for (const t of taken.reverse()) this.#qm.releaseQp(t);
        return qp;
      }
      taken.push(qp);
    }
    const pair = [taken[0], taken[1]] as const;
    this.ctxs.set(tfm, pair);
    return [pair[0].qn, pair[1].qn];
  }

  /** `hisi_zip_free_comp_ctx`: EINVAL for an unknown transform. */
  exit(tfm: number): Errno | undefined {
    const pair = this.ctxs.get(tfm);
    if (!pair) return "EINVAL";
    for (const qp of pair) this.#qm.releaseQp(qp);
    this.ctxs.delete(tfm);
    return undefined;
  }
}
