/**
 * Values as HTML for the counterexample views: escaped, long ones (hex data, big records)
 * abbreviated with the full value in a `title`, and the sentinel values of the spec's
 * vocabulary (-1 for "none", the kernel as a queue owner, ...) marked with what they mean.
 *
 * @module
 */
import type { Ret } from "../../spec/types.ts";

/** `text` safe inside HTML text and attribute values. */
export function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

/** JSON of a spec value: Maps as entry lists, Sets as lists, bigints as `123n`. */
export function toJson(value: unknown, indent?: number): string {
  if (value === undefined) return "absent";
  return JSON.stringify(
    value,
    (_k, x) =>
      x instanceof Map ? [...x] : x instanceof Set ? [...x] : typeof x === "bigint" ? `${x}n` : x,
    indent,
  );
}

/** Values whose JSON is longer than this are abbreviated. */
const LONG = 40;

/** A hex string: shown with its byte count. */
const HEX = /^(?:[0-9a-f]{2})+$/i;

/**
 * `value` as HTML: its JSON, or when longer than `limit` characters the start and the end
 * around an ellipsis (hex data with its size in bytes) in a span whose title holds it all.
 */
export function valueHtml(value: unknown, limit = LONG): string {
  const text = typeof value === "string" && HEX.test(value) ? value : toJson(value);
  if (text.length <= limit) return escapeHtml(text);
  const size = typeof value === "string" && HEX.test(value)
    ? `${value.length / 2} bytes`
    : `${text.length} chars`;
  const head = Math.max(16, limit - 24);
  const short = `${text.slice(0, head)}…${text.slice(-8)} (${size})`;
  return `<span class="abbr" title="${escapeHtml(text)}">${escapeHtml(short)}</span>`;
}

/** A sentinel: an argument or result field whose value means something other than a number. */
interface Sentinel {
  /** Field name. */
  readonly key: string;
  /** The value that is special. */
  readonly value: unknown;
  /** Ops where it is (a prefix like `qm.` for a component); any op when absent. */
  readonly ops?: string;
  /** What it means. */
  readonly means: string;
}

/** The sentinels of the spec's vocabulary. */
const SENTINELS: readonly Sentinel[] = [
  { key: "owner", value: "kernel", means: "the kernel driver owns the queue, not a process" },
  { key: "by", value: "kernel", means: "written by the kernel driver, not a process" },
  {
    key: "seq",
    value: -1,
    ops: "qm.",
    means: "no request recorded in that SQ slot: the completion names a slot nothing was sent in",
  },
  { key: "tag", value: -1, ops: "qm.", means: "no request recorded in that SQ slot" },
  {
    key: "length",
    value: -1,
    means: "the output is not exactly one valid stream of its format",
  },
  { key: "crc32", value: -1, means: "the output is not exactly one valid stream of its format" },
  {
    key: "updateAt",
    value: -1,
    ops: "sdmdev.wait",
    means: "the device reports no update during the wait",
  },
  { key: "timeout", value: 0, ops: "sdmdev.wait", means: "wait forever" },
  { key: "status", value: null, means: "the device has not consumed the request yet" },
];

/** What `value` at field `key` of an op's arguments or result means, if it is a sentinel. */
export function sentinelMeaning(op: string, key: string, value: unknown): string | undefined {
  if (key === "owner" && op.startsWith("iommu.") && typeof value === "number" && value >= 1000) {
    return `type1's share owner for container ${value - 1000} (1000 + container)`;
  }
  return SENTINELS.find((s) =>
    s.key === key && s.value === value && (s.ops === undefined || op.startsWith(s.ops))
  )?.means;
}

/**
 * The fields of `record` as `key=value` HTML, sentinels marked with their meaning (also
 * collected into `legend`, for the page's list of sentinels).
 */
export function fieldsHtml(
  op: string,
  record: Record<string, unknown>,
  legend: Map<string, string>,
): string {
  return Object.entries(record).map(([k, v]) => {
    const means = sentinelMeaning(op, k, v);
    if (!means) return `${escapeHtml(k)}=${valueHtml(v)}`;
    legend.set(`${k}=${toJson(v)}`, means);
    const shown = `<abbr class="sentinel" title="${escapeHtml(means)}">${valueHtml(v)}</abbr>`;
    return `${escapeHtml(k)}=${shown}`;
  }).join(", ");
}

/** A return value as short text: `ok 2`, `err EINVAL`, `ok {…}` when the value is long. */
export function retText(ret: Ret): string {
  if ("err" in ret) return `err ${ret.err}`;
  const text = `ok ${toJson(ret.ok)}`;
  return text.length <= 18 ? text : typeof ret.ok === "object" ? "ok {…}" : `${text.slice(0, 17)}…`;
}

/** A return value as HTML (`ok …` / `err …`), sentinels in an ok record marked. */
export function retHtml(
  op: string,
  ret: Ret | undefined,
  legend: Map<string, string>,
): string {
  if (ret === undefined) return "—";
  if ("err" in ret) return `<span class="err">err ${escapeHtml(ret.err)}</span>`;
  const ok = ret.ok;
  if (typeof ok === "object" && ok !== null && !Array.isArray(ok) && !(ok instanceof Map)) {
    return `ok {${fieldsHtml(op, ok as Record<string, unknown>, legend)}}`;
  }
  return `ok ${valueHtml(ok)}`;
}
