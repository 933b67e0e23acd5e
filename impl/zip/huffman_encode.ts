/**
 * Huffman code construction for the compressor: length-limited code lengths from symbol
 * frequencies, and the canonical codes (RFC 1951 §3.2.2) for those lengths, bit-reversed so
 * they can be written LSB first.
 *
 * @module
 */

const maxSymbols = 320;
const order = new Int32Array(maxSymbols);
const sortKeys = new Float64Array(maxSymbols);
const weight = new Float64Array(2 * maxSymbols);
const parent = new Int32Array(2 * maxSymbols);
const depth = new Int32Array(2 * maxSymbols);
const countOfLength = new Int32Array(32);

/**
 * Writes into `lengths[0, n)` code lengths of at most `limit` bits for `freq[0, n)`.
 * Symbols with zero frequency get length 0, except that at least two symbols always get a
 * code (RFC 1951 asks for one-bit codes even when only one symbol is used; two real codes
 * keep every decoder happy).
 */
export function buildCodeLengths(
  freq: Int32Array,
  n: number,
  limit: number,
  lengths: Uint8Array,
): void {
  lengths.fill(0, 0, n);
  let used = 0;
  for (let s = 0; s < n; s++) if (freq[s] > 0) order[used++] = s;
  if (used < 2) {
    // Give the used symbol (if any) and the lowest other symbols one-bit codes.
    let s = 0;
    while (used < 2) {
      if (freq[s] === 0) order[used++] = s;
      s++;
    }
    lengths[order[0]] = lengths[order[1]] = 1;
    return;
  }
  // Leaves sorted by ascending frequency (ties by symbol), as frequency << 9 | symbol keys;
  // then the two-queue construction: leaves and internal nodes are both produced in
  // ascending weight order.
  for (let i = 0; i < used; i++) sortKeys[i] = freq[order[i]] * 512 + order[i];
  const leaves = sortKeys.subarray(0, used).sort();
  for (let i = 0; i < used; i++) {
    weight[i] = Math.floor(leaves[i] / 512);
    leaves[i] %= 512;
  }
  let leaf = 0, inner = used, innerEnd = used;
  const take = (): number => {
    if (leaf < used && (inner >= innerEnd || weight[leaf] <= weight[inner])) return leaf++;
    return inner++;
  };
  for (let k = 0; k < used - 1; k++) {
    const a = take(), b = take();
    weight[innerEnd] = weight[a] + weight[b];
    parent[a] = parent[b] = innerEnd;
    innerEnd++;
  }
  const root = innerEnd - 1;
  depth[root] = 0;
  for (let i = root - 1; i >= 0; i--) depth[i] = depth[parent[i]] + 1;
  countOfLength.fill(0);
  for (let i = 0; i < used; i++) countOfLength[Math.min(depth[i], limit)]++;
  limitLengths(limit);
  // Longest codes go to the least frequent symbols: leaves[] is in ascending frequency.
  let i = 0;
  for (let len = limit; len >= 1; len--) {
    for (let c = countOfLength[len]; c > 0; c--) lengths[leaves[i++]] = len;
  }
}

/**
 * Makes the length histogram satisfy the Kraft inequality after lengths above `limit` were
 * clamped. Kraft sums are counted in units of 2^-limit; each step turns one code of the
 * longest length below the limit into two codes one bit longer, one of them taken from the
 * limit, which lowers the sum by exactly one unit.
 */
function limitLengths(limit: number): void {
  let kraft = 0;
  for (let len = 1; len <= limit; len++) kraft += countOfLength[len] << (limit - len);
  const full = 1 << limit;
  while (kraft > full) {
    let len = limit - 1;
    while (countOfLength[len] === 0) len--;
    countOfLength[len]--;
    countOfLength[len + 1] += 2;
    countOfLength[limit]--;
    kraft--;
  }
}

const nextCode = new Int32Array(16);

/**
 * Fills `codes[0, n)` with the canonical codes for `lengths`, bit-reversed for LSB output,
 * each as `code | length << 16`.
 */
export function buildCodes(lengths: Uint8Array, n: number, codes: Int32Array): void {
  countOfLength.fill(0);
  for (let s = 0; s < n; s++) countOfLength[lengths[s]]++;
  countOfLength[0] = 0;
  let code = 0;
  for (let len = 1; len <= 15; len++) {
    code = (code + countOfLength[len - 1]) << 1;
    nextCode[len] = code;
  }
  for (let s = 0; s < n; s++) {
    const len = lengths[s];
    if (len === 0) continue;
    let rev = 0;
    for (let c = nextCode[len]++, k = 0; k < len; k++, c >>= 1) rev = (rev << 1) | (c & 1);
    codes[s] = rev | (len << 16);
  }
}
