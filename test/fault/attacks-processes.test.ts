/**
 * Goal: issue 16's attacks, replayed against `o3 local --secure --processes` (every service its
 * own process, mutual TLS between them) as an attacker on the same host would: raw HTTPS with
 * no credentials, with the attacker's own user key pair against another user's secret, with a
 * certificate from the attacker's own CA, or with a real datanode's certificate (read from its
 * disk) speaking for another datanode. Each is refused with its typed error and changes nothing:
 * alice's secret unchanged and unrevealed, her object read back through the S3 gateway with the
 * same bytes and ETag, every replica intact, every datanode id still at its real address.
 * Method: spawn bin/o3.js local --secure --processes --json; the administrator (DATA/admin.pem)
 * makes alice's and bob's key pairs; alice writes over S3 (https, trusting DATA/ca.pem); the
 * attacks ((1), (2), (3), (5), (6), (7), (8)) are undici requests (test/cluster/attack-requests.ts).
 */
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { spawn, type ChildProcess } from 'node:child_process'
import { randomBytes as cryptoRandom } from 'node:crypto'
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs'
import { Agent as HttpsAgent } from 'node:https'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { request } from 'undici'
import { CreateBucketCommand, GetObjectCommand, PutObjectCommand, S3Client } from '@aws-sdk/client-s3'
import { NodeHttpHandler } from '@smithy/node-http-handler'
import { PLAIN_TRANSPORT, tlsTransport, urlOf, type Transport } from '../../core/rpc/transport.ts'
import { enrollProof, parseBootstrapToken } from '../../core/security/enrollment.ts'
import { generateKeyPair, identityOf, type ServiceRole } from '../../core/security/pki.ts'
import type { UserCredentials } from '../../core/security/request-signing.ts'
import type { KeyInfo, S3Secret } from '../../core/om-wire.ts'
import type { KeyLocation } from '../../core/wire.ts'
import { O3Client } from '../../datapath/client/index.ts'
import { claimsOf, craftToken, foreignCert as foreignCertOf, noPlainAnswer, post, refused as check, repointed, rpc, strangerOf, type Answer } from '../cluster/attack-requests.ts'
import { randomBytes } from '../helpers.ts'

const o3 = fileURLToPath(new URL('../../../bin/o3.js', import.meta.url))
const dataDir = mkdtempSync(join(tmpdir(), 'o3-attack-'))
const env = { ...process.env, O3_LOG: 'warn', O3_DATANODE_HEARTBEATINTERVALMS: '300', O3_SCM_HEARTBEAT_STALEMS: '3000', O3_SCM_HEARTBEAT_DEADMS: '6000' }

interface Printed {
  scm: string; om: string; s3: string; datanodes: string[]
  secure: { caFile: string; admin: string; certFile: string; keyFile: string }
}

const local: ChildProcess = spawn(process.execPath, [o3, 'local', '--secure', '--processes', '--datanodes', '3', '--ports', 'free', '--data', dataDir, '--json'], { env, stdio: ['ignore', 'pipe', 'pipe'] })
let errText = ''
local.stderr!.on('data', (d) => (errText += d))
const printed: Printed = await new Promise((resolve, reject) => {
  let out = ''
  local.stdout!.on('data', (d) => { out += d; try { resolve(JSON.parse(out)) } catch { /* not whole yet */ } })
  local.once('exit', (code) => reject(new Error(`o3 local --secure --processes exited ${code}: ${errText.slice(-2000)}`)))
})
const ca = readFileSync(printed.secure.caFile, 'utf8')
const host = printed.om.split(':')[0]!
const adminTransport = tlsTransport(() => ({ ca, cert: readFileSync(printed.secure.certFile, 'utf8'), key: readFileSync(printed.secure.keyFile, 'utf8') }))
const admin = new O3Client({ om: printed.om, scm: printed.scm, transport: adminTransport })
const stranger = strangerOf(ca)
const foreignCert = (role: ServiceRole, id: string) => foreignCertOf(ca, role, id, [host, '127.0.0.1', 'localhost'])

/** A real datanode's certificate and key, as they lie in its data folder (<datanode.dirs>[0]/security). */
interface OnDisk { id: string; address: string; transport: Transport }
function datanodesOnDisk(): OnDisk[] {
  const out: OnDisk[] = []
  for (const f of readdirSync(join(dataDir, 'conf')).filter((n) => n.startsWith('datanode-'))) {
    const c = JSON.parse(readFileSync(join(dataDir, 'conf', f), 'utf8')) as Record<string, unknown>
    const dir = String(c['datanode.dirs']).split(',')[0]!.trim()
    const security = join(dir, 'security')
    if (!existsSync(join(security, 'cert.pem'))) continue
    const cert = readFileSync(join(security, 'cert.pem'), 'utf8')
    const key = readFileSync(join(security, 'key.pem'), 'utf8')
    out.push({ id: identityOf(cert)!.id, address: `${c.host}:${c['datanode.port']}`, transport: tlsTransport(() => ({ ca, cert, key })) })
  }
  return out
}
const onDisk = datanodesOnDisk()

// --- the victim -----------------------------------------------------------------------------

const alice: S3Secret = await admin.getS3Secret('alice')
const bob: S3Secret = await admin.getS3Secret('bob')
const aliceKeys: UserCredentials = { accessKey: alice.awsAccessKey, secret: alice.awsSecret }
const bobKeys: UserCredentials = { accessKey: bob.awsAccessKey, secret: bob.awsSecret }
const aliceS3 = new S3Client({
  endpoint: printed.s3, region: 'us-east-1', forcePathStyle: true, maxAttempts: 1,
  credentials: { accessKeyId: alice.awsAccessKey, secretAccessKey: alice.awsSecret },
  requestHandler: new NodeHttpHandler({ httpsAgent: new HttpsAgent({ ca }) }),
})
const BUCKET = 'alice-bkt'
const S3V = 's3v'
const original = randomBytes(200_000, 21)
await aliceS3.send(new CreateBucketCommand({ Bucket: BUCKET }))
const etag = (await aliceS3.send(new PutObjectCommand({ Bucket: BUCKET, Key: 'obj', Body: original }))).ETag!
const keyBefore: KeyInfo = await admin.headKey(S3V, BUCKET, 'obj')
const block = keyBefore.locations[0]! as KeyLocation & { token?: string }
const datanodesBefore = await admin.admin<{ id: string; address: string }[]>('listDatanodes')


function refused(a: Answer, status: number, code: string, what: string): void {
  check(a, status, code, what, [alice.awsSecret])
}

async function replicaBytes(address: string, n: number): Promise<Buffer> {
  const peer = onDisk[0]!.transport
  const res = await request(urlOf(peer, address, '/chunk/read'), {
    method: 'POST', dispatcher: peer.dispatcher(), headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ containerId: block.blockId.containerId, localId: block.blockId.localId, offset: 0, length: n }),
  })
  const body = Buffer.from(await res.body.arrayBuffer())
  assert.is(res.statusCode, 200, `replica on ${address} readable by a peer`)
  return body.subarray(0, n)
}

async function intact(): Promise<void> {
  assert.is((await admin.lookupS3Secret(alice.awsAccessKey)).awsSecret, alice.awsSecret, 'alice keeps her secret')
  const got = await aliceS3.send(new GetObjectCommand({ Bucket: BUCKET, Key: 'obj' }))
  assert.is(got.ETag, etag, 'same ETag')
  assert.ok(Buffer.from(await got.Body!.transformToByteArray()).equals(original), 'same bytes through S3')
  assert.equal((await admin.headKey(S3V, BUCKET, 'obj')).locations.map((l) => l.blockId), keyBefore.locations.map((l) => l.blockId), 'same blocks')
  const n = Math.min(block.length, 4096)
  for (const node of block.pipeline.nodes) assert.ok((await replicaBytes(node.address, n)).equals(Buffer.from(original.subarray(0, n))), `replica on ${node.address} intact`)
  const nodes = await admin.admin<{ id: string; address: string }[]>('listDatanodes')
  for (const d of datanodesBefore) assert.is(nodes.find((x) => x.id === d.id)?.address, d.address, `datanode ${d.id} still at ${d.address}`)
}

test.after(async () => {
  aliceS3.destroy()
  local.kill('SIGTERM')
  await new Promise((r) => (local.exitCode !== null || local.signalCode !== null ? r(undefined) : local.once('exit', r)))
  rmSync(dataDir, { recursive: true, force: true })
})

test('the victim: alice\'s object is on three datanodes, whose certificates lie on their disks', async () => {
  assert.is(block.pipeline.nodes.length, 3)
  assert.is(onDisk.length, 3, 'every datanode keeps its certificate under its data folder')
  await intact()
})

test('(1) OM getS3Secret/revokeS3Secret/lookupS3Secret of alice: no credentials, bob\'s key pair, a forged signature, a datanode\'s or another CA\'s certificate: refused', async () => {
  const om = printed.om
  const calls: [string, object][] = [['OM.getS3Secret', { user: 'alice' }], ['OM.revokeS3Secret', { user: 'alice' }], ['OM.lookupS3Secret', { accessKey: alice.awsAccessKey }]]
  for (const [target, args] of calls) {
    await noPlainAnswer(om, `/rpc/${target}`)
    refused(await rpc(stranger, om, target, args), 401, 'UNAUTHENTICATED', `${target} with no credentials`)
    refused(await rpc(stranger, om, target, args, { sign: bobKeys }), 403, 'PERMISSION_DENIED', `${target} signed by bob`)
    refused(await rpc(stranger, om, target, args, { sign: { accessKey: alice.awsAccessKey, secret: 'x'.repeat(40) } }), 403, 'SIGNATURE_MISMATCH', `${target} forged as alice`)
    refused(await rpc(await foreignCert('user', 'admin'), om, target, args), 401, 'UNAUTHENTICATED', `${target} with another CA's admin certificate`)
    refused(await rpc(onDisk[0]!.transport, om, target, args), 403, 'PERMISSION_DENIED', `${target} with a real datanode's certificate`)
    refused(await rpc(stranger, om, target, args, { sign: bobKeys, headers: { 'x-o3-on-behalf-of': 'alice' } }), 403, 'PERMISSION_DENIED', `${target} signed by bob on behalf of alice`)
  }
  await intact()
})

test('(2) OM deleteKey/renameKey/deleteBucket/lookupKey/addMember on alice\'s things, signed by bob or with a real datanode\'s certificate: PERMISSION_DENIED', async () => {
  const om = printed.om
  for (const [who, t, sign] of [['bob (signed)', stranger, bobKeys], ['a real datanode\'s certificate', onDisk[0]!.transport, undefined]] as const) {
    const o = { sign }
    refused(await rpc(t, om, 'OM.deleteKey', { volume: S3V, bucket: BUCKET, key: 'obj' }, o), 403, 'PERMISSION_DENIED', `deleteKey by ${who}`)
    refused(await rpc(t, om, 'OM.renameKey', { volume: S3V, bucket: BUCKET, key: 'obj', toKey: 'stolen' }, o), 403, 'PERMISSION_DENIED', `renameKey by ${who}`)
    refused(await rpc(t, om, 'OM.deleteBucket', { volume: S3V, bucket: BUCKET }, o), 403, 'PERMISSION_DENIED', `deleteBucket by ${who}`)
    refused(await rpc(t, om, 'OM.lookupKey', { volume: S3V, bucket: BUCKET, key: 'obj' }, o), 403, 'PERMISSION_DENIED', `lookupKey by ${who}`)
    refused(await rpc(t, om, 'OM.addMember', { node: 'om-evil@127.0.0.1:1:2' }, o), 403, 'PERMISSION_DENIED', `OM.addMember by ${who}`)
  }
  await intact()
})

const readArgs = () => JSON.stringify({ containerId: block.blockId.containerId, localId: block.blockId.localId, offset: 0, length: 4096 })
const readAlice = (t: Transport, address: string, token?: string) =>
  post(t, address, '/chunk/read', readArgs(), { 'content-type': 'application/json', ...(token === undefined ? {} : { 'x-o3-block-token': token }) })

test('(3) datanode /chunk/read of alice\'s block: no token, bob\'s token of his own block, a re-pointed or guessed-key token: BLOCK_TOKEN_VERIFICATION_FAILED', async () => {
  const bobClient = new O3Client({ om: printed.om, scm: printed.scm, transport: stranger, credentials: bobKeys })
  // Volumes are the administrators' to make (Ozone); bob owns his.
  await admin.createVolume('bobvol', { owner: 'bob' }).catch(() => undefined)
  await bobClient.createBucket('bobvol', 'bobbkt', { replication: 'RATIS/THREE' }).catch(() => undefined)
  await bobClient.putKey('bobvol', 'bobbkt', 'mine', randomBytes(5000, 3))
  const mine = (await bobClient.headKey('bobvol', 'bobbkt', 'mine')).locations[0]! as KeyLocation & { token?: string }
  const theirs = { containerId: block.blockId.containerId, localId: block.blockId.localId }
  for (const node of block.pipeline.nodes) {
    await noPlainAnswer(node.address, '/chunk/read')
    refused(await readAlice(stranger, node.address), 403, 'BLOCK_TOKEN_VERIFICATION_FAILED', `read on ${node.address} without a token`)
    refused(await readAlice(await foreignCert('datanode', onDisk[1]!.id), node.address), 403, 'BLOCK_TOKEN_VERIFICATION_FAILED', 'read with another CA\'s datanode certificate')
    refused(await readAlice(stranger, node.address, mine.token), 403, 'BLOCK_TOKEN_VERIFICATION_FAILED', 'read with bob\'s token of another block')
    refused(await readAlice(stranger, node.address, repointed(mine.token!, theirs)), 403, 'BLOCK_TOKEN_VERIFICATION_FAILED', 'read with a re-pointed token')
    refused(await readAlice(stranger, node.address, craftToken({ ...claimsOf(mine.token!), blockId: theirs }, cryptoRandom(32))), 403, 'BLOCK_TOKEN_VERIFICATION_FAILED', 'read with a token of a guessed key')
  }
  // Alice's own token reads (the refusals were about the token).
  assert.is((await readAlice(stranger, block.pipeline.nodes[0]!.address, block.token)).status, 200, 'the owner\'s token reads')
  await intact()
})

test('(5) SCM deleteBlocks/allocateBlock/closeContainer/datanodeAdmin without an OM or administrator certificate: refused, replicas intact', async () => {
  const scm = printed.scm
  const calls: [string, object][] = [
    ['SCM.deleteBlocks', { blocks: keyBefore.locations.map((l) => l.blockId) }],
    ['SCM.allocateBlock', { size: 1, count: 1, replication: 'RATIS/THREE' }],
    ['SCM.closeContainer', { containerId: block.blockId.containerId }],
    ['SCM.datanodeAdmin', { action: 'decommission', datanodes: [onDisk[1]!.id] }],
  ]
  for (const [target, args] of calls) {
    await noPlainAnswer(scm, `/rpc/${target}`)
    refused(await rpc(stranger, scm, target, args), 401, 'UNAUTHENTICATED', `${target} with no certificate`)
    refused(await rpc(stranger, scm, target, args, { sign: bobKeys }), 401, 'UNAUTHENTICATED', `${target} signed by bob`)
    refused(await rpc(await foreignCert('om', 'om1'), scm, target, args), 401, 'UNAUTHENTICATED', `${target} with another CA's OM certificate`)
    refused(await rpc(onDisk[0]!.transport, scm, target, args), 403, 'PERMISSION_DENIED', `${target} with a real datanode's certificate`)
  }
  await new Promise((r) => setTimeout(r, 1000))
  assert.is((await admin.admin<{ state: string }>('getContainer', { containerId: block.blockId.containerId })).state, 'OPEN', 'the container was not closed')
  await intact()
})

test('(6) SCM register/heartbeat as an existing datanode: no certificate, another real datanode\'s, another CA\'s naming it: refused, its id still at its address', async () => {
  const scm = printed.scm
  const victim = onDisk[1]!
  const forged = { id: victim.id, address: '127.0.0.1:1', volumes: [] }
  refused(await rpc(stranger, scm, 'SCM.register', forged), 401, 'UNAUTHENTICATED', 'register with no certificate')
  refused(await rpc(stranger, scm, 'SCM.heartbeat', { id: victim.id }), 401, 'UNAUTHENTICATED', 'heartbeat with no certificate')
  refused(await rpc(onDisk[0]!.transport, scm, 'SCM.register', forged), 403, 'PERMISSION_DENIED', 'register with another datanode\'s certificate')
  refused(await rpc(onDisk[0]!.transport, scm, 'SCM.heartbeat', { id: victim.id }), 403, 'PERMISSION_DENIED', 'heartbeat with another datanode\'s certificate')
  const evil = await foreignCert('datanode', victim.id)
  refused(await rpc(evil, scm, 'SCM.register', forged), 401, 'UNAUTHENTICATED', 'register with another CA\'s certificate naming the victim')
  refused(await rpc(evil, scm, 'SCM.heartbeat', { id: victim.id }), 401, 'UNAUTHENTICATED', 'heartbeat with another CA\'s certificate naming the victim')
  await intact()
})

/** A service's settings as `o3 local --processes` wrote them (DATA/conf/<name>.json). */
const confOf = (name: string) => JSON.parse(readFileSync(join(dataDir, 'conf', `${name}.json`), 'utf8')) as Record<string, string | number>

async function enroll(role: string, id: string, token: { id: string; secret: string }): Promise<Answer> {
  const keys = await generateKeyPair()
  const r = { role, id, publicKey: keys.publicKey, hosts: [host], validityMs: 0, nonce: cryptoRandom(16).toString('hex'), timeMs: Date.now(), tokenId: token.id }
  return rpc(stranger, printed.scm, 'SCM.enroll', { ...r, proof: enrollProof(token.secret, r) })
}

test('(7) SCM enroll with a guessed token secret, an unknown token, or (with the real token) as an existing datanode: CERTIFICATE_ERROR', async () => {
  const real = parseBootstrapToken(readFileSync(join(String(confOf('scm')['scm.dir']), 'ca', 'bootstrap-token'), 'utf8'))
  refused(await enroll('datanode', 'dn-attacker', { id: real.id, secret: cryptoRandom(32).toString('base64url') }), 403, 'CERTIFICATE_ERROR', 'enroll with a guessed secret')
  refused(await enroll('datanode', 'dn-attacker', { id: cryptoRandom(8).toString('hex'), secret: real.secret }), 403, 'CERTIFICATE_ERROR', 'enroll with an unknown token id')
  refused(await enroll('datanode', onDisk[1]!.id, real), 403, 'CERTIFICATE_ERROR', 'enroll again as an existing datanode')
  refused(await enroll('user', 'admin', real), 403, 'CERTIFICATE_ERROR', 'enroll as the administrator with a service token')
  await intact()
})

test('(8) Raft messages to the OM, the SCM and a pipeline without the role\'s certificate: refused', async () => {
  const denied = (s: number) => s === 401 || s === 403
  const coup = JSON.stringify({ messages: [{ type: 'MsgVote', from: 'evil', to: 'om1', term: 1_000_000, index: 1_000_000, logTerm: 1_000_000 }] })
  for (const [name, role] of [['om', 'om'], ['scm', 'scm']] as const) {
    const c = confOf(name)
    const address = `${c.host}:${c[`${name}.raft.port`]}`
    const status = async (t: Transport) => (await post(t, address, '/raft/messages', coup, { 'content-type': 'application/json' })).status
    const tls = await status(stranger).then(() => true, () => false)
    if (!tls) { assert.ok(denied(await status(PLAIN_TRANSPORT)), `${name} Raft (plain port) takes no message`); continue }
    assert.ok(denied(await status(stranger)), `${name} Raft with no certificate`)
    assert.ok(denied(await status(await foreignCert(role, `${role}1`))), `${name} Raft with another CA's ${role} certificate`)
    assert.ok(denied(await status(onDisk[0]!.transport)), `${name} Raft with a real datanode's certificate`)
    assert.ok(denied(await status(adminTransport)), `${name} Raft with the administrator's certificate`)
  }
  for (const node of block.pipeline.nodes) {
    const path = `/pipeline/${block.pipeline.id}/raft/messages`
    refused(await post(stranger, node.address, path, '{"messages":[]}', { 'content-type': 'application/json' }), 401, 'UNAUTHENTICATED', 'pipeline Raft with no certificate')
    refused(await post(await foreignCert('datanode', onDisk[1]!.id), node.address, path, '{"messages":[]}', { 'content-type': 'application/json' }), 401, 'UNAUTHENTICATED', 'pipeline Raft with another CA\'s datanode certificate')
    refused(await post(adminTransport, node.address, path, '{"messages":[]}', { 'content-type': 'application/json' }), 403, 'PERMISSION_DENIED', 'pipeline Raft with the administrator\'s certificate')
  }
  await aliceS3.send(new PutObjectCommand({ Bucket: BUCKET, Key: 'after', Body: randomBytes(10_000, 8) }))
  await intact()
})

test.run()
