/**
 * Goal: an RPC to a service answering in this process (local-services.ts) answers as the
 * HTTP route does: the same results, not aliased to the service's own objects; the same
 * errors (an O3Error's code, message, leader and node; anything else INTERNAL_ERROR; an
 * unknown method INVALID_ARGUMENT; a body past RPC_BODY_BYTES_MAX ENTITY_TOO_LARGE), counted
 * under the same method names; no answer within the call's timeout is a TIMEOUT; leaving
 * waits for the calls under way; a signed call, and any call once the service has left, goes
 * over HTTP.
 * Method: one real service app on a loopback port, also registered with serveRpcLocally
 * through a wrapper that counts the local calls; RpcClient calls both ways.
 */
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { O3Error } from '../../core/errors.ts'
import { serveApp } from '../../core/http/serve.ts'
import { RPC_BODY_BYTES_MAX } from '../../core/limits.ts'
import { ServiceMetrics } from '../../core/metrics.ts'
import { RpcClient } from '../../core/rpc/client.ts'
import { localRpc, serveRpcLocally } from '../../core/rpc/local-services.ts'
import { createServiceApp, localServiceCall, type ServiceAppOptions } from '../../core/rpc/server.ts'
import { refusalOf } from '../helpers.ts'

const kept = { list: [1, 2, 3] }
const metrics = new ServiceMetrics('rpclocal')
const service: ServiceAppOptions = {
  service: 'Test',
  metrics,
  health: () => ({}),
  handlers: {
    echo: (a: unknown) => a,
    kept: () => kept,
    refuse: () => { throw new O3Error('NOT_LEADER', 'Cannot answer: not the leader', { leader: '127.0.0.1:1', node: '127.0.0.1:2' }) },
    crash: () => { throw new TypeError('a bug') },
    hang: () => new Promise(() => {}),
    nothing: () => undefined,
  },
}
const listener = await serveApp(createServiceApp(service), { host: '127.0.0.1', port: 0, name: 'rpc local test' })
const address = `127.0.0.1:${listener.port}`
const local = localServiceCall(service)
let localCalls = 0
let leave = serveRpcLocally('Test', address, (method, body) => { localCalls++; return local(method, body) })

/** Runs `call` once over HTTP (the service not registered) and once locally; returns both outcomes. */
async function bothWays<T>(call: (client: RpcClient) => Promise<T>): Promise<{ http: T; local: T }> {
  const client = new RpcClient('Test', address)
  leave()
  const before = localCalls
  const http = await call(client)
  assert.is(localCalls, before, 'over HTTP while not registered')
  leave = serveRpcLocally('Test', address, (method, body) => { localCalls++; return local(method, body) })
  const localOutcome = await call(client)
  assert.ok(localCalls > before, 'locally once registered')
  return { http, local: localOutcome }
}

const failure = (method: string, args: object = {}) => (c: RpcClient) => refusalOf(c.call(method, args)).then((e) => ({ code: e.code, message: e.message, leader: e.leader, node: e.node }))

test('results are the same either way, and a local result is no alias of the service\'s objects', async () => {
  const args = { a: 1, nested: { b: [true, null, 'x'] }, text: 'é ✓' }
  const echo = await bothWays((c) => c.call('echo', args))
  assert.equal(echo.local, echo.http)
  assert.equal(echo.local, args)
  assert.equal((await bothWays((c) => c.call('nothing', {}))).local, null, 'undefined is null, as the route sends it')
  const got = await new RpcClient('Test', address).call<{ list: number[] }>('kept', {})
  got.list.push(4)
  assert.equal(kept.list, [1, 2, 3], 'the caller changed its copy, not the service\'s object')
})

test('errors are the same either way: an O3Error\'s code, message, leader and node; anything else INTERNAL_ERROR; an unknown method', async () => {
  const refused = await bothWays(failure('refuse'))
  assert.equal(refused.local, refused.http)
  assert.equal(refused.local, { code: 'NOT_LEADER', message: 'Cannot answer: not the leader', leader: '127.0.0.1:1', node: '127.0.0.1:2' })
  const crashed = await bothWays(failure('crash'))
  assert.equal(crashed.local, crashed.http)
  assert.is(crashed.local.code, 'INTERNAL_ERROR')
  const unknown = await bothWays(failure('nosuch'))
  assert.equal(unknown.local, unknown.http)
  assert.is(unknown.local.code, 'INVALID_ARGUMENT')
  const big = await bothWays(failure('echo', { pad: 'x'.repeat(RPC_BODY_BYTES_MAX) }))
  assert.is(big.local.code, 'ENTITY_TOO_LARGE')
  assert.is(big.http.code, 'ENTITY_TOO_LARGE')
})

test('a local call is counted as the route counts it', async () => {
  const count = async (method: string, code: string) => {
    const m = new RegExp(`^o3_rpclocal_rpc_requests_total\\{method="${method}",code="${code}"[^}]*\\} (\\d+)$`, 'm').exec(await metrics.text())
    return Number(m?.[1] ?? 0)
  }
  const [echo, refused, unknown] = [await count('echo', 'OK'), await count('refuse', 'NOT_LEADER'), await count('unknown', 'INVALID_ARGUMENT')]
  const client = new RpcClient('Test', address)
  const before = localCalls
  await client.call('echo', {})
  await refusalOf(client.call('refuse', {}))
  await refusalOf(client.call('madeUp', {}))
  assert.is(localCalls - before, 3 + 0, 'all three locally (NOT_LEADER from one address is not followed)')
  assert.is(await count('echo', 'OK'), echo + 1)
  assert.is(await count('refuse', 'NOT_LEADER'), refused + 1)
  assert.is(await count('unknown', 'INVALID_ARGUMENT'), unknown + 1, 'a made-up method is counted as unknown')
})

test('no answer within the call\'s timeout is a TIMEOUT, as over HTTP', async () => {
  const before = localCalls
  const err = await refusalOf(new RpcClient('Test', address).call('hang', {}, { timeoutMs: 200 }))
  assert.is(err.code, 'TIMEOUT')
  assert.is(localCalls, before + 1, 'given up locally, not over HTTP')
})

test('leaving waits for the local calls under way, as a listener\'s close waits for its requests', async () => {
  let finish!: () => void
  const slow = localServiceCall({ ...service, handlers: { slow: () => new Promise<string>((resolve) => { finish = () => resolve('done') }) } })
  const leaveSlow = serveRpcLocally('Slow', address, slow)
  const call = new RpcClient('Slow', address).call('slow', {})
  await new Promise((r) => setTimeout(r, 20))
  let left = false
  const leaving = leaveSlow().then(() => { left = true })
  assert.is(localRpc('Slow', address), undefined, 'no new call arrives once leaving')
  await new Promise((r) => setTimeout(r, 50))
  assert.is(left, false, 'still waiting for the call under way')
  finish()
  assert.is(await call, 'done')
  await leaving
  assert.ok(left)
})

test('a signed call goes over HTTP; so does every call once the service has left', async () => {
  const before = localCalls
  const signed = new RpcClient('Test', address, { signer: () => ({ 'x-test-signature': 'yes' }) })
  assert.equal(await signed.call('echo', { s: 1 }), { s: 1 })
  assert.is(localCalls, before, 'signed: over HTTP')
  leave()
  assert.is(localRpc('Test', address), undefined)
  assert.equal(await new RpcClient('Test', address).call('echo', { after: 1 }), { after: 1 })
  assert.is(localCalls, before, 'left: over HTTP')
})

test.after(async () => {
  leave()
  await listener.close()
})

test.run()
