/**
 * Goal: the CA in an SCM group (issue 16): the leader makes the CA once and every SCM holds
 * the same one (ca.crt and the first token alike on each), each SCM serves with its own
 * certificate from it; a service enrolls through whichever SCM leads, its enrollment is
 * replicated (a second one with another key is refused by the next leader too), and it
 * renews through the new leader after the old one stops. Method: three secure SCMs in this
 * process on loopback ports (scm.nodes), LMDB in a temp dir; ServiceIdentity.obtain given
 * every SCM's address.
 */
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { loadConfig } from '../../../core/config.ts'
import { ServiceIdentity } from '../../../core/security/identity.ts'
import { identityOf, verifyIssued } from '../../../core/security/pki.ts'
import { StorageContainerManager } from '../../../control/scm/index.ts'
import { errorCode, freePort, until } from '../../helpers.ts'

const dir = mkdtempSync(join(tmpdir(), 'o3-scm-ca-ha-'))
const base = loadConfig({ env: {}, overrides: { 'security.enabled': 1 } })
const scms = new Map<string, StorageContainerManager>()
let addresses: string[] = []
const isLeader = (scm: StorageContainerManager) => (scm as unknown as { ha: { isLeader(): boolean } }).ha.isLeader()
const obtain = (id: string, extra: { validityMs?: number; token?: string } = {}) => ServiceIdentity.obtain({
  role: 'datanode', id, dir: join(dir, id), hosts: ['127.0.0.1'], scm: addresses, bootstrapToken: extra.token ?? readFileSync(join(dir, 'scm1', 'ca', 'bootstrap-token'), 'utf8').trim(), validityMs: extra.validityMs,
})

test.before(async () => {
  const ports = await Promise.all([1, 2, 3].map(async () => [await freePort(), await freePort()]))
  const nodes = ports.map(([rpc, raft], i) => `scm${i + 1}@127.0.0.1:${rpc}:${raft}`).join(',')
  addresses = ports.map(([rpc]) => `127.0.0.1:${rpc}`)
  for (const i of [1, 2, 3]) scms.set(`scm${i}`, new StorageContainerManager({ config: { ...base, 'scm.dir': join(dir, `scm${i}`), 'scm.nodes': nodes, 'scm.id': `scm${i}` } }))
  await Promise.all([...scms.values()].map((s) => s.start()))
})

test.after(async () => {
  await Promise.all([...scms.values()].map((s) => s.stop()))
  rmSync(dir, { recursive: true, force: true })
})

test('one CA for the group: the same certificate and first token on every SCM, each SCM certified by it', () => {
  const certs = new Set([...scms.values()].map((s) => s.ca!.caCert()))
  assert.is(certs.size, 1)
  const [ca] = certs
  for (const [name, s] of scms) {
    assert.is(readFileSync(join(dir, name, 'ca', 'ca.crt'), 'utf8'), ca)
    assert.is(s.ca!.bootstrapToken(), scms.get('scm1')!.ca!.bootstrapToken())
    assert.equal(identityOf(s.identity!.credentials().cert), { role: 'scm', id: name })
    assert.ok(verifyIssued(s.identity!.credentials().cert, ca, Date.now()))
  }
})

test('enrollment through the leader is replicated; renewal goes on through the next leader', async () => {
  // Short enough to renew within the test, long enough that a loaded CI machine's leader
  // change (the renewal waits for it) ends before it expires (4 s did not, once).
  const id = await obtain('dn-ha', { validityMs: 9000 })
  try {
    const first = id.credentials()
    const [leaderName, leader] = [...scms].find(([, s]) => isLeader(s))!
    await leader.stop()
    scms.delete(leaderName)
    await until('a new SCM leader', () => [...scms.values()].some(isLeader))
    assert.is(await errorCode(obtain('dn-ha', { token: readFileSync(join(dir, 'scm2', 'ca', 'bootstrap-token'), 'utf8').trim() }).then((x) => x.stop())), 'OK', 'the same folder loads, enrolls nothing')
    rmSync(join(dir, 'dn-ha-copy'), { recursive: true, force: true })
    const taken = await ServiceIdentity.obtain({ role: 'datanode', id: 'dn-ha', dir: join(dir, 'dn-ha-copy'), hosts: [], scm: addresses, bootstrapToken: scms.values().next().value!.ca!.bootstrapToken() }).catch((e: { code?: string }) => e)
    assert.is((taken as { code?: string }).code, 'CERTIFICATE_ERROR', 'the new leader knows the identity is enrolled')
    await until('renewed through the new leader', () => id.credentials() !== first, 20_000)
    assert.equal(identityOf(id.credentials().cert), { role: 'datanode', id: 'dn-ha' })
  } finally {
    id.stop()
  }
})

test.run()
