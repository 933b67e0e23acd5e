/**
 * The file namespace user space finds devices in: sysfs attributes (`show`/`store`) and device
 * nodes (`/dev/...`, whose open is the driver's). Kernel pieces mount directories whose
 * entries they compute from their own state when a path is looked up, as sysfs shows live
 * kernel objects rather than copies; nothing here keeps state of its own but the mounts.
 *
 * @module
 */
import type { Errno } from "../spec/types.ts";

/** A failed read or lookup: its errno (kept apart from attribute text, which is any string). */
export interface SysfsError {
  /** Why. */
  readonly errno: Errno;
}

/** A sysfs attribute: what reading it shows and what writing it does. */
export interface SysfsAttr {
  /** Kind tag. */
  readonly kind: "attr";
  /** The attribute's text, or why reading it fails. */
  show?(): string | SysfsError;
  /** Writing `value`; an errno when the store refuses it. */
  store?(value: string): Promise<Errno | undefined> | Errno | undefined;
}

/** A device node: opening it gives a file for process `pid`. */
export interface DevNode<F = unknown> {
  /** Kind tag. */
  readonly kind: "dev";
  /** The driver's open. */
  open(pid: number): Promise<F | Errno> | F | Errno;
}

/** A directory: its entries as of now. */
export interface SysfsDir {
  /** Kind tag. */
  readonly kind: "dir";
  /** Name to entry. */
  entries(): ReadonlyMap<string, SysfsNode>;
}

/** Anything a path names. */
export type SysfsNode = SysfsAttr | DevNode | SysfsDir;

/** A directory of fixed entries. */
export function dir(entries: Record<string, SysfsNode>): SysfsDir {
  const map = new Map(Object.entries(entries));
  return { kind: "dir", entries: () => map };
}

/** A directory whose entries are computed at each lookup. */
export function liveDir(entries: () => Iterable<[string, SysfsNode]>): SysfsDir {
  return { kind: "dir", entries: () => new Map(entries()) };
}

/** A read-only attribute showing `show()`. */
export function roAttr(show: () => string | number | SysfsError): SysfsAttr {
  return {
    kind: "attr",
    show: () => {
      const v = show();
      return typeof v === "object" ? v : String(v);
    },
  };
}

/** A write-only attribute. */
export function woAttr(
  store: (value: string) => Promise<Errno | undefined> | Errno | undefined,
): SysfsAttr {
  return { kind: "attr", store };
}

/** The namespace of one machine. */
export class Sysfs {
  readonly #mounts = new Map<string, SysfsNode>();

  /**
   * Mounts `node` at the absolute path `at` (e.g. `/sys/class/sdmdev`), replacing an earlier
   * mount there. Throws for a path that is not absolute and normalised.
   */
  mount(at: string, node: SysfsNode): void {
    if (!/^(\/[^/]+)+$/.test(at)) throw new Error(`sysfs: bad mount point ${JSON.stringify(at)}`);
    this.#mounts.set(at, node);
  }

  /** The node at `path`, or ENOENT. */
  lookup(path: string): SysfsNode | Errno {
    if (!path.startsWith("/")) return "ENOENT";
    const parts = path.split("/").filter((p) => p !== "");
    for (let i = parts.length; i > 0; i--) {
      const mounted = this.#mounts.get(`/${parts.slice(0, i).join("/")}`);
      if (!mounted) continue;
      let node: SysfsNode = mounted;
      for (const name of parts.slice(i)) {
        if (node.kind !== "dir") return "ENOENT";
        const next = node.entries().get(name);
        if (!next) return "ENOENT";
        node = next;
      }
      return node;
    }
    return this.#mountedBelow(path) ? this.#virtualDir(path) : "ENOENT";
  }

  /** The names in directory `path`, sorted; ENOENT, or EINVAL for a node that is no directory. */
  list(path: string): string[] | Errno {
    const node = this.lookup(path);
    if (typeof node === "string") return node;
    if (node.kind !== "dir") return "EINVAL";
    return [...node.entries().keys()].sort();
  }

  /** Reads attribute `path`: its text; ENOENT, or EINVAL for a node that is no readable attribute. */
  read(path: string): string | SysfsError {
    const node = this.lookup(path);
    if (typeof node === "string") return { errno: node };
    if (node.kind !== "attr" || !node.show) return { errno: "EINVAL" };
    return node.show();
  }

  /** Writes attribute `path`. */
  async write(path: string, value: string): Promise<Errno | undefined> {
    const node = this.lookup(path);
    if (typeof node === "string") return node;
    if (node.kind !== "attr" || !node.store) return "EINVAL";
    return await node.store(value);
  }

  #mountedBelow(path: string): boolean {
    const prefix = path.endsWith("/") ? path : `${path}/`;
    return [...this.#mounts.keys()].some((m) => m.startsWith(prefix));
  }

  /** A directory that exists only because something is mounted below it. */
  #virtualDir(path: string): SysfsDir {
    const prefix = path.endsWith("/") ? path : `${path}/`;
    return liveDir(() => {
      const out: [string, SysfsNode][] = [];
      for (const m of this.#mounts.keys()) {
        if (!m.startsWith(prefix)) continue;
        const name = m.slice(prefix.length).split("/")[0];
        if (!out.some(([n]) => n === name)) {
          const node = this.lookup(prefix + name);
          if (typeof node !== "string") out.push([name, node]);
        }
      }
      return out;
    });
  }
}
