/** @module
 * The OM as the simulator's state machine (issue 11, `npm run sim -- --om`): each simulated
 * node holds a real LMDB state database (LmdbStateMachine, opened as the OM opens it) and
 * applies entries through the real request modules (omRequests) and the real retry cache
 * (applyEntry), as ReplicatedService does; the leader runs the requests' prepare, with the
 * simulated clock. Time and ids are the simulator's: while a run lasts, Date.now() reads the
 * simulated clock (in an apply, the applying node's own clock, seconds apart between nodes, so
 * an apply that reads a clock makes replicas differ) and randomUUID() counts.
 */
import crypto from 'node:crypto'
import { mkdtempSync, rmSync } from 'node:fs'
import { syncBuiltinESMExports } from 'node:module'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { RootDatabase } from 'lmdb'
import { assert } from '../../core/assert.ts'
import { DEFAULT_CONFIG } from '../../core/config.ts'
import { O3Error } from '../../core/errors.ts'
import { openMetadataDb } from '../../core/metadata-db.ts'
import type { KeyInfo } from '../../core/om-wire.ts'
import type { Entry } from '../../core/raft/index.ts'
import { LmdbStateMachine, type Applied } from '../../core/raft-io/state-db.ts'
import type { AllocatedBlock, BlockId, ContainerId, DatanodeId, LocalId, Pipeline, PipelineId } from '../../core/wire.ts'
import * as ha from '../../control/ha/replicated-service.ts'
import type { AnyRequest, CallerId } from '../../control/ha/replicated-service.ts'
import type { RetryCache } from '../../control/ha/retry-cache.ts'
import * as requests from '../../control/om/requests/index.ts'
import { keyPath, openOmTables, type OmTables } from '../../control/om/tables.ts'

/** The OM code under test (a planted-bug copy for OM mutants, see mutants/apply.ts). */
export interface OmModules {
  readonly omRequests: typeof requests.omRequests
  readonly applyEntry: typeof ha.applyEntry
  readonly refuseEntry: typeof ha.refuseEntry
  readonly encodeEntry: typeof ha.encodeEntry
  readonly RetryCache: typeof ha.RetryCache
}

export const realOm: OmModules = { omRequests: requests.omRequests, applyEntry: ha.applyEntry, refuseEntry: ha.refuseEntry, encodeEntry: ha.encodeEntry, RetryCache: ha.RetryCache }

export const VOLUME = 'vol'
export const BUCKET = 'bkt'
/** Apart from the simulated time, each node's clock is this far ahead of the one before. */
const CLOCK_SKEW_MS = 1000
const PIPELINE: Pipeline = { id: 'sim-pipeline' as PipelineId, replication: 'RATIS/THREE', state: 'OPEN', nodes: [{ id: 'dn1' as DatanodeId, address: '127.0.0.1:1' }], createdAtMs: 0 }

// ---- the simulated clock and ids ----

let clock: (() => number) | undefined
const realNow = Date.now
const realRandomUUID = crypto.randomUUID
let uuids = 0

/** Runs `body` with Date.now() reading `now` and randomUUID() counting from 1 (one run at a time). */
export async function withSimulatedClock<T>(now: () => number, body: () => Promise<T>): Promise<T> {
  assert(clock === undefined, 'one OM simulation runs at a time in a thread')
  clock = now
  uuids = 0
  Date.now = () => clock!()
  crypto.randomUUID = () => `00000000-0000-4000-8000-${(++uuids).toString(16).padStart(12, '0')}`
  syncBuiltinESMExports()
  try {
    return await body()
  } finally {
    clock = undefined
    Date.now = realNow
    crypto.randomUUID = realRandomUUID
    syncBuiltinESMExports()
  }
}

/** Runs `body` with the clock of one node (its apply). */
function onClock<T>(nowMs: number, body: () => T): T {
  const outer = clock
  clock = () => nowMs
  try {
    return body()
  } finally {
    clock = outer
  }
}

// ---- state databases, kept open across seeds (opening an LMDB environment costs tens of ms) ----

/** Per node slot: the database, and the apply of the run that uses it now. */
const pool: { sm: LmdbStateMachine; apply: (db: RootDatabase, data: Uint8Array, at: Applied) => unknown; refused: (db: RootDatabase, data: Uint8Array, at: Applied, err: O3Error) => void }[] = []
let poolDir: string | undefined

function stateDb(slot: number): (typeof pool)[number] {
  if (poolDir === undefined) {
    const dir = mkdtempSync(join(tmpdir(), 'o3-sim-om-'))
    poolDir = dir
    process.on('exit', () => rmSync(dir, { recursive: true, force: true }))
  }
  let entry = pool[slot]
  if (entry === undefined) {
    const e: (typeof pool)[number] = { sm: undefined as unknown as LmdbStateMachine, apply: () => assert(false, 'a node of a run sets the apply'), refused: () => {} }
    // The OM's settings (startServiceGroup): the Raft log is the write-ahead log, the state unsynced.
    e.sm = new LmdbStateMachine({ dir: join(poolDir, `n${slot}`), open: (path) => openMetadataDb(path, { 'db.sync': 0 }), opened: () => {}, apply: (db, data, at) => e.apply(db, data, at), refused: (db, data, at, err) => e.refused(db, data, at, err) })
    pool[slot] = entry = e
  }
  return entry
}

/** Every table of `db` by name, its keys and values as stored (the root database lists the named ones). */
function tableNames(db: RootDatabase): string[] {
  return [...db.getKeys()].map(String).sort()
}

function rawTable(db: RootDatabase, name: string) {
  return db.openDB<Uint8Array, Uint8Array>({ name, keyEncoding: 'binary', encoding: 'binary' })
}

/** The whole database as bytes: for each table (sorted by name), its name and every key and value in order. */
function image(db: RootDatabase): Uint8Array {
  const parts: Uint8Array[] = []
  const enc = new TextEncoder()
  const add = (b: Uint8Array) => {
    const len = new Uint8Array(4)
    new DataView(len.buffer).setUint32(0, b.byteLength)
    parts.push(len, b)
  }
  for (const name of tableNames(db)) {
    const rows = [...rawTable(db, name).getRange({})].map(({ key, value }) => ({ key: Uint8Array.from(key), value: Uint8Array.from(value) }))
    if (rows.length === 0) continue
    add(enc.encode(name))
    const count = new Uint8Array(4)
    new DataView(count.buffer).setUint32(0, rows.length)
    parts.push(count)
    for (const { key, value } of rows) {
      add(key)
      add(value)
    }
  }
  const out = new Uint8Array(parts.reduce((s, p) => s + p.byteLength, 0))
  let at = 0
  for (const p of parts) {
    out.set(p, at)
    at += p.byteLength
  }
  return out
}

type Rows = Map<string, { key: Uint8Array; value: Uint8Array }[]>

function parseImage(bytes: Uint8Array): Rows {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength)
  const dec = new TextDecoder()
  const tables: Rows = new Map()
  let at = 0
  const take = () => {
    const len = view.getUint32(at)
    const b = bytes.subarray(at + 4, at + 4 + len)
    at += 4 + len
    return b
  }
  while (at < bytes.byteLength) {
    const name = dec.decode(take())
    const count = view.getUint32(at)
    at += 4
    const rows = []
    for (let i = 0; i < count; i++) rows.push({ key: take(), value: take() })
    tables.set(name, rows)
  }
  return tables
}

/** Where two images differ first: the table and key, for the violation message. */
export function imageDifference(a: Uint8Array, b: Uint8Array): string {
  const x = parseImage(a)
  const y = parseImage(b)
  const hex = (k: Uint8Array) => (k.every((c) => c >= 32 && c < 127) ? new TextDecoder().decode(k) : Buffer.from(k).toString('hex'))
  for (const name of [...new Set([...x.keys(), ...y.keys()])].sort()) {
    const rx = x.get(name) ?? []
    const ry = y.get(name) ?? []
    for (let i = 0; i < Math.max(rx.length, ry.length); i++) {
      const p = rx[i]
      const q = ry[i]
      if (p === undefined || q === undefined) return `table ${name}: ${p === undefined ? 'lacks' : 'has an extra'} key ${hex((p ?? q)!.key)}`
      if (Buffer.compare(p.key, q.key) !== 0) return `table ${name}: key ${hex(p.key)} against ${hex(q.key)}`
      if (Buffer.compare(p.value, q.value) !== 0) return `table ${name}: key ${hex(p.key)} holds a different value`
    }
  }
  return 'no difference'
}

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  return Buffer.compare(a, b) === 0
}

// ---- one simulated OM node ----

/** An apply's answer as the proposer's client sees it: the result, or the refusal's code. */
export type OmAnswer = { readonly result: unknown } | { readonly error: string }

export class OmNode {
  private readonly sm: LmdbStateMachine
  private tables!: OmTables
  private retries!: RetryCache
  private readonly requests: Map<string, AnyRequest>

  constructor(private readonly world: OmWorld, readonly id: number) {
    const slot = stateDb(id)
    this.sm = slot.sm
    this.requests = new Map(world.modules.omRequests({ tables: () => this.tables, config: DEFAULT_CONFIG, blocksFor: world.blocksFor }).map((r) => [r.name, r]))
    // The pooled database serves one node of one run at a time: its apply is this run's.
    slot.apply = (db, data, at) => world.modules.applyEntry(this.requests, this.retries, db, data, at)
    slot.refused = (_db, data, at, err) => world.modules.refuseEntry(this.retries, data, at, err)
    this.opened()
    this.load(new Uint8Array(0))
  }

  private opened(): void {
    this.retries = new this.world.modules.RetryCache()
    this.retries.open(this.sm.db)
    this.tables = openOmTables(this.sm.db)
  }

  /** Replaces the whole database with `bytes` (an image), in one transaction. */
  private load(bytes: Uint8Array): void {
    const db = this.sm.db
    const rows = parseImage(bytes)
    // Tables open outside the write transaction (lmdb-js: a table opened inside one does not see
    // its writes); clearSync, as a raw key does not always find its row through removeSync.
    const tables = new Map([...new Set([...tableNames(db), ...rows.keys()])].map((name) => [name, rawTable(db, name)]))
    for (const t of tables.values()) t.clearSync()
    db.transactionSync(() => {
      for (const [name, list] of rows) for (const { key, value } of list) tables.get(name)!.putSync(key, value)
    })
  }

  /** The founding state every node starts from: the volume and bucket the clients write to, made by the real requests. */
  found(): void {
    const db = this.sm.db
    const at = { index: 0, term: 0 }
    for (const [name, args] of [['createVolume', { volume: VOLUME }], ['createBucket', { volume: VOLUME, bucket: BUCKET }]] as const) {
      const r = this.requests.get(name)!
      const payload = r.prepare(args, db)
      assert(!(payload instanceof Promise), `${name}'s prepare decides at once`)
      db.transactionSync(() => r.apply(db, payload, at))
    }
  }

  appliedIndex(): number {
    return this.sm.appliedIndex()
  }

  /** Applies a committed entry on this node's clock (LmdbStateMachine: one transaction, refusals roll back). */
  apply(entry: Entry, clockMs: number): OmAnswer {
    try {
      return { result: onClock(clockMs, () => this.sm.apply(entry)) }
    } catch (err) {
      if (err instanceof O3Error) return { error: err.code }
      throw err
    }
  }

  skip(entry: Entry): void {
    this.sm.skip(entry)
  }

  /** The leader's first answer to a retried call (ReplicatedService.submit checks it before prepare). */
  answer(caller: CallerId): { result: unknown } | { error: O3Error } | undefined {
    return this.retries.answer(caller)
  }

  /** The leader's prepare of request `name` (may read the leader's tables; may await the stubbed SCM). */
  prepare(name: string, args: unknown): Promise<unknown> {
    const r = this.requests.get(name)
    assert(r !== undefined, `request ${name} exists`)
    return (async () => await r.prepare(args, this.sm.db))()
  }

  encode(name: string, payload: unknown, caller: CallerId, nowMs: number): Uint8Array {
    return this.world.modules.encodeEntry(name, payload, caller, nowMs)
  }

  /** The key's value as the simulator's clients see it: its `v` metadata, '' when the key does not exist. */
  get(key: string): string {
    const info: KeyInfo | undefined = this.tables.keys.get(keyPath(VOLUME, BUCKET, key))
    return info === undefined ? '' : (info.metadata.v ?? '')
  }

  /** A snapshot's data: the database's image at its applied index. */
  image(): Uint8Array {
    return image(this.sm.db)
  }

  /** Installs a snapshot unless the database holds its index already (a restart replays only what the database lacks). */
  install(data: Uint8Array, index: number): void {
    if (index <= this.appliedIndex() || data.byteLength === 0) return
    this.load(data)
    assert(this.appliedIndex() === index, `the image holds entry ${index}, not ${this.appliedIndex()}`)
  }

  same(other: OmNode): boolean {
    return sameBytes(this.image(), other.image())
  }
}

/** What one OM run shares between its nodes: the code under test, the stubbed SCM, the node clocks. */
export class OmWorld {
  private nextLocalId = 0
  readonly blocksFor = async (_replication: string, count: number): Promise<AllocatedBlock[]> =>
    Array.from({ length: count }, () => ({ blockId: { containerId: 1 as ContainerId, localId: ++this.nextLocalId as LocalId } satisfies BlockId, pipeline: PIPELINE }))

  constructor(readonly modules: OmModules) {}

  /** The clock node `id` reads: the simulated time plus its skew. */
  static nodeClock(nowMs: number, id: number): number {
    return nowMs + id * CLOCK_SKEW_MS
  }
}
