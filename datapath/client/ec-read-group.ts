/** @module
 * Reads of one EC block group (Ozone's ECBlockInputStream and
 * ECBlockReconstructedStripeInputStream): a piece of a data cell straight from its replica, or,
 * once a replica failed, the pieces of a stripe (or of a run of whole stripes) from any k of
 * its k + m cells, the lost ones rebuilt in the worker pool. Remembers the replicas that failed, so that the rest of the group
 * goes around them.
 */
import { assert } from '../../core/assert.ts'
import { checksumsLengthBytes } from '../../core/checksum.ts'
import { stripeCellLengths, type CellPiece, type EcScheme } from '../../core/ec-layout.ts'
import { O3Error, toO3Error, type ErrorCodeName } from '../../core/errors.ts'
import { BYTES_PER_CHECKSUM_MIN, CLIENT_EC_DEGRADED_SLAB_BYTES_MAX, CLIENT_EC_DEGRADED_STRIPES_MAX, CLIENT_EC_READ_ANSWER_MS } from '../../core/limits.ts'
import { log } from '../../core/log.ts'
import type { RpcClient } from '../../core/rpc/client.ts'
import { parseReplication, type ChecksumType, type KeyLocation } from '../../core/wire.ts'
import { lateWrites, runEcReconstruct, SlabPool, type BufferPool, type SlabRange } from '../workers/index.ts'
import { readChunk, type ReadLimits } from './datanode-io.ts'
import type { Transport } from '../../core/rpc/transport.ts'
import { corruptBlock, type FailedNodes } from './failed-nodes.ts'
import { noteCorrupt, settleLent } from './key-reader.ts'
import { copyBytes } from '../../core/copy-bytes.ts'

/** Where a pooled read buffer is lent from: the pool and the buffer it handed out. */
export interface Lent {
  buffers: BufferPool<SharedArrayBuffer>
  buffer: SharedArrayBuffer
}

/**
 * Whole stripes a degraded read takes at once: as many as one request per source covers
 * (`requestBytes` per cell), while their slab of k + m cells stays under
 * CLIENT_EC_DEGRADED_SLAB_BYTES_MAX; one at least.
 */
export function degradedRunStripes(s: EcScheme, requestBytes: number): number {
  const bySlab = Math.floor(CLIENT_EC_DEGRADED_SLAB_BYTES_MAX / ((s.data + s.parity) * s.cellSizeBytes))
  return Math.max(1, Math.min(Math.floor(requestBytes / s.cellSizeBytes), bySlab))
}

/**
 * Slab pools by shape (cells x slot size), each of at most `slabBytesPerShape` bytes of slabs
 * (and CLIENT_EC_DEGRADED_STRIPES_MAX slabs at least): one per client, shared by its EC
 * readers, so that a slab outlives the read that made it (a fresh one per GET is external
 * memory V8 must collect); idle slabs are dropped (SlabPool). A reader never waits on
 * another's slabs: when none is free it takes one of its own.
 */
export class StripeSlabPools {
  private readonly pools = new Map<string, SlabPool>()

  constructor(private readonly slabBytesPerShape: number) {}

  pool(cells: number, slotBytes: number): SlabPool {
    const key = `${cells}x${slotBytes}`
    let pool = this.pools.get(key)
    if (pool === undefined) {
      const slabBytes = cells * slotBytes
      this.pools.set(key, pool = new SlabPool(slabBytes, Math.max(CLIENT_EC_DEGRADED_STRIPES_MAX, Math.floor(this.slabBytesPerShape / slabBytes))))
    }
    return pool
  }
}

/**
 * The slabs a reader rebuilds stripes in, one slot per cell (the cells of the stripes read,
 * the checksum windows a range read may start and end in, and the checksums that follow),
 * from the client's pools (or pools of its own, dropped with the reader).
 */
export class StripeSlabs {
  constructor(private readonly checksumType: ChecksumType, private readonly bytesPerChecksum: number, private readonly requestBytes: number, private readonly pools = new StripeSlabPools(0)) {}

  /** A slab for `stripes` consecutive stripes of `s` (a run of any length gets a full run's,
   *  so that runs share one pool): the client's when one is free (a reader stalled on a
   *  source must not hold up another's reads), else one of the reader's own. */
  /** Whole stripes a degraded read of `s` takes at once, for this reader's requests. */
  runStripes(s: EcScheme): number {
    return degradedRunStripes(s, this.requestBytes)
  }

  acquire(s: EcScheme, stripes: number): { slab: SharedArrayBuffer; slotBytes: number; release: () => void } {
    const runStripes = this.runStripes(s)
    assert(stripes <= runStripes, 'a run of at most degradedRunStripes')
    const window = Math.max(this.bytesPerChecksum, BYTES_PER_CHECKSUM_MIN)
    const span = (stripes === 1 ? 1 : runStripes) * s.cellSizeBytes + 2 * window
    const slotBytes = span + checksumsLengthBytes(this.checksumType, span, window)
    const pool = this.pools.pool(s.data + s.parity, slotBytes)
    const pooled = pool.tryAcquire()
    if (pooled !== undefined) return { slab: pooled, slotBytes, release: () => pool.release(pooled) }
    return { slab: new SharedArrayBuffer((s.data + s.parity) * slotBytes), slotBytes, release: () => {} }
  }
}

/**
 * Where a rebuilt stripe's pieces are copied out to: pooled buffers free at once, as many
 * pieces to one as fit (the buffer comes back with the last of their releases, share()), so
 * that a stripe of k cells takes one or two of the pool's chunk-sized buffers rather than k;
 * a buffer of its own for a piece when none is free.
 */
class PieceBuffers {
  private buffer: SharedArrayBuffer | undefined
  private used = 0
  private holders = 0

  constructor(private readonly buffers: BufferPool<SharedArrayBuffer> | undefined) {}

  take(length: number): Uint8Array {
    const pool = this.buffers
    if (pool === undefined || length > pool.bufferBytes) return new Uint8Array(length)
    if (this.buffer !== undefined && this.used + length > pool.bufferBytes) this.seal()
    this.buffer ??= pool.tryAcquire()
    if (this.buffer === undefined) return new Uint8Array(length)
    const view = new Uint8Array(this.buffer, this.used, length)
    this.used += length
    this.holders++
    return view
  }

  /** Done with the current buffer: its pieces are its holders. */
  seal(): void {
    if (this.buffer !== undefined) this.buffers!.share(this.buffer, this.holders)
    this.buffer = undefined
    this.used = 0
    this.holders = 0
  }
}

/**
 * A replica that has not begun to answer after CLIENT_EC_READ_ANSWER_MS (a frozen or lost
 * datanode, or a busy one) is read around, its cells rebuilt from the others, instead of
 * waiting the RPC timeout; it is asked again, with the whole timeout, when too few others are
 * left, and the client's next reads plan around it for a while (FailedNodes).
 */
const EC_READ_LIMITS: ReadLimits = { answerTimeoutMs: CLIENT_EC_READ_ANSWER_MS }

/** Whether a read failed because its datanode had not begun to answer in time (undici's headers timeout). */
function noAnswerInTime(err: unknown): boolean {
  for (let e = err as { code?: unknown; cause?: unknown } | undefined; e !== undefined && e !== null; e = e.cause as typeof e) {
    if (e.code === 'UND_ERR_HEADERS_TIMEOUT') return true
  }
  return false
}

export class EcGroupRead {
  readonly scheme: EcScheme
  /** Replica indexes (1..k+m) that failed a read, with why: not asked again in this group. */
  readonly failed = new Map<number, string>()
  /** Those of `failed` only because the client's reads failed to reach them lately, or they
   *  did not answer in CLIENT_EC_READ_ANSWER_MS: asked after all when too few others are left
   *  (they may be back, or only busy). */
  private readonly assumed = new Set<number>()
  /** Replicas that did not answer in CLIENT_EC_READ_ANSWER_MS once: asked again, they get the whole RPC timeout. */
  private readonly silent = new Set<number>()
  /** Why each replica that answered failed (one only assumed failed has no entry). */
  private readonly failedWith = new Map<number, ErrorCodeName>()

  /**
   * `failedNodes`: the client's datanodes that failed reads lately, and the replicas of this
   * block group that returned corrupt bytes; the group reads around up to m of them from the
   * start, and notes those it cannot reach or finds corrupt.
   */
  constructor(readonly location: KeyLocation, private readonly scm: RpcClient | undefined, private readonly slabs: StripeSlabs, private readonly transport?: Transport, private readonly failedNodes?: FailedNodes) {
    const r = parseReplication(location.pipeline.replication)
    if (r.ec === undefined) throw new O3Error('INVALID_ARGUMENT', `Cannot read block group ${this.name}: ${location.pipeline.replication} is not EC`)
    this.scheme = r.ec
    const n = r.ec.data + r.ec.parity
    if (location.pipeline.nodes.length !== n) throw new O3Error('INVALID_ARGUMENT', `Cannot read block group ${this.name}: its pipeline lists ${location.pipeline.nodes.length} datanodes, ${location.pipeline.replication} has ${n} replicas`)
    const known = location.pipeline.nodes.flatMap((_, i) => this.avoided(i + 1) ? [i + 1] : [])
    if (known.length > r.ec.parity) return
    for (const i of known) {
      this.failed.set(i, `${location.pipeline.nodes[i - 1]!.address}: a read failed to reach it, or found it corrupt, lately`)
      this.assumed.add(i)
    }
  }

  /** Whether the client's reads failed to reach replica `i`'s datanode lately, or found the replica corrupt. */
  private avoided(i: number): boolean {
    const { address } = this.location.pipeline.nodes[i - 1]!
    return this.failedNodes !== undefined && (this.failedNodes.has(address) || this.failedNodes.isCorrupt(corruptBlock(this.location.blockId), address))
  }

  get name(): string {
    return `${this.location.blockId.containerId}:${this.location.blockId.localId}`
  }

  /** Whether the replica holding `piece` failed before. */
  isLost(piece: CellPiece): boolean {
    const i = piece.replicaIndex
    // Only assumed failed, and the client has forgotten it since (its time ran out, or another
    // read reached it): ask it again. One silent in this group is asked only when too few are left.
    if (this.assumed.has(i) && !this.silent.has(i) && !this.avoided(i)) {
      this.assumed.delete(i)
      this.failed.delete(i)
    }
    return this.failed.has(i)
  }

  /**
   * Reads `piece` from its data replica into the lent buffer (when given). A replica that
   * fails is remembered (a corrupt one reported to the SCM) and the piece rebuilt from the
   * others, into the lent buffer still; the buffer is then the piece's, or given back.
   */
  async readPiece(piece: CellPiece, lent?: Lent): Promise<Uint8Array> {
    const into = lent === undefined ? undefined : { slab: lent.buffer, byteOffset: 0 }
    let data: Uint8Array | undefined
    if (!this.isLost(piece)) {
      const node = this.location.pipeline.nodes[piece.replicaIndex - 1]!
      try {
        const r = await readChunk(node, this.location.blockId, piece.replicaOffset, piece.length, into, this.location.token, this.transport, this.limits(piece.replicaIndex))
        const from = piece.replicaOffset - r.dataOffset
        data = r.data.subarray(from, from + piece.length)
        this.failedNodes?.forget(node.address)
      } catch (err) {
        this.fail(piece.replicaIndex, err)
      }
    }
    if (data !== undefined) {
      if (lent !== undefined) settleLent(lent.buffers, lent.buffer, data)
      return data
    }
    // The lent buffer holds the rebuilt piece, unless a short-circuit read given up in time
    // may still write into it: then the piece gets a buffer of its own, and the lent one goes
    // back once that write is over (late-writes.ts).
    const rebuildInto = lent !== undefined && lateWrites(lent.buffer) === undefined ? lent : undefined
    if (lent !== undefined && rebuildInto === undefined) lent.buffers.release(lent.buffer)
    try {
      const [rebuilt] = await this.readStripe([piece], rebuildInto === undefined ? [] : [rebuildInto.buffer])
      return rebuilt!
    } catch (err) {
      if (rebuildInto !== undefined) rebuildInto.buffers.release(rebuildInto.buffer)
      throw err
    }
  }

  /**
   * Reads `pieces` (of one data replica, consecutive stripes, contiguous in its block) with one
   * request into the lent buffer (when given): the pieces are views of one buffer, which the
   * pool then takes back with the last of their releases (share()). A replica that fails is
   * remembered and the pieces rebuilt from the others: those of whole stripes in one stripe
   * read, the short last stripe's on its own.
   */
  async readRun(pieces: CellPiece[], lent?: Lent): Promise<Uint8Array[]> {
    const first = pieces[0]!
    const length = pieces.reduce((n, p) => n + p.length, 0)
    assert(pieces.every((p, i) => p.replicaIndex === first.replicaIndex && (i === 0 || p.replicaOffset === pieces[i - 1]!.replicaOffset + pieces[i - 1]!.length)), 'a run is contiguous in one replica')
    if (pieces.length === 1) return [await this.readPiece(first, lent)]
    const into = lent === undefined ? undefined : { slab: lent.buffer, byteOffset: 0 }
    let data: Uint8Array | undefined
    if (!this.isLost(first)) {
      try {
        const r = await readChunk(this.location.pipeline.nodes[first.replicaIndex - 1]!, this.location.blockId, first.replicaOffset, length, into, this.location.token, this.transport, this.limits(first.replicaIndex))
        data = r.data.subarray(first.replicaOffset - r.dataOffset)
        this.failedNodes?.forget(this.location.pipeline.nodes[first.replicaIndex - 1]!.address)
      } catch (err) {
        this.fail(first.replicaIndex, err)
      }
    }
    if (lent !== undefined) {
      settleLent(lent.buffers, lent.buffer, data)
      if (data !== undefined && data.buffer === lent.buffer) lent.buffers.share(lent.buffer, pieces.length)
    }
    if (data !== undefined) {
      let at = 0
      return pieces.map((p) => data.subarray(at, at += p.length))
    }
    const out: Uint8Array[] = []
    for (const stripes of this.degradedSteps(pieces)) out.push(...await this.readStripe(stripes))
    return out
  }

  /** `pieces` (in stripe order) cut for readStripe: whole stripes in runs of at most
   *  degradedRunStripes, a short last stripe's on their own. */
  private degradedSteps(pieces: CellPiece[]): CellPiece[][] {
    const runStripes = this.runStripes
    const steps: CellPiece[][] = []
    for (const p of pieces) {
      const step = steps[steps.length - 1]
      if (step !== undefined && this.wholeThrough(p.stripe) && p.stripe < step[0]!.stripe + runStripes) step.push(p)
      else steps.push([p])
    }
    return steps
  }

  /** Whole stripes a degraded read of this group takes at once (degradedRunStripes). */
  get runStripes(): number {
    return this.slabs.runStripes(this.scheme)
  }

  /** Whether stripe `stripe` and every one before it are whole (the group's last one may be
   *  short): whole stripes in a row are read and rebuilt together. */
  wholeThrough(stripe: number): boolean {
    return (stripe + 1) * this.scheme.data * this.scheme.cellSizeBytes <= this.location.length
  }

  /**
   * The `pieces` (in key order) of one stripe, or of consecutive whole stripes, from k of the
   * stripes' cells, data cells first. Every replica holds stripe j's cell at j x cellSizeBytes
   * of its block, and the code works byte by byte across the cells: k replicas' same range
   * rebuilds the others' over it, however many stripes it crosses. So each source is read once
   * over the window the pieces span (one request where a stripe at a time took one per
   * stripe), each into its slot of one of the reader's slabs (verified there in the pool),
   * zero-padded as the parity was computed, and the cells not read are rebuilt with one
   * runEcReconstruct. Each piece is copied out of the slab (which is reused) into `outs[j]` (a
   * pooled buffer it then holds), else into buffers of `buffers` free at once, several pieces
   * to one (PieceBuffers), else a buffer of its own: never one it would wait for while holding
   * others. A source that fails is remembered and another taken; fewer than k: UNAVAILABLE
   * naming the group. A replica found corrupt failed for one checksum window, not the whole
   * group: when too few are left and some failed so, the stripes are read again one at a time
   * with those asked too (each stripe has its k intact cells where the corruption of several
   * replicas lies in different stripes).
   */
  async readStripe(pieces: CellPiece[], outs: SharedArrayBuffer[] = [], buffers?: BufferPool<SharedArrayBuffer>): Promise<Uint8Array[]> {
    if (!this.stripeByStripe) {
      try {
        return await this.readStripeOnce(pieces, outs, buffers, false)
      } catch (err) {
        if (!(err instanceof TooFewCells) || ![...this.failedWith.values()].includes('CHECKSUM_MISMATCH')) throw err
        log.debug(`block group ${this.name}: ${err.message}; reading its stripes one at a time, the replicas found corrupt asked too`)
        // The group's later reads go so at once (a run over its stripes would fail the same way first).
        this.stripeByStripe = true
      }
    }
    const out: Uint8Array[] = []
    try {
      for (let j = 0; j < pieces.length;) {
        let end = j + 1
        while (end < pieces.length && pieces[end]!.stripe === pieces[j]!.stripe) end++
        out.push(...await this.readStripeOnce(pieces.slice(j, end), outs.slice(j, end), buffers, true))
        j = end
      }
      return out
    } catch (err) {
      // The stripes read before the one that failed hold pooled buffers (PieceBuffers): back
      // to the pool, but for the caller's own `outs`, which it gives back itself.
      for (const piece of out) if (!outs.includes(piece.buffer as SharedArrayBuffer)) buffers?.releaseIfMine(piece.buffer)
      throw err
    }
  }

  /** A read of this group met too few cells for a run and found them stripe by stripe: its later reads go so at once. */
  private stripeByStripe = false

  /** readStripe's one attempt; `corruptAgain`: the replicas that failed with CHECKSUM_MISMATCH are asked too, after the others. */
  private async readStripeOnce(pieces: CellPiece[], outs: SharedArrayBuffer[], buffers: BufferPool<SharedArrayBuffer> | undefined, corruptAgain: boolean): Promise<Uint8Array[]> {
    assert(pieces.length > 0, 'a stripe read serves at least one piece')
    const s = this.scheme
    const k = s.data
    const n = s.data + s.parity
    const stripe = pieces[0]!.stripe
    const last = pieces[pieces.length - 1]!.stripe
    assert(pieces.every((p, i) => i === 0 || p.stripe >= pieces[i - 1]!.stripe), 'the pieces of a stripe read are in stripe order')
    assert(stripe === last || this.wholeThrough(last), 'a read of several stripes reads whole stripes')
    // Each cell's bytes from the first stripe's on: a stripe's own (the group's last may be
    // short), or all the whole stripes' cells in a row.
    const lengths = stripe === last ? stripeCellLengths(s, this.location.length, stripe) : new Array<number>(n).fill((last - stripe + 1) * s.cellSizeBytes)
    const cellStart = stripe * s.cellSizeBytes
    // The window of the cells the pieces span; every cell is read (or rebuilt) over it alone.
    const from = Math.min(...pieces.map((p) => p.replicaOffset - cellStart))
    const to = Math.max(...pieces.map((p) => p.replicaOffset - cellStart + p.length))
    assert(to <= lengths[0]!, 'a piece ends inside its stripes')
    const w = to - from
    const wanted = new Set(pieces.map((p) => p.replicaIndex - 1))
    const { slab, slotBytes, release } = this.slabs.acquire(s, last - stripe + 1)
    try {
      // Cell i's window at `shards[i]`: where its read landed in slot i, else slot i's start.
      const shards: SlabRange[] = Array.from({ length: n }, (_, i) => ({ slab, offset: i * slotBytes, length: w }))
      const read = new Set<number>()
      // A data cell with no bytes in the window is zeros, known without a read.
      const zeros = [...Array(k).keys()].filter((i) => lengths[i]! <= from)
      for (const i of zeros) new Uint8Array(slab, i * slotBytes, w).fill(0)
      const corrupt = (i: number) => corruptAgain && this.failedWith.get(i + 1) === 'CHECKSUM_MISMATCH'
      const readable = (i: number) => (i >= k || lengths[i]! > from) && (!this.failed.has(i + 1) || corrupt(i))
      const failedBefore = new Set([...this.failed.keys()].map((i) => i - 1))
      const candidates = [...Array(n).keys()].filter(readable).sort((a, b) => rank(a) - rank(b))
      function rank(i: number): number { return (failedBefore.has(i) ? 3 : 0) + (wanted.has(i) ? 0 : i < k ? 1 : 2) }
      const asked = new Set<number>()
      // Asked twice in this stripe: silent at first, then given the whole timeout.
      const again = new Set<number>()
      while (zeros.length + read.size < k) {
        let batch = candidates.splice(0, k - zeros.length - read.size)
        if (batch.length === 0) {
          // Too few without the replicas only assumed failed (this stripe's, or another's
          // that gave them up already): ask them after all, a silent one of this stripe too.
          for (const i of this.assumed) this.failed.delete(i)
          this.assumed.clear()
          batch = [...Array(n).keys()].filter((i) => readable(i) && (!asked.has(i) || (this.silent.has(i + 1) && !again.has(i)))).slice(0, k - zeros.length - read.size)
        }
        if (batch.length === 0) throw this.tooFew(stripe === last ? `stripe ${stripe}` : `stripes ${stripe}-${last}`, zeros.length + read.size, corruptAgain)
        for (const i of batch) {
          if (asked.has(i)) again.add(i)
          asked.add(i)
        }
        await Promise.all(batch.map(async (i) => {
          const length = Math.min(to, lengths[i]!) - from
          try {
            // Over HTTP: a cell not read in time is rebuilt into its slot (shortCircuit).
            const r = await readChunk(this.location.pipeline.nodes[i]!, this.location.blockId, cellStart + from, length, { slab, byteOffset: i * slotBytes }, this.location.token, this.transport, { ...this.limits(i + 1), shortCircuit: false })
            const data = r.data.subarray(cellStart + from - r.dataOffset)
            if (data.buffer === slab) shards[i]!.offset = data.byteOffset
            else copyBytes(new Uint8Array(slab, i * slotBytes, length), 0, data.subarray(0, length)) // did not fit the slot
            // The bytes past a short cell (its checksums, or an earlier stripe's) read as zeros.
            new Uint8Array(slab, shards[i]!.offset + length, w - length).fill(0)
            read.add(i)
            this.failedNodes?.forget(this.location.pipeline.nodes[i]!.address)
          } catch (err) {
            this.fail(i + 1, err)
          }
        }))
      }
      const missing = [...Array(n).keys()].filter((i) => !read.has(i) && !zeros.includes(i))
      if ([...wanted].some((i) => !read.has(i))) await runEcReconstruct({ codec: s.codec, k, m: s.parity, shards, missing })
      const out = new PieceBuffers(buffers)
      const copies = pieces.map((p, j) => {
        const cell = shards[p.replicaIndex - 1]!
        const piece = new Uint8Array(slab, cell.offset + p.replicaOffset - cellStart - from, p.length)
        const copy = outs[j] !== undefined ? new Uint8Array(outs[j], 0, p.length) : out.take(p.length)
        copyBytes(copy, 0, piece)
        return copy
      })
      out.seal()
      return copies
    } finally {
      release()
    }
  }

  private limits(replicaIndex: number): ReadLimits {
    return this.silent.has(replicaIndex) ? {} : EC_READ_LIMITS
  }

  /**
   * Remembers a replica that failed a read; reports a corrupt one to the SCM, as the
   * replicated reader does. One that did not answer in time is only assumed failed.
   */
  private fail(replicaIndex: number, err: unknown): void {
    const e = toO3Error(err)
    const node = this.location.pipeline.nodes[replicaIndex - 1]!
    if (!this.silent.has(replicaIndex) && noAnswerInTime(err)) {
      this.silent.add(replicaIndex)
      this.failed.set(replicaIndex, `${node.address}: no answer in ${CLIENT_EC_READ_ANSWER_MS} ms`)
      this.assumed.add(replicaIndex)
      this.failedNodes?.note(node.address)
      log.debug(`read of replica ${replicaIndex} of block group ${this.name} from ${node.address}: no answer in ${CLIENT_EC_READ_ANSWER_MS} ms; reading around it`)
      return
    }
    if (e.code === 'CHECKSUM_MISMATCH') {
      const what = corruptBlock(this.location.blockId)
      // Reported again when the client forgot it since (its report was dropped or failed).
      const forgotten = this.failedNodes !== undefined && !this.failedNodes.isCorrupt(what, node.address)
      noteCorrupt(this.scm, this.failedNodes, what, node, this.location, !this.failed.has(replicaIndex) || this.assumed.has(replicaIndex) || forgotten)
    }
    this.failed.set(replicaIndex, `${node.address}: ${e.message}`)
    this.failedWith.set(replicaIndex, e.code)
    this.assumed.delete(replicaIndex)
    this.failedNodes?.readFailed(node.address, e)
    log.debug(`read of replica ${replicaIndex} of block group ${this.name} from ${node.address} failed: ${e.message}; reading around it`)
  }

  /**
   * Too few cells: UNAVAILABLE (worth a retry) while a replica may only be out of reach; when
   * every failed one answered that its bytes are corrupt, a retry reads the same, and the error
   * says so (CHECKSUM_MISMATCH, as a replicated read's last failure). A block or container not
   * found may be a stale location (a rebuilt index moved), an expired token: worth a retry.
   * Not `final` (the corrupt replicas not asked again for the stripe yet): a TooFewCells, on
   * which readStripe reads the stripes one at a time.
   */
  private tooFew(stripes: string, available: number, final: boolean): O3Error {
    const why = [...this.failed].map(([i, reason]) => `replica ${i} (${reason})`).join('; ')
    const codes = [...this.failed.keys()].map((i) => this.failedWith.get(i))
    const corrupt = codes.length > 0 && codes.every((c) => c === 'CHECKSUM_MISMATCH')
    const message = `Cannot read block group ${this.name} (${this.location.pipeline.replication}) ${stripes}: ${available} of its cells can be read, ${this.scheme.data} are needed; failed: ${why}`
    return final ? new O3Error(corrupt ? 'CHECKSUM_MISMATCH' : 'UNAVAILABLE', message) : new TooFewCells(corrupt ? 'CHECKSUM_MISMATCH' : 'UNAVAILABLE', message)
  }
}

/** Too few cells in a first attempt: readStripe may read the stripes again one at a time. */
class TooFewCells extends O3Error {}

