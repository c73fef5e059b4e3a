/**
 * Goal: certificate renewal during a write load loses nothing (issue 16): with certificates
 * that live 6 s, every service (the SCM's self-issued one, the OM's and the datanodes'
 * enrolled ones) renews several times while a client writes RATIS/THREE keys without pause,
 * and every acknowledged key reads back byte for byte. Method: a secure mini cluster in this
 * process (SCM, OM, three datanodes; mutual TLS everywhere) with security.certValidityMs 6000;
 * the client is an administrator with a long-lived user certificate (user certificates do not
 * renew); renewals are counted from the SCM's `ca` table (each renewal replaces the identity's
 * record) and the SCM's own identity.
 */
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { tlsTransport } from '../../core/rpc/transport.ts'
import { O3Client } from '../../datapath/client/index.ts'
import { startMiniCluster, randomBytes } from './mini-cluster.ts'

const VALIDITY_MS = 6000
const LOAD_MS = 15_000
const cluster = await startMiniCluster({ datanodes: 3, overrides: { 'security.enabled': 1, 'security.certValidityMs': VALIDITY_MS } })

test.after(async () => {
  await cluster.dispose()
})

/** Every enrolled identity's current certificate, from the SCM's replicated `ca` table. */
function enrolledCerts(): Map<string, string> {
  const table = (cluster.scm as unknown as { tables: { ca: { getRange(o: { start: string; end: string }): Iterable<{ key: string; value: { cert: string } }> } } }).tables.ca
  return new Map([...table.getRange({ start: 'cert/', end: 'cert0' })].map(({ key, value }) => [key, value.cert]))
}

test('keys written while every service renews its certificate several times all read back', async () => {
  const admin = await cluster.scm.ca!.issueUserCertificate('admin', { validityMs: 3600_000 })
  const client = new O3Client({ om: cluster.omAddress, scm: cluster.scmAddress, transport: tlsTransport(() => admin), chunkSizeBytes: 64 * 1024 })
  await client.createVolume('vol')
  await client.createBucket('vol', 'bkt', { replication: 'RATIS/THREE' })
  const seen = new Map<string, Set<string>>()
  const scmCerts = new Set<string>()
  const sample = () => {
    for (const [k, cert] of enrolledCerts()) seen.set(k, (seen.get(k) ?? new Set()).add(cert))
    scmCerts.add(cluster.scm.identity!.credentials().cert)
  }
  const sampler = setInterval(sample, 200)
  const written: { name: string; seed: number; size: number }[] = []
  try {
    const end = Date.now() + LOAD_MS
    for (let i = 0; Date.now() < end; i++) {
      const size = 1000 + ((i * 7919) % (200 * 1024))
      await client.putKey('vol', 'bkt', `k${i}`, randomBytes(size, i + 1))
      written.push({ name: `k${i}`, seed: i + 1, size })
    }
  } finally {
    clearInterval(sampler)
  }
  sample()
  assert.ok(written.length > 20, `${written.length} keys written`)
  for (const k of written) {
    const got = Buffer.from(await client.getKey('vol', 'bkt', k.name))
    assert.ok(got.equals(randomBytes(k.size, k.seed)), `${k.name} reads back`)
  }
  const roles = [...seen.keys()].map((k) => k.split('/')[1])
  assert.ok(roles.includes('om') && roles.filter((r) => r === 'datanode').length === 3, `enrolled: ${[...seen.keys()].join(', ')}`)
  for (const [k, certs] of seen) assert.ok(certs.size >= 3, `${k} renewed at least twice (${certs.size} certificates seen)`)
  assert.ok(scmCerts.size >= 3, `the SCM renewed its own at least twice (${scmCerts.size})`)
})

test.run()
