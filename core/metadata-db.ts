/** @module
 * Opens the LMDB environment of a service's metadata (OM, SCM, datanode volume) with the
 * one durability policy of `db.sync`; the tables inside are each service's own.
 */
import { mkdirSync } from 'node:fs'
import { dirname } from 'node:path'
import { open, type RootDatabase } from 'lmdb'
import type { O3Config } from './config.ts'

/** The environment at `path` (its folder created if missing). With db.sync 0 commits reach
 *  the OS without fsync: they survive a killed process, not a lost machine. */
/** Entries in an LMDB table, from its page statistics (no scan; inside a write transaction, as of it). */
export function entryCount(table: { getStats(): unknown }): number {
  return (table.getStats() as { entryCount: number }).entryCount
}

export function openMetadataDb(path: string, config: Pick<O3Config, 'db.sync'>): RootDatabase {
  mkdirSync(dirname(path), { recursive: true })
  return open({ path, compression: false, noSync: config['db.sync'] === 0 })
}
