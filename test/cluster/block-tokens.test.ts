/**
 * Goal: block tokens end to end (issue 16): with security.enabled=1 the SCM makes and rotates
 * secret keys, the OM puts a token on every block it hands out, the native client sends them
 * (replicated and EC keys write and read), and the datanodes refuse chunk writes and reads,
 * putBlock and getBlock without a valid one: no token, a token for another block, a read
 * token for a write, an expired token, a forged one. Keys written while the key rotates
 * several times all read back.
 * Method: a secure mini cluster (SCM, OM, 5 datanodes, mutual TLS) with a short rotation; the
 * client is the administrator's (a user certificate: not a peer, so no exemption); the
 * refusals are raw datanode calls over that certificate with tokens taken from lookupKey or
 * signed here with the SCM's keys (fetched with an OM certificate); a datanode certificate
 * needs no token.
 */
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { request } from 'undici'
import { urlOf, type Transport } from '../../core/rpc/transport.ts'
import type { KeyInfo } from '../../core/om-wire.ts'
import { O3Error } from '../../core/errors.ts'
import { RpcClient } from '../../core/rpc/client.ts'
import { readBlockToken, signBlockToken } from '../../core/security/block-token.ts'
import type { SecretKeysAnswer } from '../../core/security/secret-keys.ts'
import type { BlockId, KeyLocation } from '../../core/wire.ts'
import { readChunk } from '../../datapath/client/datanode-io.ts'
import { until } from '../helpers.ts'
import { randomBytes, startMiniCluster } from './mini-cluster.ts'

const ROTATE_MS = 1000
const cluster = await startMiniCluster({
  datanodes: 5,
  overrides: {
    'security.enabled': 1, 'scm.safemode.minDatanodes': 5,
    'security.secretKey.rotateMs': ROTATE_MS, 'security.blockToken.expiryMs': 3000, 'security.secretKey.expiryMs': 5000,
  },
})
await cluster.waitOutOfSafeMode()
const client = cluster.client()
/** The administrator's certificate: a user, so the datanodes ask for tokens. */
const admin: Transport = cluster.transport
const scm = new RpcClient('SCM', cluster.scmAddress, { transport: (await cluster.issueIdentity('om', 'om-test')).transport() })
const dn = (address: string, transport = admin) => new RpcClient('Datanode', address, { transport })
const read = (node: { id: string; address: string }, b: BlockId, token?: string) => readChunk(node as never, b, 0, 100, undefined, token, admin)

async function refusal(p: Promise<unknown>): Promise<string> {
  try {
    await p
  } catch (err) {
    assert.is((err as O3Error).code, 'BLOCK_TOKEN_VERIFICATION_FAILED', (err as Error).message)
    return (err as Error).message
  }
  assert.unreachable('the datanode accepted it')
  return ''
}

/** A raw /chunk/write of `data` to block `b` on `address` (no checksums), with `token` if given. */
async function rawWrite(address: string, loc: KeyLocation, b: BlockId, data: Buffer, token?: string): Promise<string> {
  const args = {
    containerId: b.containerId, localId: b.localId, offset: 0, length: data.length, checksumType: 'NONE', bytesPerChecksum: 1024,
    replication: loc.pipeline.replication, pipelineId: loc.pipeline.id, forward: [], whole: false, commit: false,
  }
  const res = await request(urlOf(admin, address, '/chunk/write'), {
    method: 'POST', body: data, dispatcher: admin.dispatcher(),
    headers: { 'x-o3-args': JSON.stringify(args), 'content-type': 'application/octet-stream', ...(token !== undefined ? { 'x-o3-block-token': token } : {}) },
  })
  const body = await res.body.json() as { code?: string; message?: string }
  return `${res.statusCode} ${body.code ?? 'OK'}: ${body.message ?? ''}`
}

let a: KeyInfo, b: KeyInfo

test('keys write and read back with tokens; the OM hands out read tokens on lookup and write tokens on open', async () => {
  await client.createVolume('vol')
  await client.createBucket('vol', 'rep', { replication: 'RATIS/THREE' })
  await client.createBucket('vol', 'ecb', { replication: 'EC/rs-3-2-64k' })
  await client.putKey('vol', 'rep', 'a', randomBytes(300_000, 1))
  await client.putKey('vol', 'rep', 'b', randomBytes(5000, 2))
  await client.putKey('vol', 'ecb', 'e', randomBytes(500_000, 3))
  assert.ok((await client.getKey('vol', 'rep', 'a')).equals(randomBytes(300_000, 1)))
  assert.ok((await client.getKey('vol', 'rep', 'b')).equals(randomBytes(5000, 2)))
  assert.ok((await client.getKey('vol', 'ecb', 'e')).equals(randomBytes(500_000, 3)))
  a = await client.headKey('vol', 'rep', 'a')
  b = await client.headKey('vol', 'rep', 'b')
  const claims = readBlockToken(a.locations[0]!.token)
  assert.equal(claims.modes, ['read'])
  assert.equal(claims.blockId, a.locations[0]!.blockId)
  const opened = await new RpcClient('OM', cluster.omAddress, { transport: admin }).call<{ blocks: { blockId: BlockId; token?: string }[]; clientId: string }>('openKey', { volume: 'vol', bucket: 'rep', key: 'w' })
  assert.equal(readBlockToken(opened.blocks[0]!.token).modes, ['read', 'write'])
  await new RpcClient('OM', cluster.omAddress, { transport: admin }).call('abortKey', { clientId: opened.clientId })
})

test('a datanode refuses a chunk write without a token, and with a read token', async () => {
  const loc = a.locations[0]!
  const fresh = { containerId: loc.blockId.containerId, localId: 999_999_999 } as BlockId
  for (const node of loc.pipeline.nodes) {
    const none = await rawWrite(node.address, loc, fresh, Buffer.alloc(100))
    assert.match(none, /^403 BLOCK_TOKEN_VERIFICATION_FAILED: Cannot write chunk of block .*no block token/)
    const readOnly = await rawWrite(node.address, loc, loc.blockId, Buffer.alloc(100), loc.token)
    assert.match(readOnly, /403 BLOCK_TOKEN_VERIFICATION_FAILED.*does not allow write/)
  }
})

test('a token for block A opens neither chunk reads nor getBlock nor putBlock of block B', async () => {
  const la = a.locations[0]!, lb = b.locations[0]!
  const node = lb.pipeline.nodes[0]!
  assert.match(await refusal(read(node, lb.blockId, la.token)), `is for block ${la.blockId.containerId}:${la.blockId.localId}`)
  await refusal(read(node, lb.blockId))
  await refusal(dn(node.address).call('getBlock', { containerId: lb.blockId.containerId, localId: lb.blockId.localId, token: la.token }))
  await refusal(dn(node.address).call('getBlock', { containerId: lb.blockId.containerId, localId: lb.blockId.localId }))
  await refusal(dn(node.address).call('putBlock', { containerId: lb.blockId.containerId, localId: lb.blockId.localId, length: 1, token: lb.token }))
  // Its own token reads it.
  const r = await read(node, lb.blockId, lb.token)
  assert.ok(Buffer.from(r.data.subarray(0, 100)).equals(randomBytes(5000, 2).subarray(0, 100)))
  const got = await dn(node.address).call<{ length: number }>('getBlock', { containerId: lb.blockId.containerId, localId: lb.blockId.localId, token: lb.token })
  assert.is(got.length, 5000)
  // A datanode's certificate needs no token (forwarding, reconstruction, copies).
  const peer = (await cluster.issueIdentity('datanode', 'dn-test')).transport()
  assert.is((await dn(node.address, peer).call<{ length: number }>('getBlock', { containerId: lb.blockId.containerId, localId: lb.blockId.localId })).length, 5000)
})

test('expired and forged tokens are refused, saying so', async () => {
  const lb = b.locations[0]!
  const node = lb.pipeline.nodes[0]!
  const keys = await scm.call<SecretKeysAnswer>('getSecretKeys', {})
  const current = keys.keys.find((k) => k.id === keys.current)!
  const key = { id: current.id, secret: Buffer.from(current.secret, 'base64') }
  const claims = { blockId: lb.blockId, modes: ['read' as const], owner: 'mallory', keyId: key.id }
  const expired = signBlockToken({ ...claims, expiresAtMs: Date.now() - 1 }, key)
  assert.match(await refusal(read(node, lb.blockId, expired)), 'expired')
  const valid = signBlockToken({ ...claims, expiresAtMs: Date.now() + 60_000 }, key)
  await read(node, lb.blockId, valid)
  const forged = signBlockToken({ ...claims, expiresAtMs: Date.now() + 60_000 }, { id: key.id, secret: Buffer.alloc(32, 7) })
  assert.match(await refusal(read(node, lb.blockId, forged)), 'forged')
  const unknownKey = signBlockToken({ ...claims, keyId: 'no-such-key', expiresAtMs: Date.now() + 60_000 }, { id: 'no-such-key', secret: Buffer.alloc(32, 7) })
  assert.match(await refusal(read(node, lb.blockId, unknownKey)), 'does not know')
  // A widened token (its claims edited, the signature kept) is forged too.
  const [, sig] = valid.split('.')
  const widened = Buffer.from(JSON.stringify({ ...claims, modes: ['read', 'write'], expiresAtMs: Date.now() + 60_000 })).toString('base64url')
  assert.match(await refusal(dn(node.address).call('putBlock', { containerId: lb.blockId.containerId, localId: lb.blockId.localId, length: 1, token: `${widened}.${sig}` })), 'forged')
})

test('keys written while the secret key rotates several times all read back; expired keys are dropped', async () => {
  const first = (await scm.call<SecretKeysAnswer>('getSecretKeys', {})).current
  const data = new Map<string, Buffer>()
  const startedMs = Date.now()
  let n = 0
  // Writers and readers run through at least three rotations.
  while (Date.now() - startedMs < 3.5 * ROTATE_MS) {
    const batch = [0, 1, 2].map((i) => ({ key: `load-${n}-${i}`, bucket: i === 2 ? 'ecb' : 'rep', bytes: randomBytes(20_000 + 7919 * i + n, 100 + n * 3 + i) }))
    await Promise.all(batch.map(async (k) => {
      await client.putKey('vol', k.bucket, k.key, k.bytes)
      data.set(`${k.bucket}/${k.key}`, k.bytes)
    }))
    n++
  }
  const answer = await scm.call<SecretKeysAnswer>('getSecretKeys', {})
  assert.is.not(answer.current, first, 'rotated')
  for (const [path, bytes] of data) {
    const [bucket, key] = path.split('/')
    assert.ok((await client.getKey('vol', bucket!, key!)).equals(bytes), path)
  }
  // Key expiry 5 s, rotation 1 s: no more than 6 keys are live at once, and the first goes.
  await until('the first key dropped', async () => {
    const now = await scm.call<SecretKeysAnswer>('getSecretKeys', {})
    return !now.keys.some((k) => k.id === first) && now.keys.length <= 6
  }, 10_000, 200)
  // A key read now verifies against a key the datanodes learned after the rotation.
  assert.ok((await client.getKey('vol', 'rep', 'b')).equals(randomBytes(5000, 2)))
})

test.after(async () => {
  await cluster.dispose()
})

test.run()
