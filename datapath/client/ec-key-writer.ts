/** @module
 * Writes one erasure-coded key (Ozone's ECKeyOutputStream). The caller's bytes are copied once
 * into the data cells of a stripe (pooled slabs, ec-stripe.ts); a full stripe, or the key's
 * last and partial one, gets its parity from the codec and each cell its checksums, in the
 * worker pool and in place; its k + m cells go to their nodes in parallel (`/chunk/write` with
 * the replica index, standalone), and once every one is stored a putBlock on each node records
 * its replica's length and the group's key bytes (`blockGroupLength`, Ozone's per-stripe
 * checkpoint). A full block group is followed by the next (preallocated, else allocated).
 * A node that fails: the group ends at its last stored stripe, the node and its pipeline are
 * excluded, and the stripe is written again to a new group; the key is committed with only
 * stored stripes, each group's location as long as its blockGroupLength.
 * Memory: the stripe being filled and the one being stored, no more.
 */
import { assert } from '../../core/assert.ts'
import { checksumsLengthBytes } from '../../core/checksum.ts'
import { groupCapacityBytes, replicaLengthBytes, stripeCellLengths, stripeDataBytes, type EcScheme } from '../../core/ec-layout.ts'
import { O3Error, toO3Error } from '../../core/errors.ts'
import { log } from '../../core/log.ts'
import { CLIENT_BLOCK_RETRY_COUNT_MAX } from '../../core/limits.ts'
import type { CommittedBlock, KeyInfo } from '../../core/om-wire.ts'
import { emptyExcludeList, parseReplication, type AllocatedBlock, type ExcludeList } from '../../core/wire.ts'
import { runEcEncode, SlabPool } from '../workers/index.ts'
import type { KeyWriting } from './client.ts'
import { putBlockTo, writeChunkTo } from './datanode-io.ts'
import { cellSlots, slabsPerStripe, Stripe, type CellSlots } from './ec-stripe.ts'
import { checksumInSlab, excludeFailed, type KeyWriterOptions } from './key-writer.ts'

export type EcKeyWriterOptions = Pick<KeyWriterOptions, 'om' | 'session' | 'slabs' | 'metadata' | 'onProgress' | 'ifNotExists' | 'ifMatchEtag' | 'whileKeyExists' | 'digest' | 'transport'>

/** A block group being written: its key bytes stored so far (whole stripes but maybe the last). */
interface Group {
  alloc: AllocatedBlock
  length: number
}

/** Stripes a writer holds at most: one being filled, one being coded and stored. */
const STRIPES_HELD_MAX = 2

export class EcKeyWriter implements KeyWriting {
  private readonly scheme: EcScheme
  /** Key bytes a block group holds at most. */
  private readonly capacity: number
  private readonly slots: CellSlots
  /** The client's slabs when a stripe's cells fit there, else slabs of this writer's own. */
  private readonly pool: SlabPool
  private readonly preallocated: AllocatedBlock[]
  private readonly done: CommittedBlock[] = []
  private readonly exclude: ExcludeList = emptyExcludeList()
  private group: Group | undefined
  private filling: Stripe | undefined
  /** When the stripe being filled was opened (performance.now()). */
  private fillingSinceMs = 0
  /** The last stripe handed on: coded and stored, or the failure that ended the writer. */
  private storing: Promise<void> = Promise.resolve()
  /**
   * Settles once the last stripe handed on has fed its data cells to the key's digest (or
   * will not): stripes feed it one after another, and close() ends it only after the last.
   */
  private fed: Promise<void> = Promise.resolve()
  /** The bytes of a stripe park() gave the slabs of back, to open the next stripe with. */
  private carry: Uint8Array | undefined
  private size = 0
  /** Key bytes stored on every node of their group. */
  private stored = 0
  private retries = 0
  private closed = false
  /** abort() was called: a stripe still queued is not stored. */
  private aborted = false

  constructor(private readonly options: EcKeyWriterOptions) {
    const { session } = options
    const r = parseReplication(session.replication)
    assert(r.type === 'EC' && r.ec !== undefined, 'an EC writer for an EC key')
    this.scheme = r.ec
    const c = this.scheme.cellSizeBytes
    if (c % session.bytesPerChecksum !== 0) throw new O3Error('INVALID_ARGUMENT', `Cannot write ${session.replication}: its cell of ${c} bytes is not a whole number of checksum windows (${session.bytesPerChecksum} bytes)`)
    if (session.blockSizeBytes < c) throw new O3Error('INVALID_ARGUMENT', `Cannot write ${session.replication}: the block size ${session.blockSizeBytes} is below one cell (${c} bytes)`)
    this.capacity = groupCapacityBytes(this.scheme, session.blockSizeBytes)
    const cells = this.scheme.data + this.scheme.parity
    const shape = { cellSizeBytes: c, checksumRoomBytes: checksumsLengthBytes(session.checksumType, c, session.bytesPerChecksum), dataCells: this.scheme.data, cells }
    const shared = cellSlots({ ...shape, slabBytes: options.slabs.slabBytes })
    if (shared.slotsPerSlab >= 1 && STRIPES_HELD_MAX * slabsPerStripe(shared) <= options.slabs.count) {
      this.slots = shared
      this.pool = options.slabs
    } else {
      // Cells larger than the client's chunks: slabs of one cell each, two stripes' worth,
      // made as needed and dropped when idle like any pool's.
      this.slots = cellSlots({ ...shape, slabBytes: shape.checksumRoomBytes + c })
      this.pool = new SlabPool(this.slots.slotBytes, STRIPES_HELD_MAX * cells)
    }
    this.preallocated = [...session.blocks]
  }

  get bytesWritten(): number {
    return this.size
  }

  /** How long the stripe being filled has held slabs: long for a source that trickles; 0 when it holds none. */
  get slabHeldMs(): number {
    return this.filling === undefined || this.filling.slabCount === 0 ? 0 : performance.now() - this.fillingSinceMs
  }

  /**
   * Appends bytes, copied once into the stripe's cells (`borrow` is accepted for KeyWriter's
   * signature; the codec and the checksums read the slabs, so every byte is copied).
   */
  async write(bytes: Uint8Array, _borrow = false): Promise<void> {
    assert(!this.closed, 'write after close')
    let at = 0
    while (at < bytes.length) {
      const s = this.filling ??= await this.openStripe()
      at += await s.fill(bytes.subarray(at))
      if (s.filled === s.dataBytes) await this.submit(s)
    }
    this.size += bytes.length
    if (bytes.length > 0) this.options.onProgress?.(this.size)
  }

  /**
   * Stores the last stripe, then commits the key with its block groups; returns the committed
   * key. `metadata` as KeyWriter.close takes it: a function is called once the key's last
   * bytes were fed to the digest, and the key is committed only if it resolves.
   */
  async close(metadata?: Record<string, string> | (() => Promise<Record<string, string>>)): Promise<KeyInfo> {
    assert(!this.closed, 'close twice')
    this.closed = true
    try {
      if (this.carry !== undefined) this.filling ??= await this.openStripe()
      const s = this.filling
      if (s !== undefined && s.filled > 0) await this.submit(s)
      // The last stripe takes its parity slabs before it feeds the digest: end it after that.
      await this.fed
      this.options.digest?.end()
      const final = typeof metadata === 'function' ? metadata() : Promise.resolve(metadata)
      final.catch(() => {}) // awaited below, after the last stripe is stored
      await this.storing
      // Every cell is hashed before the key is committed: a digest that failed fails the write.
      await this.options.digest?.hashed()
      const meta = await final
      this.endGroup()
      assert(this.stored === this.size, 'every byte stored before the commit')
      return await this.options.om.call<KeyInfo>('commitKey', { clientId: this.options.session.clientId, blocks: this.done, size: this.size, metadata: meta ?? this.options.metadata, ifNotExists: this.options.ifNotExists, ifMatchEtag: this.options.ifMatchEtag, whileKeyExists: this.options.whileKeyExists })
    } catch (err) {
      await this.abort()
      throw err
    } finally {
      this.releaseFilling()
    }
  }

  /**
   * Gives back every slab this writer holds, for a source gone quiet: the stripe being stored
   * is waited for, and the bytes of the one being filled are copied aside (a stripe cannot end
   * early inside a group: the cells after it would move) to open the next stripe with.
   */
  async park(): Promise<void> {
    assert(!this.closed, 'park after close')
    const s = this.filling
    if (s !== undefined) {
      this.filling = undefined
      // A copy, on purpose: rare (a stalled source), and it frees up to a stripe of slabs.
      if (s.filled > 0) this.carry = s.copyOut()
      s.release()
    }
    await this.storing
  }

  /** Gives up: the OM drops the open key and deletes what was written. Never throws. */
  async abort(): Promise<void> {
    this.closed = true
    this.aborted = true
    this.options.digest?.abandon()
    await this.storing.catch(() => {})
    this.releaseFilling()
    await this.options.om.call('abortKey', { clientId: this.options.session.clientId }).catch(() => {})
  }

  private async openStripe(): Promise<Stripe> {
    const s = new Stripe(this.slots, this.pool)
    this.fillingSinceMs = performance.now()
    const carry = this.carry
    this.carry = undefined
    if (carry !== undefined) {
      try {
        assert(await s.fill(carry) === carry.length, 'parked bytes fit in a stripe')
      } catch (err) {
        s.release()
        throw err
      }
    }
    return s
  }

  private releaseFilling(): void {
    this.filling?.release()
    this.filling = undefined
  }

  /**
   * Hands a filled stripe on: its coding starts now, beside the store of the one before;
   * returns once that store is done and its cells hashed, so that their slabs are back (at
   * most two stripes are held), and this one's store has started. A failure of the writer
   * is thrown here.
   */
  private async submit(s: Stripe): Promise<void> {
    this.filling = undefined
    const prepared = this.prepare(s)
    prepared.catch(() => {}) // awaited below
    try {
      await this.storing
    } catch (err) {
      await prepared.catch(() => {})
      s.release()
      throw err
    }
    // The key's digest may still read the stripe once it is stored: its slabs come back after.
    const storing = prepared.then(() => this.store(s)).finally(() => s.release()).then(async () => { await s.hashed })
    storing.catch(() => {}) // thrown at the next submit, park or close
    this.storing = storing
  }

  /** The stripe's cell lengths (data cells then parity cells), from its key bytes. */
  private cellLengths(s: Stripe): number[] {
    return stripeCellLengths(this.scheme, s.filled, 0)
  }

  /**
   * Codes a stripe in place: the data cells of a short stripe zero-padded to its first cell's
   * length, parity from the codec, then every cell's checksums before it; the data cells go
   * to the key's digest, when there is one, in key order.
   */
  private async prepare(s: Stripe): Promise<void> {
    const previous = this.fed
    let fed!: () => void
    this.fed = new Promise<void>((resolve) => { fed = resolve })
    try {
      await this.code(s, previous, fed)
    } finally {
      fed()
    }
  }

  /** prepare()'s work: the data cells go to the digest once `previous` stripes' did and were hashed, then `fed()`. */
  private async code(s: Stripe, previous: Promise<void>, fed: () => void): Promise<void> {
    const lengths = this.cellLengths(s)
    const width = lengths[0]!
    const k = this.scheme.data
    await s.takeAll()
    await previous
    for (let j = 0; j < k; j++) if (lengths[j]! < width) s.zero(j, lengths[j]!, width)
    const { checksumType, bytesPerChecksum } = this.options.session
    // Only the data cells, in key order, feed the digest, in tasks of their own beside the
    // checksums; the stripe keeps its slabs until they are hashed. The digest may trail by one
    // stripe: the one before must be hashed first.
    const digest = this.options.digest
    if (digest !== undefined) {
      await digest.ready()
      const cells: Promise<void>[] = []
      for (let j = 0; j < k; j++) if (lengths[j]! > 0) cells.push(digest.chunk(s.range(j, lengths[j]!)))
      s.hashed = Promise.allSettled(cells)
    }
    fed()
    const sum = (i: number) => {
      const r = s.range(i, lengths[i]!)
      return checksumInSlab({ slab: r.slab, dataOffset: r.offset, length: r.length, checksumType, bytesPerChecksum }).then((cs) => { s.checksums[i] = cs })
    }
    const data: Promise<void>[] = []
    for (let j = 0; j < k; j++) if (lengths[j]! > 0) data.push(sum(j))
    const parity = runEcEncode({
      codec: this.scheme.codec, k, m: this.scheme.parity,
      data: lengths.slice(0, k).map((_, j) => s.range(j, width)),
      parity: lengths.slice(k).map((_, p) => s.range(k + p, width)),
    }).then(() => Promise.all(lengths.slice(k).map((_, p) => sum(k + p))))
    const settled = await Promise.allSettled([...data, parity])
    const failed = settled.find((r) => r.status === 'rejected')
    if (failed !== undefined) throw (failed as PromiseRejectedResult).reason
  }

  /** Stores a coded stripe in the current group (a new one when full), again in a new group after a failure. */
  private async store(s: Stripe): Promise<void> {
    for (;;) {
      if (this.aborted) throw new O3Error('INTERNAL_ERROR', 'Cannot store an EC stripe: its key was aborted')
      if (this.group !== undefined && this.group.length + s.filled > this.capacity) this.endGroup()
      const g = this.group ??= { alloc: await this.nextGroup(), length: 0 }
      assert(g.length % stripeDataBytes(this.scheme) === 0, 'stripes start at a stripe boundary of their group')
      const failures = await this.storeIn(g, s)
      if (failures.length === 0) {
        g.length += s.filled
        this.stored += s.filled
        return
      }
      this.failed(g, failures)
    }
  }

  /**
   * Writes the stripe's cells to their nodes in parallel, then, when all are stored, commits
   * every replica (putBlock) with its length and the group's; returns the failures.
   */
  private async storeIn(g: Group, s: Stripe): Promise<O3Error[]> {
    const lengths = this.cellLengths(s)
    const { blockId, pipeline, token } = g.alloc
    const { checksumType, bytesPerChecksum } = this.options.session
    const offset = (g.length / stripeDataBytes(this.scheme)) * this.scheme.cellSizeBytes
    const writes = pipeline.nodes.flatMap((node, i) => lengths[i]! === 0 ? [] : [writeChunkTo(node, {
      blockId, pipeline, offset, data: s.bytes(i, lengths[i]!), checksums: s.checksums[i]!, joined: s.joined(i, lengths[i]!),
      checksumType, bytesPerChecksum, replicaIndex: i + 1, token, transport: this.options.transport,
    })])
    const written = rejections(await Promise.allSettled(writes))
    if (written.length > 0) return written
    const groupLength = g.length + s.filled
    return rejections(await Promise.allSettled(pipeline.nodes.map((node, i) => putBlockTo(node, {
      blockId, pipeline, replicaIndex: i + 1, length: replicaLengthBytes(this.scheme, groupLength, i + 1), blockGroupLength: groupLength, token, transport: this.options.transport,
    }))))
  }

  /**
   * After a stripe failed in `g`: the group ends at its last stored stripe, what failed is
   * excluded, and the next group is allocated around it. Throws once out of retries, or at
   * once for a request the datanodes refuse as malformed (no other group would take it).
   */
  private failed(g: Group, failures: O3Error[]): void {
    const first = failures[0]!
    const malformed = failures.find((f) => f.code === 'INVALID_ARGUMENT')
    if (malformed !== undefined) throw malformed
    if (++this.retries > CLIENT_BLOCK_RETRY_COUNT_MAX) throw new O3Error(first.code, `Cannot write key after ${CLIENT_BLOCK_RETRY_COUNT_MAX} block group retries: ${first.message}`)
    const { blockId, pipeline } = g.alloc
    log.warn(`write to block group ${blockId.containerId}:${blockId.localId} on pipeline ${pipeline.id} failed (${failures.map((f) => `${f.code}: ${f.message}`).join('; ')}); the group ends at ${g.length} bytes, the stripe goes to a new group`)
    for (const f of failures) excludeFailed(this.exclude, f, g.alloc)
    this.endGroup()
  }

  /** Records the current group with its stored bytes (none: left out) and leaves it. */
  private endGroup(): void {
    const g = this.group
    this.group = undefined
    if (g !== undefined && g.length > 0) this.done.push({ blockId: g.alloc.blockId, length: g.length })
  }

  /** The next group: a preallocated one clear of everything excluded, else one the OM allocates around it. */
  private async nextGroup(): Promise<AllocatedBlock> {
    const x = this.exclude
    const clear = (b: AllocatedBlock) => !x.pipelines.includes(b.pipeline.id) && !x.containers.includes(b.blockId.containerId) && !b.pipeline.nodes.some((n) => x.datanodes.includes(n.id))
    const i = this.preallocated.findIndex(clear)
    const alloc = i >= 0 ? this.preallocated.splice(i, 1)[0]! : await this.options.om.call<AllocatedBlock>('allocateBlock', { clientId: this.options.session.clientId, excludeList: x })
    const width = this.scheme.data + this.scheme.parity
    if (alloc.pipeline.nodes.length !== width) {
      throw new O3Error('INTERNAL_ERROR', `Cannot write block group ${alloc.blockId.containerId}:${alloc.blockId.localId}: its pipeline ${alloc.pipeline.id} has ${alloc.pipeline.nodes.length} nodes, ${this.options.session.replication} needs ${width}`)
    }
    return alloc
  }
}

function rejections(settled: PromiseSettledResult<unknown>[]): O3Error[] {
  return settled.flatMap((r) => r.status === 'rejected' ? [toO3Error(r.reason)] : [])
}
