/**
 * Tests: the datanode's block-token check as Datanode.blockTokenCheck runs it
 * (datapath/datanode/block-tokens.ts BlockTokenGuard.asCheck). Goal: each block route asks
 * its mode of the token for its block, listBlock a token of that container, watchForCommit
 * nothing; datanode and SCM peers and a guard with security off admit everything; refusals
 * name the route and the block. Method: a guard whose SCM fetch answers keys made here.
 */
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { randomBytes } from 'node:crypto'
import type { O3Error } from '../../../core/errors.ts'
import { signBlockToken, type BlockTokenMode } from '../../../core/security/block-token.ts'
import type { RpcContext } from '../../../core/security/caller.ts'
import type { BlockId } from '../../../core/wire.ts'
import { BlockTokenGuard } from '../../../datapath/datanode/block-tokens.ts'

const secret = randomBytes(32)
const nowMs = Date.now()
const answer = { current: 'k1', keys: [{ id: 'k1', createdAtMs: nowMs, expiresAtMs: nowMs + 3_600_000, secret: secret.toString('base64') }] }
const guard = new BlockTokenGuard({ enabled: true, name: 'test', rotateMs: 3_600_000, fetch: async () => answer })
guard.start()
const check = guard.asCheck()
const user: RpcContext = { caller: { kind: 'user', user: 'alice' } }
const block = { containerId: 3, localId: 9 }
const token = (b: { containerId: number; localId: number }, modes: BlockTokenMode[]) =>
  signBlockToken({ blockId: b as BlockId, modes, expiresAtMs: Date.now() + 60_000, owner: 'alice', keyId: 'k1' }, { id: 'k1', secret })

async function refusal(p: Promise<unknown> | void): Promise<string> {
  try {
    await p
  } catch (err) {
    assert.is((err as O3Error).code, 'BLOCK_TOKEN_VERIFICATION_FAILED')
    return (err as Error).message
  }
  assert.unreachable('admitted')
  return ''
}

test('asCheck(): each block route asks its mode of a token for its own block', async () => {
  await check(user, 'writeChunk', block, 'WRITE', token(block, ['read', 'write']))
  await check(user, 'putBlock', block, 'WRITE', token(block, ['write']))
  await check(user, 'readChunk', block, 'READ', token(block, ['read']))
  await check(user, 'getBlock', block, 'READ', token(block, ['read']))
  assert.match(await refusal(check(user, 'putBlock', block, 'WRITE', token(block, ['read']))), 'Cannot commit block 3:9: the block token for block 3:9 does not allow write')
  assert.match(await refusal(check(user, 'writeChunk', block, 'WRITE', undefined)), 'Cannot write chunk of block 3:9: no block token')
  assert.match(await refusal(check(user, 'getBlock', block, 'READ', token({ containerId: 3, localId: 10 }, ['read']))), 'Cannot get block 3:9: the block token is for block 3:10, not 3:9')
})

test('asCheck(): listBlock takes a token of any block of that container; watchForCommit needs none', async () => {
  await check(user, 'listBlock', { containerId: 3, localId: undefined }, 'READ', token({ containerId: 3, localId: 1 }, ['read']))
  assert.match(await refusal(check(user, 'listBlock', { containerId: 4, localId: undefined }, 'READ', token({ containerId: 3, localId: 1 }, ['read']))), 'Cannot list the blocks of container 4: the block token is for a block of container 3, not 4')
  await refusal(check(user, 'listBlock', { containerId: 3, localId: undefined }, 'READ', undefined))
  await check(user, 'watchForCommit', undefined, 'WRITE', undefined)
})

test('check(): datanode and SCM peers pass without a token; other services do not; security off admits all', async () => {
  await guard.check({ kind: 'service', role: 'datanode', id: 'dn1' }, undefined, block as BlockId, 'write', 'write')
  await guard.check({ kind: 'service', role: 'scm', id: 'scm1' }, undefined, block as BlockId, 'read', 'read')
  await refusal(guard.check({ kind: 'service', role: 'om', id: 'om1' }, undefined, block as BlockId, 'read', 'read'))
  await refusal(guard.check({ kind: 'anonymous' }, undefined, block as BlockId, 'read', 'read'))
  const off = new BlockTokenGuard({ enabled: false, name: 'off', rotateMs: 1000, fetch: async () => { throw new Error('not asked') } })
  await off.asCheck()(user, 'writeChunk', block, 'WRITE', undefined)
})

test.after(() => guard.stop())

test.run()
