/** Tests: the SCM's and the datanode's role tables (pure): who passes each kind of route, and the codes refusals carry. */
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { O3Error } from '../../../core/errors.ts'
import type { Caller } from '../../../core/security/caller.ts'
import { authorizeScm, SCM_ACCESS } from '../../../control/scm/access.ts'
import { authorizeDatanode, untilBlockTokens } from '../../../datapath/datanode/access.ts'

const admins = new Set(['admin'])
const scm = authorizeScm(admins)
const svc = (role: 'scm' | 'om' | 'datanode' | 's3g', id = `${role}1`): Caller => ({ kind: 'service', role, id })
const user = (name: string): Caller => ({ kind: 'user', user: name })
const anonymous: Caller = { kind: 'anonymous' }

async function code(run: () => unknown): Promise<string> {
  try { await run() } catch (err) { return err instanceof O3Error ? err.code : String(err) }
  return 'OK'
}

test('SCM: open callers pass everything; a method in no table is refused to every other caller', async () => {
  assert.is(await code(() => scm('allocateBlock', {}, { caller: { kind: 'open' } })), 'OK')
  assert.is(await code(() => scm('noSuchMethod', {}, { caller: { kind: 'open' } })), 'OK')
  assert.is(await code(() => scm('noSuchMethod', {}, { caller: svc('scm') })), 'PERMISSION_DENIED')
  assert.is(await code(() => scm('noSuchMethod', {}, { caller: anonymous })), 'UNAUTHENTICATED')
})

test('SCM: each route takes its roles; administrators the admin routes; enrollment and the CA certificate anyone', async () => {
  assert.is(await code(() => scm('allocateBlock', {}, { caller: svc('om') })), 'OK')
  for (const c of [svc('datanode'), svc('s3g'), user('admin'), anonymous]) assert.not.equal(await code(() => scm('allocateBlock', {}, { caller: c })), 'OK')
  assert.is(await code(() => scm('listDatanodes', {}, { caller: user('admin') })), 'OK')
  assert.is(await code(() => scm('listDatanodes', {}, { caller: user('bob') })), 'PERMISSION_DENIED')
  assert.is(await code(() => scm('listDatanodes', {}, { caller: svc('datanode') })), 'PERMISSION_DENIED')
  assert.is(await code(() => scm('enroll', {}, { caller: anonymous })), 'OK')
  assert.is(await code(() => scm('getCaCertificate', {}, { caller: anonymous })), 'OK')
  assert.is(await code(() => scm('getSecretKeys', {}, { caller: svc('s3g') })), 'PERMISSION_DENIED')
  assert.is(await code(() => scm('reportCorruptReplica', {}, { caller: user('bob') })), 'OK')
  assert.is(await code(() => scm('reportCorruptReplica', {}, { caller: anonymous })), 'UNAUTHENTICATED')
  // The table and the CA agree on who renews over RPC: enrolled services, not an SCM (it issues its own in-process).
  assert.is(await code(() => scm('renewCertificate', {}, { caller: svc('datanode') })), 'OK')
  assert.is(await code(() => scm('renewCertificate', {}, { caller: svc('scm') })), 'PERMISSION_DENIED')
  for (const m of Object.keys(SCM_ACCESS)) assert.is(await code(() => scm(m, { id: 'scm1' }, { caller: { kind: 'open' } })), 'OK', m)
})

test('SCM: a datanode registers and heartbeats only as the datanode its certificate names', async () => {
  assert.is(await code(() => scm('register', { id: 'dn-a' }, { caller: svc('datanode', 'dn-a') })), 'OK')
  assert.is(await code(() => scm('register', { id: 'dn-b' }, { caller: svc('datanode', 'dn-a') })), 'PERMISSION_DENIED')
  assert.is(await code(() => scm('heartbeat', { id: 'dn-b' }, { caller: svc('datanode', 'dn-a') })), 'PERMISSION_DENIED')
  assert.is(await code(() => scm('heartbeat', { id: 'dn-a' }, { caller: svc('om', 'dn-a') })), 'PERMISSION_DENIED')
})

test('datanode: admin routes take SCM/datanode peers and administrators; block routes go to the block-token check for others', async () => {
  let asked: string[] = []
  const check = () => (ctx: { caller: Caller }, method: string, _b: unknown, mode: string, token: string | undefined) => { asked.push(`${method}:${mode}:${token ?? ''}`); if (ctx.caller.kind === 'anonymous') throw new O3Error('BLOCK_TOKEN_VERIFICATION_FAILED', 'no token') }
  const dn = authorizeDatanode(admins, check)
  assert.is(await code(() => dn('createPipeline', {}, { caller: svc('scm') })), 'OK')
  assert.is(await code(() => dn('createPipeline', {}, { caller: svc('om') })), 'PERMISSION_DENIED')
  assert.is(await code(() => dn('scanContainer', {}, { caller: user('admin') })), 'OK')
  assert.is(await code(() => dn('scanContainer', {}, { caller: anonymous })), 'UNAUTHENTICATED')
  assert.is(await code(() => dn('getBlock', { containerId: 1, localId: 2 }, { caller: svc('datanode') })), 'OK')
  assert.equal(asked, [], 'peers are not asked for a token')
  assert.is(await code(() => dn('putBlock', { containerId: 1, localId: 2, token: 't' }, { caller: svc('s3g') })), 'OK')
  assert.is(await code(() => dn('getBlock', { containerId: 1, localId: 2 }, { caller: anonymous })), 'BLOCK_TOKEN_VERIFICATION_FAILED')
  assert.equal(asked, ['putBlock:WRITE:t', 'getBlock:READ:'])
  asked = []
  assert.is(await code(() => authorizeDatanode(admins, () => untilBlockTokens)('readChunk', {}, { caller: anonymous })), 'OK')
})

test.run()
