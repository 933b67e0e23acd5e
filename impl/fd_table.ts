/**
 * A process's file descriptor table (`struct files_struct`): an open file gets the lowest free
 * number from 3 up (0-2 are the standard streams), and closing a number releases its file.
 * Closing a number twice is EINVAL (EBADF; the errno set has no EBADF) — unless the number was
 * handed to another file in between, which the second close then closes.
 *
 * @module
 */
import type { Errno } from "../spec/types.ts";
import type { KernelFile } from "./vfio/files.ts";

/** The first number an open hands out. */
const FIRST_FD = 3;

/** One process's open files. */
export class FdTable {
  readonly #files = new Map<number, KernelFile>();

  /** Installs `file` at the lowest free number and returns the number. */
  install(file: KernelFile): number {
    let fd = FIRST_FD;
    while (this.#files.has(fd)) fd++;
    this.#files.set(fd, file);
    return fd;
  }

  /** The file at `fd`, if open. */
  get(fd: number): KernelFile | undefined {
    return this.#files.get(fd);
  }

  /** close(2): the number is free at once, then the file is released; EINVAL if not open. */
  async close(fd: number): Promise<Errno | undefined> {
    const file = this.#files.get(fd);
    if (!file) return "EINVAL";
    this.#files.delete(fd);
    return await file.release();
  }

  /** The open numbers, lowest first. */
  numbers(): number[] {
    return [...this.#files.keys()].sort((a, b) => a - b);
  }

  /** How many files are open. */
  get size(): number {
    return this.#files.size;
  }
}
