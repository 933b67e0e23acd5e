/**
 * JSON Schema (draft 2020-12) of a machine's ITF traces, generated from its command schema:
 * the `#meta` record (machine, mode, quirks), the variables, and each state's action, its
 * arguments and its return as ITF writes them (integers as `{"#bigint": "…"}` or plain JSON
 * integers; a success value of the op's result shape, an errno, or an unknown outcome). The
 * state variables themselves are left open: their shape is the spec's state type. What an
 * implementation in another language writes can be checked with any JSON Schema validator
 * before it reaches the oracle; `fixtures/schemas/` holds these files, and CI validates every
 * fixture against them.
 *
 * @module
 */
import { ERRNOS, type FieldKind, type ResultKind } from "../spec/types.ts";
import type { Machine } from "./machine.ts";

/** A JSON Schema document. */
export type JsonSchema = Readonly<Record<string, unknown>>;

/** The variables every warpspec trace may carry besides the machine's own state variables. */
const TRACE_VARS = [
  "mbt::actionTaken",
  "mbt::nondetPicks",
  "warpspec::ret",
  "warpspec::events",
  "warpspec::actor",
  "warpspec::invoked",
  "warpspec::returned",
  "warpspec::schedule",
];

const INT: JsonSchema = {
  oneOf: [
    { type: "integer" },
    {
      type: "object",
      properties: { "#bigint": { type: "string", pattern: "^-?[0-9]+$" } },
      required: ["#bigint"],
      additionalProperties: false,
    },
  ],
};

function field(kind: FieldKind): JsonSchema {
  switch (kind.replace("?", "")) {
    case "int":
      return { $ref: "#/$defs/int" };
    case "string":
      return { type: "string" };
    case "bool":
      return { type: "boolean" };
    default: // "owner": the kernel or a process id
      return { oneOf: [{ const: "kernel" }, { $ref: "#/$defs/int" }] };
  }
}

/** An integer constant, plain or as `#bigint`. */
function intConst(n: number): JsonSchema {
  return {
    oneOf: [
      { const: n },
      {
        type: "object",
        properties: { "#bigint": { const: String(n) } },
        required: ["#bigint"],
        additionalProperties: false,
      },
    ],
  };
}

/** A success value of shape `kind`, as ITF encodes it (null is the `None` variant). */
function result(kind: ResultKind): JsonSchema {
  if (kind === "zero") return { $ref: "#/$defs/zero" };
  if (kind === "int") return { $ref: "#/$defs/int" };
  if (kind === "null") return { $ref: "#/$defs/none" };
  if (kind === "string") return { type: "string" };
  if (kind === "bool") return { type: "boolean" };
  if ("const" in kind) return typeof kind.const === "number" ? intConst(kind.const) : kind;
  if ("list" in kind) return { type: "array", items: result(kind.list) };
  if ("oneOf" in kind) return { anyOf: kind.oneOf.map(result) };
  const fields = Object.entries(kind.record);
  return {
    type: "object",
    properties: Object.fromEntries(fields.map(([f, k]) => [f, result(k)])),
    required: fields.map(([f]) => f),
    additionalProperties: false,
  };
}

/** A record of exactly one field, `key`. */
function only(key: string, value: JsonSchema): JsonSchema {
  return {
    type: "object",
    properties: { [key]: value },
    required: [key],
    additionalProperties: false,
  };
}

/** `warpspec::ret` of a step of an op whose success values have shape `kind`. */
function ret(kind: ResultKind): JsonSchema {
  return {
    oneOf: [only("ok", result(kind)), { $ref: "#/$defs/failed" }, { $ref: "#/$defs/unknown" }],
  };
}

/** The arguments record of one op. */
function args(fields: Readonly<Record<string, FieldKind>>): JsonSchema {
  return {
    type: "object",
    properties: Object.fromEntries(Object.entries(fields).map(([k, kind]) => [k, field(kind)])),
    required: Object.entries(fields).filter(([, kind]) => !kind.endsWith("?")).map(([k]) => k),
    additionalProperties: false,
  };
}

/** The schema of `machine`'s traces, from its command schema and result table. */
export function traceSchema(machine: Machine): JsonSchema {
  const { schema, results } = machine;
  const ops = Object.keys(schema).sort();
  const command = (op: string): JsonSchema => ({
    type: "object",
    properties: { op: { const: op }, ...(args(schema[op]).properties as object) },
    required: ["op", ...(args(schema[op]).required as string[])],
    additionalProperties: false,
  });
  return {
    $schema: "https://json-schema.org/draft/2020-12/schema",
    $id: `urn:warpspec:trace:${machine.name}`,
    title: `warpspec ${machine.name} trace (ITF)`,
    type: "object",
    required: ["#meta", "vars", "states"],
    properties: {
      "#meta": {
        type: "object",
        properties: {
          format: { const: "ITF" },
          machine: { const: machine.name },
          mode: { enum: ["sequential", "race"] },
          quirks: machine.quirks.length > 0
            ? { type: "array", items: { enum: [...machine.quirks] }, uniqueItems: true }
            : { type: "array", maxItems: 0 },
          race: {
            type: "object",
            properties: {
              setup: { type: "array", items: { $ref: "#/$defs/command" } },
              actors: {
                type: "array",
                items: {
                  type: "object",
                  properties: {
                    name: { type: "string" },
                    program: { type: "array", items: { $ref: "#/$defs/command" } },
                  },
                  required: ["name", "program"],
                },
              },
              schedule: { type: "array", items: { type: "string" } },
            },
            required: ["setup", "actors", "schedule"],
          },
        },
        required: ["machine"],
      },
      vars: {
        type: "array",
        items: { enum: [...machine.vars, ...TRACE_VARS] },
        uniqueItems: true,
      },
      states: { type: "array", minItems: 1, items: { $ref: "#/$defs/state" } },
    },
    $defs: {
      int: INT,
      zero: intConst(0),
      failed: only("err", { enum: [...ERRNOS] }),
      unknown: only("unknown", { const: true }),
      none: {
        type: "object",
        properties: { tag: { const: "None" }, value: { const: { "#tup": [] } } },
        required: ["tag", "value"],
        additionalProperties: false,
      },
      command: { oneOf: ops.map(command) },
      state: {
        type: "object",
        required: ["mbt::actionTaken"],
        properties: { "mbt::actionTaken": { enum: ["init", ...ops] } },
        allOf: ops.map((op) => ({
          if: { properties: { "mbt::actionTaken": { const: op } } },
          then: {
            properties: { "mbt::nondetPicks": args(schema[op]), "warpspec::ret": ret(results[op]) },
          },
        })),
      },
    },
  };
}
