/** @module
 * A digest of a replicated service's whole state database (every named table's raw keys and
 * values, and any root entry), taken in one synchronous read at the applied index it reports:
 * replicas at the same applied index must give the same digest (issue 11, "replicas converge").
 */
import { createHash } from 'node:crypto'
import type { Database, RootDatabase } from 'lmdb'
import { O3Error } from '../../core/errors.ts'
import type { Applied } from '../../core/raft-io/state-db.ts'
import { STATE_DIGEST_ENTRIES_MAX } from './limits.ts'

export interface StateDigest {
  /** The Raft index and term of the last entry the state holds (its `raftApplied` table). */
  readonly applied: Applied
  /** Each table's SHA-256 over its raw entries, by table name; root entries under ''. */
  readonly tables: Record<string, string>
  readonly entries: number
}

/** LmdbStateMachine's record of the last applied entry (core/raft-io/state-db.ts). */
const appliedTables = new WeakMap<RootDatabase, Database<Applied, string>>()

/** Raw (binary key, binary value) views of the tables, opened once per environment. */
const rawTables = new WeakMap<RootDatabase, Map<string, Database<Buffer, Buffer> | null>>()

function rawTable(db: RootDatabase, name: string): Database<Buffer, Buffer> | undefined {
  let cache = rawTables.get(db)
  if (cache === undefined) rawTables.set(db, (cache = new Map()))
  if (!cache.has(name)) {
    // create: false answers undefined for a root key that names no table.
    // (`create` is an lmdb-js option its typings lack.)
    const options = { name, encoding: 'binary', keyEncoding: 'binary', create: false } as const
    const t = db.openDB<Buffer, Buffer>(options as typeof options & { name: string })
    cache.set(name, (t as Database<Buffer, Buffer> | undefined) ?? null)
  }
  return cache.get(name) ?? undefined
}

/**
 * Hashes every table of `db`. Synchronous, so that no entry applies half-way through it; at
 * most STATE_DIGEST_ENTRIES_MAX entries (a test and admin tool, not for large states).
 */
export function stateDigest(db: RootDatabase): StateDigest {
  const tables: Record<string, string> = {}
  const root = createHash('sha256')
  let entries = 0, rootEntries = 0
  const count = () => {
    if (++entries > STATE_DIGEST_ENTRIES_MAX) throw new O3Error('ENTITY_TOO_LARGE', `Cannot digest the state: more than ${STATE_DIGEST_ENTRIES_MAX} entries`)
  }
  for (const name of db.getKeys()) {
    const table = typeof name === 'string' ? rawTable(db, name) : undefined
    if (table === undefined) {
      count()
      rootEntries++
      root.update(JSON.stringify(name)).update(db.getBinary(name) ?? Buffer.alloc(0))
      continue
    }
    const h = createHash('sha256')
    for (const { key, value } of table.getRange()) {
      count()
      // Lengths first: (ab, c) and (a, bc) must not hash alike.
      h.update(`${key.length}:${value.length}:`).update(key).update(value)
    }
    tables[name as string] = h.digest('hex')
  }
  if (rootEntries > 0) tables[''] = root.digest('hex')
  let appliedTable = appliedTables.get(db)
  if (appliedTable === undefined) appliedTables.set(db, (appliedTable = db.openDB<Applied, string>({ name: 'raftApplied' })))
  const applied = appliedTable.get('applied') ?? { index: 0, term: 0 }
  return { applied, tables, entries }
}
