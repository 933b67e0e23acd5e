/**
 * The result of one bounded call on a compression or decompression stream context, shaped
 * like the fields the engine writes back into an SQE.
 *
 * @module
 */

import type { ZipError } from "./errors.ts";

/** What one call on a stream context did. */
export interface StreamResult {
  /** Bytes of this call's input that were taken (the caller re-offers the rest). */
  readonly consumed: number;
  /** Bytes of output produced by this call; always ≤ the call's destAvailOut. */
  readonly produced: number;
  /** A status from spec/zip.ts `ZipStatus`. */
  readonly status: number;
  /** The produced bytes (`output.length === produced`). */
  readonly output: Uint8Array;
  /** The typed error behind an error status, when there is one. */
  readonly error?: ZipError;
}
