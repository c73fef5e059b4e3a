/** Goal: the wire codec round-trips every message type and rejects malformed input with
 * INVALID_ARGUMENT. Method: encode, JSON, decode. */
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { decodeMessage, encodeMessage } from '../../../core/raft-io/codec.ts'
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
    { ...env, type: 'vote', pre: 'yes', lastIndex: 1, lastTerm: 1, transfer: false }]
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

test.run()
