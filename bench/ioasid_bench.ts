/**
 * `deno bench bench/ioasid_bench.ts`: alloc+free pairs of the IOASID allocator
 * (impl/ioasid/) with 10,000 ids live, against the anchor of storing and clearing one slot of a
 * preallocated array per pair (the least any id-to-data store does; a JavaScript Map is no
 * anchor: with 10,000 entries live its insert+delete of one key runs at about 20,000 pairs/s). Two layouts of the live ids: packed at 1..10,000, so
 * each alloc skips 312 full bitmap words to reach id 10,001, and scattered over the whole PASID
 * space by a fixed-seed generator. One iteration is 1000 pairs; pairs per second = 1000 / time
 * per iteration (target: at least 1,000,000).
 */
import { IOASID_MAX } from "../spec/ioasid.ts";
import { IoasidSpace } from "../impl/ioasid/ioasid.ts";

const LIVE = 10_000;
const PAIRS = 1000;

/** A space holding `LIVE` ids of set 1: the packed layout, or scattered. */
function space(scattered: boolean): IoasidSpace {
  const s = new IoasidSpace();
  let x = 20180903;
  for (let n = 0; n < LIVE; n++) {
    x = (Math.imul(x, 1103515245) + 12345) >>> 0;
    const at = scattered ? 1 + (x % IOASID_MAX) : 1;
    if (!("ok" in s.alloc(1, at, IOASID_MAX, n))) n--;
  }
  return s;
}

function pairs(s: IoasidSpace): void {
  for (let i = 0; i < PAIRS; i++) {
    const r = s.alloc(2, 1, IOASID_MAX, i);
    if (!("ok" in r) || !("ok" in s.free(r.ok))) throw new Error("alloc/free failed");
  }
}

const packed = space(false);
const scattered = space(true);
const slots: (number | undefined)[] = Array.from({ length: 2 * LIVE }, (_, i) => i);

Deno.bench(
  "anchor: array slot store+clear, 1000 pairs",
  { group: "ioasid", baseline: true },
  () => {
    for (let i = 0; i < PAIRS; i++) {
      slots[LIVE + 1] = i;
      if (slots[LIVE + 1] !== i) throw new Error("lost the slot");
      slots[LIVE + 1] = undefined;
    }
  },
);

Deno.bench("alloc+free, 10,000 ids live at 1..10000, 1000 pairs", { group: "ioasid" }, () => {
  pairs(packed);
});

Deno.bench("alloc+free, 10,000 ids live scattered, 1000 pairs", { group: "ioasid" }, () => {
  pairs(scattered);
});
