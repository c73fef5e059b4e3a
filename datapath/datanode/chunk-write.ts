/** @module
 * A chunk's "state machine data" stage (Ozone's ContainerStateMachine.writeStateMachineData):
 * its bytes from the request body into a slab (the one copy on this node), on to the followers
 * as they land (cut-through), and into the local block file while the rest arrives, in runs of
 * whole checksum windows that a pool task verifies and then writes at their offset. It
 * commits nothing (the caller records the chunk and putBlock commits it), so the HTTP route
 * and a Raft pipeline's state machine can both call writeChunkData as it is.
 */
import { assert } from '../../core/assert.ts'
import { checksumsLengthBytes, checksumSizeBytes, initChecksums, verifyChecksums } from '../../core/checksum.ts'
import { O3Error } from '../../core/errors.ts'
import type { RequestBody } from '../../core/http/body.ts'
import { DATANODE_SLAB_WAIT_MS_MAX, SMALL_BLOCK_BYTES_MAX } from '../../core/limits.ts'
import type { ChecksumType } from '../../core/wire.ts'
import { runWriteChunk, type SizedSlabPools } from '../workers/index.ts'
import type { BlockFiles, HeldFile } from './block-files.ts'
import { PieceFeed, readBodyInto } from './body.ts'
import { allSettledOrThrow, forwardChunk } from './followers.ts'
import type { Transport } from '../../core/rpc/transport.ts'
import { nextWriteRun, writeRunBytesMin } from './write-runs.ts'

/**
 * Arguments of writeChunk, sent as JSON in the x-o3-args header. The body is checksums || data:
 * the checksums come first so that each window can be verified, and written, as it arrives.
 */
export interface WriteChunkArgs {
  containerId: number
  localId: number
  offset: number
  length: number
  checksumType: ChecksumType
  bytesPerChecksum: number
  replication: string
  pipelineId: string
  /** Followers the pipeline leader forwards the bytes to (staged there); empty elsewhere. */
  forward: string[]
  /** Bytes only, forwarded by the pipeline leader: the entry naming them comes through the log. */
  stage?: boolean
  /** The chunk is the whole block (offset 0, nothing follows): may be packed. */
  whole?: boolean
  /** Commit the block (putBlock) with this chunk as its end, saving a round trip. */
  commit?: boolean
  /** EC only (`replication` EC/...): the replica index 1..k+m of the container here. The write is standalone: no group, no forward. */
  replicaIndex?: number
  /** EC only, with `commit`: the key bytes of the block group, kept with the block. */
  blockGroupLength?: number
}

export interface ChunkDataWrite {
  args: WriteChunkArgs
  /** The request body (checksums || data), read once. */
  body: RequestBody | null
  /** The block file the chunk goes to. */
  path: string
  /** A small whole block kept in LMDB: verified here and returned, not written to a file. */
  packed: boolean
  /**
   * The chunk rewrites bytes a putBlock committed: the whole chunk is verified before any of
   * it is written, so that a chunk that turns out bad cannot spoil them.
   */
  overwrites: boolean
  slabs: SizedSlabPools
  blockFiles: BlockFiles
  bodyIdleTimeoutMs: number
  /**
   * Forwards that must succeed (default all): past them, the write resolves without waiting
   * for the rest, which go on in the background (a follower whose copy fails or lags fetches
   * the bytes before it acknowledges the chunk's entry).
   */
  forwardsNeeded?: number
  /** How forwards reach the followers (the datanode's identity when security is on). */
  transport?: Transport
}

export interface ChunkData {
  /** The chunk's checksums (a copy: the slab goes back). */
  checksums: Uint8Array
  /** A packed chunk's bytes (a copy), to commit into LMDB. */
  packed?: Uint8Array
}

/** Node's file descriptors are the process's, so a worker can write to one the main thread opened. */
const FDS_SHARED_WITH_WORKERS = !('Deno' in globalThis)

/**
 * Receives one chunk, writes it to the block file (unless packed) and to the followers in
 * `args.forward`, and resolves once it and `forwardsNeeded` of them hold it. Rejects with the first failure
 * (CHECKSUM_MISMATCH, a follower's error, a cut or stalled body) once nothing it started is
 * running: windows before a bad one may be in the file then, past what any putBlock committed
 * (unless `overwrites`), where a retry writes over them.
 */
export async function writeChunkData(w: ChunkDataWrite): Promise<ChunkData> {
  const { args } = w
  const csLength = checksumsLengthBytes(args.checksumType, args.length, args.bytesPerChecksum)
  const total = csLength + args.length
  const slab = await w.slabs.acquire(total, DATANODE_SLAB_WAIT_MS_MAX)
  // The forwards read views of the slab: it goes back only once every one has settled.
  let forwarded: Promise<void>[] = []
  try {
    const bytes = new Uint8Array(slab, 0, total)
    // Cut-through to the followers: each range of the body goes on as it lands in the slab,
    // not after the whole chunk. A body that fails here fails the forwards mid-body, so no
    // follower holds a chunk the leader did not get whole.
    const feeds = args.forward.map(() => new PieceFeed())
    forwarded = args.forward.map((address, i) => forwardChunk(address, { ...args, forward: [], stage: true }, feeds[i]!, total, w.transport))
    for (const f of forwarded) f.catch(() => {})
    const local = w.packed ? undefined : new LocalRuns(w, slab, csLength)
    try {
      await readBodyInto(w.body, bytes, total, w.bodyIdleTimeoutMs, (from, to) => {
        for (const f of feeds) f.push(bytes.subarray(from, to))
        local?.arrived(to - csLength)
      })
    } catch (err) {
      for (const f of feeds) f.fail(err instanceof Error ? err : new Error(String(err)))
      await local?.abandon()
      throw err
    }
    for (const f of feeds) f.end()
    const checksums = bytes.subarray(0, csLength)
    const data = bytes.subarray(csLength, total)
    // A packed block needs no disk write and is at most smallBlockBytes: hashing it here
    // costs microseconds, less than the round trip to a worker.
    await (local?.complete() ?? verifyHere(args, data, checksums))
    await forwardQuorum(forwarded, w.forwardsNeeded ?? forwarded.length)
    return { checksums: checksums.slice(), packed: w.packed ? data.slice() : undefined }
  } finally {
    void Promise.allSettled(forwarded).then(() => w.slabs.release(slab))
  }
}

/** Resolves once `needed` forwards succeeded (or all did); rejects with a failure once too few can. */
async function forwardQuorum(forwarded: Promise<void>[], needed: number): Promise<void> {
  if (needed <= 0) return
  if (needed >= forwarded.length) return allSettledOrThrow(forwarded)
  await new Promise<void>((resolve, reject) => {
    let ok = 0, failed = 0
    for (const f of forwarded) {
      f.then(() => { if (++ok === needed) resolve() }, (err) => { if (++failed > forwarded.length - needed) reject(err) })
    }
  })
}

/**
 * The local file write of one chunk, run by run as its data lands in the slab: one run in
 * flight at a time (a slow disk makes the next run longer, not the queue deeper), none after
 * a failure. The block file is held open (Node) for the whole chunk.
 */
class LocalRuns {
  private readonly runBytesMin: number
  private doneBytes = 0
  private arrivedBytes = 0
  private started = false
  private complete_ = false
  private stopped = false
  private running: Promise<void> | undefined
  private failure: unknown
  private readonly file: Promise<HeldFile> | undefined
  private readonly finished: Promise<void>
  private settle!: () => void

  constructor(private readonly w: ChunkDataWrite, private readonly slab: SharedArrayBuffer, private readonly csLength: number) {
    this.runBytesMin = w.overwrites ? Infinity : writeRunBytesMin(w.args.length)
    this.finished = new Promise<void>((resolve) => { this.settle = resolve })
    // Deno's descriptors belong to the isolate that opened them: there each run's task opens the file.
    this.file = FDS_SHARED_WITH_WORKERS ? w.blockFiles.hold(w.path, w.args.containerId) : undefined
    this.file?.catch((err) => { this.failure ??= err })
  }

  /** The chunk's data has arrived up to `dataBytes`. */
  arrived(dataBytes: number): void {
    if (dataBytes <= this.arrivedBytes) return
    this.arrivedBytes = dataBytes
    this.pump()
  }

  /** The whole chunk has arrived: resolves when every run is written, rejects with the first failure. */
  async complete(): Promise<void> {
    assert(this.arrivedBytes === this.w.args.length, 'chunk completed before it arrived')
    this.complete_ = true
    this.pump()
    await this.finished
    await this.release()
    if (this.failure !== undefined) throw this.failure
  }

  /** The body failed: no more runs; resolves once the one running has settled. */
  async abandon(): Promise<void> {
    this.stopped = true
    await this.running?.catch(() => {})
    await this.release()
  }

  private async release(): Promise<void> {
    try { (await this.file)?.release() } catch { /* never opened: nothing to release */ }
  }

  private pump(): void {
    if (this.running !== undefined || this.stopped) return
    if (this.failure !== undefined) { if (this.complete_) this.settle(); return }
    const { args } = this.w
    let run = nextWriteRun({ doneBytes: this.doneBytes, arrivedBytes: this.arrivedBytes, lengthBytes: args.length, windowBytes: args.bytesPerChecksum, runBytesMin: this.runBytesMin })
    // An empty chunk still makes its block file, as a write of it always did.
    if (run === undefined && this.complete_ && !this.started) run = { from: 0, to: 0 }
    if (run === undefined) { if (this.complete_) this.settle(); return }
    this.started = true
    this.doneBytes = run.to
    this.running = this.write(run.from, run.to).then(
      () => { this.running = undefined; this.pump() },
      (err) => { this.running = undefined; this.failure ??= err; this.pump() },
    )
  }

  /** Verifies and writes data bytes [from, to) of the chunk: their windows' checksums sit at the front of the slab. */
  private async write(from: number, to: number): Promise<void> {
    const { args } = this.w
    const size = checksumSizeBytes(args.checksumType)
    const csFrom = (from / args.bytesPerChecksum) * size
    const csTo = Math.ceil(to / args.bytesPerChecksum) * size
    assert(csTo <= this.csLength, 'run past the checksums')
    const fd = this.file === undefined ? undefined : (await this.file).fd
    await runWriteChunk({
      path: this.w.path, fd, fileOffset: args.offset + from, type: args.checksumType, bytesPerChecksum: args.bytesPerChecksum,
      data: { slab: this.slab, offset: this.csLength + from, length: to - from },
      checksums: { slab: this.slab, offset: csFrom, length: csTo - csFrom },
    })
  }
}

async function verifyHere(args: WriteChunkArgs, data: Uint8Array, checksums: Uint8Array): Promise<void> {
  assert(data.length <= SMALL_BLOCK_BYTES_MAX, 'inline verify of a large chunk')
  await initChecksums()
  const bad = verifyChecksums(args.checksumType, data, args.bytesPerChecksum, checksums)
  if (bad >= 0) throw new O3Error('CHECKSUM_MISMATCH', `Cannot write chunk at ${args.offset}: the checksum of the window at block offset ${args.offset + bad * args.bytesPerChecksum} does not match the data`)
}
