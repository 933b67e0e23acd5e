/**
 * Vocabulary shared by every spec module: return values, errno names, events and the
 * shape of one step. Pure data, no behaviour beyond tiny constructors.
 *
 * @module
 */

/** Linux errno names used by the modelled interfaces. */
export type Errno =
  | "EINVAL"
  | "EBUSY"
  | "EEXIST"
  | "ENODEV"
  | "ENOENT"
  | "ENOSPC"
  | "ENOMEM"
  | "EFAULT"
  | "EPERM"
  | "EAGAIN"
  | "EIO"
  | "ETIMEDOUT"
  | "ENXIO"
  | "EBADF";

/** Every errno name, for validating traces from other implementations. */
export const ERRNOS: readonly Errno[] = [
  "EINVAL",
  "EBUSY",
  "EEXIST",
  "ENODEV",
  "ENOENT",
  "ENOSPC",
  "ENOMEM",
  "EFAULT",
  "EPERM",
  "EAGAIN",
  "EIO",
  "ETIMEDOUT",
  "ENXIO",
  "EBADF",
];

/** Result of a command: a value on success or an errno name on failure. */
export type Ret<T = unknown> = { readonly ok: T } | { readonly err: Errno };

/**
 * Something a kernel would WARN about or log while executing a command. An event is a
 * finding, not an error code: the spec emits only the events the intended system emits
 * (for example an IOMMU fault on a DMA to an unmapped IOVA).
 */
export type Event =
  | { readonly warn: string; readonly [detail: string]: unknown }
  | { readonly fault: string; readonly [detail: string]: unknown };

/** What one step of a state machine produces. */
export interface StepResult<S> {
  /** The state after the command. */
  readonly state: S;
  /** The command's return value. */
  readonly ret: Ret;
  /** WARN-like findings, in the order they happened. */
  readonly events: readonly Event[];
}

/** A {@link StepResult} whose success value has the op's own type `T`. */
export interface TypedStepResult<S, T> extends StepResult<S> {
  /** The command's return value: `{ ok: T }` or an errno. */
  readonly ret: Ret<T>;
}

/**
 * One component's specification as a record: everything an oracle needs to judge an
 * implementation of it. `initial` takes the component's configuration (each module documents
 * its defaults); `schema` is the op table, every op with its argument kinds.
 */
export interface MachineSpec<S, C extends { readonly op: string }, Config = never> {
  /** The component's name (the prefix of its ops). */
  readonly component: string;
  /** The initial state, for `config` or the defaults. */
  initial(config?: Config): S;
  /** Executes one command; an op the component does not have throws {@link UnknownOpError}. */
  step(state: S, cmd: C): StepResult<S>;
  /** What must hold, with its scope. */
  readonly invariants: readonly Invariant<S>[];
  /** Every op and its argument fields. */
  readonly schema: CommandSchema<C["op"]>;
  /** Every op and the shape of its success value. */
  readonly results: ResultTable<C["op"]>;
}

/** A {@link MachineSpec} of any component, its types erased. */
export type AnyMachineSpec = MachineSpec<unknown, { readonly op: string }, unknown>;

/**
 * A named predicate over a state: returns a message when violated, undefined when it holds.
 * Safety invariants hold at every scheduling point, even in the middle of an operation;
 * structural ones relate data that an operation updates step by step under a lock, so they
 * hold between operations only.
 */
export interface Invariant<S> {
  /** Stable name, used in traces and reports. */
  readonly name: string;
  /** `always`: checked at every scheduling point; `between-ops`: after each operation. */
  readonly scope: "always" | "between-ops";
  /** The check itself. */
  check(state: S): string | undefined;
}

/** Builds a successful return value. */
export function ok<T>(value: T): Ret<T> {
  return { ok: value };
}

/** Builds a failed return value. */
export function err(errno: Errno): Ret<never> {
  return { err: errno };
}

/** Builds a step result that leaves the state unchanged and fails with `errno`. */
export function fail<S>(state: S, errno: Errno, events: readonly Event[] = []): StepResult<S> {
  return { state, ret: err(errno), events };
}

/** Size of one page of memory and of one IOMMU page, in bytes. */
export const PAGE_SIZE: number = 4096;

/**
 * Every violated invariant of `state`, as `name: message` strings; with a `scope`, only the
 * invariants of that scope.
 */
export function checkInvariants<S>(
  invariants: readonly Invariant<S>[],
  state: S,
  scope?: Invariant<S>["scope"],
): string[] {
  const out: string[] = [];
  for (const inv of invariants) {
    if (scope && inv.scope !== scope) continue;
    const msg = inv.check(state);
    if (msg !== undefined) out.push(`${inv.name}: ${msg}`);
  }
  return out;
}

/**
 * The argument kinds a command field can have: an integer, a string, a boolean, a queue owner
 * (`"kernel"` or a positive process id); a trailing `?` marks an optional field.
 */
export type FieldKind = "int" | "string" | "bool" | "owner" | "int?" | "bool?";

/**
 * A component's command schema: every op and the kind of each argument field. Public API:
 * what validates traces from other implementations and generates commands.
 */
export type CommandSchema<Op extends string> = {
  readonly [op in Op]: Readonly<Record<string, FieldKind>>;
};

/**
 * Thrown by every `step` for a command whose `op` the component does not have: a caller's
 * mistake (validate untrusted commands against the component's {@link CommandSchema} first),
 * the same typed error in every module.
 */
export class UnknownOpError extends Error {
  /** The op that was given. */
  readonly op: unknown;

  /** An error naming `op`. */
  constructor(op: unknown) {
    super(`unknown op ${JSON.stringify(op)}`);
    this.name = "UnknownOpError";
    this.op = op;
  }
}

/** The catch-all of a step's dispatch: throws {@link UnknownOpError} for `value` (an op or a command). */
export function unknownOp(value: unknown): never {
  const op = typeof value === "object" && value !== null && "op" in value ? value.op : value;
  throw new UnknownOpError(op);
}

/**
 * The shape of an op's success value (`ret.ok`), as data: `"zero"` (always 0), `"int"`,
 * `"null"`, `"string"`, `"bool"`, one constant, a record of named fields, a list, or one of
 * several shapes. Traces from other implementations are validated against it (the trace JSON
 * Schema), and {@link ResultOf} turns it into the TypeScript type a typed `step` returns.
 */
export type ResultKind =
  | "zero"
  | "int"
  | "null"
  | "string"
  | "bool"
  | { readonly const: string | number }
  | { readonly record: { readonly [field: string]: ResultKind } }
  | { readonly list: ResultKind }
  | { readonly oneOf: readonly ResultKind[] };

/** A component's result table: the shape of every op's success value. */
export type ResultTable<Op extends string> = { readonly [op in Op]: ResultKind };

/** The TypeScript type of a value of shape `K`. */
export type ResultOf<K> = K extends "zero" ? 0
  : K extends "int" ? number
  : K extends "null" ? null
  : K extends "string" ? string
  : K extends "bool" ? boolean
  : K extends { readonly const: infer V } ? V
  : K extends { readonly record: infer R } ? { readonly [f in keyof R]: ResultOf<R[f]> }
  : K extends { readonly list: infer E } ? readonly ResultOf<E>[]
  : K extends { readonly oneOf: readonly (infer U)[] } ? ResultOf<U>
  : never;

/** Every op's success type, from a result table. */
export type ResultsOf<T> = { readonly [op in keyof T]: ResultOf<T[op]> };

/** Whether `value` (a decoded JSON value) has shape `kind`; records must have exactly its fields. */
export function hasResultShape(kind: ResultKind, value: unknown): boolean {
  if (kind === "zero") return value === 0;
  if (kind === "int") return Number.isSafeInteger(value);
  if (kind === "null") return value === null;
  if (kind === "string") return typeof value === "string";
  if (kind === "bool") return typeof value === "boolean";
  if ("const" in kind) return value === kind.const;
  if ("list" in kind) {
    return Array.isArray(value) && value.every((v) => hasResultShape(kind.list, v));
  }
  if ("oneOf" in kind) return kind.oneOf.some((k) => hasResultShape(k, value));
  if (typeof value !== "object" || value === null || Array.isArray(value)) return false;
  const fields = Object.keys(kind.record);
  return Object.keys(value).length === fields.length &&
    fields.every((f) =>
      Object.hasOwn(value, f) &&
      hasResultShape(kind.record[f], (value as Record<string, unknown>)[f])
    );
}
