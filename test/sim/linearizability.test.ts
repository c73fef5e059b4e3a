/** Goal: checkLinearizable() accepts exactly the linearizable register histories. Method:
 * small hand-made histories, including concurrent and never-answered operations. */
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { checkLinearizable, type Operation } from './linearizability.ts'

const put = (client: number, value: string, callTime: number, returnTime: number, key = 'k'): Operation => ({ client, key, kind: 'put', value, callTime, returnTime })
const get = (client: number, value: string, callTime: number, returnTime: number, key = 'k'): Operation => ({ client, key, kind: 'get', value, callTime, returnTime })

test('checkLinearizable() accepts a sequential history', () => {
  assert.equal(checkLinearizable([put(1, 'a', 0, 1), get(2, 'a', 2, 3), put(1, 'b', 4, 5), get(2, 'b', 6, 7)]), [])
})

test('checkLinearizable() rejects a stale read after a completed write', () => {
  assert.equal(checkLinearizable([put(1, 'a', 0, 1), put(1, 'b', 2, 3), get(2, 'a', 4, 5)]), ['k'])
})

test('checkLinearizable() lets concurrent operations take either order', () => {
  assert.equal(checkLinearizable([put(1, 'a', 0, 10), get(2, '', 1, 2), get(3, 'a', 3, 4), get(2, 'a', 5, 6)]), [])
})

test('checkLinearizable() rejects reads that go back in time', () => {
  assert.equal(checkLinearizable([put(1, 'a', 0, 10), get(2, 'a', 1, 2), get(3, '', 3, 4)]), ['k'])
})

test('checkLinearizable() treats an unanswered put as maybe applied', () => {
  assert.equal(checkLinearizable([put(1, 'a', 0, Infinity), get(2, 'a', 5, 6)]), [])
  assert.equal(checkLinearizable([put(1, 'a', 0, Infinity), get(2, '', 5, 6)]), [])
  assert.equal(checkLinearizable([put(1, 'a', 0, Infinity), get(2, 'a', 5, 6), get(2, '', 7, 8)]), ['k'])
})

test('checkLinearizable() checks each key on its own', () => {
  const ops = [put(1, 'a', 0, 1, 'x'), get(2, 'a', 2, 3, 'x'), put(1, 'b', 0, 1, 'y'), get(2, '', 2, 3, 'y')]
  assert.equal(checkLinearizable(ops), ['y'])
})

test.run()
