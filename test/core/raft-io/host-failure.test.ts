/** Goal: a RaftHost that fails (a write or an apply that throws what is no refusal: a full or
 * broken disk) stops, says so through `failed` (a pipeline member reports it, and the SCM
 * closes the pipeline) and refuses what comes after with UNAVAILABLE; one stopped by stop()
 * is not `failed`; one sent a message no correct peer sends drops it and goes on. Method:
 * one-node groups in this process, LMDB in a temporary directory, a message over HTTP. */
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { RaftHost } from '../../../core/raft-io/index.ts'
import type { Entry } from '../../../core/raft/index.ts'
import { errorCode, until } from '../../helpers.ts'
import { ValuesMachine } from './values-machine.ts'

const root = mkdtempSync(join(tmpdir(), 'o3-raft-failure-'))
test.after(() => rmSync(root, { recursive: true, force: true }))

/** Applies values until it meets 'disk', which it cannot apply (as a disk that turned read-only). */
class FailingMachine extends ValuesMachine {
  override apply(e: Entry): unknown {
    if (new TextDecoder().decode(e.data) === 'disk') throw new Error('EIO: i/o error, write')
    return super.apply(e)
  }
}

async function started(name: string, machine: ValuesMachine): Promise<RaftHost> {
  const h = await RaftHost.create({ id: 1, dir: join(root, name), voters: [1], stateMachine: machine, port: 0, tickMs: 10, electionTimeoutTicks: 10, heartbeatTimeoutTicks: 2 })
  h.start(new Map([[1, `http://127.0.0.1:${h.port}`]]))
  await until('a leader', () => h.status().role === 'leader')
  return h
}

test('a host whose apply fails stops as failed and refuses what follows', async () => {
  const machine = new FailingMachine()
  const h = await started('failing', machine)
  await h.propose(new TextEncoder().encode('a'))
  assert.not.ok(h.failed)
  assert.is(await errorCode(h.propose(new TextEncoder().encode('disk'))), 'UNAVAILABLE')
  assert.ok(h.failed, 'failed, for its pipeline report')
  assert.is(await errorCode(h.propose(new TextEncoder().encode('b'))), 'UNAVAILABLE')
  assert.equal(machine.values, ['a'])
  await h.stop()
})

test('a message no correct peer sends, over the Raft port, is dropped: the host goes on', async () => {
  const machine = new ValuesMachine()
  const h = await started('forged', machine)
  await h.propose(new TextEncoder().encode('a'))
  // "Another leader" in the leader's own term, as anyone can post to a plain cluster's Raft port.
  const forged = { messages: [{ type: 'heartbeat', from: 2, to: 1, term: h.term(), commit: 0, context: '' }] }
  const res = await fetch(`http://127.0.0.1:${h.port}/raft/messages`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(forged) })
  assert.ok(res.ok, `answered ${res.status}`)
  let timer: NodeJS.Timeout | undefined
  const hung = new Promise<string>((resolve) => { timer = setTimeout(() => resolve('no answer in 10 s'), 10_000) })
  const outcome = await Promise.race([h.propose(new TextEncoder().encode('b')).then(() => 'committed', (err: Error) => err.message), hung])
  clearTimeout(timer)
  assert.is(outcome, 'committed')
  assert.not.ok(h.failed, 'it once stopped the node for good')
  assert.equal(machine.values, ['a', 'b'])
  await h.stop()
})

test('a host stopped by stop() is not failed', async () => {
  const h = await started('clean', new ValuesMachine())
  await h.propose(new TextEncoder().encode('a'))
  await h.stop()
  assert.not.ok(h.failed)
})

test.run()
