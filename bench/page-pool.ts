/** @module
 * Warm pages for the writes a figure is about to time: a scratch file of that many bytes (and
 * half again) written and deleted just before the timed part, so that every server's PUTs take pages the
 * guest touched moments ago. Owns only that file.
 *
 * Why: on this VM the host takes memory the guest freed back within a minute or so, and a
 * page the guest then touches again costs about 2.3 ms/MiB of kernel time on its first write
 * against 0.2-0.5 for one freed moments ago (bench/README.md, "Warm pages for every PUT
 * figure"). Without this a figure's kernel time depended on what ran before it: the bare
 * server, first after the packing step had freed its files, wrote into warm pages and O3,
 * a minute later, into cold ones. A host with a full page cache (a store's steady state)
 * reuses pages it just evicted: the warm case.
 */
import { closeSync, mkdtempSync, openSync, rmSync, writeSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'

const PIECE_BYTES = 4 * 1024 * 1024
let enabled = true
let piece: Uint8Array | undefined

/** `--cold-pages` turns the warming off (for an A/B of it). */
export function setPageWarming(on: boolean): void {
  enabled = on
}

/** Writes `bytes` (rounded up to 4 MiB pieces) into a new file in the temp folder and deletes it; returns the kernel's ms per MiB for it, or undefined when warming is off. */
export function warmPages(bytes: number): number | undefined {
  if (!enabled || bytes <= 0) return undefined
  piece ??= new Uint8Array(PIECE_BYTES).fill(0x5a)
  const dir = mkdtempSync(join(tmpdir(), 'o3-bench-pages-'))
  const before = process.cpuUsage()
  try {
    const fd = openSync(join(dir, 'scratch'), 'w')
    try {
      for (let written = 0; written < bytes; written += PIECE_BYTES) writeSync(fd, piece)
    } finally {
      closeSync(fd)
    }
  } finally {
    // Deleting the file frees its pages at once (dirty ones are never written back).
    rmSync(dir, { recursive: true, force: true })
  }
  return process.cpuUsage(before).system / 1000 / (Math.ceil(bytes / PIECE_BYTES) * 4)
}

/** The most copies a PUT figure writes on this machine (RATIS/THREE, the bare 3-file PUT). */
const PUT_COPIES_MAX = 3
/**
 * Half again on top: a server writes more than the payload meanwhile (Raft logs, LMDB pages,
 * file system metadata). With the payload alone, the last two of six RATIS/THREE 64 MiB puts
 * of a full run ran at 207-221 MB/s after four at 350-383, as on cold pages.
 */
const WARM_MARGIN = 1.5

/** Warm pages for PUTs of `timedBytes` in all, whatever their replication: measureThroughput's `beforeTimed` for a PUT figure. */
export function warmPagesForPuts(timedBytes: number): void {
  warmPages(Math.ceil(timedBytes * PUT_COPIES_MAX * WARM_MARGIN))
}
