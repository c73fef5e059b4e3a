/** @module
 * The client's calls to datanodes: writeChunk (body = checksums || data) and putBlock, sent to
 * the pipeline's Raft leader and following it when it moves (pipeline-leader.ts), or to each
 * node of an EC pipeline itself (writeChunkTo, putBlockTo);
 * watchForCommit; and readChunk with checksum verification (in the worker pool, the body
 * moved there and back, or read in place in a shared slab; tiny chunks inline). A datanode
 * serving in this process is read and written without HTTP (local-datanodes.ts).
 * With security on, every call carries the block's token from the OM (x-o3-block-token on
 * /chunk/*, `token` on putBlock), which the datanode checks (datapath/datanode/block-tokens.ts).
 * Borrows every buffer it is given; copies none but the one from the socket.
 */
import { Readable } from 'node:stream'
import { request } from 'undici'
import { checksumSizeBytes, verifyChecksums } from '../../core/checksum.ts'
import { O3Error, toO3Error } from '../../core/errors.ts'
import { PIPELINE_WATCH_ANSWER_SLACK_MS, RPC_TIMEOUT_MS_DEFAULT, VERIFY_INLINE_BYTES_MAX } from '../../core/limits.ts'
import { readError, RpcClient, transportError } from '../../core/rpc/client.ts'
import { PLAIN_TRANSPORT, urlOf, type Transport } from '../../core/rpc/transport.ts'
import type { BlockId, ChecksumType, DatanodeDetails, DatanodeId, Pipeline } from '../../core/wire.ts'
import { noteLateWrite, runVerifyChunk, runVerifySlab } from '../workers/index.ts'
import { abandonable } from '../../core/rpc/local-services.ts'
import { localBody, localDatanode, type LocalChunkAnswer } from './local-datanodes.ts'
import { nextTry, startSearch, type LeaderCache } from './pipeline-leader.ts'
import { copyBytes } from '../../core/copy-bytes.ts'

export interface ChunkWrite {
  blockId: BlockId
  pipeline: Pipeline
  /** The client's pipeline leaders: where the write goes first, and what it learns. */
  leaders: LeaderCache
  offset: number
  data: Uint8Array
  checksums: Uint8Array
  checksumType: ChecksumType
  bytesPerChecksum: number
  /** The checksums and data sit back to back in one buffer (checksums first): send it as one view. */
  joined?: Uint8Array
  whole?: boolean
  commit?: boolean
  /** The block's token from the OM (security on). */
  token?: string
  /** How the client reaches datanodes: plain HTTP (default) or its TLS identity. */
  transport?: Transport
}

/**
 * What a pipeline's leader answered a write with: the Raft log index of its entry and whether
 * every member already holds the log through it. A datanode before Raft pipelines answers
 * neither: nothing to watch.
 */
export interface WriteAck {
  index?: number
  allCommitted?: boolean
}

/** Errors from a datanode carry the address that failed, so that the writer can exclude it. */
function failedAt(address: string, err: unknown): O3Error {
  const e = transportError(address, err)
  return e.node !== undefined ? e : new O3Error(e.code, e.message, { node: address, leader: e.leader, cause: e })
}

/** The index and allCommitted of an answer, checked at the wire edge. */
function ackOf(answer: unknown, what: string): WriteAck {
  const a = (answer ?? {}) as { index?: unknown; allCommitted?: unknown }
  const ack: WriteAck = {}
  if (a.index !== undefined && a.index !== null) {
    if (typeof a.index !== 'number' || !Number.isSafeInteger(a.index) || a.index < 0) throw new O3Error('INTERNAL_ERROR', `Cannot read the answer to ${what}: index ${JSON.stringify(a.index)} is not a non-negative safe integer`)
    ack.index = a.index
  }
  if (a.allCommitted === true) ack.allCommitted = true
  return ack
}

function sleep(ms: number): Promise<void> {
  return ms <= 0 ? Promise.resolve() : new Promise((r) => setTimeout(r, ms))
}

/**
 * Runs `send` at the pipeline's leader: the cached one (or the pipeline's leaderId, else
 * nodes[0]); on NOT_LEADER at the leader it names, on a refused connection or a timeout at
 * the next member, until PIPELINE_LEADER_WAIT_MS_MAX (`waitMsMax`); the address that answers
 * is cached. `send` must be safe to run again: it is, for the same bytes at the same offset.
 *
 * A pipeline without leaderId comes from an SCM before Raft pipelines, whose datanodes need
 * the leader (nodes[0]) to forward to the others: it is sent there once, with the others as
 * `forward`, as before.
 */
async function atLeader<T>(pipeline: Pipeline, leaders: LeaderCache, send: (address: string, forward: string[]) => Promise<T>, waitMsMax?: number): Promise<T> {
  if (pipeline.leaderId === undefined) {
    const [leader, ...followers] = pipeline.nodes
    try {
      return await send(leader!.address, followers.map((f) => f.address))
    } catch (err) {
      throw failedAt(leader!.address, err)
    }
  }
  const search = startSearch(pipeline, leaders.leaderOf(pipeline), Date.now(), waitMsMax)
  for (;;) {
    const address = search.current
    try {
      const result = await send(address, [])
      leaders.learned(pipeline, address)
      return result
    } catch (err) {
      const e = failedAt(address, err)
      const next = nextTry(search, e, Date.now(), leaders.cached(pipeline.id))
      // Given up: the pipeline failed as a whole, which names no one member to exclude.
      if ('error' in next) throw next.error
      if (e.code === 'NOT_LEADER' && e.leader !== undefined && e.leader.length > 0) leaders.learned(pipeline, e.leader)
      await sleep(next.delayMs)
    }
  }
}

/** Writes one chunk at the pipeline's leader (resent there as it moves, from the same buffers). */
export async function writeChunk(w: ChunkWrite): Promise<WriteAck> {
  return atLeader(w.pipeline, w.leaders, (address, forward) => sendChunk(address, w, { forward }))
}

/**
 * Writes one chunk of an EC replica to the node that holds it (replica index `replicaIndex`
 * of the pipeline, its nodes[replicaIndex - 1]): standalone, no leader, no forward. A failure
 * names the node.
 */
export async function writeChunkTo(node: DatanodeDetails, w: Omit<ChunkWrite, 'leaders'> & { replicaIndex: number }): Promise<WriteAck> {
  try {
    return await sendChunk(node.address, w, { forward: [], replicaIndex: w.replicaIndex })
  } catch (err) {
    throw failedAt(node.address, err)
  }
}

/** One /chunk/write call to `address`, the body sent from the writer's buffers; to a datanode in this process, its short-circuit write. */
async function sendChunk(address: string, w: Omit<ChunkWrite, 'leaders'>, to: { forward: string[]; replicaIndex?: number }): Promise<WriteAck> {
  const length = w.data.length + w.checksums.length
  const args = {
    containerId: w.blockId.containerId, localId: w.blockId.localId, offset: w.offset, length: w.data.length,
    checksumType: w.checksumType, bytesPerChecksum: w.bytesPerChecksum, replication: w.pipeline.replication, pipelineId: w.pipeline.id,
    forward: to.forward, whole: w.whole === true, commit: w.commit === true, ...(to.replicaIndex !== undefined ? { replicaIndex: to.replicaIndex } : {}),
  }
  const argsJson = JSON.stringify(args)
  const t = w.transport ?? PLAIN_TRANSPORT
  // Never a call that carries a block token or goes over TLS: those are checked on HTTPS.
  const datanode = w.token === undefined && t.scheme === 'http' ? localDatanode(address) : undefined
  if (datanode !== undefined) {
    // Short-circuit (local-datanodes.ts): the datanode copies the pieces into its slab as
    // from a socket; given up, the body is cut, so nothing reads the buffers after.
    const body = localBody(w.joined !== undefined ? [w.joined] : w.checksums.length === 0 ? [w.data] : [w.checksums, w.data])
    const answer = await abandonable(datanode.writeChunkFrom({ args: argsJson, lengthBytes: length, body }), {}, () => body.cut())
    if (answer !== undefined) return ackOf(answer, `writeChunk on ${address}`)
  }
  const res = await request(urlOf(t, address, '/chunk/write'), {
    method: 'POST', dispatcher: t.dispatcher('datanode'),
    headers: { 'x-o3-args': argsJson, 'content-type': 'application/octet-stream', 'content-length': String(length), ...tokenHeader(w.token) },
    // Checksums first: the datanode verifies and writes each window as it arrives. A stream
    // is made anew for each try; it reads the same buffers, which the writer keeps until
    // this write settles.
    body: w.joined ?? (w.checksums.length === 0 ? w.data : Readable.from([w.checksums, w.data], { objectMode: false })),
    headersTimeout: RPC_TIMEOUT_MS_DEFAULT, bodyTimeout: RPC_TIMEOUT_MS_DEFAULT,
  })
  if (res.statusCode !== 200) throw await readError(res, `writeChunk on ${address}`)
  const body = (await res.body.json()) as { result?: unknown }
  return ackOf(body.result, `writeChunk on ${address}`)
}

/** The header a block token goes in on /chunk/write and /chunk/read; none without one. */
function tokenHeader(token: string | undefined): Record<string, string> {
  return token === undefined ? {} : { 'x-o3-block-token': token }
}

/** Commits a block up to `length` at the pipeline's leader. */
export async function putBlock(blockId: BlockId, pipeline: Pipeline, length: number, leaders: LeaderCache, token?: string, transport: Transport = PLAIN_TRANSPORT): Promise<WriteAck> {
  return atLeader(pipeline, leaders, async (address, forward) => {
    const answer = await new RpcClient('Datanode', address, { transport }).call('putBlock', { containerId: blockId.containerId, localId: blockId.localId, length, forward, ...(token !== undefined ? { token } : {}) })
    return ackOf(answer, `putBlock on ${address}`)
  })
}

/**
 * Commits an EC replica's block up to `length` on its node (Ozone's per-stripe putBlock of
 * ECBlockOutputStream), with the group's key bytes so far (`blockGroupLength`); the
 * replication and pipeline let a node that got no chunk of the block make its replica.
 */
export async function putBlockTo(node: DatanodeDetails, b: { blockId: BlockId; pipeline: Pipeline; replicaIndex: number; length: number; blockGroupLength: number; token?: string; transport?: Transport }): Promise<void> {
  try {
    await new RpcClient('Datanode', node.address, { transport: b.transport ?? PLAIN_TRANSPORT }).call('putBlock', {
      containerId: b.blockId.containerId, localId: b.blockId.localId, length: b.length, forward: [], ...(b.token !== undefined ? { token: b.token } : {}),
      replication: b.pipeline.replication, pipelineId: b.pipeline.id, replicaIndex: b.replicaIndex, blockGroupLength: b.blockGroupLength,
    })
  } catch (err) {
    throw failedAt(node.address, err)
  }
}

export interface CommitWatch {
  allCommitted: boolean
  /** Members that did not hold the log through the index by the timeout. */
  lagging: DatanodeId[]
}

/**
 * Asks the pipeline's leader to answer once every member holds its log through `index`, or at
 * `timeoutMs` with those that do not (Ozone's watchForCommit ALL_COMMITTED). Looks for the
 * leader no longer than `timeoutMs` either.
 */
export async function watchForCommit(pipeline: Pipeline, index: number, timeoutMs: number, leaders: LeaderCache, transport: Transport = PLAIN_TRANSPORT): Promise<CommitWatch> {
  return atLeader(pipeline, leaders, async (address) => {
    const answer = await new RpcClient('Datanode', address, { transport }).call<Partial<CommitWatch> | null>('watchForCommit', { pipelineId: pipeline.id, index, timeoutMs }, { timeoutMs: timeoutMs + PIPELINE_WATCH_ANSWER_SLACK_MS })
    const lagging = Array.isArray(answer?.lagging) ? answer.lagging.filter((id): id is DatanodeId => typeof id === 'string') : []
    return { allCommitted: answer?.allCommitted === true, lagging }
  }, timeoutMs)
}

export interface ChunkRead {
  /** Where the returned data starts in the block (window-aligned at or before the asked offset). */
  dataOffset: number
  data: Uint8Array
}

/**
 * Shared memory to read into (a pooled read buffer at offset 0, or a slot of an EC stripe
 * being rebuilt): the body lands at `byteOffset` when it fits from there, and is verified in
 * place in the worker pool. Nothing moves: a buffer moved to a worker and back is a new
 * ArrayBuffer to V8, counted as fresh external memory, and a 4 MiB one per read kept the
 * gateway in back-to-back full GCs (bench/README.md).
 */
export interface ReadIntoSlab {
  slab: SharedArrayBuffer
  byteOffset: number
}

/** How long a chunk read may wait: `signal` abandons it, `answerTimeoutMs` bounds the wait for the answer's headers. */
export interface ReadLimits {
  signal?: AbortSignal
  answerTimeoutMs?: number
  /**
   * false: over HTTP even from a datanode in this process. For a read into a buffer its caller
   * fills otherwise once it gives the read up (an EC stripe's slot, rebuilt from the other
   * cells): an abandoned short-circuit read's worker may still write there; an HTTP read
   * stops writing when abandoned.
   */
  shortCircuit?: boolean
}

/**
 * Reads [offset, offset+length) of a block from one datanode and verifies its checksums. The
 * body lands in `into` when it fits, else in a buffer of its own; the returned data is a view
 * of whichever it used. `signal` abandons the read (a faster replica answered): it settles
 * soon after, rejected, and writes nothing more into `into`. A datanode that has not begun
 * to answer after `answerTimeoutMs` (default: the RPC timeout) fails the read with TIMEOUT.
 * A read into `into` from a datanode serving in this process skips HTTP (local-datanodes.ts).
 */
export async function readChunk(node: DatanodeDetails, blockId: BlockId, offset: number, length: number, into?: ReadIntoSlab, token?: string, transport: Transport = PLAIN_TRANSPORT, limits: ReadLimits = {}): Promise<ChunkRead> {
  // Never a read that carries a block token or goes over TLS: those are checked on HTTPS.
  const local = into === undefined || limits.shortCircuit === false || token !== undefined || transport.scheme !== 'http' ? undefined : await readLocally(node, blockId, offset, length, into, limits)
  if (local !== undefined) return local
  let res
  try {
    res = await request(urlOf(transport, node.address, '/chunk/read'), {
      method: 'POST', dispatcher: transport.dispatcher('datanode'), headers: { 'content-type': 'application/json', ...tokenHeader(token) },
      body: JSON.stringify({ containerId: blockId.containerId, localId: blockId.localId, offset, length }),
      headersTimeout: limits.answerTimeoutMs ?? RPC_TIMEOUT_MS_DEFAULT, bodyTimeout: RPC_TIMEOUT_MS_DEFAULT, signal: limits.signal,
    })
  } catch (err) {
    throw failedAt(node.address, err)
  }
  if (res.statusCode !== 200) throw await readError(res, `readChunk on ${node.address}`)
  const meta = JSON.parse(String(res.headers['x-o3-args'])) as { dataOffset: number; dataLength: number; checksumType: ChecksumType; bytesPerChecksum: number; checksumsLength: number }
  // The body goes straight into one buffer of the announced size: one copy from the socket.
  const total = meta.dataLength + meta.checksumsLength
  const slot = into !== undefined && into.slab.byteLength - into.byteOffset >= total ? into : undefined
  let body = slot !== undefined ? Buffer.from(slot.slab, slot.byteOffset, total) : Buffer.allocUnsafe(total)
  let filled = 0
  try {
    for await (const part of res.body as AsyncIterable<Buffer>) {
      if (filled + part.length > body.length) throw new O3Error('IO_ERROR', `Cannot read block ${blockId.containerId}:${blockId.localId} from ${node.address}: body longer than announced`, { node: node.address })
      copyBytes(body, filled, part)
      filled += part.length
    }
  } catch (err) {
    throw failedAt(node.address, err)
  }
  if (filled !== body.length) throw new O3Error('IO_ERROR', `Cannot read block ${blockId.containerId}:${blockId.localId} from ${node.address}: short body`, { node: node.address })
  if (checksumSizeBytes(meta.checksumType) > 0) {
    let bad: number
    // A buffer of its own from offset 0 can move to a worker; a small one from Node's shared
    // pool cannot, and is below the inline limit anyway.
    const movable = body.byteOffset === 0 && (body.buffer as ArrayBuffer).byteLength >= total && !(body.buffer instanceof SharedArrayBuffer)
    if (meta.dataLength <= VERIFY_INLINE_BYTES_MAX || (!movable && slot === undefined)) {
      bad = verifyChecksums(meta.checksumType, body.subarray(0, meta.dataLength), meta.bytesPerChecksum, body.subarray(meta.dataLength))
    } else if (slot !== undefined) {
      const at = slot.byteOffset
      bad = await runVerifySlab({ type: meta.checksumType, bytesPerChecksum: meta.bytesPerChecksum, data: { slab: slot.slab, offset: at, length: meta.dataLength }, checksums: { slab: slot.slab, offset: at + meta.dataLength, length: meta.checksumsLength } })
    } else {
      const r = await runVerifyChunk({ type: meta.checksumType, bytesPerChecksum: meta.bytesPerChecksum, body: body.buffer as ArrayBuffer, dataLength: meta.dataLength, checksumsLength: meta.checksumsLength })
      body = Buffer.from(r.body, 0, total)
      bad = r.badWindow
    }
    if (bad >= 0) throw new O3Error('CHECKSUM_MISMATCH', `Checksum mismatch in block ${blockId.containerId}:${blockId.localId} at ${meta.dataOffset + bad * meta.bytesPerChecksum} on ${node.address}`, { node: node.address })
  }
  const data = body.subarray(0, meta.dataLength)
  if (meta.dataOffset > offset || meta.dataOffset + data.length < offset + length) throw new O3Error('IO_ERROR', `Cannot read block ${blockId.containerId}:${blockId.localId} from ${node.address}: range not covered`, { node: node.address })
  return { dataOffset: meta.dataOffset, data }
}

/**
 * A short-circuit read into `into` when the datanode serves in this process and the range
 * fits there; undefined otherwise (the caller reads over HTTP). Fails as the HTTP read would:
 * the datanode's refusal as it answers it, a checksum mismatch, a short file; abandoned on
 * `signal` or after `answerTimeoutMs` (the RPC timeout) like an HTTP read that got no
 * answer, the worker still reading into `into` then (its pool takes it back after).
 */
async function readLocally(node: DatanodeDetails, blockId: BlockId, offset: number, length: number, into: ReadIntoSlab, limits: ReadLimits): Promise<ChunkRead | undefined> {
  const datanode = localDatanode(node.address)
  if (datanode === undefined) return undefined
  if (limits.signal?.aborted === true) throw failedAt(node.address, limits.signal.reason)
  let r: LocalChunkAnswer | undefined
  try {
    r = await abandonable(datanode.readChunkInto({ blockId, offset, length, into }), limits, (running) => noteLateWrite(into.slab, running))
  } catch (err) {
    throw err instanceof O3Error ? err : failedAt(node.address, err)
  }
  if (r === undefined) return undefined
  const what = `block ${blockId.containerId}:${blockId.localId}`
  if (r.badWindow >= 0) throw new O3Error('CHECKSUM_MISMATCH', `Checksum mismatch in ${what} at ${r.dataOffset + r.badWindow * r.bytesPerChecksum} on ${node.address}`, { node: node.address })
  if (r.dataOffset > offset || r.dataOffset + r.dataLength < offset + length) throw new O3Error('IO_ERROR', `Cannot read ${what} from ${node.address}: range not covered`, { node: node.address })
  return { dataOffset: r.dataOffset, data: Buffer.from(into.slab, into.byteOffset, r.dataLength) }
}
