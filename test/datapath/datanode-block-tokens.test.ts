/**
 * Goal: a datanode with security.enabled=1 checks a block token on every chunk write and read,
 * putBlock and getBlock (datapath/datanode/block-tokens.ts): none, another block's, a read
 * token for a write, expired, forged and unknown-key tokens are refused with
 * BLOCK_TOKEN_VERIFICATION_FAILED saying why; a valid one works; a token of a key the SCM
 * made after the datanode's last fetch verifies (it fetches once more), and one of the
 * rotated-out key still does until that key expires.
 * Method: one real datanode on loopback (plain HTTP: the caller shows no certificate, so
 * nobody is exempt) whose SCM is a small RPC app answering register, heartbeat and
 * getSecretKeys from keys this test makes; EC replica writes (standalone, no pipeline group)
 * through the client's datanode-io with the tokens signed here.
 */
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { mkdtempSync, rmSync } from 'node:fs'
import { randomBytes } from 'node:crypto'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { loadConfig } from '../../core/config.ts'
import type { O3Error } from '../../core/errors.ts'
import { serveApp } from '../../core/http/serve.ts'
import { ServiceMetrics } from '../../core/metrics.ts'
import { RpcClient } from '../../core/rpc/client.ts'
import { createServiceApp } from '../../core/rpc/server.ts'
import { signBlockToken, type BlockTokenMode } from '../../core/security/block-token.ts'
import type { SecretKey, SecretKeysAnswer } from '../../core/security/secret-keys.ts'
import type { BlockId, ContainerId, DatanodeId, LocalId, Pipeline, PipelineId } from '../../core/wire.ts'
import { readChunk, writeChunkTo } from '../../datapath/client/datanode-io.ts'
import { Datanode } from '../../datapath/datanode/index.ts'

const dir = mkdtempSync(join(tmpdir(), 'o3-dn-tokens-'))
const made = (id: string, createdAtMs: number): SecretKey & { raw: Buffer } => {
  const raw = randomBytes(32)
  return { id, createdAtMs, expiresAtMs: createdAtMs + 3_600_000, secret: raw.toString('base64'), raw }
}
const k1 = made('k1', Date.now())
let answer: SecretKeysAnswer = { current: 'k1', keys: [k1] }
let fetches = 0
const scmApp = createServiceApp({
  service: 'SCM', metrics: new ServiceMetrics('fake_scm'), health: () => ({}),
  handlers: {
    register: () => ({ clusterId: 'CID-0123abcd-0000-4000-8000-000000000001' }),
    heartbeat: () => ({ commands: [] }),
    getSecretKeys: () => { fetches++; return answer },
  },
})
const scm = await serveApp(scmApp, { host: '127.0.0.1', port: 0, name: 'fake SCM' })
const config = loadConfig({ env: {}, overrides: { 'security.enabled': 1, 'security.secretKey.rotateMs': 1000, 'security.blockToken.expiryMs': 1000, 'security.secretKey.expiryMs': 3000, 'datanode.dirs': join(dir, 'dn'), 'datanode.heartbeatIntervalMs': 200 } })
const dn = new Datanode({ config, port: 0, scmAddress: `127.0.0.1:${scm.port}` })
await dn.start()
const node = { id: dn.id, address: dn.address }
const rpc = new RpcClient('Datanode', dn.address)

const RS = 'EC/rs-3-2-64k'
const pipeline: Pipeline = {
  id: 'p-tokens' as PipelineId, replication: RS, state: 'OPEN', createdAtMs: Date.now(),
  nodes: [node, ...[2, 3, 4, 5].map((i) => ({ id: `dn-${i}` as DatanodeId, address: `127.0.0.1:${i}` }))],
}
const blockA = { containerId: 1 as ContainerId, localId: 1 as LocalId }
const blockB = { containerId: 1 as ContainerId, localId: 2 as LocalId }
const data = randomBytes(1000)

function token(b: BlockId, modes: BlockTokenMode[], key: { id: string; raw: Buffer } = k1, expiresAtMs = Date.now() + 60_000): string {
  return signBlockToken({ blockId: b, modes, expiresAtMs, owner: 'alice', keyId: key.id }, { id: key.id, secret: key.raw })
}

const write = (b: BlockId, t?: string) => writeChunkTo(node, {
  blockId: b, pipeline, offset: 0, data, checksums: new Uint8Array(0), checksumType: 'NONE', bytesPerChecksum: 16384,
  replicaIndex: 1, whole: true, commit: true, token: t,
})

async function refusal(p: Promise<unknown>): Promise<string> {
  try {
    await p
  } catch (err) {
    assert.is((err as O3Error).code, 'BLOCK_TOKEN_VERIFICATION_FAILED', (err as Error).message)
    return (err as Error).message
  }
  assert.unreachable('the datanode took it')
  return ''
}

test('a chunk write without a token, with a read token or with another block\'s token is refused; its own write token writes', async () => {
  assert.match(await refusal(write(blockA)), 'Cannot write chunk of block 1:1: no block token')
  assert.match(await refusal(write(blockA, token(blockA, ['read']))), 'does not allow write')
  assert.match(await refusal(write(blockA, token(blockB, ['read', 'write']))), 'is for block 1:2, not 1:1')
  await write(blockA, token(blockA, ['read', 'write']))
})

test('chunk reads and getBlock need a read token of that block; putBlock a write token', async () => {
  await refusal(readChunk(node, blockA, 0, 100))
  await refusal(readChunk(node, blockA, 0, 100, undefined, token(blockB, ['read'])))
  const r = await readChunk(node, blockA, 0, 100, undefined, token(blockA, ['read']))
  assert.ok(Buffer.from(r.data.subarray(0, 100)).equals(data.subarray(0, 100)))
  await refusal(rpc.call('getBlock', { ...blockA }))
  await refusal(rpc.call('getBlock', { ...blockA, token: token(blockB, ['read']) }))
  assert.is((await rpc.call<{ length: number }>('getBlock', { ...blockA, token: token(blockA, ['read']) })).length, 1000)
  const put = (t?: string) => rpc.call('putBlock', { ...blockA, length: 1000, replication: RS, pipelineId: pipeline.id, replicaIndex: 1, blockGroupLength: 1000, ...(t !== undefined ? { token: t } : {}) })
  await refusal(put())
  await refusal(put(token(blockA, ['read'])))
  await put(token(blockA, ['write']))
})

test('expired, forged and unknown-key tokens are refused, saying so', async () => {
  assert.match(await refusal(readChunk(node, blockA, 0, 100, undefined, token(blockA, ['read'], k1, Date.now() - 1))), 'expired')
  assert.match(await refusal(readChunk(node, blockA, 0, 100, undefined, token(blockA, ['read'], { id: 'k1', raw: randomBytes(32) }))), 'forged')
  const valid = token(blockA, ['read'])
  const widened = Buffer.from(JSON.stringify({ blockId: blockB, modes: ['read', 'write'], expiresAtMs: Date.now() + 60_000, owner: 'alice', keyId: 'k1' })).toString('base64url')
  assert.match(await refusal(write(blockB, `${widened}.${valid.split('.')[1]}`)), 'forged')
  const before = fetches
  assert.match(await refusal(readChunk(node, blockA, 0, 100, undefined, token(blockA, ['read'], { id: 'nope', raw: randomBytes(32) }))), 'does not know')
  assert.ok(fetches > before, 'an unknown key id fetched the keys once more')
})

test('after a rotation a new key\'s token verifies at once and the old key\'s until it expires', async () => {
  const k2 = made('k2', Date.now())
  answer = { current: 'k2', keys: [k1, k2] }
  await write(blockB, token(blockB, ['read', 'write'], k2))
  await readChunk(node, blockA, 0, 100, undefined, token(blockA, ['read'], k1))
  // The SCM drops k1 (expired there): once the datanode refreshes, k1 tokens stop working.
  answer = { current: 'k2', keys: [k2] }
  const old = token(blockA, ['read'], k1)
  const deadline = Date.now() + 15_000
  for (;;) {
    try {
      await readChunk(node, blockA, 0, 100, undefined, old)
    } catch (err) {
      assert.match((err as Error).message, 'does not know')
      break
    }
    if (Date.now() > deadline) assert.unreachable('k1 still verifies after the SCM dropped it')
    await new Promise((r) => setTimeout(r, 200))
  }
})

test.after(async () => {
  await dn.stop()
  await scm.close()
  rmSync(dir, { recursive: true, force: true })
})

test.run()
