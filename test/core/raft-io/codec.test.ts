/** Goal: the wire codec round-trips every message type, in JSON and in the binary batch, and
 * rejects malformed input with INVALID_ARGUMENT. Method: encode, JSON or bytes, decode. */
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { decodeBatch, decodeMessage, encodeBatch, encodeMessage } from '../../../core/raft-io/codec.ts'
import { O3Error } from '../../../core/errors.ts'
import type { Message } from '../../../core/raft/index.ts'

const env = { from: 1, to: 2, term: 3 }
const samples: Message[] = [
  { ...env, type: 'vote', pre: true, lastIndex: 4, lastTerm: 2, transfer: false },
  { ...env, type: 'voteResp', pre: false, reject: true },
  { ...env, type: 'app', prevIndex: 4, prevTerm: 2, commit: 3, entries: [{ term: 3, index: 5, type: 'normal', data: new Uint8Array([1, 2, 255]) }] },
  { ...env, type: 'appResp', index: 5, reject: false, hint: 0, incarnation: 7 },
  { ...env, type: 'heartbeat', commit: 3, context: 'r1' },
  { ...env, type: 'heartbeatResp', context: '' },
  { ...env, type: 'snap', snapshot: { meta: { index: 9, term: 3, confState: { voters: [1, 2, 3], learners: [4] } }, data: new Uint8Array([9]) } },
  { ...env, type: 'timeoutNow' },
  { ...env, type: 'readIndex', context: 'c' },
  { ...env, type: 'readIndexResp', index: 7, context: 'c' },
  { ...env, type: 'recover', incarnation: 8 },
  { ...env, type: 'recoverResp', incarnation: 8, lastIndex: 12, lastTerm: 3, voters: [1, 2, 3] },
]

test('decodeMessage(encodeMessage(m)) gives m back for every type', () => {
  for (const m of samples) assert.equal(decodeMessage(JSON.parse(JSON.stringify(encodeMessage(m)))), m)
})

test('decodeMessage() rejects malformed messages with INVALID_ARGUMENT', () => {
  const bad = [null, 7, {}, { ...env, type: 'nope' }, { ...env, type: 'appResp', index: -1, reject: false, hint: 0, incarnation: 0 },
    { ...env, from: 2 ** 60, type: 'timeoutNow' }, { ...env, type: 'app', prevIndex: 1, prevTerm: 1, commit: 1, entries: 'x' },
    { ...env, type: 'vote', pre: 'yes', lastIndex: 1, lastTerm: 1, transfer: false },
    // A term past 2^48: taken, its node's next term (2^53) was inexact and its peers refused it.
    { ...env, term: Number.MAX_SAFE_INTEGER, type: 'heartbeat', commit: 0, context: '' }, { ...env, term: 2 ** 48 + 1, type: 'timeoutNow' }]
  for (const b of bad) {
    try {
      decodeMessage(b)
      assert.unreachable(`accepted ${JSON.stringify(b)}`)
    } catch (err) {
      assert.instance(err, O3Error)
      assert.is((err as O3Error).code, 'INVALID_ARGUMENT')
    }
  }
})

test('decodeBatch(encodeBatch(ms)) gives every message back, entry and snapshot bytes unencoded in the body', () => {
  const payload = new Uint8Array(4096).map((_, i) => (i * 7) & 0xff)
  const ms: Message[] = [...samples, { ...env, type: 'app', prevIndex: 5, prevTerm: 3, commit: 5, entries: [
    { term: 3, index: 6, type: 'normal', data: payload }, { term: 3, index: 7, type: 'confChange', data: new Uint8Array(0) }, { term: 3, index: 8, type: 'normal', data: payload.subarray(100, 200) },
  ] }]
  const body = encodeBatch(ms)
  assert.equal(decodeBatch(body, 100), ms)
  // The payload is in the body as it is (no base64): the body outgrows the header by the bytes alone.
  const header = Buffer.from(body.buffer, body.byteOffset, body.byteLength).readUInt32BE(0)
  assert.is(body.byteLength - 4 - header, 3 + 1 + 4096 + 100)
  assert.ok(Buffer.from(body).includes(Buffer.from(payload)))
})

test('decodeBatch() refuses bodies whose lengths do not account for them, or too many messages, with INVALID_ARGUMENT', () => {
  const good = encodeBatch([samples[2], samples[6]])
  const header = (o: unknown) => {
    const json = Buffer.from(JSON.stringify(o))
    const b = Buffer.alloc(4 + json.length)
    b.writeUInt32BE(json.length, 0)
    json.copy(b, 4)
    return b
  }
  const bad: [string, Uint8Array, number][] = [
    ['empty', new Uint8Array(0), 10],
    ['header past the end', good.subarray(0, 10), 10],
    ['data cut short', good.subarray(0, good.length - 1), 10],
    ['bytes left over', Buffer.concat([good, Buffer.from([0])]), 10],
    ['too many messages', good, 1],
    ['header not JSON', Buffer.concat([Buffer.from([0, 0, 0, 2]), Buffer.from('{x')]), 10],
    ['no list', header({ messages: 3 }), 10],
    ['negative length', header({ messages: [{ ...samples[2], entries: [{ term: 3, index: 5, type: 'normal', data: -1 }] }] }), 10],
    ['length as text', header({ messages: [{ ...samples[2], entries: [{ term: 3, index: 5, type: 'normal', data: 'AQI=' }] }] }), 10],
  ]
  for (const [why, body, max] of bad) {
    try {
      decodeBatch(body, max)
      assert.unreachable(`accepted: ${why}`)
    } catch (err) {
      assert.instance(err, O3Error, why)
      assert.is((err as O3Error).code, 'INVALID_ARGUMENT', why)
    }
  }
})

test.run()
