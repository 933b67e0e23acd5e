/**
 * Commands as data: validation of untrusted command records (traces, CLI input) against any
 * machine's schema ({@link parseWithSchema}), and the type1 machine's validator and
 * fast-check arbitraries, generated from the spec's {@link COMMAND_SCHEMA}.
 *
 * @module
 */
import fc from "fast-check";
import {
  type Command,
  COMMAND_SCHEMA,
  type FieldKind,
  type Op,
  type Topology,
} from "../spec/system.ts";
import { PAGE_SIZE } from "../spec/types.ts";
import { PIN_PAGES_MAX } from "../spec/type1.ts";
import { ItfError } from "./itf.ts";

/** The op names and argument kinds of one machine's commands. */
export type Schema = Readonly<Record<string, Readonly<Record<string, FieldKind>>>>;

function fits(kind: FieldKind, v: unknown): boolean {
  switch (kind.replace("?", "")) {
    case "int":
      return typeof v === "number";
    case "string":
      return typeof v === "string";
    case "bool":
      return typeof v === "boolean";
    default:
      return v === "kernel" || typeof v === "number";
  }
}

const EXPECTED: Record<string, string> = {
  int: "an integer",
  string: "a string",
  bool: "a boolean",
  owner: '"kernel" or an integer',
};

/**
 * Checks that `op` plus `args` (decoded ITF) form a valid command of `schema`; errors name the
 * JSON path.
 */
export function parseWithSchema<C>(
  schema: Schema,
  op: unknown,
  args: unknown,
  opPath: string,
  argsPath: string,
): C {
  if (typeof op !== "string" || !Object.hasOwn(schema, op)) {
    throw new ItfError(opPath, `unknown op ${JSON.stringify(op)}`);
  }
  if (typeof args !== "object" || args === null || Array.isArray(args) || args instanceof Map) {
    throw new ItfError(argsPath, `expected a record of arguments for ${op}`);
  }
  const fields = schema[op];
  const rec = args as Record<string, unknown>;
  for (const k of Object.keys(rec)) {
    if (!Object.hasOwn(fields, k)) {
      throw new ItfError(`${argsPath}.${k}`, `${op} has no argument "${k}"`);
    }
  }
  for (const [k, kind] of Object.entries(fields)) {
    if (!(k in rec)) {
      if (kind.endsWith("?")) continue;
      throw new ItfError(`${argsPath}.${k}`, `missing argument of ${op}`);
    }
    if (!fits(kind, rec[k])) {
      const want = EXPECTED[kind.replace("?", "")];
      throw new ItfError(`${argsPath}.${k}`, `expected ${want}, got ${describe(rec[k])}`);
    }
  }
  return { op, ...rec } as C;
}

/** Checks that `op` plus `args` form a valid command of the type1 machine. */
export function parseCommand(
  op: unknown,
  args: unknown,
  opPath: string,
  argsPath: string,
): Command {
  return parseWithSchema<Command>(COMMAND_SCHEMA, op, args, opPath, argsPath);
}

function describe(v: unknown): string {
  if (v === null) return "None";
  if (Array.isArray(v)) return "a list";
  return typeof v === "object" ? "a record" : `${typeof v} ${JSON.stringify(v)}`;
}

/** The value pools commands draw their arguments from. */
export interface Pools {
  /** Group ids (including one that does not exist). */
  readonly group: readonly number[];
  /** Container ids (including one that does not exist). */
  readonly container: readonly number[];
  /** Share owners of kernel clients that are not containers. */
  readonly owner: readonly number[];
  /** Process ids: the containers' openers, children to fork, and one that never exists. */
  readonly mm: readonly number[];
  /**
   * The (container, group) pairs that belong together (each process and the groups it opens):
   * commands naming both draw one of them three times in four, so that attach, SET_IOMMU,
   * GET_DEVICE_FD and its close line up often instead of once in fifteen draws.
   */
  readonly pairs: readonly (readonly [container: number, group: number])[];
}

/** The process id forks create (a second fork of it is EEXIST). */
const FORK_CHILD = 3;

/** Pools for a topology: every id plus one unknown id each; `pairs` as {@link Pools.pairs}. */
export function poolsFor(
  topology: Topology,
  pairs: readonly (readonly [number, number])[] = [],
): Pools {
  return {
    group: [
      ...topology.pciGroups,
      ...topology.mdevGroups.map((m) => m.group),
      ...topology.vendorGroups ?? [],
      99,
    ],
    container: [...topology.containers.map((c) => c.id), 99],
    owner: [1, 2],
    mm: [...topology.containers.map((c) => c.mm), FORK_CHILD, 99],
    pairs,
  };
}

/** Picks from `ids`, the last of which (an unknown id) four times less often than each other. */
function weighted(ids: readonly number[]): fc.Arbitrary<number> {
  return fc.oneof(
    ...ids.map((id, i) => ({ weight: i === ids.length - 1 ? 1 : 4, arbitrary: fc.constant(id) })),
  );
}

/** A small IOVA/vaddr space so that overlaps and collisions happen often; rarely unaligned. */
const address = fc.oneof(
  { weight: 12, arbitrary: fc.integer({ min: 0, max: 5 }).map((p) => p * PAGE_SIZE) },
  { weight: 1, arbitrary: fc.integer({ min: 1, max: 3 * PAGE_SIZE }) },
);

const arbitraryFor: Record<string, (pools: Pools) => fc.Arbitrary<number>> = {
  group: (p) => weighted(p.group),
  container: (p) => weighted(p.container),
  owner: (p) => fc.constantFrom(...p.owner),
  mm: (p) => weighted(p.mm),
  child: (p) => weighted(p.mm),
  iova: () => address,
  vaddr: () => address,
  size: () =>
    fc.oneof(
      { weight: 12, arbitrary: fc.integer({ min: 1, max: 3 }).map((n) => n * PAGE_SIZE) },
      { weight: 1, arbitrary: fc.constantFrom(0, 100) },
    ),
  // Mostly a few pages; rarely the pin limit and one past it.
  pages: () =>
    fc.oneof(
      { weight: 12, arbitrary: fc.integer({ min: 0, max: 3 }) },
      { weight: 1, arbitrary: fc.constantFrom(PIN_PAGES_MAX, PIN_PAGES_MAX + 1) },
    ),
};

/** How often each op is generated in sequential runs. */
export const WEIGHTS: { readonly [op in Op]: number } = {
  "iommu.share": 1,
  "iommu.unshare": 1,
  "iommu.dmaAlloc": 2,
  "iommu.dmaFree": 1,
  "iommu.dma": 3,
  "type1.openGroup": 5,
  "type1.closeGroup": 1,
  "type1.getDeviceFd": 4,
  "type1.closeDeviceFd": 2,
  "type1.attach": 5,
  "type1.detach": 3,
  "type1.setIommu": 4,
  "type1.map": 5,
  "type1.unmap": 2,
  "type1.pin": 4,
  "type1.unpin": 3,
  "mm.fork": 2,
  "mm.write": 3,
};

/** An arbitrary for one command of `op`, its fields drawn from the schema's generators. */
export function commandOf(op: Op, pools: Pools): fc.Arbitrary<Command> {
  const fields = Object.keys(COMMAND_SCHEMA[op]);
  const rec = Object.fromEntries(fields.map((f) => [f, arbitraryFor[f](pools)]));
  const any = fc.record(rec).map((args) => ({ op, ...args }) as Command);
  if (pools.pairs.length === 0 || !fields.includes("container") || !fields.includes("group")) {
    return any;
  }
  const paired = fc.tuple(any, fc.constantFrom(...pools.pairs)).map(([cmd, [container, group]]) =>
    ({ ...cmd, container, group }) as Command
  );
  return fc.oneof({ weight: 3, arbitrary: paired }, { weight: 1, arbitrary: any });
}

/**
 * How often each op is generated for race actors: the operations whose interleavings matter
 * (sharing, attach, SET_IOMMU, detach, MAP_DMA, device DMA) dominate. A fork and a store have
 * no scheduling point in the implementation, so actors never draw them (weight 0).
 */
export const RACE_WEIGHTS: { readonly [op in Op]: number } = {
  "iommu.share": 4,
  "iommu.unshare": 2,
  "iommu.dmaAlloc": 1,
  "iommu.dmaFree": 1,
  "iommu.dma": 2,
  "type1.openGroup": 1,
  "type1.closeGroup": 1,
  "type1.getDeviceFd": 1,
  "type1.closeDeviceFd": 1,
  "type1.attach": 5,
  "type1.detach": 5,
  "type1.setIommu": 5,
  "type1.map": 3,
  "type1.unmap": 2,
  "type1.pin": 3,
  "type1.unpin": 4,
  "mm.fork": 0,
  "mm.write": 0,
};

/**
 * An arbitrary over every command of the system, weighted towards the interesting ones (an op
 * of weight 0 is never drawn).
 */
export function anyCommand(
  pools: Pools,
  weights: { readonly [op in Op]: number } = WEIGHTS,
): fc.Arbitrary<Command> {
  return fc.oneof(
    ...(Object.keys(COMMAND_SCHEMA) as Op[]).filter((op) => weights[op] > 0).map((op) => ({
      weight: weights[op],
      arbitrary: commandOf(op, pools),
    })),
  );
}
