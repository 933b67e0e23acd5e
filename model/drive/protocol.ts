/**
 * The `drive` protocol: JSON lines between warpspec (the driver) and an implementation under
 * test (any program reading stdin and writing stdout). Every request is one line, every answer
 * one line, in request order. The JSON Schema is `fixtures/schemas/drive-protocol.schema.json`.
 *
 * Requests:
 * - `{"type":"reset","protocol":1,"machine":"qm","config":{…}}`: start over from the machine's
 *   initial state with this configuration (QM sizes, or the type1 topology).
 * - `{"type":"apply","command":{"op":"qm.send","qn":0,"tag":7}}`: execute one spec command.
 *
 * Answers:
 * - to a reset: `{"ready":true}`, optionally with `"state"` (the initial state, compared too);
 * - to an apply: `{"ret":{"ok":V}|{"err":"ERRNO"},"events":[…]}`, optionally with `"state"`,
 *   the implementation's state after the command in the spec's shape (compared, and its
 *   invariants checked); `events` may be left out when there are none;
 * - to either: `{"error":"text"}` when the implementation cannot do what was asked.
 *
 * Values are JSON with ITF's tags where JSON has no type: integers are numbers (or
 * `{"#bigint":"…"}` past 2^53), absent values `null` (or ITF's `None` variant), Maps
 * `{"#map":[[k,v],…]}`, Sets `{"#set":[…]}`. The driver writes a whole run's requests at once,
 * so an implementation should flush its answers when it has no more input to read.
 *
 * @module
 */
import { ERRNOS, type Event, type Ret } from "../../spec/types.ts";
import { fromItf, ItfError } from "../itf.ts";
import type { Cmd } from "../machine.ts";

/** The protocol version a reset carries. */
export const PROTOCOL_VERSION = 1;

/** A request line: reset to the initial state. */
export function resetRequest(machine: string, config: unknown): string {
  return JSON.stringify({ type: "reset", protocol: PROTOCOL_VERSION, machine, config });
}

/** A request line: apply one command. */
export function applyRequest(cmd: Cmd): string {
  return JSON.stringify({ type: "apply", command: cmd });
}

/** A parsed answer to a reset. */
export interface ReadyAnswer {
  /** The initial state, when the implementation reports it. */
  readonly state?: unknown;
}

/** A parsed answer to an apply. */
export interface ApplyAnswer {
  /** The command's return value. */
  readonly ret: Ret;
  /** Its events. */
  readonly events: readonly Event[];
  /** The state after it, when the implementation reports it. */
  readonly state?: unknown;
}

/** An answer that breaks the protocol (the message says how): a divergence, not a crash. */
export class ProtocolError extends Error {}

const NONE = { tag: "None", value: { "#tup": [] } };

/** ITF with plain JSON `null` allowed for an absent value, decoded to warpspec values. */
export function decodeValue(json: unknown, path: string): unknown {
  return fromItf(nullsToNone(json), path);
}

function nullsToNone(json: unknown): unknown {
  if (json === null) return NONE;
  if (typeof json !== "object") return json;
  if (Array.isArray(json)) return json.map(nullsToNone);
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(json)) out[k] = nullsToNone(v);
  return out;
}

function show(line: string): string {
  return JSON.stringify(line.length > 120 ? `${line.slice(0, 120)}…` : line);
}

function parseLine(line: string, what: string): Record<string, unknown> {
  let json: unknown;
  try {
    json = JSON.parse(line);
  } catch {
    throw new ProtocolError(`malformed JSON in the answer to ${what}: ${show(line)}`);
  }
  if (typeof json !== "object" || json === null || Array.isArray(json)) {
    throw new ProtocolError(`the answer to ${what} is not a JSON object: ${show(line)}`);
  }
  const rec = json as Record<string, unknown>;
  if ("error" in rec) {
    throw new ProtocolError(`the implementation answered ${what} with an error: ${rec.error}`);
  }
  return rec;
}

function decoded(rec: Record<string, unknown>, key: string, what: string): unknown {
  try {
    return decodeValue(rec[key], `$.${key}`);
  } catch (e) {
    if (e instanceof ItfError) throw new ProtocolError(`answer to ${what}: ${e.message}`);
    throw e;
  }
}

/** Parses the answer line to a reset. */
export function parseReady(line: string): ReadyAnswer {
  const rec = parseLine(line, "reset");
  if (rec.ready !== true) {
    throw new ProtocolError(`the answer to reset lacks "ready": true: ${show(line)}`);
  }
  return "state" in rec ? { state: decoded(rec, "state", "reset") } : {};
}

function parseRet(v: unknown, what: string): Ret {
  const bad = () => new ProtocolError(`answer to ${what}: $.ret: expected {"ok": V} or {"err": E}`);
  if (typeof v !== "object" || v === null || Array.isArray(v)) throw bad();
  const keys = Object.keys(v);
  if (keys.length !== 1) throw bad();
  if (keys[0] === "ok") return { ok: (v as { ok: unknown }).ok };
  const e = (v as { err?: unknown }).err;
  if (keys[0] !== "err" || typeof e !== "string") throw bad();
  if (!(ERRNOS as readonly string[]).includes(e)) {
    throw new ProtocolError(`answer to ${what}: $.ret.err: unknown errno "${e}"`);
  }
  return { err: e as Extract<Ret, { err: unknown }>["err"] };
}

/** Parses the answer line to the apply of `cmd` (`what` names it in messages). */
export function parseApply(line: string, what: string): ApplyAnswer {
  const rec = parseLine(line, what);
  if (!("ret" in rec)) throw new ProtocolError(`answer to ${what} has no "ret": ${show(line)}`);
  const ret = parseRet(decoded(rec, "ret", what), what);
  const events = "events" in rec ? decoded(rec, "events", what) : [];
  if (!Array.isArray(events)) {
    throw new ProtocolError(`answer to ${what}: $.events: expected a list`);
  }
  events.forEach((e, i) => {
    const r = e as Record<string, unknown> | null;
    if (
      typeof r !== "object" || r === null || Array.isArray(r) ||
      (typeof r.warn !== "string" && typeof r.fault !== "string")
    ) {
      throw new ProtocolError(
        `answer to ${what}: $.events[${i}]: needs a "warn" or "fault" string`,
      );
    }
  });
  const answer = { ret, events: events as Event[] };
  return "state" in rec ? { ...answer, state: decoded(rec, "state", what) } : answer;
}
