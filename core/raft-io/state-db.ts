/** @module
 * LmdbStateMachine: a replicated service's state in one LMDB environment that is also its
 * Raft snapshot (Ozone's OM DB with its transaction info). Each entry applies in one
 * transaction with the applied index and term, so a restart replays only what the database
 * lacks. The log is compacted to the database itself, synced (no copy); a checkpoint (a copy)
 * is made only for a member that lags behind the log, and fetched by it from its leader.
 */
import { mkdirSync, renameSync, rmSync } from 'node:fs'
import { copyFile } from 'node:fs/promises'
import { join } from 'node:path'
import type { Hono } from 'hono'
import { open, type Database, type RootDatabase } from 'lmdb'
import { assert } from '../assert.ts'
import { O3Error } from '../errors.ts'
import { LMDB_VALUE_ENCODING } from '../metadata-db.ts'
import type { Entry, Snapshot } from '../raft/index.ts'
import { CheckpointStore, checkpointApp, fetchCheckpoint, syncPath } from './checkpoint.ts'
import type { AppliedOutcome, StateMachine } from './raft-host.ts'
import type { Transport } from '../rpc/transport.ts'

export interface Applied {
  readonly index: number
  readonly term: number
}

export interface LmdbStateMachineOptions {
  /** Folder of the state database (`state.mdb`) and its checkpoints. */
  readonly dir: string
  /** Opens the environment at `path` (the service's settings: sync policy, compression). */
  readonly open: (path: string) => RootDatabase
  /** Called with the environment whenever it is opened anew (at start, after a snapshot is installed): open your tables here. */
  readonly opened: (db: RootDatabase) => void
  /**
   * Applies one entry's data inside the entry's LMDB transaction (synchronous: no await, no
   * clock, no randomness, no network); returns the proposer's answer. A throw fails the
   * proposal on the leader and aborts the transaction everywhere alike.
   */
  readonly apply: (db: RootDatabase, data: Uint8Array, at: Applied) => unknown
  /** Inside the transaction that marks a refused entry applied (its own writes rolled back): record the refusal (a retry cache). */
  readonly refused?: (db: RootDatabase, data: Uint8Array, at: Applied, err: O3Error) => void
  /** Security on: checkpoints are fetched from the leader through this transport. */
  readonly transport?: Transport
}

const APPLIED_KEY = 'applied'
/** Tries to fetch a checkpoint from the leader before the node gives up on the snapshot (and stops). */
const CHECKPOINT_FETCH_TRIES = 3

/**
 * A snapshot's data when it is the node's own database as of at least the snapshot's index
 * (a compaction point: Ozone's OM snapshot, the flushed DB and its transaction index), not a
 * copy a member can fetch.
 */
const OWN_DATABASE = new TextEncoder().encode(JSON.stringify({ state: 'own database' }))

function isOwnDatabase(snapshot: Snapshot): boolean {
  const data = snapshot.data
  return data.byteLength === OWN_DATABASE.byteLength && data.every((b, i) => b === OWN_DATABASE[i])
}

function checkpointName(snapshot: Snapshot): string {
  const { checkpoint } = JSON.parse(new TextDecoder().decode(snapshot.data)) as { checkpoint?: unknown }
  if (typeof checkpoint !== 'string') throw new O3Error('INVALID_ARGUMENT', `Cannot restore snapshot at ${snapshot.meta.index}: its data names no checkpoint`)
  return checkpoint
}

export class LmdbStateMachine implements StateMachine {
  private env!: RootDatabase
  private raft!: Database<Applied, string>
  private readonly checkpoints: CheckpointStore
  private readonly path: string

  /** Set by useTransport (a node secured after it started); else the options'. */
  private transport: Transport | undefined

  useTransport(transport: Transport): void {
    this.transport = transport
  }

  constructor(private readonly options: LmdbStateMachineOptions) {
    mkdirSync(options.dir, { recursive: true })
    this.path = join(options.dir, 'state.mdb')
    this.checkpoints = new CheckpointStore(join(options.dir, 'checkpoints'))
    this.openEnv()
  }

  private openEnv(): void {
    this.env = this.options.open(this.path)
    this.raft = this.env.openDB<Applied, string>({ name: 'raftApplied' })
    this.options.opened(this.env)
  }

  get db(): RootDatabase {
    return this.env
  }

  /** The last entry the database holds. */
  applied(): Applied {
    return this.raft.get(APPLIED_KEY) ?? { index: 0, term: 0 }
  }

  apply(entry: Entry): unknown {
    // A restart replays the log from the Raft snapshot; what the database already holds is skipped.
    if (entry.index <= this.applied().index) return undefined
    const at: Applied = { index: entry.index, term: entry.term }
    try {
      return this.env.transactionSync(() => {
        const result = this.options.apply(this.env, entry.data, at)
        this.raft.putSync(APPLIED_KEY, at)
        return result
      })
    } catch (err) {
      // Only a refusal (an O3Error) is the same on every replica; anything else (a full
      // disk, a bug) is this node's failure, and the entry must not count as applied.
      if (!(err instanceof O3Error)) throw err
      // The refused entry's writes are rolled back; it counts as applied all the same (every
      // replica refuses it alike, and a replay after a crash in between refuses it again).
      this.env.transactionSync(() => {
        this.options.refused?.(this.env, entry.data, at, err)
        this.raft.putSync(APPLIED_KEY, at)
      })
      throw err
    }
  }

  /**
   * A Ready's committed entries in one transaction, with the applied index written once at
   * the end: one LMDB commit per Ready instead of one per entry. A refused entry (an
   * O3Error) aborts that transaction; then the entries before it commit in one transaction
   * of their own (apply is deterministic: they give the same answers again), the refused
   * one goes through apply() (its writes rolled back, its index applied), and the rest
   * follow in a new batch.
   */
  applyAll(entries: readonly Entry[]): AppliedOutcome[] {
    const outcomes: AppliedOutcome[] = []
    let from = 0
    while (from < entries.length) {
      const refusedAt = this.applyRun(entries, from, entries.length, outcomes)
      if (refusedAt === undefined) break
      if (refusedAt > from) assert(this.applyRun(entries, from, refusedAt, outcomes) === undefined, 'entries apply alike when run again')
      try {
        outcomes.push({ result: this.apply(entries[refusedAt]) })
      } catch (err) {
        if (!(err instanceof O3Error)) throw err
        outcomes.push({ failure: err })
      }
      from = refusedAt + 1
    }
    assert(outcomes.length === entries.length, 'one outcome per entry')
    return outcomes
  }

  /**
   * Applies entries [from, to) in one transaction and appends their outcomes; or, if one is
   * refused, rolls the transaction back, appends nothing and answers the refused entry's position.
   */
  private applyRun(entries: readonly Entry[], from: number, to: number, outcomes: AppliedOutcome[]): number | undefined {
    const results: AppliedOutcome[] = []
    let refusedAt: number | undefined
    try {
      this.env.transactionSync(() => {
        const before = this.applied()
        let applied = before
        for (let i = from; i < to; i++) {
          const e = entries[i]
          // A restart replays the log from the Raft snapshot; what the database already holds is skipped.
          if (e.index <= applied.index) {
            results.push({ result: undefined })
            continue
          }
          applied = { index: e.index, term: e.term }
          if (e.type !== 'normal' || e.data.byteLength === 0) {
            results.push({ result: undefined })
            continue
          }
          try {
            results.push({ result: this.options.apply(this.env, e.data, applied) })
          } catch (err) {
            if (err instanceof O3Error) refusedAt = i
            throw err
          }
        }
        if (applied !== before) this.raft.putSync(APPLIED_KEY, applied)
      })
    } catch (err) {
      // Only a refusal (an O3Error) is the same on every replica; anything else is this node's failure.
      if (refusedAt === undefined || !(err instanceof O3Error)) throw err
      return refusedAt
    }
    outcomes.push(...results)
    return undefined
  }

  /** A committed entry with nothing to apply (a leader's no-op, a membership change): the database is at its index too. */
  skip(entry: Entry): void {
    if (entry.index <= this.applied().index) return
    this.env.transactionSync(() => this.raft.putSync(APPLIED_KEY, { index: entry.index, term: entry.term }))
  }

  appliedIndex(): number {
    return this.applied().index
  }

  /** Fetches the snapshot's checkpoint from the leader into our store, before Raft records the snapshot (a few tries). */
  async prepareRestore(snapshot: Snapshot, from: string | undefined): Promise<void> {
    if (snapshot.meta.index <= this.applied().index || snapshot.data.byteLength === 0) return
    if (isOwnDatabase(snapshot)) throw this.behindOwnSnapshot(snapshot)
    const checkpoint = checkpointName(snapshot)
    if (this.checkpoints.info(checkpoint) !== undefined) return
    if (from === undefined) throw new O3Error('UNAVAILABLE', `Cannot fetch checkpoint ${checkpoint}: no leader known`)
    for (let attempt = 1; ; attempt++) {
      try {
        await fetchCheckpoint(from, checkpoint, this.checkpoints.path(checkpoint), (this.transport ?? this.options.transport)?.dispatcher())
        return
      } catch (err) {
        if (attempt >= CHECKPOINT_FETCH_TRIES || (err instanceof O3Error && err.code === 'CHECKPOINT_NOT_FOUND')) throw err
        await new Promise((r) => setTimeout(r, 200 * attempt))
      }
    }
  }

  /**
   * The log's compaction point, with no copy: the database synced to disk (its commits skip
   * fsync: the log is the write-ahead log, and the entries it drops must be durable here first),
   * answered as the entry it holds. A member that needs a snapshot gets a checkpoint made then
   * (snapshotBehind): a copy of a database of some GB every few thousand entries would cost
   * more than the service does, and the disk twice over.
   */
  async persisted(): Promise<{ data: Uint8Array; index: number; term: number }> {
    const at = this.applied()
    await syncPath(this.path)
    await syncPath(this.options.dir)
    return { data: OWN_DATABASE, index: at.index, term: at.term }
  }

  /** The log was compacted to `snapshot`: checkpoints it does not name are no longer sent to anyone (a fetched one stays until then: a restart may install it again). */
  compacted(snapshot: Snapshot): void {
    this.checkpoints.keepOnly(isOwnDatabase(snapshot) || snapshot.data.byteLength === 0 ? undefined : checkpointName(snapshot))
  }

  /** Whether a member can install `snapshot` (a checkpoint, or the founding empty state), or it is only this node's own database (persisted()). */
  installable(snapshot: Snapshot): boolean {
    return !isOwnDatabase(snapshot)
  }

  private behindOwnSnapshot(snapshot: Snapshot): O3Error {
    return new O3Error('INTERNAL_ERROR', `Cannot restore snapshot at ${snapshot.meta.index}: it is this node's own state database, which holds only entry ${this.applied().index} (writes lost in a crash without fsync, or a snapshot no copy holds); restore this node's data from a peer`)
  }

  /** Checkpoints the database at its applied entry; the snapshot's data names the checkpoint. */
  async snapshot(): Promise<Uint8Array> {
    const info = await this.checkpoints.create(this.env, this.applied())
    return new TextEncoder().encode(JSON.stringify({ checkpoint: info.name }))
  }

  /**
   * Checkpoints the database while entries keep applying (the copy runs on LMDB's thread):
   * the copy holds whatever entry was applied when its read transaction began, which it
   * records itself, so the snapshot is named for the index the copy holds.
   */
  async snapshotBehind(): Promise<{ data: Uint8Array; index: number; term: number }> {
    const info = await this.checkpoints.create(this.env, async (copyPath) => {
      const copy = open({ path: copyPath, readOnly: true, compression: false, ...LMDB_VALUE_ENCODING })
      try {
        return copy.openDB<Applied, string>({ name: 'raftApplied' }).get(APPLIED_KEY) ?? { index: 0, term: 0 }
      } finally {
        await copy.close()
        rmSync(`${copyPath}-lock`, { force: true })
      }
    })
    return { data: new TextEncoder().encode(JSON.stringify({ checkpoint: info.name })), index: info.index, term: info.term }
  }

  /**
   * Installs `snapshot` unless the database is already at or past it: the named checkpoint
   * from our own store, or fetched from the leader at `from` into it first; then a copy of
   * it replaces the database (the checkpoint stays, to be served if we lead).
   */
  async restore(snapshot: Snapshot, from: string | undefined): Promise<void> {
    const at = snapshot.meta.index
    if (at <= this.applied().index) return
    if (snapshot.data.byteLength === 0) {
      // A group's founding snapshot: its state is the empty database.
      assert(this.applied().index === 0, 'only a new database starts from the founding snapshot')
      return
    }
    if (isOwnDatabase(snapshot)) throw this.behindOwnSnapshot(snapshot)
    const checkpoint = checkpointName(snapshot)
    if (this.checkpoints.info(checkpoint) === undefined) await this.prepareRestore(snapshot, from)
    const incoming = `${this.path}.incoming`
    await copyFile(this.checkpoints.path(checkpoint), incoming)
    // The database is all the log's snapshot stands on once the log compacts to it: on disk, and named, before it is used.
    await syncPath(incoming)
    await this.env.close()
    rmSync(`${this.path}-lock`, { force: true })
    renameSync(incoming, this.path)
    this.openEnv()
    await syncPath(this.options.dir)
    const now = this.applied()
    assert(now.index === at && now.term === snapshot.meta.term, `the checkpoint holds entry ${at} (term ${snapshot.meta.term}), not ${now.index} (term ${now.term})`)
  }

  routes(): Hono {
    return checkpointApp(this.checkpoints)
  }

  async close(): Promise<void> {
    await this.env.close()
  }
}
