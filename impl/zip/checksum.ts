/**
 * Checksums of the framing formats: CRC-32 (gzip, RFC 1952 §8) and Adler-32 (zlib,
 * RFC 1950 §8.2), both incremental so a stream can update them chunk by chunk.
 *
 * @module
 */

/** Eight 256-entry tables for slice-by-8 CRC-32; table k advances a byte by k+1 positions. */
const crcTables: Int32Array = (() => {
  const t = new Int32Array(256 * 8);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? (c >>> 1) ^ 0xedb88320 : c >>> 1;
    t[n] = c;
  }
  for (let n = 0; n < 256; n++) {
    for (let k = 1; k < 8; k++) {
      const prev = t[(k - 1) * 256 + n];
      t[k * 256 + n] = (prev >>> 8) ^ t[prev & 0xff];
    }
  }
  return t;
})();

/** Continues CRC-32 value `crc` (0 to start) over `data[start, end)`. */
export function crc32(data: Uint8Array, crc = 0, start = 0, end = data.length): number {
  const t = crcTables;
  let c = ~crc;
  let i = start;
  for (const fast = end - 8; i <= fast; i += 8) {
    const lo = c ^ (data[i] | (data[i + 1] << 8) | (data[i + 2] << 16) | (data[i + 3] << 24));
    c = t[1792 + (lo & 0xff)] ^ t[1536 + ((lo >>> 8) & 0xff)] ^
      t[1280 + ((lo >>> 16) & 0xff)] ^ t[1024 + (lo >>> 24)] ^
      t[768 + data[i + 4]] ^ t[512 + data[i + 5]] ^ t[256 + data[i + 6]] ^ t[data[i + 7]];
  }
  for (; i < end; i++) c = (c >>> 8) ^ t[(c ^ data[i]) & 0xff];
  return ~c >>> 0;
}

/** Largest run of bytes whose Adler sums cannot leave the int32 range before a reduction. */
const adlerRun = 3800;

/** Continues Adler-32 value `adler` (1 to start) over `data[start, end)`. */
export function adler32(data: Uint8Array, adler = 1, start = 0, end = data.length): number {
  let a = adler & 0xffff;
  let b = adler >>> 16;
  let i = start;
  while (i < end) {
    const stop = Math.min(end, i + adlerRun);
    for (; i < stop; i++) {
      a += data[i];
      b += a;
    }
    a %= 65521;
    b %= 65521;
  }
  return ((b << 16) | a) >>> 0;
}
