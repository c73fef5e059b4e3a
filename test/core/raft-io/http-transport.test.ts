/** Goal: HttpTransport delivers every message over real HTTP and, with batching on, packs
 * the messages queued for one peer into few requests; it sends binary batches once the peer
 * said it reads them, JSON to a node that never says so; the server rejects malformed
 * batches; a peer answering in this process (local-peers.ts) gets its batches without HTTP,
 * as copies, and its answers come back the same way, and a batch for a group it does not
 * have is dropped. Method: a raftApp listener on a loopback port and transports pointed at
 * it; for the local path, a delivery registered with serveRaftLocally at an origin where no
 * server listens. */
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { Hono } from 'hono'
import { serveApp } from '../../../core/http/serve.ts'
import { parseJsonObject, smallBodyText } from '../../../core/http/body.ts'
import { HttpTransport, raftApp, receiveRaftBatch } from '../../../core/raft-io/index.ts'
import { decodeMessage, RAFT_BATCH_BINARY_TYPE } from '../../../core/raft-io/codec.ts'
import type { Message } from '../../../core/raft/index.ts'
import { RAFT_TRANSPORT_BODY_BYTES_MAX } from '../../../core/raft-io/limits.ts'
import { serveRaftLocally } from '../../../core/raft-io/local-peers.ts'

const received: Message[] = []
/** What the test server's node answers a batch that asks for replies (none: a 204). */
let answer: (ms: Message[]) => Message[] = () => []
const asked: boolean[] = []
const listener = await serveApp(raftApp((ms, wantReplies) => {
  received.push(...ms)
  asked.push(wantReplies)
  return wantReplies ? Promise.resolve(answer(ms)) : undefined
}), { host: '127.0.0.1', port: 0, name: 'raft transport test' })
const port = listener.port
const url = `http://127.0.0.1:${port}`
const heartbeats = (n: number): Message[] => Array.from({ length: n }, (_, i) => ({ type: 'heartbeat', from: 1, to: 2, term: 1, commit: i, context: '' }))

async function until(f: () => boolean): Promise<void> {
  for (let i = 0; i < 1000 && !f(); i++) await new Promise((r) => setTimeout(r, 5))
}

test('HttpTransport with batching delivers all messages in few requests, in order', async () => {
  received.length = 0
  const t = new HttpTransport({ peers: new Map([[2, url]]), batching: true })
  t.send(heartbeats(100))
  t.send(heartbeats(100))
  await until(() => received.length === 200)
  assert.is(received.length, 200)
  assert.ok(t.sentRequests <= 3, `requests ${t.sentRequests}`)
  assert.equal(received.slice(0, 100).map((m) => (m as { commit: number }).commit), heartbeats(100).map((m) => (m as { commit: number }).commit))
  await t.close()
})

test('HttpTransport without batching sends one request per message', async () => {
  received.length = 0
  const t = new HttpTransport({ peers: new Map([[2, url]]), batching: false })
  t.send(heartbeats(20))
  await until(() => received.length === 20)
  assert.is(received.length, 20)
  assert.is(t.sentRequests, 20)
  await t.close()
})

test('HttpTransport with batching asks for replies and hands the answers the peer carried back to the node, only those from that peer', async () => {
  received.length = 0
  asked.length = 0
  answer = (ms) => [
    ...ms.map((m): Message => ({ type: 'heartbeatResp', from: 2, to: 1, term: 1, context: '' })),
    { type: 'heartbeatResp', from: 3, to: 1, term: 1, context: '' }, // not the peer asked: dropped
  ]
  const replies: Message[] = []
  const t = new HttpTransport({ peers: new Map([[2, url]]), batching: true, replies: (ms) => replies.push(...ms) })
  t.send(heartbeats(3))
  await until(() => replies.length === 3)
  assert.is(received.length, 3)
  assert.ok(asked.every((x) => x), 'every request asked for replies')
  assert.is(replies.length, 3)
  assert.ok(replies.every((m) => m.from === 2 && m.type === 'heartbeatResp'))
  assert.is(t.sentRequests, 1)
  answer = () => []
  await t.close()
})

test('HttpTransport without batching does not ask for replies', async () => {
  asked.length = 0
  const t = new HttpTransport({ peers: new Map([[2, url]]), batching: false, replies: () => assert.unreachable('no replies without batching') })
  t.send(heartbeats(2))
  await until(() => asked.length === 2)
  assert.equal(asked, [false, false])
  await t.close()
})

test('a held answer carries what the node sends the caller while the hold is active, and goes back at release', async () => {
  const t = new HttpTransport({ peers: new Map([[2, 'http://127.0.0.1:1']]), batching: true })
  const hold = t.hold(2)
  t.send([{ type: 'heartbeatResp', from: 1, to: 2, term: 1, context: 'before' }]) // not active yet: queued for a request
  hold.active = true
  t.send([{ type: 'heartbeatResp', from: 1, to: 2, term: 1, context: 'during' }])
  t.releaseHolds(true)
  const carried = await hold.replied
  assert.equal(carried.map((m) => (m as { context: string }).context), ['during'])
  assert.is(t.repliedMessages, 1)
  // A newer batch from the same peer releases the older hold.
  const first = t.hold(2)
  const second = t.hold(2)
  assert.equal(await first.replied, [])
  second.release()
  await t.close()
})

test('HttpTransport drops messages to a peer that is down, and to unknown peers', async () => {
  const t = new HttpTransport({ peers: new Map([[3, 'http://127.0.0.1:1']]), batching: true })
  t.send([{ type: 'timeoutNow', from: 1, to: 3, term: 1 }, { type: 'timeoutNow', from: 1, to: 9, term: 1 }])
  await until(() => t.droppedCount() === 1)
  assert.is(t.droppedCount(), 1)
  await t.close()
})

test('HttpTransport sends binary batches once the peer said it reads them, entries intact, and reads binary answers', async () => {
  const types: (string | undefined)[] = []
  const got: Message[] = []
  const app = new Hono()
  app.post('/raft/messages', (c) => {
    types.push(c.req.header('content-type'))
    return receiveRaftBatch(c, (ms) => {
      got.push(...ms)
      return Promise.resolve(ms.map((m): Message => ({ type: 'appResp', from: 2, to: 1, term: 1, index: m.type === 'app' ? m.prevIndex + m.entries.length : 0, reject: false, hint: 0, incarnation: 0 })))
    })
  })
  const spy = await serveApp(app, { host: '127.0.0.1', port: 0, name: 'raft binary spy' })
  const replies: Message[] = []
  const t = new HttpTransport({ peers: new Map([[2, `http://127.0.0.1:${spy.port}`]]), batching: true, replies: (ms) => replies.push(...ms) })
  const data = new Uint8Array(5000).map((_, i) => (i * 31) & 0xff)
  const append = (i: number): Message => ({ type: 'app', from: 1, to: 2, term: 1, prevIndex: i, prevTerm: 1, commit: i, entries: [{ term: 1, index: i + 1, type: 'normal', data }] })
  t.send([append(0)])
  await until(() => replies.length === 1)
  t.send([append(1)])
  await until(() => replies.length === 2)
  assert.equal(types, ['application/json', RAFT_BATCH_BINARY_TYPE])
  assert.equal(got, [append(0), append(1)])
  assert.equal(replies.map((m) => (m as { index: number }).index), [1, 2])
  await t.close()
  await spy.close()
})

test('HttpTransport keeps sending JSON to a node that never says it reads binary batches (an older node)', async () => {
  const types: (string | undefined)[] = []
  const app = new Hono()
  app.post('/raft/messages', async (c) => {
    types.push(c.req.header('content-type'))
    const body = parseJsonObject(await smallBodyText(c, 1 << 20, 'older node'), 'older node')
    ;(body.messages as unknown[]).map(decodeMessage)
    return c.body(null, 204)
  })
  const older = await serveApp(app, { host: '127.0.0.1', port: 0, name: 'older raft node' })
  const t = new HttpTransport({ peers: new Map([[2, `http://127.0.0.1:${older.port}`]]), batching: true })
  for (let i = 0; i < 3; i++) {
    t.send(heartbeats(2))
    await until(() => types.length === i + 1)
  }
  assert.equal(types, ['application/json', 'application/json', 'application/json'])
  assert.is(t.droppedCount(), 0)
  await t.close()
  await older.close()
})

test('a peer in this process gets its batches without HTTP, as copies, and answers the same way; a batch for a group it lacks is dropped', async () => {
  // Port 1: nothing listens there, so a message can only arrive through the local delivery.
  const origin = 'http://127.0.0.1:1'
  const got: { path: string; messages: Message[]; wantReplies: boolean }[] = []
  const leave = serveRaftLocally(origin, (path, messages, wantReplies) => {
    if (path !== '/group/a/raft') return null
    got.push({ path, messages, wantReplies })
    return Promise.resolve(messages.map((m): Message => ({ type: 'appResp', from: 2, to: 1, term: 1, index: m.type === 'app' ? m.prevIndex + m.entries.length : 0, reject: false, hint: 0, incarnation: 0 })))
  })
  const replies: Message[] = []
  const t = new HttpTransport({ peers: new Map([[2, origin]]), batching: true, path: '/group/a/raft', replies: (ms) => replies.push(...ms) })
  try {
    const data = new Uint8Array(3000).map((_, i) => (i * 7) & 0xff)
    const sent: Message = { type: 'app', from: 1, to: 2, term: 1, prevIndex: 4, prevTerm: 1, commit: 4, entries: [{ term: 1, index: 5, type: 'normal', data }] }
    t.send([sent])
    await until(() => replies.length === 1)
    assert.is(got.length, 1)
    assert.equal(got[0]!.messages, [sent], 'the batch arrives whole')
    assert.ok(got[0]!.wantReplies, 'with batching, answers are asked for')
    const arrived = got[0]!.messages[0] as Extract<Message, { type: 'app' }>
    assert.ok(arrived !== sent && arrived.entries[0]!.data !== data, 'the receiver holds copies, not the sender\'s objects')
    assert.equal(replies.map((m) => [m.from, (m as { index: number }).index]), [[2, 5]], 'the answer came back to the sender')
    assert.is(t.droppedCount(), 0)
    const other = new HttpTransport({ peers: new Map([[2, origin]]), batching: true, path: '/group/b/raft' })
    other.send([{ type: 'timeoutNow', from: 1, to: 2, term: 1 }])
    await until(() => other.droppedCount() === 1)
    assert.is(other.droppedCount(), 1, 'no such group there: dropped, as its 404 would be')
    await other.close()
  } finally {
    leave()
    await t.close()
  }
})

test('raftApp() answers a malformed binary batch with 400 INVALID_ARGUMENT', async () => {
  const res = await fetch(`${url}/raft/messages`, { method: 'POST', headers: { 'content-type': RAFT_BATCH_BINARY_TYPE }, body: new Uint8Array([0, 0, 0, 50, 123]) })
  assert.is(res.status, 400)
  assert.is(((await res.json()) as { code: string }).code, 'INVALID_ARGUMENT')
})

test('raftApp() answers a malformed batch with 400 INVALID_ARGUMENT', async () => {
  const res = await fetch(`${url}/raft/messages`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ messages: [{ type: 'vote' }] }) })
  assert.is(res.status, 400)
  assert.is(((await res.json()) as { code: string }).code, 'INVALID_ARGUMENT')
})

test('raftApp() refuses a body over the limit with 413', async () => {
  const body = JSON.stringify({ messages: [], pad: 'x'.repeat(RAFT_TRANSPORT_BODY_BYTES_MAX) })
  const res = await fetch(`${url}/raft/messages`, { method: 'POST', headers: { 'content-type': 'application/json' }, body })
  assert.is(res.status, 413)
  assert.is(((await res.json()) as { code: string }).code, 'ENTITY_TOO_LARGE')
})

test.after(async () => {
  await listener.close()
})

test.run()
