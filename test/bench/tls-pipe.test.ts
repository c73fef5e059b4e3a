/**
 * Goal: the benchmark's TLS-alone figure measures what it says: bytes through a real TLS 1.3
 * connection beside plain TCP, and full handshakes. Method: measureTlsPipe on loopback with a
 * CA and certificate from core/security/pki.ts, a few MiB; checks shapes, never speeds.
 */
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { createRootCa, generateKeyPair, issueCertificate } from '../../core/security/pki.ts'
import { measureTlsPipe } from '../../bench/tls-pipe.ts'

test('measureTlsPipe() moves the bytes over plain TCP and TLS 1.3 and times handshakes', async () => {
  const nowMs = Date.now()
  const ca = await createRootCa({ clusterId: 'bench-test', nowMs, validityMs: 3600_000 })
  const keys = await generateKeyPair()
  const cert = await issueCertificate({ ca: { cert: ca.cert, privateKey: ca.privateKey }, publicKey: keys.publicKey, identity: { role: 's3g', id: 't' }, hosts: ['127.0.0.1', 'localhost'], nowMs, validityMs: 3600_000 })
  const f = await measureTlsPipe({ bytes: 4 * 1024 * 1024, handshakes: 3, tls: { key: keys.privateKey, cert, ca: ca.cert } })
  assert.match(f.tls.cipher, /^TLSv1\.3 /)
  for (const x of [f.plain.mbPerSec, f.tls.mbPerSec, f.handshakeCpuUs]) assert.ok(Number.isFinite(x) && x > 0, String(x))
  assert.ok(f.tls.cpuMsPerMiB >= 0 && f.plain.cpuMsPerMiB >= 0)
})

test.run()
