/** Goal: the error table round-trips over the wire shape. Method: build, serialize, rebuild. */
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { O3Error, fromWire, toO3Error } from '../../core/errors.ts'

test('fromWire() rebuilds the code, message and leader hint', () => {
  const e = fromWire(JSON.parse(JSON.stringify(new O3Error('NOT_LEADER', 'Cannot commit: not leader', { leader: '127.0.0.1:9862' }).toWire())), 'x')
  assert.is(e.code, 'NOT_LEADER')
  assert.is(e.leader, '127.0.0.1:9862')
  assert.is(e.spec.retry, true)
})

test('fromWire() maps an unknown code to INTERNAL_ERROR', () => {
  assert.is(fromWire({ code: 'NOPE', message: 'm' }, 'x').code, 'INTERNAL_ERROR')
  assert.is(fromWire(null, 'fallback').message, 'fallback')
})

test('toO3Error() wraps foreign throwables', () => {
  assert.is(toO3Error(new Error('boom')).code, 'INTERNAL_ERROR')
})

test.run()
