/**
 * Projected state: the parts of a machine's state a trace records, named by field paths
 * (`"type1"`, `"iommu.domains"`: a state variable, then record fields). A trace declares them
 * in `#meta["vars-observed"]`; the oracle compares only those and the spec supplies the rest.
 *
 * @module
 */
import { ItfError } from "../itf.ts";
import type { Machine } from "../machine.ts";

/** Which fields to keep: `true` keeps the whole value, a record keeps some of its fields. */
export type Projection = { readonly [field: string]: Projection | true };

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v) && !(v instanceof Map) &&
    !(v instanceof Set);
}

/**
 * The projection that `paths` (the JSON value at `path`, from a trace's `#meta`) name,
 * validated against `machine`'s initial state: every path is a state variable followed by
 * record fields that the spec's state has. A path inside another (`type1`, `type1.pins`)
 * adds nothing.
 */
export function parseProjection(machine: Machine, paths: unknown, path: string): Projection {
  if (!Array.isArray(paths)) throw new ItfError(path, "expected a list of field paths");
  const initial = machine.initial() as Record<string, unknown>;
  const root: Record<string, Projection | true> = {};
  paths.forEach((p, i) => {
    const at = `${path}[${i}]`;
    if (typeof p !== "string" || !/^[A-Za-z_$][\w$]*(\.[A-Za-z_$][\w$]*)*$/.test(p)) {
      throw new ItfError(at, 'expected a field path like "iommu.domains"');
    }
    let node: Record<string, Projection | true> | undefined = root;
    let value: unknown = initial;
    const fields = p.split(".");
    fields.forEach((f, depth) => {
      const owner = depth === 0 ? `the ${machine.name} state` : fields.slice(0, depth).join(".");
      if (!isRecord(value) || !Object.hasOwn(value, f)) {
        const known = isRecord(value) ? ` (its fields: ${Object.keys(value).join(", ")})` : "";
        throw new ItfError(at, `${owner} has no field "${f}"${known}`);
      }
      value = value[f];
      // Still checked against the spec's state when an earlier path keeps all of it.
      if (node === undefined || node[f] === true) node = undefined;
      else if (depth === fields.length - 1) node[f] = true;
      else node = (node[f] ??= {}) as Record<string, Projection | true>;
    });
  });
  return root;
}

/** The whole state of `machine`, as a projection. */
export function wholeState(machine: Machine): Projection {
  return Object.fromEntries(machine.vars.map((v) => [v, true]));
}

/** The field paths a projection keeps, for reports (`iommu.domains`, `type1`). */
export function projectionPaths(projection: Projection): string[] {
  return Object.entries(projection).flatMap(([k, sub]) =>
    sub === true ? [k] : projectionPaths(sub).map((p) => `${k}.${p}`)
  );
}

/**
 * The part of `state` that `projection` keeps. With `path` (where `state` sits in a trace), a
 * field the state lacks is an {@link ItfError}; without, it is left out.
 */
export function project(state: unknown, projection: Projection, path?: string): unknown {
  const keep = (value: unknown, projection: Projection, at: string, depth: number): unknown => {
    if (!isRecord(value)) {
      if (path !== undefined) throw new ItfError(at, "expected a record");
      return value;
    }
    const out: Record<string, unknown> = {};
    for (const k in projection) {
      const sub = projection[k];
      if (!Object.hasOwn(value, k)) {
        if (path === undefined) continue;
        const what = depth === 0 ? "missing state variable" : "missing observed field";
        throw new ItfError(`${at}.${k}`, what);
      }
      out[k] = sub === true ? value[k] : keep(value[k], sub, `${at}.${k}`, depth + 1);
    }
    return out;
  };
  return keep(state, projection, path ?? "$", 0);
}
