/**
 * Goal: the setNodeStates request (control/scm/requests/set-node-state.ts) is what every SCM
 * replica agrees on about datanodes' operational state: a change applies only from the state
 * it names (so a recommission and a monitor step decided before it do not undo each other),
 * the leader's clock decides a maintenance's end before the entry, IN_SERVICE leaves no
 * record, bad input is refused in prepare. Method: prepare then apply on a real LMDB in a
 * temporary directory, inside a transaction as the state machine runs it.
 */
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { MAINTENANCE_END_HOURS_MAX } from '../../../../core/limits.ts'
import { join } from 'node:path'
import { open, type RootDatabase } from 'lmdb'
import type { DatanodeId } from '../../../../core/wire.ts'
import type { ReplicatedRequest } from '../../../../control/ha/replicated-service.ts'
import { scmRequests } from '../../../../control/scm/requests/index.ts'
import { operationalStateOf } from '../../../../control/scm/requests/set-node-state.ts'
import { openScmTables, type ScmTables } from '../../../../control/scm/tables.ts'
import { errorCode } from '../../../helpers.ts'

const root = mkdtempSync(join(tmpdir(), 'o3-scm-node-state-'))
const db: RootDatabase = open({ path: join(root, 'state.mdb') })
const tables: ScmTables = openScmTables(db)
const requests = new Map(scmRequests(() => tables).map((r) => [r.name, r]))
let index = 0

async function prepare(args: unknown): Promise<unknown> {
  const r = requests.get('setNodeStates') as ReplicatedRequest<unknown, unknown, unknown>
  return JSON.parse(JSON.stringify(await r.prepare(args, db))) as unknown
}

function apply(payload: unknown): unknown {
  const r = requests.get('setNodeStates') as ReplicatedRequest<unknown, unknown, unknown>
  return db.transactionSync(() => r.apply(db, payload, { index: ++index, term: 1 }))
}

const dn = (n: number) => `0000000${n}-0000-0000-0000-000000000000` as DatanodeId

test('setNodeStates moves a node from the state it names, and IN_SERVICE leaves no record', async () => {
  assert.is(operationalStateOf(tables, dn(1)), 'IN_SERVICE')
  assert.equal(apply(await prepare({ changes: [{ id: dn(1), from: 'IN_SERVICE', to: 'DECOMMISSIONING' }] })), [dn(1)])
  assert.is(operationalStateOf(tables, dn(1)), 'DECOMMISSIONING')
  const since = tables.nodeStates.get(dn(1))!.sinceMs
  assert.ok(since > 0)
  assert.equal(apply(await prepare({ changes: [{ id: dn(1), from: 'DECOMMISSIONING', to: 'IN_SERVICE' }] })), [dn(1)])
  assert.is(tables.nodeStates.get(dn(1)), undefined)
})

test('setNodeStates skips a change whose expected state is gone: a monitor step after a recommission does nothing', async () => {
  const step = await prepare({ changes: [{ id: dn(2), from: 'DECOMMISSIONING', to: 'DECOMMISSIONED' }] })
  apply(await prepare({ changes: [{ id: dn(2), from: 'IN_SERVICE', to: 'DECOMMISSIONING' }] }))
  apply(await prepare({ changes: [{ id: dn(2), from: 'DECOMMISSIONING', to: 'IN_SERVICE' }] }))
  assert.equal(apply(step), [])
  assert.is(operationalStateOf(tables, dn(2)), 'IN_SERVICE')
  // Several at once: each on its own.
  const both = await prepare({ changes: [{ id: dn(2), from: 'IN_SERVICE', to: 'ENTERING_MAINTENANCE' }, { id: dn(3), from: 'IN_MAINTENANCE', to: 'IN_SERVICE' }] })
  assert.equal(apply(both), [dn(2)])
})

test('setNodeStates: the leader decides a maintenance\'s end in prepare; moving into IN_MAINTENANCE keeps it', async () => {
  const payload = await prepare({ changes: [{ id: dn(4), from: 'IN_SERVICE', to: 'ENTERING_MAINTENANCE', endHours: 2 }] }) as { atMs: number; changes: { endMs: number }[] }
  assert.is(payload.changes[0].endMs, payload.atMs + 2 * 3_600_000)
  apply(payload)
  // Applied again later (a replica replaying its log), the end is the same: nothing reads the clock in apply.
  assert.is(tables.nodeStates.get(dn(4))?.endMs, payload.atMs + 2 * 3_600_000)
  apply(await prepare({ changes: [{ id: dn(4), from: 'ENTERING_MAINTENANCE', to: 'IN_MAINTENANCE' }] }))
  assert.equal(tables.nodeStates.get(dn(4)), { state: 'IN_MAINTENANCE', sinceMs: tables.nodeStates.get(dn(4))!.sinceMs, endMs: payload.atMs + 2 * 3_600_000 })
  // The operator's maintenance again, without an end: no end.
  apply(await prepare({ changes: [{ id: dn(4), from: 'IN_MAINTENANCE', to: 'IN_MAINTENANCE' }] }))
  assert.is(tables.nodeStates.get(dn(4))?.endMs, undefined)
  // An end on a decommission is ignored (only maintenance ends).
  const d = await prepare({ changes: [{ id: dn(5), from: 'IN_SERVICE', to: 'DECOMMISSIONING', endHours: 1 }] }) as { changes: { endMs?: number }[] }
  assert.is(d.changes[0].endMs, undefined)
})

test('setNodeStates refuses a malformed id, an unknown state or a negative end in prepare', async () => {
  assert.is(await errorCode(prepare({ changes: [{ id: 'x', from: 'IN_SERVICE', to: 'DECOMMISSIONING' }] })), 'INVALID_ARGUMENT')
  assert.is(await errorCode(prepare({ changes: [{ id: dn(6), from: 'IN_SERVICE', to: 'GONE' }] })), 'INVALID_ARGUMENT')
  assert.is(await errorCode(prepare({ changes: [{ id: dn(6), from: 'IN_SERVICE', to: 'ENTERING_MAINTENANCE', endHours: -1 }] })), 'INVALID_ARGUMENT')
  assert.is(await errorCode(prepare({ changes: [{ id: dn(6), from: 'IN_SERVICE', to: 'ENTERING_MAINTENANCE', endHours: MAINTENANCE_END_HOURS_MAX + 1 }] })), 'INVALID_ARGUMENT')
  assert.ok((await prepare({ changes: [{ id: dn(6), from: 'IN_SERVICE', to: 'ENTERING_MAINTENANCE', endHours: MAINTENANCE_END_HOURS_MAX }] })) !== undefined)
})

test.after(async () => {
  await db.close()
  rmSync(root, { recursive: true, force: true })
})

test.run()
