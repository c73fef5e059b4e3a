/** @module
 * Which bytes of a chunk go to its block file next while the chunk's body arrives: runs of
 * whole checksum windows, so that each run is verified against its own checksums before it is
 * written. Pure: no I/O, no clock.
 */
import { assert } from '../../core/assert.ts'
import { DATANODE_WRITE_RUN_BYTES_FLOOR, DATANODE_WRITE_RUN_BYTES_MIN, DATANODE_WRITE_RUNS_PER_CHUNK } from '../../core/limits.ts'

export interface WriteRunState {
  /** Data bytes of the chunk already given to a run (a whole number of windows, or all). */
  doneBytes: number
  /** Data bytes of the chunk that have arrived. */
  arrivedBytes: number
  /** Data bytes of the whole chunk. */
  lengthBytes: number
  /** Bytes per checksum window; the chunk starts on a window. */
  windowBytes: number
  /**
   * A run starts once at least this much has arrived past `doneBytes`; Infinity makes one
   * run of the whole chunk once it has all arrived (verify everything, then write).
   */
  runBytesMin: number
}

export interface WriteRun {
  /** Offsets in the chunk's data: from is on a window; to is on a window or the chunk's end. */
  from: number
  to: number
}

/**
 * The next run: every whole window arrived past `doneBytes`, when that is at least
 * `runBytesMin`; once the chunk has all arrived, the rest, whatever its size (its last window
 * may be short). Undefined when there is nothing to run yet, or nothing left.
 */
export function nextWriteRun(s: WriteRunState): WriteRun | undefined {
  assert(s.windowBytes > 0, 'window must be positive')
  assert(s.runBytesMin > 0, 'run minimum must be positive')
  assert(s.doneBytes >= 0, 'done bytes negative')
  assert(s.doneBytes <= s.arrivedBytes, 'done past arrived')
  assert(s.arrivedBytes <= s.lengthBytes, 'arrived past the chunk')
  assert(s.doneBytes % s.windowBytes === 0 || s.doneBytes === s.lengthBytes, 'run ended inside a window')
  if (s.doneBytes === s.lengthBytes) return undefined
  if (s.arrivedBytes === s.lengthBytes) return { from: s.doneBytes, to: s.lengthBytes }
  const to = s.arrivedBytes - (s.arrivedBytes % s.windowBytes)
  if (to - s.doneBytes < Math.max(s.runBytesMin, s.windowBytes)) return undefined
  return { from: s.doneBytes, to }
}

/**
 * The run minimum for a chunk of `lengthBytes`: DATANODE_WRITE_RUN_BYTES_MIN for a default
 * chunk (about four runs), a quarter of a shorter chunk down to DATANODE_WRITE_RUN_BYTES_FLOOR,
 * so that a chunk of 1 MiB is not one run started only once it has all arrived.
 */
export function writeRunBytesMin(lengthBytes: number): number {
  assert(lengthBytes >= 0, 'chunk length negative')
  return Math.min(DATANODE_WRITE_RUN_BYTES_MIN, Math.max(DATANODE_WRITE_RUN_BYTES_FLOOR, Math.ceil(lengthBytes / DATANODE_WRITE_RUNS_PER_CHUNK)))
}
