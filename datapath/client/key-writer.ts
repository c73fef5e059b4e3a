/** @module
 * Writes one key: cuts the bytes into chunks (each checksummed per bytes-per-checksum),
 * streams them to the pipeline leader of the current block with a window in flight, commits
 * the block on the datanodes every few chunks (putBlock), and commits the key at the OM.
 * A failed datanode or pipeline is excluded and the bytes not yet committed are rewritten to
 * a new block (Ozone's ExcludeList). Memory is bounded by the window and the flush interval,
 * and a writer whose source goes quiet can park(): commit what it has and hold no slab.
 * A block is durable once its pipeline's Raft group committed putBlock (a majority); at a
 * block's end and before it acknowledges the key, the writer watches for every member to hold
 * the pipeline's log through its last write, for a bounded time, and new blocks avoid the
 * members that lagged (Ozone's watchForCommit ALL_COMMITTED, then the ExcludeList).
 */
import { assert } from '../../core/assert.ts'
import { checksumsLengthBytes, computeChecksums } from '../../core/checksum.ts'
import { O3Error, toO3Error } from '../../core/errors.ts'
import { log } from '../../core/log.ts'
import { CLIENT_BLOCK_RETRY_COUNT_MAX, CLIENT_CHUNKS_INFLIGHT_MAX, CLIENT_FLUSH_CHUNKS, CLIENT_SLAB_WAIT_MS_MAX, CLIENT_SLOW_DATANODES_MAX, PIPELINE_WATCH_KNOWN_SLOW_MS, PIPELINE_WATCH_MS_DEFAULT } from '../../core/limits.ts'
import type { KeyInfo, OpenKeyResult } from '../../core/om-wire.ts'
import type { RpcClient } from '../../core/rpc/client.ts'
import { emptyExcludeList, type AllocatedBlock, type BlockId, type ChecksumType, type DatanodeId, type ExcludeList, type Pipeline, type PipelineId } from '../../core/wire.ts'
import { runChecksum, type SlabPool } from '../workers/index.ts'
import { putBlock, watchForCommit, writeChunk, type WriteAck } from './datanode-io.ts'
import type { Transport } from '../../core/rpc/transport.ts'
import type { KeyDigest } from './key-digest.ts'
import { LeaderCache } from './pipeline-leader.ts'
import { SlowDatanodes } from './slow-datanodes.ts'
import { copyBytes } from '../../core/copy-bytes.ts'

/** Chunks at least this long get their checksums computed in the worker pool. */
const WORKER_CHECKSUM_BYTES_MIN = 256 * 1024

/**
 * Computes the checksums of the `length` bytes at `dataOffset` of `slab` into the room right
 * before them (checksums || data, as a datanode takes a chunk) and returns their view: in the
 * worker pool from WORKER_CHECKSUM_BYTES_MIN up, inline below. Borrows the slab until it settles.
 */
export async function checksumInSlab(c: { slab: SharedArrayBuffer; dataOffset: number; length: number; checksumType: ChecksumType; bytesPerChecksum: number }): Promise<Uint8Array> {
  const { slab, dataOffset, length, checksumType: type, bytesPerChecksum } = c
  const csLength = checksumsLengthBytes(type, length, bytesPerChecksum)
  assert(csLength <= dataOffset, 'checksums do not fit before the data')
  const out = { slab, offset: dataOffset - csLength, length: csLength }
  if (length >= WORKER_CHECKSUM_BYTES_MIN) await runChecksum({ type, bytesPerChecksum, data: { slab, offset: dataOffset, length }, out })
  else computeChecksums(type, new Uint8Array(slab, dataOffset, length), bytesPerChecksum, new Uint8Array(slab, out.offset, csLength))
  return new Uint8Array(slab, out.offset, csLength)
}

/**
 * Adds what a failed write to `alloc` points at to `exclude` (Ozone's ExcludeList): the
 * container when the container refused it, else the pipeline and the node that failed, if the
 * failure names one of its members.
 */
export function excludeFailed(exclude: ExcludeList, failure: O3Error, alloc: AllocatedBlock): void {
  const add = <T>(list: T[], item: T) => { if (!list.includes(item)) list.push(item) }
  if (failure.code === 'CONTAINER_NOT_OPEN' || failure.code === 'CONTAINER_NOT_FOUND') {
    add(exclude.containers, alloc.blockId.containerId)
    return
  }
  add(exclude.pipelines, alloc.pipeline.id)
  const node = alloc.pipeline.nodes.find((n) => n.address === failure.node)
  if (node !== undefined) add(exclude.datanodes, node.id)
}

interface Chunk {
  data: Uint8Array
  checksums: Uint8Array
  /**
   * Set when checksums and data live in a pooled slab, back to back (checksums first, as the
   * datanode takes them), returned when the chunk is committed and `hashed` has settled.
   */
  slab?: SharedArrayBuffer
  /** The key's digest reading the chunk's data in its slab: settles once it is done with it. */
  hashed?: Promise<void>
}

/** A chunk written to the current block and kept until putBlock covers it. */
interface Written {
  chunk: Chunk
  offset: number
  /** Every replica acknowledged the writeChunk. */
  acked: boolean
}

interface BlockState {
  alloc: AllocatedBlock
  /** Bytes acknowledged by putBlock on every replica. */
  committed: number
  /** Bytes handed to writeChunk (acknowledged or in flight). */
  written: number
  /** Chunks after `committed`, in order, kept for a rewrite until a putBlock covers them. */
  unflushed: Written[]
  /** A putBlock is in flight for this block. */
  committing: boolean
}

/** The last write of this key a pipeline's leader answered, and how far the writer watched its commit. */
interface PipelineCommit {
  pipeline: Pipeline
  /** Raft log index of the last write answered. */
  index: number
  /** Every member held the log through `index` (the answer said so, or a watch did). */
  allCommitted: boolean
  /** The highest index a watchForCommit was started for (-1: none). */
  watched: number
}

/** Chunks a writer keeps at most: those in flight and those acknowledged but not yet committed. */
const RETAINED_CHUNKS_MAX = CLIENT_CHUNKS_INFLIGHT_MAX + CLIENT_FLUSH_CHUNKS

export interface KeyWriterOptions {
  om: RpcClient
  session: OpenKeyResult
  chunkSizeBytes: number
  slabs: SlabPool
  metadata?: Record<string, string>
  onProgress?: (bytes: number) => void
  /** Passed to commitKey: the OM refuses the commit when the key exists by then. */
  ifNotExists?: boolean
  /** Passed to commitKey: the OM refuses the commit unless the key exists by then with this ETag. */
  ifMatchEtag?: string
  /** Passed to commitKey: the OM refuses the commit (REQUIRED_KEY_NOT_FOUND) unless this other key exists by then. */
  whileKeyExists?: { volume: string; bucket: string; key: string }
  /** Digests to feed every chunk to, in key order, from its slab (see key-digest.ts): the
   *  writer then copies every byte into a slab (it borrows none) and ends the digest when it
   *  has made its last chunk. */
  digest?: KeyDigest
  /** The client's pipeline leaders (a writer of its own when not given). */
  leaders?: LeaderCache
  /** The client's datanodes to avoid for a while (one of the writer's own when not given). */
  slow?: SlowDatanodes
  /** How the writer reaches datanodes (the client's: plain HTTP, or its TLS identity). */
  transport?: Transport
}

export class KeyWriter {
  private readonly om: RpcClient
  private readonly session: OpenKeyResult
  private readonly chunkSize: number
  /**
   * Where a chunk's data starts in its slab: the room before it holds a full chunk's
   * checksums, and a chunk's checksums end where its data starts, so that checksums || data
   * goes out as one view of the slab whatever the chunk's length.
   */
  private readonly dataStart: number
  private readonly slabs: SlabPool
  private readonly preallocated: AllocatedBlock[]
  private readonly done: { blockId: BlockId; length: number }[] = []
  private readonly exclude: ExcludeList = emptyExcludeList()
  private readonly inflight = new Set<Promise<void>>()
  private readonly leaders: LeaderCache
  private readonly slow: SlowDatanodes
  /** Per pipeline written to, the last index answered: what a watchForCommit waits for. */
  private readonly commits = new Map<PipelineId, PipelineCommit>()
  /** watchForCommit calls under way; they never reject. */
  private readonly watches = new Set<Promise<void>>()
  /**
   * Members that lagged behind a watch: the following blocks avoid them, but only as a wish
   * (unlike `exclude`, of members that failed): with no pipeline without them (three
   * datanodes), a block goes to them all the same, as the majority keeps the data durable.
   */
  private readonly lagging: DatanodeId[] = []
  /** The SCM found no pipeline without the lagging and slow datanodes: stop asking for one. */
  private avoidingFailed = false
  private block: BlockState | undefined
  private failure: O3Error | undefined
  private partial: { slab: SharedArrayBuffer; filled: number } | undefined
  /** Bytes under one checksum window left over by park(), to open the next chunk with. */
  private carry: Uint8Array | undefined
  /** When the chunk being filled took its slab (performance.now()). */
  private partialSinceMs = 0
  private size = 0
  private retries = 0
  private closed = false

  constructor(private readonly options: KeyWriterOptions) {
    this.om = options.om
    this.session = options.session
    this.slabs = options.slabs
    this.chunkSize = Math.min(options.chunkSizeBytes, this.session.blockSizeBytes)
    this.chunkSize -= this.chunkSize % this.session.bytesPerChecksum || 0
    assert(this.chunkSize > 0, 'chunk size below bytes per checksum')
    this.dataStart = checksumsLengthBytes(this.session.checksumType, this.chunkSize, this.session.bytesPerChecksum)
    assert(this.slabs.slabBytes >= this.dataStart + this.chunkSize, 'slab too small for a chunk')
    this.preallocated = [...this.session.blocks]
    this.leaders = options.leaders ?? new LeaderCache()
    this.slow = options.slow ?? new SlowDatanodes()
  }

  get bytesWritten(): number {
    return this.size
  }

  /** How long the chunk being filled has held its slab: long for a source that trickles; 0 when none is open. */
  get slabHeldMs(): number {
    return this.partial === undefined ? 0 : performance.now() - this.partialSinceMs
  }

  /**
   * Appends bytes. With `borrow`, the caller promises not to change them until close(), and
   * whole chunks are sent from its buffer without a copy; otherwise they are copied once into
   * a slab.
   */
  async write(bytes: Uint8Array, borrow = false): Promise<void> {
    assert(!this.closed, 'write after close')
    let at = 0
    while (at < bytes.length) {
      if (this.partial === undefined && this.carry === undefined && borrow && this.options.digest === undefined && bytes.length - at >= this.chunkSize) {
        await this.submit(await this.makeChunk(bytes.subarray(at, at + this.chunkSize)), false)
        at += this.chunkSize
        continue
      }
      this.partial ??= await this.openPartial()
      const n = Math.min(this.chunkSize - this.partial.filled, bytes.length - at)
      copyBytes(new Uint8Array(this.partial.slab, this.dataStart + this.partial.filled, n), 0, bytes.subarray(at, at + n))
      this.partial.filled += n
      at += n
      if (this.partial.filled === this.chunkSize) await this.submitPartial(false)
    }
  }

  /**
   * Sends what is left, commits every block and then the key; returns the committed key.
   * `metadata`, when given, replaces the metadata passed at open (an S3 ETag is known only
   * now). As a function, it is called once the last chunk is made (so `digest` has ended), and
   * the key is committed only if it resolves: a digest that does not match throws there.
   */
  async close(metadata?: Record<string, string> | (() => Promise<Record<string, string>>)): Promise<KeyInfo> {
    assert(!this.closed, 'close twice')
    this.closed = true
    try {
      if (this.carry !== undefined) this.partial ??= await this.openPartial()
      if (this.partial !== undefined && this.partial.filled > 0) await this.submitPartial(true)
      this.options.digest?.end()
      const final = typeof metadata === 'function' ? metadata() : Promise.resolve(metadata)
      final.catch(() => {}) // awaited below, after the flush
      await this.flush()
      // Every chunk is hashed before the key is committed: a digest that failed fails the write.
      await this.options.digest?.hashed()
      const meta = await final
      if (this.block !== undefined && this.block.committed > 0) this.done.push({ blockId: this.block.alloc.blockId, length: this.block.committed })
      this.block = undefined
      // The key is durable (every block committed by a majority): the OM commits it while
      // the watches wait for the last members, and the key is acknowledged after both.
      for (const id of this.commits.keys()) this.watchCommit(id)
      const [info] = await Promise.all([
        this.om.call<KeyInfo>('commitKey', { clientId: this.session.clientId, blocks: this.done, size: this.size, metadata: meta ?? this.options.metadata, ifNotExists: this.options.ifNotExists, ifMatchEtag: this.options.ifMatchEtag, whileKeyExists: this.options.whileKeyExists }),
        Promise.all(this.watches),
      ])
      return info
    } catch (err) {
      await this.abort()
      throw err
    } finally {
      this.releaseAll()
    }
  }

  /**
   * Gives back every slab this writer holds, for a source that has gone quiet (an S3 client
   * that stalls): the bytes gathered so far go out as a shorter chunk of whole checksum
   * windows (datanodes take chunks only at window boundaries) and everything written is
   * committed on the datanodes (putBlock), which releases the slabs of its chunks. The tail
   * under one window (less than bytesPerChecksum) is copied aside and opens the next chunk.
   * Writing goes on with the next write(); a writer that holds nothing returns at once.
   */
  async park(): Promise<void> {
    assert(!this.closed, 'park after close')
    const p = this.partial
    if (p !== undefined) {
      this.partial = undefined
      const aligned = p.filled - (p.filled % this.session.bytesPerChecksum)
      // A copy, on purpose: the slab goes back once the chunk before the tail is committed.
      if (aligned < p.filled) this.carry = new Uint8Array(p.slab, this.dataStart + aligned, p.filled - aligned).slice()
      if (aligned > 0) await this.submit(await this.makeChunk(new Uint8Array(p.slab, this.dataStart, aligned), p.slab), false)
      else this.slabs.release(p.slab)
    }
    await this.flush()
  }

  /** Gives up: the OM drops the open key and deletes what was written. Never throws. */
  async abort(): Promise<void> {
    this.closed = true
    this.options.digest?.abandon()
    await Promise.allSettled(this.inflight)
    this.releaseAll()
    await this.om.call('abortKey', { clientId: this.session.clientId }).catch(() => {})
  }

  /** A slab for the next chunk, opened with the bytes park() kept aside, if any. */
  private async openPartial(): Promise<{ slab: SharedArrayBuffer; filled: number }> {
    const slab = await this.slabs.acquire(CLIENT_SLAB_WAIT_MS_MAX)
    this.partialSinceMs = performance.now()
    const carry = this.carry
    this.carry = undefined
    if (carry === undefined) return { slab, filled: 0 }
    copyBytes(new Uint8Array(slab, this.dataStart, carry.length), 0, carry)
    return { slab, filled: carry.length }
  }

  private releaseAll(): void {
    if (this.partial !== undefined) { this.slabs.release(this.partial.slab); this.partial = undefined }
    if (this.block !== undefined) { for (const w of this.block.unflushed) this.releaseChunk(w.chunk); this.block.unflushed = [] }
  }

  private releaseChunk(c: Chunk): void {
    const slab = c.slab
    if (slab === undefined) return
    c.slab = undefined
    this.slabs.releaseAfter(c.hashed, [slab])
  }

  private async makeChunk(data: Uint8Array, slab?: SharedArrayBuffer): Promise<Chunk> {
    const { checksumType, bytesPerChecksum } = this.session
    if (slab !== undefined) {
      assert(data.byteOffset === this.dataStart, 'chunk data not at its place in the slab')
      // The key's digest (an S3 ETag) reads the chunk in a task of its own, beside its
      // checksums: the chunk goes to the datanodes while it is hashed, and the digest is
      // needed only at commit. It may trail by one chunk, which bounds the slabs it holds.
      const digest = this.options.digest
      let hashed: Promise<void> | undefined
      try {
        if (digest !== undefined) {
          await digest.ready()
          hashed = digest.chunk({ slab, offset: this.dataStart, length: data.length })
          hashed.catch(() => {}) // its failure is the digest's: hashed() throws it before the commit
        }
        const checksums = await checksumInSlab({ slab, dataOffset: this.dataStart, length: data.length, checksumType, bytesPerChecksum })
        return { data, checksums, slab, hashed }
      } catch (err) {
        // Not a chunk (its checksums or the chunks before it could not be hashed, or an abort).
        this.releaseChunk({ data, checksums: new Uint8Array(0), slab, hashed })
        throw err
      }
    }
    const checksums = new Uint8Array(checksumsLengthBytes(checksumType, data.length, bytesPerChecksum))
    computeChecksums(checksumType, data, bytesPerChecksum, checksums)
    return { data, checksums }
  }

  private async submitPartial(last: boolean): Promise<void> {
    const p = this.partial!
    this.partial = undefined
    await this.submit(await this.makeChunk(new Uint8Array(p.slab, this.dataStart, p.filled), p.slab), last)
  }

  /**
   * The next block: a preallocated one while nothing failed (none on a datanode to avoid),
   * else one the OM allocates around what failed and, if the SCM has such a pipeline, around
   * the lagging and slow datanodes too.
   */
  private async nextBlock(): Promise<BlockState> {
    const excluding = this.exclude.datanodes.length + this.exclude.pipelines.length + this.exclude.containers.length > 0
    const avoid = this.avoidingFailed ? [] : [...new Set([...this.lagging, ...this.slow.list(Date.now())])].filter((id) => !this.exclude.datanodes.includes(id))
    const state = (alloc: AllocatedBlock): BlockState => ({ alloc, committed: 0, written: 0, unflushed: [], committing: false })
    if (!excluding) {
      const i = this.preallocated.findIndex((b) => !b.pipeline.nodes.some((n) => avoid.includes(n.id)))
      if (i >= 0) return state(this.preallocated.splice(i, 1)[0]!)
    }
    if (avoid.length > 0) {
      try {
        return state(await this.om.call<AllocatedBlock>('allocateBlock', { clientId: this.session.clientId, excludeList: { ...this.exclude, datanodes: [...this.exclude.datanodes, ...avoid] } }))
      } catch (err) {
        if (toO3Error(err).code !== 'NO_PIPELINE') throw err
        // Nor will the client's next keys ask: each would pay an allocateBlock for nothing.
        log.info(`no pipeline without the slow datanodes ${avoid.join(', ')}: writing to them all the same`)
        this.avoidingFailed = true
        this.slow.forget(avoid)
      }
    }
    let alloc = excluding ? undefined : this.preallocated.shift()
    alloc ??= await this.om.call<AllocatedBlock>('allocateBlock', { clientId: this.session.clientId, excludeList: this.exclude })
    return state(alloc)
  }

  /** Hands one chunk to the current block, opening a new block when it is full. */
  private async submit(chunk: Chunk, last: boolean): Promise<void> {
    this.size += chunk.data.length
    for (;;) {
      if (this.failure !== undefined) await this.recover()
      if (this.block !== undefined && this.block.written + chunk.data.length > this.session.blockSizeBytes) {
        await this.flush()
        if (this.failure !== undefined) continue
        this.done.push({ blockId: this.block.alloc.blockId, length: this.block.committed })
        this.watchCommit(this.block.alloc.pipeline.id)
        this.block = undefined
      }
      this.block ??= await this.nextBlock()
      break
    }
    const whole = last && this.block.written === 0
    this.start(this.block, chunk, whole)
    this.options.onProgress?.(this.size)
    // Back-pressure: a window of chunks in flight, and a bound on the chunks kept for a
    // rewrite. putBlock runs beside the writes (commitAhead), so data never stops flowing.
    const block = this.block
    while (this.failure === undefined && this.inflight.size > 0 && (this.inflight.size >= CLIENT_CHUNKS_INFLIGHT_MAX || block.unflushed.length >= RETAINED_CHUNKS_MAX)) {
      await Promise.race(this.inflight)
    }
  }

  /** Starts writing a chunk at the block's end; a failure is recorded, not thrown. */
  private start(block: BlockState, chunk: Chunk, whole: boolean): void {
    const offset = block.written
    block.written += chunk.data.length
    const entry: Written = { chunk, offset, acked: false }
    block.unflushed.push(entry)
    const joined = chunk.slab !== undefined ? new Uint8Array(chunk.slab, chunk.checksums.byteOffset, chunk.checksums.length + chunk.data.length) : undefined
    const p: Promise<void> = writeChunk({
      blockId: block.alloc.blockId, pipeline: block.alloc.pipeline, leaders: this.leaders, offset, data: chunk.data, checksums: chunk.checksums, joined,
      checksumType: this.session.checksumType, bytesPerChecksum: this.session.bytesPerChecksum, whole, commit: whole, token: block.alloc.token, transport: this.options.transport,
    }).then((ack) => {
      this.answered(block.alloc.pipeline, ack)
      entry.acked = true
      if (whole) this.committedUpTo(block, block.written)
      else this.commitAhead(block)
    }, (err) => { this.failure ??= toO3Error(err) })
      .finally(() => this.inflight.delete(p))
    this.inflight.add(p)
  }

  /** Starts a putBlock for the acknowledged prefix once it holds enough chunks, one at a time. */
  private commitAhead(block: BlockState): void {
    if (block.committing || this.failure !== undefined || block !== this.block) return
    let end = block.committed, count = 0
    for (const w of block.unflushed) {
      if (!w.acked) break
      end = w.offset + w.chunk.data.length
      count++
    }
    if (count < CLIENT_FLUSH_CHUNKS) return
    block.committing = true
    const p: Promise<void> = putBlock(block.alloc.blockId, block.alloc.pipeline, end, this.leaders, block.alloc.token, this.options.transport)
      .then((ack) => { this.answered(block.alloc.pipeline, ack); this.committedUpTo(block, end) }, (err) => { this.failure ??= toO3Error(err) })
      .finally(() => { block.committing = false; this.inflight.delete(p); this.commitAhead(block) })
    this.inflight.add(p)
  }

  /** Every replica holds the block up to `end`: the chunks before it need no rewrite. */
  private committedUpTo(block: BlockState, end: number): void {
    block.committed = Math.max(block.committed, end)
    while (block.unflushed.length > 0 && block.unflushed[0].offset + block.unflushed[0].chunk.data.length <= block.committed) {
      this.releaseChunk(block.unflushed.shift()!.chunk)
    }
  }

  /** Waits for everything in flight, then commits the block so far on every replica. */
  private async flush(): Promise<void> {
    for (;;) {
      await Promise.allSettled(this.inflight)
      if (this.failure !== undefined) { await this.recover(); continue }
      const block = this.block
      if (block === undefined || block.committed === block.written) return
      try {
        this.answered(block.alloc.pipeline, await putBlock(block.alloc.blockId, block.alloc.pipeline, block.written, this.leaders, block.alloc.token, this.options.transport))
        this.committedUpTo(block, block.written)
        return
      } catch (err) {
        this.failure = toO3Error(err)
      }
    }
  }

  /**
   * After a failure: exclude what failed, keep the current block up to what its replicas
   * committed, and write the uncommitted chunks again to a new block.
   */
  private async recover(): Promise<void> {
    while (this.failure !== undefined) {
      const failure = this.failure
      if (++this.retries > CLIENT_BLOCK_RETRY_COUNT_MAX) throw new O3Error(failure.code, `Cannot write key after ${CLIENT_BLOCK_RETRY_COUNT_MAX} block retries: ${failure.message}`)
      await Promise.allSettled(this.inflight)
      const block = this.block
      assert(block !== undefined, 'failure without a block')
      log.warn(`write to block ${block.alloc.blockId.containerId}:${block.alloc.blockId.localId} on pipeline ${block.alloc.pipeline.id} failed (${failure.code}: ${failure.message}); rewriting ${block.written - block.committed} bytes to a new block`)
      excludeFailed(this.exclude, failure, block.alloc)
      // A pipeline given up on is not watched either: its leader is what failed.
      if (this.exclude.pipelines.includes(block.alloc.pipeline.id)) this.commits.delete(block.alloc.pipeline.id)
      if (block.committed > 0) this.done.push({ blockId: block.alloc.blockId, length: block.committed })
      this.failure = undefined
      this.block = await this.nextBlock()
      for (const w of block.unflushed) this.start(this.block, w.chunk, false)
      await Promise.allSettled(this.inflight)
    }
  }

  /** Records a leader's answer: the last index of the pipeline, and whether all members hold it. */
  private answered(pipeline: Pipeline, ack: WriteAck): void {
    if (ack.index === undefined) return // a datanode before Raft pipelines: nothing to watch
    const c = this.commits.get(pipeline.id)
    if (c === undefined) this.commits.set(pipeline.id, { pipeline, index: ack.index, allCommitted: ack.allCommitted === true, watched: -1 })
    else if (ack.index >= c.index) { c.index = ack.index; c.allCommitted = ack.allCommitted === true }
  }

  /**
   * Starts a watchForCommit of the pipeline's last answered index unless every member holds
   * it or a watch of it is under way. It never fails the key: the majority commit made the
   * writes durable; a watch that fails (a datanode that does not know it, a leader gone) only
   * leaves the slow member unknown. The members that lagged are avoided by the next blocks.
   */
  private watchCommit(id: PipelineId): void {
    const c = this.commits.get(id)
    if (c === undefined || c.allCommitted || c.watched >= c.index) return
    const index = c.index
    c.watched = index
    // A member known to lag (a datanode down) is not waited for the whole watch on every key:
    // a short one tells whether it is back.
    const waitMs = this.slow.anyLagging(c.pipeline.nodes.map((n) => n.id), Date.now()) ? PIPELINE_WATCH_KNOWN_SLOW_MS : PIPELINE_WATCH_MS_DEFAULT
    const p: Promise<void> = watchForCommit(c.pipeline, index, waitMs, this.leaders, this.options.transport).then((w) => {
      if (w.allCommitted && c.index === index) c.allCommitted = true
      const lagging = w.lagging.filter((n) => c.pipeline.nodes.some((m) => m.id === n))
      if (lagging.length === 0) return
      if (waitMs === PIPELINE_WATCH_MS_DEFAULT) log.warn(`pipeline ${id}: ${lagging.join(', ')} did not hold index ${index} after ${waitMs} ms; new blocks avoid them`)
      this.slow.add(lagging, Date.now())
      for (const n of lagging) if (!this.lagging.includes(n) && this.lagging.length < CLIENT_SLOW_DATANODES_MAX) this.lagging.push(n)
    }, (err) => {
      log.debug(`pipeline ${id}: watchForCommit of index ${index} failed (${toO3Error(err).code}: ${toO3Error(err).message}); the majority commit stands`)
    }).finally(() => this.watches.delete(p))
    this.watches.add(p)
  }
}
