/** @module
 * LmdbStateMachine: a replicated service's state in one LMDB environment that is also its
 * Raft snapshot (Ozone's OM DB with its transaction info). Each entry applies in one
 * transaction with the applied index and term, so a restart replays only what the database
 * lacks; a snapshot is a checkpoint of the database, fetched by a follower from its leader.
 */
import { existsSync, mkdirSync, renameSync, rmSync } from 'node:fs'
import { copyFile } from 'node:fs/promises'
import { join } from 'node:path'
import type { Hono } from 'hono'
import type { Database, RootDatabase } from 'lmdb'
import { assert } from '../assert.ts'
import { O3Error } from '../errors.ts'
import type { Entry, Snapshot } from '../raft/index.ts'
import { CheckpointStore, checkpointApp, fetchCheckpoint } from './checkpoint.ts'
import type { StateMachine } from './raft-host.ts'

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
}

const APPLIED_KEY = 'applied'

export class LmdbStateMachine implements StateMachine {
  private env!: RootDatabase
  private raft!: Database<Applied, string>
  private readonly checkpoints: CheckpointStore
  private readonly path: string

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
      // The failed entry's writes are rolled back; it counts as applied all the same (every
      // replica fails it alike, and a replay after a crash in between fails it again).
      this.env.transactionSync(() => this.raft.putSync(APPLIED_KEY, at))
      throw err
    }
  }

  /** Checkpoints the database at its applied entry; the snapshot's data names the checkpoint. */
  async snapshot(): Promise<Uint8Array> {
    const info = await this.checkpoints.create(this.env, this.applied())
    return new TextEncoder().encode(JSON.stringify({ checkpoint: info.name }))
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
    const { checkpoint } = JSON.parse(new TextDecoder().decode(snapshot.data)) as { checkpoint?: unknown }
    if (typeof checkpoint !== 'string' || (this.checkpoints.info(checkpoint) === undefined && from === undefined)) {
      throw new O3Error('CHECKPOINT_NOT_FOUND', `Cannot restore snapshot at ${at}: checkpoint ${String(checkpoint)} is neither here nor at a known leader`)
    }
    if (this.checkpoints.info(checkpoint) === undefined) await fetchCheckpoint(from!, checkpoint, this.checkpoints.path(checkpoint))
    const incoming = `${this.path}.incoming`
    await copyFile(this.checkpoints.path(checkpoint), incoming)
    await this.env.close()
    rmSync(`${this.path}-lock`, { force: true })
    renameSync(incoming, this.path)
    this.openEnv()
    const now = this.applied()
    assert(now.index === at && now.term === snapshot.meta.term, `the checkpoint holds entry ${at} (term ${snapshot.meta.term}), not ${now.index} (term ${now.term})`)
  }

  routes(): Hono {
    return checkpointApp(this.checkpoints)
  }

  async close(): Promise<void> {
    await this.env.close()
  }

  /** Whether a database exists at `dir` (a restart, not a new node). */
  static exists(dir: string): boolean {
    return existsSync(join(dir, 'state.mdb'))
  }
}
