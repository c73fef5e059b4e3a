/** @module
 * What a failed block file read means: the file lacks bytes (the replica is corrupt, once a
 * check confirms it) or the process runs short of something for now (the read fails, nothing more).
 */

/** Errors of the process, not of the file (descriptors or memory running short). */
const TRANSIENT_READ_ERRORS: ReadonlySet<string | undefined> = new Set(['EMFILE', 'ENFILE', 'ENOMEM', 'EAGAIN', 'EINTR'])

/** The O3 code of a failed block file read by its errno: CHUNK_NOT_FOUND and IO_ERROR say the replica lacks bytes. */
export function readErrorCode(errno: string | undefined): 'CHUNK_NOT_FOUND' | 'UNAVAILABLE' | 'IO_ERROR' {
  if (errno === 'ENOENT') return 'CHUNK_NOT_FOUND'
  return TRANSIENT_READ_ERRORS.has(errno) ? 'UNAVAILABLE' : 'IO_ERROR'
}
