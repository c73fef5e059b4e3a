/** @module
 * One simulated member of a datanode pipeline (Ozone's ContainerStateMachine, as issue 12's
 * design puts it): a chunk store (block files), staged bytes, the pending-chunk map, and the
 * container database of committed blocks with their BCSID and container states. It runs the
 * real entry codec (datapath/datanode/pipeline/entries.ts) and the real commit rule
 * (block-chunks.ts), passed in so that a planted-bug copy can stand in (mutants.json).
 *
 * Durability model:
 * - Block files: bytes are durable once persistData() returns (it syncs them before the
 *   entries that name them are saved, as RaftHost awaits persistData before its save).
 * - Staged bytes (forwarded by the leader, or the leader's own write before its persistData)
 *   are in memory: a crash loses them.
 * - The container database (committed blocks with their BCSID, container states, deletions,
 *   the highest index applied) is durable at each apply, one synced transaction per entry, as
 *   LMDB's are. The Raft applied index is not persisted, so after a restart the log replays
 *   entries the database already holds: the BCSID check is what makes that harmless.
 * - The pending-chunk map is in memory: a Raft snapshot carries a copy, and a restart rebuilds
 *   it from the last snapshot's copy and the replayed writeChunk entries.
 * A member that installs a snapshot from the leader takes the leader's database and pending
 * map but not its block files: it is `diverged` (the design's PipelineReport.diverged), and
 * from then on acknowledges no write until the SCM closes the pipeline.
 * Pure: no I/O, no clock; fetching from the leader is the caller's function.
 */
import { assert } from '../../core/assert.ts'
import { computeChecksums, verifyChecksums } from '../../core/checksum.ts'
import { O3Error } from '../../core/errors.ts'
import type { ContainerId, LocalId } from '../../core/wire.ts'
import type { Entry } from '../../core/raft/index.ts'
import type { blockChunks as blockChunksFn, ChunkMeta, CommittedBlock } from '../../datapath/datanode/pipeline/block-chunks.ts'
import type { decodeEntry as decodeEntryFn, encodeEntry as encodeEntryFn, PipelineEntry, WriteChunkEntry } from '../../datapath/datanode/pipeline/entries.ts'

/** The code under test: the real pipeline modules, or a planted-bug copy. */
export interface PipelineModules {
  readonly blockChunks: typeof blockChunksFn
  readonly encodeEntry: typeof encodeEntryFn
  readonly decodeEntry: typeof decodeEntryFn
  /** The replica model itself (a mutant may plant a bug in it). */
  readonly Replica: typeof PipelineReplica
}

export const BYTES_PER_CHECKSUM = 8

/** The CRC32C checksums of `data`, one per BYTES_PER_CHECKSUM window. */
export function checksumsOf(data: Uint8Array): Uint8Array {
  const out = new Uint8Array(Math.ceil(data.length / BYTES_PER_CHECKSUM) * 4)
  computeChecksums('CRC32C', data, BYTES_PER_CHECKSUM, out)
  return out
}

export function blockKey(containerId: number, localId: number): string {
  return `${containerId}:${localId}`
}

/** A chunk's bytes and where they sit in their block file. */
export interface StoredChunk { readonly offset: number; readonly bytes: Uint8Array }

/** The durable container database of one member. */
export interface ContainerDb {
  readonly containers: Map<number, 'OPEN' | 'CLOSED'>
  readonly blocks: Map<string, CommittedBlock>
  /** Each container's BCSID: the highest index of a putBlock it committed (Ozone's container blockCommitSequenceId). */
  readonly bcsids: Map<number, number>
  /** Blocks a committed deleteBlocks removed. */
  readonly deleted: Set<string>
  appliedIndex: number
  /** Installed a snapshot from the leader: holds the metadata, not the bytes, of what came before. */
  diverged: boolean
}

/** What applying one entry came to on this member. */
export type Applied =
  | { readonly ok: true; readonly op: PipelineEntry['op']; readonly length?: number; readonly skipped?: boolean }
  | { readonly ok: false; readonly op: string; readonly code: string; readonly message: string }

type SnapshotImage = {
  containers: [number, 'OPEN' | 'CLOSED'][]
  blocks: [string, { length: number; bcsid: number; chunks: { offset: number; length: number; checksums: string }[] }][]
  bcsids: [number, number][]
  deleted: string[]
  appliedIndex: number
  pending: [string, { offset: number; length: number; checksums: string }[]][]
}

const encoder = new TextEncoder()
const decoder = new TextDecoder()
const b64 = (b: Uint8Array) => Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('base64')
const unb64 = (s: string) => new Uint8Array(Buffer.from(s, 'base64'))

export class PipelineReplica {
  /** Block files, durable: per block, the chunks written at each offset. */
  readonly blockFiles = new Map<string, Map<number, Uint8Array>>()
  db: ContainerDb = { containers: new Map(), blocks: new Map(), bcsids: new Map(), deleted: new Set(), appliedIndex: 0, diverged: false }
  /** Bytes forwarded or written ahead of their entry, by chunkKey: lost in a crash. */
  staged = new Map<string, Uint8Array>()
  /** Chunks recorded by applied writeChunk entries and not yet committed, per block: in memory. */
  pending = new Map<string, Map<number, ChunkMeta>>()

  constructor(private readonly modules: Omit<PipelineModules, 'Replica'>) {}

  /** Bytes that arrived before their entry (the leader's forward, or its own write). */
  stage(key: string, bytes: Uint8Array): void {
    this.staged.set(key, bytes)
  }

  /** The chunk's bytes as this member holds them (block file first, then staged), for a fetch from a follower; 'gone' once its block is deleted. */
  chunkData(e: { containerId: number; localId: number; offset: number; length: number }, key: string): Uint8Array | 'gone' | undefined {
    if (this.db.deleted.has(blockKey(e.containerId, e.localId))) return 'gone'
    const file = this.blockFiles.get(blockKey(e.containerId, e.localId))?.get(e.offset)
    if (file !== undefined && file.length === e.length) return file
    return this.staged.get(key)
  }

  /**
   * RaftHost's persistData: before the entries are saved, every writeChunk's bytes are in its
   * block file, verified against the entry's checksums: staged ones are written, missing ones
   * fetched from the leader. False when some chunk could not be had: the entries must not be
   * saved (the member does not acknowledge them).
   */
  persistData(entries: readonly Entry[], fetch: (e: WriteChunkEntry, key: string) => Uint8Array | 'gone' | undefined, chunkKey: (e: WriteChunkEntry) => string): boolean {
    for (const entry of entries) {
      if (entry.type !== 'normal' || entry.data.byteLength === 0) continue
      let e: PipelineEntry
      try {
        e = this.modules.decodeEntry(entry.data)
      } catch {
        continue // refused alike at apply on every member
      }
      // A member that installed a snapshot lacks the block files of what came before it: it
      // acknowledges no more writes, or a block could be acknowledged by a majority whose
      // members each hold only some of its chunks (found by the pipeline simulator; mutant pipeline-diverged-member-acks, seed 98).
      if (this.db.diverged && (e.op === 'writeChunk' || e.op === 'putBlock' || e.op === 'putSmallFile')) return false
      if (e.op !== 'writeChunk') continue
      const key = chunkKey(e)
      const block = blockKey(e.containerId, e.localId)
      const held = this.blockFiles.get(block)?.get(e.offset)
      if (held !== undefined && held.length === e.length && this.verified(e, held)) continue
      let bytes: Uint8Array | 'gone' | undefined = this.staged.get(key)
      if (bytes === undefined || !this.verified(e, bytes)) bytes = fetch(e, key)
      if (bytes === 'gone') {
        // The leader deleted the block since (a committed deleteBlocks this member has yet to
        // reach): no member can give these bytes, and the log cannot go on without them. The
        // member reports itself diverged, for the SCM to close the pipeline (found by the
        // pipeline simulator: the member retried the fetch for good).
        this.db.diverged = true
        return false
      }
      if (bytes === undefined || !this.verified(e, bytes)) return false
      let file = this.blockFiles.get(block)
      if (file === undefined) this.blockFiles.set(block, (file = new Map()))
      file.set(e.offset, bytes)
      this.staged.delete(key)
    }
    return true
  }

  private verified(e: WriteChunkEntry, bytes: Uint8Array): boolean {
    return bytes.length === e.length && verifyChecksums(e.checksumType, bytes, e.bytesPerChecksum, e.checksums) === -1
  }

  /** Applies one committed entry at `index` (again, after a restart, for entries the database holds). */
  apply(entry: Entry): Applied {
    const index = entry.index
    let e: PipelineEntry
    try {
      e = this.modules.decodeEntry(entry.data)
      const r = this.applyEntry(e, index)
      this.db.appliedIndex = Math.max(this.db.appliedIndex, index)
      return r
    } catch (err) {
      if (!(err instanceof O3Error)) throw err
      this.db.appliedIndex = Math.max(this.db.appliedIndex, index)
      return { ok: false, op: 'unknown', code: err.code, message: err.message }
    }
  }

  /** A committed entry that is not a pipeline entry (a leader's no-op, a membership change). */
  skip(index: number): void {
    this.db.appliedIndex = Math.max(this.db.appliedIndex, index)
  }

  private applyEntry(e: PipelineEntry, index: number): Applied {
    switch (e.op) {
      case 'writeChunk': {
        this.mustBeOpen(e.containerId)
        const block = blockKey(e.containerId, e.localId)
        let recorded = this.pending.get(block)
        if (recorded === undefined) this.pending.set(block, (recorded = new Map()))
        recorded.set(e.offset, { offset: e.offset, length: e.length, checksums: e.checksums })
        this.db.containers.set(e.containerId, 'OPEN')
        if (!e.commit) return { ok: true, op: 'writeChunk', length: e.length }
        return this.putBlock(e.containerId, e.localId, e.offset + e.length, index, 'writeChunk')
      }
      case 'putBlock':
        this.mustBeOpen(e.containerId)
        return this.putBlock(e.containerId, e.localId, e.length, index, 'putBlock')
      case 'closeContainer':
        this.db.containers.set(e.containerId, 'CLOSED')
        // What a closed container recorded and never committed can no longer commit.
        for (const block of [...this.pending.keys()]) if (block.startsWith(`${e.containerId}:`)) this.pending.delete(block)
        return { ok: true, op: 'closeContainer' }
      case 'deleteBlocks':
        for (const localId of e.localIds) {
          const block = blockKey(e.containerId, localId)
          this.db.blocks.delete(block)
          this.db.deleted.add(block)
          this.pending.delete(block)
          this.blockFiles.delete(block)
        }
        return { ok: true, op: 'deleteBlocks' }
      case 'putSmallFile':
        throw new O3Error('INVALID_ARGUMENT', 'Cannot apply putSmallFile: the simulated clients do not send it')
    }
  }

  private mustBeOpen(containerId: ContainerId): void {
    if (this.db.containers.get(containerId) === 'CLOSED') throw new O3Error('CONTAINER_NOT_OPEN', `Cannot write to container ${containerId}: it is CLOSED`)
  }

  private putBlock(containerId: ContainerId, localId: LocalId, length: number, index: number, op: 'putBlock' | 'writeChunk'): Applied {
    const block = blockKey(containerId, localId)
    const recorded = this.pending.get(block) ?? new Map<number, ChunkMeta>()
    let r: ReturnType<typeof this.modules.blockChunks>
    try {
      r = this.modules.blockChunks(this.db.blocks.get(block), recorded, length, index, block, this.db.bcsids.get(containerId) ?? 0)
      if (r.kind === 'commit') {
        this.db.blocks.set(block, { length, chunks: r.chunks, bcsid: index })
        this.db.bcsids.set(containerId, index)
        this.db.containers.set(containerId, 'OPEN')
      }
    } finally {
      this.retire(block, recorded)
    }
    return r.kind === 'skip' ? { ok: true, op, length, skipped: true } : { ok: true, op, length }
  }

  /**
   * Drops the recorded chunks the block now holds as they were recorded, whatever the
   * putBlock came to. The rule looks only at the block's record, so that a restart that
   * replays the log with its database ahead (where a replayed putBlock skips, even one
   * that was refused the first time) rebuilds the pending map the member had: dropping
   * all a skip covers, or nothing on a skip, leaves the map differing from the other
   * members' (found by the pipeline simulator).
   */
  private retire(block: string, recorded: Map<number, ChunkMeta>): void {
    const committed = this.db.blocks.get(block)
    for (const ch of committed?.chunks ?? []) {
      const r = recorded.get(ch.offset)
      if (r !== undefined && r.length === ch.length && Buffer.compare(r.checksums, ch.checksums) === 0) recorded.delete(ch.offset)
    }
    if (recorded.size === 0) this.pending.delete(block)
  }

  /** The Raft snapshot's data: the database and the pending map as of the applied index. */
  snapshot(): Uint8Array {
    const meta = (c: ChunkMeta) => ({ offset: c.offset, length: c.length, checksums: b64(c.checksums) })
    const image: SnapshotImage = {
      containers: [...this.db.containers].sort((a, b) => a[0] - b[0]),
      blocks: [...this.db.blocks].sort((a, b) => (a[0] < b[0] ? -1 : 1)).map(([k, v]) => [k, { length: v.length, bcsid: v.bcsid, chunks: v.chunks.map(meta) }]),
      bcsids: [...this.db.bcsids].sort((a, b) => a[0] - b[0]),
      deleted: [...this.db.deleted].sort(),
      appliedIndex: this.db.appliedIndex,
      pending: [...this.pending].sort((a, b) => (a[0] < b[0] ? -1 : 1)).map(([k, v]) => [k, [...v.values()].sort((x, y) => x.offset - y.offset).map(meta)]),
    }
    return encoder.encode(JSON.stringify(image))
  }

  /**
   * A start from the log: the pending map comes from the snapshot; so does the database when
   * the snapshot is newer than it (one installed from the leader before a crash could apply
   * it). The block files and the database otherwise stay as they were on disk.
   */
  restart(snapshotData: Uint8Array, snapshotIndex: number): void {
    this.staged = new Map()
    const image = decodeImage(snapshotData)
    this.pending = image.pending
    // The group's founding snapshot holds only the membership, not a state.
    if (snapshotData.byteLength === 0) this.db.appliedIndex = Math.max(this.db.appliedIndex, snapshotIndex)
    else if (snapshotIndex > this.db.appliedIndex) this.install(snapshotData)
  }

  /** A snapshot from the leader: its database and pending map; the block files stay. */
  install(snapshotData: Uint8Array): void {
    const image = decodeImage(snapshotData)
    this.db = { ...image.db, diverged: true }
    this.pending = image.pending
  }

  /** A process crash: what was in memory is gone. */
  crash(): void {
    this.staged = new Map()
    this.pending = new Map()
  }

  /** The committed state, as one comparable string (containers, blocks with BCSID and chunk checksums, deletions). */
  digest(): string {
    const blocks = [...this.db.blocks].sort((a, b) => (a[0] < b[0] ? -1 : 1)).map(([k, v]) => `${k}=${v.length}@${v.bcsid}[${v.chunks.map((c) => `${c.offset}+${c.length}:${b64(c.checksums)}`).join(',')}]`)
    const containers = [...this.db.containers].sort((a, b) => a[0] - b[0]).map(([c, s]) => `${c}:${s}@${this.db.bcsids.get(c) ?? 0}`)
    return `containers ${containers.join(' ')} blocks ${blocks.join(' ')} deleted ${[...this.db.deleted].sort().join(' ')}`
  }
}

function decodeImage(data: Uint8Array): { db: Omit<ContainerDb, 'diverged'>; pending: Map<string, Map<number, ChunkMeta>> } {
  if (data.byteLength === 0) return { db: { containers: new Map(), blocks: new Map(), bcsids: new Map(), deleted: new Set(), appliedIndex: 0 }, pending: new Map() }
  const image = JSON.parse(decoder.decode(data)) as SnapshotImage
  const meta = (c: { offset: number; length: number; checksums: string }): ChunkMeta => ({ offset: c.offset, length: c.length, checksums: unb64(c.checksums) })
  assert(Array.isArray(image.blocks), 'a pipeline snapshot holds blocks')
  return {
    db: {
      containers: new Map(image.containers),
      blocks: new Map(image.blocks.map(([k, v]) => [k, { length: v.length, bcsid: v.bcsid, chunks: v.chunks.map(meta) }])),
      bcsids: new Map(image.bcsids),
      deleted: new Set(image.deleted),
      appliedIndex: image.appliedIndex,
    },
    pending: new Map(image.pending.map(([k, v]) => [k, new Map(v.map((c) => [c.offset, meta(c)]))])),
  }
}
