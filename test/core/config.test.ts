/**
 * Goal: settings with a small range are checked where they are read: a datanode needs at least
 * one worker thread; short-circuit reads are on (1) or off (0), nothing else; both come from
 * the environment as any setting does (O3_<KEY>, dots dropped, upper case).
 * Method: loadConfig with the environment given, as the services call it.
 */
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { loadConfig } from '../../core/config.ts'
import { O3Error } from '../../core/errors.ts'

function refusal(env: Record<string, string>): O3Error {
  try {
    loadConfig({ env })
  } catch (err) {
    assert.instance(err, O3Error)
    return err as O3Error
  }
  throw new Error(`${JSON.stringify(env)} was accepted`)
}

test('datanode.workerThreads must be positive', () => {
  const err = refusal({ O3_DATANODE_WORKERTHREADS: '0' })
  assert.is(err.code, 'INVALID_ARGUMENT')
  assert.match(err.message, 'datanode.workerThreads')
  assert.is(loadConfig({ env: { O3_DATANODE_WORKERTHREADS: '1' } })['datanode.workerThreads'], 1)
})

for (const [key, env] of [['datanode.shortCircuitReads', 'O3_DATANODE_SHORTCIRCUITREADS'], ['datanode.shortCircuitWrites', 'O3_DATANODE_SHORTCIRCUITWRITES'], ['rpc.shortCircuit', 'O3_RPC_SHORTCIRCUIT']] as const) {
  test(`${key} is 0 or 1, on by default`, () => {
    assert.is(loadConfig({ env: {} })[key], 1)
    assert.is(loadConfig({ env: { [env]: '0' } })[key], 0)
    const err = refusal({ [env]: '2' })
    assert.match(err.message, key)
  })
}

test.run()
