/** @module
 * Reads a byte range of a key made of EC block groups, in key order, as readKeyRange does a
 * replicated key's (same pieces, same pooled-buffer rules). Healthy: the data-cell pieces of
 * the range straight from the data replicas, a bounded window ahead over several replicas at
 * once, no decoding; the cells of consecutive stripes on one replica in one request (up to
 * requestBytes), their pieces views of one pooled buffer. A stripe with a piece on a replica
 * that failed: its pieces, and the next whole stripes' up to requestBytes per cell, from k
 * cells (one request each) rebuilt in the worker pool, two such reads in flight
 * (ec-read-group.ts). Block locations that are not EC (a multipart key of mixed parts) are
 * read as readKeyRange reads them.
 */
import { cellPieces, type CellPiece } from '../../core/ec-layout.ts'
import { CLIENT_EC_DEGRADED_STRIPES_MAX, CLIENT_EC_READ_AHEAD_PIECES_MAX, CHUNK_SIZE_BYTES_DEFAULT, CLIENT_READ_AHEAD_CHUNKS } from '../../core/limits.ts'
import type { KeyInfo } from '../../core/om-wire.ts'
import { isEcReplication, type KeyLocation } from '../../core/wire.ts'
import { EcGroupRead, StripeSlabs } from './ec-read-group.ts'
import { readPiece, type KeyReaderOptions, type Piece, type ReadRange } from './key-reader.ts'

/** What one step of the reader serves: one piece, or the pieces of a stripe (or of whole stripes in a row) read around a lost cell. */
type Step =
  | { kind: 'replicated'; piece: Piece }
  | { kind: 'cell'; group: EcGroupRead; piece: CellPiece }
  | { kind: 'runs'; group: EcGroupRead; pieces: CellPiece[]; runs: CellPiece[][] }
  | { kind: 'stripe'; group: EcGroupRead; pieces: CellPiece[] }

/** The pieces of a step, in key order, each of at most `requestBytes`. */
interface Span {
  location: KeyLocation
  group?: EcGroupRead
  /** Replicated: block pieces; EC: data-cell pieces. */
  pieces: (Piece | CellPiece)[]
}

function* spans(key: KeyInfo, range: ReadRange, requestBytes: number, options: KeyReaderOptions): Generator<Span> {
  const { scm, transport } = options
  const end = range.offset + range.length
  const slabs = new StripeSlabs(key.checksumType, key.bytesPerChecksum, requestBytes, options.stripeSlabs)
  for (const location of key.locations) {
    const from = Math.max(range.offset, location.offset)
    const to = Math.min(end, location.offset + location.length)
    if (from >= to) continue
    if (!isEcReplication(location.pipeline.replication)) {
      const pieces: Piece[] = []
      for (let at = from; at < to; at += requestBytes) pieces.push({ location, blockOffset: at - location.offset, length: Math.min(requestBytes, to - at) })
      yield { location, pieces }
      continue
    }
    const group = new EcGroupRead(location, scm, slabs, transport, options.failedNodes)
    const pieces: CellPiece[] = []
    for (const p of cellPieces(group.scheme, location.length, from - location.offset, to - from)) {
      for (let d = 0; d < p.length; d += requestBytes) {
        pieces.push({ ...p, replicaOffset: p.replicaOffset + d, groupOffset: p.groupOffset + d, length: Math.min(requestBytes, p.length - d) })
      }
    }
    yield { location, group, pieces }
  }
}

/**
 * The steps of a range, made one at a time as the reader asks (peek, then take), so that each
 * sees the replicas that failed so far: a stripe's remaining pieces, with the next whole
 * stripes', are one 'stripe' step as soon as one of them is on a lost replica; else the
 * pieces of the next stripes are one 'runs' step when a data replica holds several of them
 * in a row, or each piece a 'cell' step.
 */
class Planner {
  private span: Span | undefined
  private at = 0
  private next: Step | undefined

  constructor(private readonly it: Generator<Span>, private readonly requestBytes: number) {}

  peek(): Step | undefined {
    if (this.next !== undefined) return this.next
    while (this.span === undefined || this.at >= this.span.pieces.length) {
      const n = this.it.next()
      if (n.done === true) return undefined
      this.span = n.value
      this.at = 0
    }
    const { group, pieces } = this.span
    if (group === undefined) return (this.next = { kind: 'replicated', piece: pieces[this.at] as Piece })
    const rest = pieces as CellPiece[]
    const stripe = rest[this.at]!.stripe
    let end = this.at
    while (end < rest.length && rest[end]!.stripe === stripe) end++
    if (rest.slice(this.at, end).some((p) => group.isLost(p))) return (this.next = { kind: 'stripe', group, pieces: this.degraded(group, rest, end) })
    return (this.next = this.runs(group, rest) ?? { kind: 'cell', group, piece: rest[this.at]! })
  }

  /**
   * The pieces of a stripe read around a lost replica (those of rest[this.at..end)), and of
   * the whole stripes after it, up to the group's runStripes in all.
   */
  private degraded(group: EcGroupRead, rest: CellPiece[], end: number): CellPiece[] {
    const first = rest[this.at]!.stripe
    const stripes = group.runStripes
    while (end < rest.length && rest[end]!.stripe < first + stripes && group.wholeThrough(rest[end]!.stripe)) {
      const stripe = rest[end]!.stripe
      while (end < rest.length && rest[end]!.stripe === stripe) end++
    }
    return rest.slice(this.at, end)
  }

  /**
   * The pieces of the next stripes that fit one request per data replica (cells of consecutive
   * stripes are contiguous in a replica's block), when no replica of theirs failed and some
   * replica has two or more: one request each instead of one per cell.
   */
  private runs(group: EcGroupRead, rest: CellPiece[]): Step | undefined {
    const stripes = Math.floor(this.requestBytes / group.scheme.cellSizeBytes)
    if (stripes < 2) return undefined
    const first = rest[this.at]!.stripe
    let end = this.at
    while (end < rest.length && rest[end]!.stripe < first + stripes) end++
    const pieces = rest.slice(this.at, end)
    const byReplica = new Map<number, CellPiece[]>()
    for (const p of pieces) {
      if (group.isLost(p)) return undefined
      const run = byReplica.get(p.replicaIndex)
      const last = run?.[run.length - 1]
      if (last !== undefined && last.replicaOffset + last.length !== p.replicaOffset) return undefined
      if (run === undefined) byReplica.set(p.replicaIndex, [p])
      else run.push(p)
    }
    const runs = [...byReplica.values()]
    if (runs.length === pieces.length) return undefined
    return { kind: 'runs', group, pieces, runs }
  }

  take(): Step {
    const step = this.peek()!
    this.at += step.kind === 'stripe' || step.kind === 'runs' ? step.pieces.length : 1
    this.next = undefined
    return step
  }

  /** Forgets a peeked step, to plan it again with what has failed since. */
  replan(): void {
    this.next = undefined
  }
}

interface Running {
  step: Step
  pieces: Promise<Uint8Array[]>
}

/**
 * Yields the bytes of the range in order, as readKeyRange (which calls this for EC keys):
 * views of fresh buffers, or with `buffers` of pooled ones the consumer gives back. As
 * readKeyRange, never waits on the pool: it reads ahead only while pooled buffers are free
 * (a stripe read's pieces take free ones or fresh memory), and the step its consumer asks for
 * with none in flight takes its buffers at once (BufferPool.take), up to k past the pool.
 */
export async function* readEcKeyRange(key: KeyInfo, range: ReadRange, options: KeyReaderOptions = {}): AsyncGenerator<Uint8Array> {
  const requestBytes = options.requestBytes ?? CHUNK_SIZE_BYTES_DEFAULT
  const { buffers } = options
  const planner = new Planner(spans(key, range, requestBytes, options), requestBytes)
  const bad = new Set<string>()
  const queue: Running[] = []
  const nextBuffer = (): SharedArrayBuffer | undefined => buffers?.take()
  /** Starts steps: with `asked` and none in flight, one at least (past the pool if need be);
   *  then read-ahead into free pooled buffers only: a window of pieces (each holding a pooled
   *  buffer), and CLIENT_EC_DEGRADED_STRIPES_MAX stripe reads (each its own buffers and slab). */
  const fill = (asked: boolean) => {
    for (;;) {
      const step = planner.peek()
      if (step === undefined) return
      if (queue.length > 0) {
        if (step.kind === 'stripe' && queue.filter((r) => r.step.kind === 'stripe').length >= CLIENT_EC_DEGRADED_STRIPES_MAX) return
        const windowMax = step.kind === 'cell' || step.kind === 'runs' ? Math.max(CLIENT_READ_AHEAD_CHUNKS, Math.min(2 * step.group.scheme.data, CLIENT_EC_READ_AHEAD_PIECES_MAX)) : CLIENT_READ_AHEAD_CHUNKS
        if (step.kind !== 'stripe' && queue.reduce((n, r) => n + held(r.step), 0) + held(step) > windowMax) return
      }
      if ((queue.length > 0 || !asked) && buffers !== undefined && buffers.available < Math.max(1, held(step))) return
      planner.take()
      const pieces = start(step, bad, options, nextBuffer)
      pieces.catch(() => {}) // handled when awaited in order
      queue.push({ step, pieces })
    }
  }
  let current: Uint8Array[] = []
  try {
    for (;;) {
      // The consumer asks for more: a step starts now if none is in flight; one that stops
      // asking takes nothing past the pool.
      fill(true)
      if (queue.length === 0) return
      current = await queue.shift()!.pieces
      // What failed meanwhile changes how the rest of a stripe is read.
      planner.replan()
      fill(false)
      while (current.length > 0) yield current.shift()!
    }
  } finally {
    // Ended early (the consumer stopped, or a piece failed): the pieces read ahead go back.
    if (buffers !== undefined) {
      for (const piece of current) buffers.releaseIfMine(piece.buffer)
      for (const r of queue.splice(0)) r.pieces.then((ps) => { for (const p of ps) buffers.releaseIfMine(p.buffer) }, () => {})
    }
  }
}

/** The pooled buffers a step reads into (a stripe's are its own, taken only when free). */
function held(step: Step): number {
  return step.kind === 'stripe' ? 0 : step.kind === 'runs' ? step.runs.length : 1
}

function start(step: Step, bad: Set<string>, options: KeyReaderOptions, nextBuffer: () => SharedArrayBuffer | undefined): Promise<Uint8Array[]> {
  const { buffers } = options
  /** A pooled buffer lent to one read, when the reader pools them. */
  const lend = () => {
    const buffer = nextBuffer()
    return buffer === undefined ? undefined : { buffers: buffers!, buffer }
  }
  switch (step.kind) {
    case 'replicated':
      return readPiece(step.piece, bad, options, nextBuffer()).then((p) => [p])
    case 'cell':
      return step.group.readPiece(step.piece, lend()).then((p) => [p])
    case 'runs': {
      const { group, runs } = step
      const reads = runs.map((run) => group.readRun(run, lend()))
      return (async () => {
        const settled = await Promise.allSettled(reads)
        const failed = settled.find((r) => r.status === 'rejected')
        if (failed !== undefined) {
          // The runs read stay with no one: give them back before failing.
          for (const r of settled) if (r.status === 'fulfilled' && buffers !== undefined) for (const p of r.value) buffers.releaseIfMine(p.buffer)
          throw failed.reason
        }
        // Back to key order: the pieces of each run are in it already.
        const next = new Map(runs.map((run, i) => [run, (settled[i] as PromiseFulfilledResult<Uint8Array[]>).value]))
        const at = new Map(runs.map((run) => [run[0]!.replicaIndex, run]))
        return step.pieces.map((p) => next.get(at.get(p.replicaIndex)!)!.shift()!)
      })()
    }
    case 'stripe':
      // Pooled buffers only when free at once: a stripe waiting for a pooled buffer per piece
      // while holding some could wait for good beside other readers doing the same.
      return step.group.readStripe(step.pieces, [], buffers)
  }
}
