/** @module
 * Raft messages over HTTP/1.1: `POST /raft/messages` with a body of messages, served
 * by a Hono app, sent through one keep-alive undici Pool per peer (or, security on, through
 * the node's identity over mutual TLS; a node secured after it started reaches each peer
 * plainly until that fails, then over TLS only: secure()). With batching on, one
 * request per peer is in flight and whatever queues meanwhile goes in the next body; with
 * it off, every message is its own request. With batching on, a request also asks for
 * replies: the receiver holds its answer until its node has handled the batch (one Ready
 * pass) and carries back what the node sends the caller meanwhile (a follower's append
 * answers), so a Raft round costs one HTTP exchange per follower, not two (over plain HTTP:
 * see asksReplies). A body is a binary batch (codec.ts, no base64 of entries) once the peer
 * said it reads one (its answers carry RAFT_BINARY_HEADER), JSON before that and to older
 * nodes; an answer comes in its request's form. Delivery is best effort: Raft tolerates loss,
 * so a failed request or a full queue drops messages. Decides nothing about Raft.
 */
import { Hono, type Context } from 'hono'
import { Pool } from 'undici'
import type { Transport } from '../rpc/transport.ts'
import { O3Error } from '../errors.ts'
import { errorResponse } from '../rpc/server.ts'
import { parseJsonObject, smallBodyBytes } from '../http/body.ts'
import { requestHeader } from '../http/connection.ts'
import type { Message, NodeId } from '../raft/index.ts'
import { decodeBatch, decodeMessage, encodeBatch, encodeMessage, RAFT_BATCH_BINARY_TYPE } from './codec.ts'
import { localRaftDelivery, type LocalRaftDelivery } from './local-peers.ts'
import {
  RAFT_TRANSPORT_BATCH_COUNT_MAX, RAFT_TRANSPORT_BODY_BYTES_MAX, RAFT_TRANSPORT_QUEUE_COUNT_MAX, RAFT_TRANSPORT_UNBATCHED_INFLIGHT_MAX,
} from './limits.ts'

export interface TransportOptions {
  /** Base URL of every peer, e.g. `http://127.0.0.1:9872`. */
  readonly peers: ReadonlyMap<NodeId, string>
  readonly batching: boolean
  /** The path below each peer's URL that takes messages (default /raft/messages). */
  readonly path?: string
  /**
   * The node's identity's transport (security on: HTTPS with its certificate, peer URLs
   * `https://`): messages go through its pool. Without one, a plain keep-alive Pool per peer.
   */
  readonly transport?: Transport
  /** Messages a peer carried back in the answer to a request (batching on): handed to the node as if received. */
  readonly replies?: (messages: Message[]) => void
}

/** The header by which a request asks the receiver to carry its node's answers back (an older node ignores it). */
export const RAFT_REPLIES_HEADER = 'x-o3-raft-replies'

/** The header by which a node's answers say it reads binary batches (an older node sends none, and gets JSON). */
export const RAFT_BINARY_HEADER = 'x-o3-raft-binary'

/**
 * A received batch's answer, held open while the node handles the batch: active once the
 * node stepped the batch's messages; what the node sends the caller until released rides back.
 */
export interface ReplyHold {
  readonly peer: NodeId
  readonly messages: Message[]
  active: boolean
  readonly release: () => void
  readonly replied: Promise<Message[]>
}

interface Peer {
  readonly id: NodeId
  /** The peer's own pool (plain HTTP, made when first needed); over TLS the transport's dispatcher is used instead. */
  pool: Pool | undefined
  /** The peer's origin, http:// or https:// as it is reached now. */
  origin: string
  /** Reached over TLS: from an https:// URL, or since a plain request to it failed once this node was secured. Never back. */
  tls: boolean
  queue: Message[]
  inflight: number
  /** Messages dropped because the queue was full or a request failed. */
  dropped: number
  /** The peer said it reads binary batches (RAFT_BINARY_HEADER on an answer). */
  binary: boolean
}

/**
 * The Hono app that receives batches and hands each message to `deliver`. `accept` (security
 * on) runs before every route but /health and throws to refuse a caller (not a peer of the group).
 */
export function raftApp(deliver: Deliver, accept?: (c: Context) => void, senders?: (c: Context, messages: readonly Message[]) => void): Hono {
  const app = new Hono()
  if (accept !== undefined) {
    app.use('*', async (c, next) => {
      if (c.req.path === '/health') return next()
      try { accept(c) } catch (err) { return errorResponse(c, err) }
      return next()
    })
  }
  app.post('/raft/messages', (c) => receiveRaftBatch(c, deliver, senders))
  app.get('/health', (c) => c.text('ok'))
  return app
}

/**
 * Hands a batch to the node; when the caller asks for replies (`wantReplies`), may return the
 * promise of what the node sends the caller while it handles the batch (RaftHost.deliver).
 */
export type Deliver = (messages: Message[], wantReplies: boolean) => void | Promise<Message[]>

/** Reads one batch of messages from a request and hands it to `deliver` (a route of raftApp, or of a server hosting many groups). */
export async function receiveRaftBatch(c: Context, deliver: Deliver, senders?: (c: Context, messages: readonly Message[]) => void): Promise<Response> {
  c.header(RAFT_BINARY_HEADER, '1')
  try {
    const body = await smallBodyBytes(c, RAFT_TRANSPORT_BODY_BYTES_MAX, 'Cannot accept raft batch')
    const binary = requestHeader(c, 'content-type') === RAFT_BATCH_BINARY_TYPE
    const messages = binary ? decodeBatch(body, RAFT_TRANSPORT_BATCH_COUNT_MAX) : jsonBatch(parseJsonObject(body.toString('utf8'), 'Cannot accept raft batch'))
    // A member speaks only for itself: the certificate must name the member each message is from.
    senders?.(c, messages)
    const replies = await deliver(messages, requestHeader(c, RAFT_REPLIES_HEADER) === '1')
    if (replies === undefined || replies.length === 0) return c.body(null, 204)
    if (!binary) return c.json({ messages: replies.map(encodeMessage) })
    return c.body(encodeBatch(replies), 200, { 'content-type': RAFT_BATCH_BINARY_TYPE })
  } catch (err) {
    return errorResponse(c, err)
  }
}

/** The messages of a JSON batch. */
function jsonBatch(body: Record<string, unknown>): Message[] {
  if (!Array.isArray(body.messages) || body.messages.length > RAFT_TRANSPORT_BATCH_COUNT_MAX) {
    throw new O3Error('INVALID_ARGUMENT', 'Cannot accept raft batch: messages is not a list of allowed length')
  }
  return body.messages.map(decodeMessage)
}

export class HttpTransport {
  private readonly peers = new Map<NodeId, Peer>()
  private readonly urls = new Map<NodeId, string>()
  private readonly batching: boolean
  private readonly path: string
  private transport: Transport | undefined
  private readonly replies: ((messages: Message[]) => void) | undefined
  /** Received batches' answers held open, at most one per peer (a batching peer has one request in flight). */
  private readonly holds = new Map<NodeId, ReplyHold>()
  sentRequests = 0
  /** Messages that rode back in answers instead of requests of their own. */
  repliedMessages = 0

  constructor(options: TransportOptions) {
    this.batching = options.batching
    this.path = options.path ?? '/raft/messages'
    this.transport = options.transport
    this.replies = options.replies
    for (const [id, url] of options.peers) this.setPeer(id, url)
  }

  /** Adds a peer, or points a known one at a new URL (a member added to the group, its address replicated). */
  setPeer(id: NodeId, url: string): void {
    const old = this.peers.get(id)
    if (old !== undefined) {
      if (this.urls.get(id) === url) return
      void old.pool?.destroy().catch(() => undefined)
    }
    this.urls.set(id, url)
    const origin = new URL(url).origin
    // Over TLS the transport's (shared, renewable) pool carries the messages; the queue's one
    // request in flight per peer bounds them as the per-peer Pool's one connection does.
    const tls = origin.startsWith('https:') || old?.tls === true
    this.peers.set(id, { id, pool: undefined, origin: tls ? origin.replace(/^http:/, 'https:') : origin, tls, queue: [], inflight: 0, dropped: old?.dropped ?? 0, binary: old?.binary ?? false })
  }

  /**
   * This node has its certificate now (a secure SCM group once its CA exists): peers known by
   * https:// URLs are reached through `transport`; a peer still known by http:// keeps its plain
   * pool until a request to it fails (it has secured its own port meanwhile), and from then on
   * is reached over TLS only.
   */
  secure(transport: Transport): void {
    this.transport = transport
  }

  private poolOf(peer: Peer): Pool {
    peer.pool ??= new Pool(peer.origin, { connections: this.batching ? 1 : 8, pipelining: 1, keepAliveTimeout: 30_000 })
    return peer.pool
  }

  /**
   * Holds the answer to a batch from `peer` open (a newer one from it replaces the older,
   * which goes back with what it gathered). The node activates it once it stepped the batch
   * and releases it at the end of that pass.
   */
  hold(peer: NodeId): ReplyHold {
    this.holds.get(peer)?.release()
    let resolve!: (m: Message[]) => void
    const replied = new Promise<Message[]>((r) => (resolve = r))
    const hold: ReplyHold = {
      peer, messages: [], active: false, replied,
      release: () => {
        if (this.holds.get(peer) === hold) this.holds.delete(peer)
        resolve(hold.messages)
      },
    }
    this.holds.set(peer, hold)
    return hold
  }

  /** Sends every held answer back with what it gathered (the node finished a pass, or stops). */
  releaseHolds(activeOnly: boolean): void {
    for (const hold of [...this.holds.values()]) if (hold.active || !activeOnly) hold.release()
  }

  send(messages: readonly Message[]): void {
    for (const m of messages) {
      const hold = this.holds.get(m.to)
      if (hold?.active === true && hold.messages.length < RAFT_TRANSPORT_BATCH_COUNT_MAX && isSmall(m)) {
        hold.messages.push(m)
        this.repliedMessages++
        continue
      }
      const peer = this.peers.get(m.to)
      if (peer === undefined) continue // not a peer we know (a removed member): nothing to do
      if (peer.queue.length >= RAFT_TRANSPORT_QUEUE_COUNT_MAX) peer.dropped++
      else peer.queue.push(m)
    }
    for (const peer of this.peers.values()) this.pump(peer)
  }

  private pump(peer: Peer): void {
    const inflightMax = this.batching ? 1 : RAFT_TRANSPORT_UNBATCHED_INFLIGHT_MAX
    const perRequest = this.batching ? RAFT_TRANSPORT_BATCH_COUNT_MAX : 1
    while (peer.queue.length > 0 && peer.inflight < inflightMax) {
      const batch = peer.queue.splice(0, perRequest)
      peer.inflight++
      this.sentRequests++
      void this.post(peer, batch).finally(() => {
        peer.inflight--
        this.pump(peer)
      })
    }
  }

  private async post(peer: Peer, batch: Message[]): Promise<void> {
    const tls = peer.tls && this.transport !== undefined
    const local = tls ? undefined : localRaftDelivery(peer.origin)
    if (local !== undefined) return this.postLocally(peer, batch, local)
    try {
      const headers: Record<string, string> = { 'content-type': peer.binary ? RAFT_BATCH_BINARY_TYPE : 'application/json' }
      if (this.asksReplies(tls)) headers[RAFT_REPLIES_HEADER] = '1'
      const res = await (tls ? this.transport!.dispatcher() : this.poolOf(peer)).request({
        origin: peer.origin, path: this.path, method: 'POST', headers,
        body: peer.binary ? encodeBatch(batch) : JSON.stringify({ messages: batch.map(encodeMessage) }),
      })
      if (res.headers[RAFT_BINARY_HEADER] === '1') peer.binary = true
      if (res.statusCode === 200 && this.asksReplies(tls)) {
        this.replied(peer, await boundedBytes(res.body, RAFT_TRANSPORT_BODY_BYTES_MAX), res.headers['content-type'] === RAFT_BATCH_BINARY_TYPE)
        return
      }
      await res.body.dump()
      if (res.statusCode !== 204) peer.dropped += batch.length
    } catch {
      peer.dropped += batch.length // the peer is down or unreachable: Raft retries on its own
      if (!tls && this.transport !== undefined) {
        // A secured node's plain request failed: the peer serves TLS now (or is down). TLS from here on.
        void peer.pool?.destroy().catch(() => undefined)
        peer.pool = undefined
        peer.tls = true
        peer.origin = peer.origin.replace(/^http:/, 'https:')
      }
    }
  }

  /**
   * A batch to a peer in this process (local-peers.ts): encoded and decoded as over HTTP, so
   * that neither side holds the other's objects, then handed to its group; its answers come
   * back as an HTTP answer's would. After a turn of the event loop, as a socket's delivery.
   */
  private async postLocally(peer: Peer, batch: Message[], deliver: LocalRaftDelivery): Promise<void> {
    try {
      await new Promise<void>((resolve) => setImmediate(resolve))
      const delivered = deliver(this.path, decodeBatch(encodeBatch(batch), RAFT_TRANSPORT_BATCH_COUNT_MAX), this.asksReplies(false))
      if (delivered === null) {
        peer.dropped += batch.length
        return
      }
      const replies = await delivered
      if (replies !== undefined && replies.length > 0) this.fromPeer(peer, decodeBatch(encodeBatch(replies), RAFT_TRANSPORT_BATCH_COUNT_MAX))
    } catch {
      peer.dropped += batch.length
    }
  }

  /**
   * Whether a request asks the peer to carry its answers back: with batching, over plain
   * HTTP. Over TLS the server's certificate is checked for the cluster, not for the member
   * at that address, so an answer's messages could not be bound to their sender as the
   * receiving route binds a request's (RaftHost options.senders): a secure group keeps one
   * request per direction.
   */
  private asksReplies(tls: boolean): boolean {
    return this.batching && !tls
  }

  /** The messages a peer's answer carried. */
  private replied(peer: Peer, body: Buffer | undefined, binary: boolean): void {
    if (body === undefined) return
    let messages: Message[]
    try {
      messages = binary ? decodeBatch(body, RAFT_TRANSPORT_BATCH_COUNT_MAX) : jsonBatch(parseJsonObject(body.toString('utf8'), 'Cannot read raft answers'))
    } catch {
      return // a malformed answer is a lost message: Raft retries
    }
    this.fromPeer(peer, messages)
  }

  /** Hands the node what a peer's answer carried: only the messages from that peer itself count (its certificate was checked on the way). */
  private fromPeer(peer: Peer, messages: Message[]): void {
    const fromPeer = messages.filter((m) => m.from === peer.id)
    if (fromPeer.length > 0) this.replies?.(fromPeer)
  }

  droppedCount(): number {
    let n = 0
    for (const p of this.peers.values()) n += p.dropped
    return n
  }

  async close(): Promise<void> {
    this.releaseHolds(false)
    await Promise.all([...this.peers.values()].map((p) => p.pool?.destroy()))
  }
}

/**
 * An answer carries only messages of a few dozen bytes (the answers Raft's requests draw):
 * entries and snapshots go in requests of their own, so an answer never outgrows the body
 * limit nor delays the caller's next request behind megabytes.
 */
function isSmall(m: Message): boolean {
  return !(m.type === 'snap' || (m.type === 'app' && m.entries.length > 0))
}

/** A response body read whole, or undefined (and the rest dropped) past `maxBytes`. */
async function boundedBytes(body: AsyncIterable<Uint8Array> & { destroy(): unknown }, maxBytes: number): Promise<Buffer | undefined> {
  const pieces: Uint8Array[] = []
  let bytes = 0
  for await (const piece of body) {
    bytes += piece.length
    if (bytes > maxBytes) {
      body.destroy()
      return undefined
    }
    pieces.push(piece)
  }
  return Buffer.concat(pieces, bytes)
}
