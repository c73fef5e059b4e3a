/** Goal: the OM and SCM groups' Raft timing is a setting (raft.tickMs,
 * raft.electionTimeoutTicks, raft.heartbeatTimeoutTicks), from a file, an override or the
 * environment, and a timing Raft cannot work with is refused with the setting's name.
 * Method: loadConfig with overrides and an environment. */
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { loadConfig } from '../../core/config.ts'
import { O3Error } from '../../core/errors.ts'

test('the defaults elect within 100-200 ms; the environment and overrides set other timings', () => {
  const d = loadConfig({ env: {} })
  assert.equal([d['raft.tickMs'], d['raft.electionTimeoutTicks'], d['raft.heartbeatTimeoutTicks']], [10, 10, 2])
  const e = loadConfig({ env: { O3_RAFT_TICKMS: '100', O3_RAFT_ELECTIONTIMEOUTTICKS: '10', O3_RAFT_HEARTBEATTIMEOUTTICKS: '1' } })
  assert.equal([e['raft.tickMs'], e['raft.electionTimeoutTicks'], e['raft.heartbeatTimeoutTicks']], [100, 10, 1])
})

test('a timing Raft cannot work with is refused, naming the setting', () => {
  for (const [overrides, key] of [
    [{ 'raft.tickMs': 0 }, 'raft.tickMs'],
    [{ 'raft.heartbeatTimeoutTicks': 0 }, 'raft.heartbeatTimeoutTicks'],
    [{ 'raft.electionTimeoutTicks': 2, 'raft.heartbeatTimeoutTicks': 2 }, 'raft.electionTimeoutTicks'],
  ] as const) {
    try {
      loadConfig({ env: {}, overrides })
      assert.unreachable(`accepted ${JSON.stringify(overrides)}`)
    } catch (err) {
      assert.instance(err, O3Error)
      assert.ok((err as O3Error).message.includes(`setting ${key}=`), (err as O3Error).message)
    }
  }
})

test('a setting from the environment that is not a number is refused, quoting what was given', () => {
  try {
    loadConfig({ env: { O3_RAFT_TICKMS: 'abc' } })
    assert.unreachable('accepted O3_RAFT_TICKMS=abc')
  } catch (err) {
    assert.instance(err, O3Error)
    assert.ok((err as O3Error).message.includes('O3_RAFT_TICKMS="abc"'), (err as O3Error).message)
  }
})

test.run()
