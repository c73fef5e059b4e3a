/** @module
 * Reads a byte range of a key: block by block, a chunk's worth per request, a few requests
 * ahead, each verified against its checksums in the worker pool (so chunk k is verified while
 * k+1 arrives) and yielded once verified. A replica that fails or returns corrupt data is
 * skipped for the next one, and corruption is reported to the SCM.
 */
import { initChecksums } from '../../core/checksum.ts'
import { O3Error, toO3Error } from '../../core/errors.ts'
import { CHUNK_SIZE_BYTES_DEFAULT, CLIENT_HEDGED_READS_MAX, CLIENT_READ_AHEAD_CHUNKS, CLIENT_READ_HEDGE_MS } from '../../core/limits.ts'
import { assert } from '../../core/assert.ts'
import { log } from '../../core/log.ts'
import type { KeyInfo } from '../../core/om-wire.ts'
import type { RpcClient } from '../../core/rpc/client.ts'
import { isEcReplication, type DatanodeDetails, type KeyLocation } from '../../core/wire.ts'
import { lateWrites, type BufferPool } from '../workers/index.ts'
import { readChunk } from './datanode-io.ts'
import type { Transport } from '../../core/rpc/transport.ts'
import { readEcKeyRange } from './ec-key-reader.ts'
import type { StripeSlabPools } from './ec-read-group.ts'
import { corruptContainer, type FailedNodes } from './failed-nodes.ts'

export interface ReadRange {
  offset: number
  length: number
}

/** Clamps an optional range to the key; throws INVALID_ARGUMENT when it starts past the end. */
export function resolveRange(size: number, range?: { offset?: number; length?: number }): ReadRange {
  const offset = range?.offset ?? 0
  if (!Number.isSafeInteger(offset) || offset < 0 || offset > size || (offset === size && size > 0)) {
    throw new O3Error('INVALID_ARGUMENT', `Cannot read from offset ${offset} of a ${size}-byte key`)
  }
  const length = Math.min(size - offset, range?.length ?? size - offset)
  if (!Number.isSafeInteger(length) || length < 0) throw new O3Error('INVALID_ARGUMENT', `Cannot read ${range?.length} bytes`)
  return { offset, length }
}

export interface Piece { location: KeyLocation; blockOffset: number; length: number }

function* pieces(key: KeyInfo, range: ReadRange, requestBytes: number): Generator<Piece> {
  const end = range.offset + range.length
  for (const location of key.locations) {
    const from = Math.max(range.offset, location.offset)
    const to = Math.min(end, location.offset + location.length)
    for (let at = from; at < to; at += requestBytes) {
      yield { location, blockOffset: at - location.offset, length: Math.min(requestBytes, to - at) }
    }
  }
}

export interface KeyReaderOptions {
  scm?: RpcClient
  /** How the reader reaches datanodes (the client's: plain HTTP, or its TLS identity). */
  transport?: Transport
  requestBytes?: number
  /**
   * Receive chunks into these pooled buffers instead of fresh ones: every piece yielded is then
   * a view of one of them, which the consumer gives back (buffers.releaseIfMine(piece.buffer))
   * once it is done with the piece. Pieces read ahead and never yielded are given back here.
   */
  buffers?: BufferPool<SharedArrayBuffer>
  /** The slabs EC readers rebuild stripes in: the client's, else the reader's own. */
  stripeSlabs?: StripeSlabPools
  /** The client's datanodes that failed reads lately: asked last, or read around (EC). */
  failedNodes?: FailedNodes
  /** The client's hedged reads in flight, bounded (none: unbounded). */
  hedges?: HedgeBudget
}

/**
 * A client's hedged reads in flight, at most `max` (HDFS's hedged-read pool): on a cluster
 * slow everywhere, reads do not each double their load; one that finds none left gives its
 * silent replica up for the next one instead.
 */
export class HedgeBudget {
  private inflight = 0
  constructor(readonly max = CLIENT_HEDGED_READS_MAX) {}
  get used(): number { return this.inflight }
  tryTake(): boolean {
    if (this.inflight >= this.max) return false
    this.inflight++
    return true
  }
  give(): void {
    assert(this.inflight > 0, 'a hedge given back was taken')
    this.inflight--
  }
}

/**
 * Yields the bytes of the range in order: views of fresh buffers the caller may keep, or with
 * `buffers`, of pooled ones it gives back. A reader never waits on the pool: it reads ahead
 * only into free pooled buffers, and the piece its consumer asks for with none in flight gets
 * one at once, past the pool's count when all are out (BufferPool.take). A consumer that
 * stops asking (a client that stopped reading) thus holds its pieces and what was read ahead
 * into free buffers, takes nothing past the pool, and slows no other read; a waiting reader
 * stalled every GET of the gateway for the pool's 30 s once a few stalled clients held all
 * its buffers.
 */
export async function* readKeyRange(key: KeyInfo, range: ReadRange, options: KeyReaderOptions = {}): AsyncGenerator<Uint8Array> {
  await initChecksums()
  if (isEcReplication(key.replication) || key.locations.some((l) => isEcReplication(l.pipeline.replication))) return yield* readEcKeyRange(key, range, options)
  const requestBytes = options.requestBytes ?? CHUNK_SIZE_BYTES_DEFAULT
  const bad = new Set<string>()
  const queue: Promise<Uint8Array>[] = []
  const it = pieces(key, range, requestBytes)
  const { buffers } = options
  let done = false
  const start = () => {
    const next = it.next()
    if (next.done === true) { done = true; return }
    const p = readPiece(next.value, bad, options, buffers?.take())
    p.catch(() => {}) // handled when awaited in order
    queue.push(p)
  }
  /** Reads ahead, into free pooled buffers only. */
  const readAhead = () => {
    while (!done && queue.length < CLIENT_READ_AHEAD_CHUNKS && (buffers === undefined || buffers.available > 0)) start()
  }
  try {
    for (;;) {
      // The consumer asks for a piece: with none in flight, its read starts now (past the pool
      // if need be); a consumer that stops asking takes nothing past the pool.
      if (queue.length === 0 && !done) start()
      if (queue.length === 0) return
      readAhead()
      const data = await queue.shift()!
      readAhead()
      yield data
    }
  } finally {
    // Ended early (the consumer stopped, or a piece failed): the pieces read ahead go back.
    if (buffers !== undefined) for (const p of queue.splice(0)) p.then((d) => buffers.releaseIfMine(d.buffer), () => {})
  }
}

/** A range's pieces, in order; ending them early (return) gives back those read ahead. */
export interface Pieces extends AsyncIterableIterator<Uint8Array> {
  return(value?: unknown): Promise<IteratorResult<Uint8Array>>
}

/** A range whose first piece has been read (startKeyRange). */
export interface StartedRange {
  /** The first piece (none for an empty range): the caller's, given back to the pool once done with, if pooled. */
  readonly first: Uint8Array | undefined
  /** The pieces after it; returning early gives back those read ahead. */
  readonly rest: AsyncGenerator<Uint8Array>
}

/**
 * Starts reading the range and waits for its first piece: a range whose first piece no
 * replica can serve rejects here, before the caller has handed anything on (the S3
 * gateway's status line).
 */
export async function startKeyRange(key: KeyInfo, range: ReadRange, options: KeyReaderOptions = {}): Promise<StartedRange> {
  const rest = readKeyRange(key, range, options)
  const first = await rest.next()
  return { first: first.done === true ? undefined : first.value, rest }
}

/**
 * A started range's pieces, its first one included, as one iterator. Not a generator: one
 * returned before it starts (a response abandoned before its body was read) must still give
 * back the first piece, if pooled, and what was read ahead.
 */
export function allPieces(started: StartedRange, buffers?: BufferPool<SharedArrayBuffer>): Pieces {
  let held = started.first
  return {
    next: () => {
      if (held === undefined) return started.rest.next()
      const value = held
      held = undefined
      return Promise.resolve({ value, done: false })
    },
    return: async () => {
      if (held !== undefined) buffers?.releaseIfMine(held.buffer)
      held = undefined
      await started.rest.return(undefined)
      return { value: undefined, done: true }
    },
    [Symbol.asyncIterator]() { return this },
  }
}

/** One replica's read of a piece, in flight or settled. */
interface Attempt {
  readonly node: DatanodeDetails
  readonly abort: AbortController
  /** The attempt reads into the lent slab (at most one at a time does). */
  readonly intoSlab: boolean
  /** A hedge: it holds one of the client's HedgeBudget until it settles. */
  readonly hedged: boolean
  readonly startedMs: number
  /** Settles once the read is over (never rejects): its piece, or why it failed. */
  readonly outcome: Promise<{ attempt: Attempt; data?: Uint8Array; err?: O3Error }>
}

/**
 * Reads a piece of a replicated block into the pooled buffer `acquired` (when given) from the
 * first replica that answers: those that failed this read (`bad`) last, before them those the
 * client's reads could not reach lately, and before those the replicas that returned corrupt
 * bytes to its reads lately (all in `options.failedNodes`). A replica with no answer after
 * CLIENT_READ_HEDGE_MS gets company: the next one is asked too (into a buffer of its own), the
 * first answer wins and the other read is abandoned; with `options.hedges`' budget spent, the silent read is
 * abandoned for the next replica instead (HDFS runs such a hedge in the caller: no delay, and
 * here no second read either). A failed read moves on to the next replica at once.
 */
export async function readPiece(piece: Piece, bad: Set<string>, options: KeyReaderOptions, acquired?: SharedArrayBuffer): Promise<Uint8Array> {
  const { scm, buffers, transport, failedNodes, hedges } = options
  const { blockId } = piece.location
  const replica = corruptContainer(blockId.containerId)
  const rank = (address: string) => Number(bad.has(address)) * 4 + Number(failedNodes?.has(address) === true) * 2 + Number(failedNodes?.isCorrupt(replica, address) === true)
  const nodes = [...piece.location.pipeline.nodes].sort((a, b) => rank(a.address) - rank(b.address))
  if (nodes.length === 0) {
    if (acquired !== undefined) buffers!.release(acquired)
    throw new O3Error('UNAVAILABLE', `Cannot read block ${blockId.containerId}:${blockId.localId}: no replica`)
  }
  const attempts: Attempt[] = []
  // Attempts whose outcome has not been looked at: two may settle in one turn, and the one
  // that did not win the race is still to be read (its piece, or its failure recorded).
  const pending = new Set<Attempt>()
  const launch = (hedged: boolean): void => {
    const node = nodes[attempts.length]
    const abort = new AbortController()
    // One attempt at a time reads into the slab: until its outcome has been looked at, and
    // none after a short-circuit read given up in time, whose worker may still write there.
    const intoSlab = acquired !== undefined && lateWrites(acquired) === undefined && !attempts.some((a) => a.intoSlab && pending.has(a))
    const lent = intoSlab ? { slab: acquired, byteOffset: 0 } : undefined
    const attempt: Attempt = {
      node, abort, intoSlab, hedged, startedMs: Date.now(),
      outcome: readChunk(node, blockId, piece.blockOffset, piece.length, lent, piece.location.token, transport, { signal: abort.signal }).then(
        (r) => ({ attempt, data: r.data.subarray(piece.blockOffset - r.dataOffset, piece.blockOffset - r.dataOffset + piece.length) }),
        (err: unknown) => ({ attempt, err: toO3Error(err) }),
      ).finally(() => { if (hedged) hedges?.give() }),
    }
    attempts.push(attempt)
    pending.add(attempt)
  }
  let data: Uint8Array | undefined
  let last: O3Error | undefined
  // Attempts given up for the next replica when no hedge was left: their end is no failure to record.
  const switched = new Set<Attempt>()
  launch(false)
  while (data === undefined && pending.size > 0) {
    let timer: ReturnType<typeof setTimeout> | undefined
    const hedge = attempts.length < nodes.length ? new Promise<undefined>((resolve) => { timer = setTimeout(() => resolve(undefined), CLIENT_READ_HEDGE_MS) }) : undefined
    const first = await Promise.race([...[...pending].map((a) => a.outcome), ...(hedge === undefined ? [] : [hedge])])
    clearTimeout(timer)
    if (first === undefined) {
      const silent = `no answer from ${[...pending].map((a) => a.node.address).join(', ')} in ${CLIENT_READ_HEDGE_MS} ms`
      if (hedges !== undefined && !hedges.tryTake()) {
        // No hedge left: the next replica instead of the silent ones, so the load stays one read.
        log.debug(`read of block ${blockId.containerId}:${blockId.localId}: ${silent}; the client's ${hedges.max} hedged reads are all in flight, asking ${nodes[attempts.length].address} instead`)
        for (const a of pending) {
          a.abort.abort()
          switched.add(a)
          bad.add(a.node.address)
          failedNodes?.note(a.node.address)
        }
        launch(false)
        continue
      }
      log.debug(`read of block ${blockId.containerId}:${blockId.localId}: ${silent}, asking ${nodes[attempts.length].address} too`)
      launch(hedges !== undefined)
      continue
    }
    const { attempt, err } = first
    pending.delete(attempt)
    if (err === undefined) {
      data = first.data
      failedNodes?.forget(attempt.node.address)
      break
    }
    if (switched.has(attempt)) {
      last ??= new O3Error('TIMEOUT', `Cannot read block ${blockId.containerId}:${blockId.localId} from ${attempt.node.address}: no answer in ${CLIENT_READ_HEDGE_MS} ms`, { node: attempt.node.address })
      if (pending.size === 0 && attempts.length < nodes.length) launch(false)
      continue
    }
    last = err
    bad.add(attempt.node.address)
    failedNodes?.readFailed(attempt.node.address, err)
    if (err.code === 'CHECKSUM_MISMATCH') noteCorrupt(scm, failedNodes, replica, attempt.node, piece.location)
    log.debug(`read of block ${blockId.containerId}:${blockId.localId} from ${attempt.node.address} failed: ${err.message}`)
    if (pending.size === 0 && attempts.length < nodes.length) launch(false)
  }
  // The reads that lost are abandoned; the slab goes back only once the one reading into it is over.
  const losers = [...pending]
  const nowMs = Date.now()
  for (const a of losers) {
    a.abort.abort()
    // Slow to answer while another replica did: the rest of this read asks it last, and,
    // after a whole hedge time without an answer, the client's other reads too for a while.
    bad.add(a.node.address)
    if (nowMs - a.startedMs >= CLIENT_READ_HEDGE_MS) failedNodes?.note(a.node.address)
  }
  await Promise.all(losers.map((a) => a.outcome))
  if (acquired !== undefined) settleLent(buffers!, acquired, data)
  if (data !== undefined) return data
  throw last!
}

/** Gives a pooled buffer lent to a read back, unless `data` (the piece) is a view of it: it is
 *  not when every read failed, or the chunk did not fit and came in a buffer of its own. */
export function settleLent(buffers: BufferPool<SharedArrayBuffer>, lent: SharedArrayBuffer, data: Uint8Array | undefined): void {
  if (data?.buffer !== lent) buffers.release(lent)
}

/**
 * Remembers `node`'s replica of `what` (corruptContainer(), corruptBlock()) corrupt and, unless
 * `report` is false, reports it; a report the SCM did not take is forgotten, so that the next
 * read meets the replica and reports it again.
 */
export function noteCorrupt(scm: RpcClient | undefined, failedNodes: FailedNodes | undefined, what: string, node: DatanodeDetails, location: KeyLocation, report = true): void {
  failedNodes?.corrupt(what, node.address)
  if (report) void reportCorrupt(scm, node, location).then((taken) => { if (!taken) failedNodes?.forgetCorrupt(what, node.address) })
}

/**
 * Reports a replica that returned corrupt bytes to the SCM, which has its datanode check the
 * block. Whether the SCM took the report (checks it, or knows the replica corrupt already);
 * not when it dropped it (too many checks running) or could not be reached: the reader should
 * then meet the replica again and report again. True with no SCM to report to.
 */
export async function reportCorrupt(scm: RpcClient | undefined, node: DatanodeDetails, location: KeyLocation): Promise<boolean> {
  log.warn(`corrupt replica of block ${location.blockId.containerId}:${location.blockId.localId} on datanode ${node.id} (${node.address}); reading another`)
  if (scm === undefined) return true
  try {
    const r = await scm.call<{ dropped?: boolean }>('reportCorruptReplica', { containerId: location.blockId.containerId, localId: location.blockId.localId, datanodeId: node.id })
    return r.dropped !== true
  } catch (err) {
    log.warn(`cannot report corrupt replica to SCM: ${(err as Error).message}`)
    return false
  }
}
