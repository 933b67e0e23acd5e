/**
 * The typed error of the DEFLATE core. Every failure the core can detect in its input is a
 * {@link ZipError} with a {@link ZipErrorCode} from the specification (spec/zip.ts) and the
 * SQE status that reports it; the core never throws anything else for bad input.
 *
 * @module
 */

import { statusOfError, type ZipErrorCode, type ZipStatusCode } from "../../spec/zip.ts";

export type { ZipErrorCode } from "../../spec/zip.ts";

/**
 * An invalid or truncated compressed stream. (Programming errors such as a compression level
 * outside 0..9 are RangeErrors, not stream errors.)
 */
export class ZipError extends Error {
  /** The SQE status that reports this error. */
  readonly status: ZipStatusCode;

  /** Creates the error for `code`, with an optional human-readable detail. */
  constructor(readonly code: ZipErrorCode, detail?: string) {
    super(detail ? `${code}: ${detail}` : code);
    this.name = "ZipError";
    this.status = statusOfError(code);
  }
}
