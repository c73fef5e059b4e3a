/** @module
 * Opens the LMDB environment of a service's metadata (OM, SCM, datanode volume) with the
 * one durability policy of `db.sync`; the tables inside are each service's own.
 */
import { mkdirSync } from 'node:fs'
import { dirname } from 'node:path'
import { open, type RootDatabase } from 'lmdb'
import type { O3Config } from './config.ts'

/**
 * How every environment of ours encodes values: msgpack maps, not msgpackr's records. Without
 * lmdb-js's shared structures (off: they would make a table's bytes depend on the order each
 * replica met its shapes) every record carries its own definition, which costs each write and
 * read: for a key's record 2.0 against 3.0 us to pack, 2.3 against 2.9 to unpack. Records
 * written before still read (msgpackr reads a record's inline definition whatever this says).
 */
export const LMDB_VALUE_ENCODING = { useRecords: false } as const

/** Entries in an LMDB table, from its page statistics (no scan; inside a write transaction, as of it). */
export function entryCount(table: { getStats(): unknown }): number {
  return (table.getStats() as { entryCount: number }).entryCount
}

/** The environment at `path` (its folder created if missing). With db.sync 0 commits reach
 *  the OS without fsync: they survive a killed process, not a lost machine. */
export function openMetadataDb(path: string, config: Pick<O3Config, 'db.sync'>): RootDatabase {
  mkdirSync(dirname(path), { recursive: true })
  return open({ path, compression: false, noSync: config['db.sync'] === 0, ...LMDB_VALUE_ENCODING })
}
