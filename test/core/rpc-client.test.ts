/**
 * Goal: the RPC client's retries stay bounded in time and its errors say what answered. A
 * service that answers UNAVAILABLE only after its own calls gave up (the OM when no SCM
 * leads) is not asked again once the call's failover time has passed (before, five times
 * over: a PUT waited a minute for its 503); a quick UNAVAILABLE is still retried, and a
 * NOT_LEADER after a frozen leader's timeout still leads to the new leader, also one the
 * client was not given, and so does the frozen leader's own TIMEOUT answered past the failover time (a CLI given one member of an HA group); one address that
 * does not answer in time is not asked again past the failover time; a leader's own
 * refusal (NO_PIPELINE) gets five tries and is what the caller is told; a group that
 * gives up says how each member answered; a server
 * that is no O3 service (an empty 404 from a proxy, an S3 gateway's XML) gives an error
 * naming the call, the status and what it said, never an empty message.
 * Method: node:http servers on loopback answering each request as scripted, counting them.
 */
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { createServer, type Server } from 'node:http'
import { once } from 'node:events'
import type { AddressInfo } from 'node:net'
import { O3Error } from '../../core/errors.ts'
import { RpcClient } from '../../core/rpc/client.ts'

const servers: Server[] = []
test.after(() => { for (const s of servers) { s.closeAllConnections(); s.close() } })

/** A server that answers every request after `delayMs` with `status` and `body`; counts requests. */
async function serve(delayMs: number, status: number, body: string, type = 'application/json'): Promise<{ address: string; requests: () => number }> {
  let n = 0
  const server = createServer((req, res) => {
    n++
    req.resume()
    // unref: a server still 'frozen' keeps no process alive after the tests.
    setTimeout(() => res.writeHead(status, { 'content-type': type }).end(body), delayMs).unref()
  })
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  servers.push(server)
  return { address: `127.0.0.1:${(server.address() as AddressInfo).port}`, requests: () => n }
}

async function failure(p: Promise<unknown>): Promise<O3Error> {
  try {
    await p
  } catch (err) {
    assert.instance(err, O3Error)
    return err as O3Error
  }
  throw new Error('the call succeeded')
}

const unavailable = JSON.stringify({ code: 'UNAVAILABLE', message: 'Cannot allocateBlock: no SCM leader' })

test('an UNAVAILABLE answered after the failover time is not asked again; a quick one is, five times', async () => {
  const slow = await serve(300, 503, unavailable)
  const err = await failure(new RpcClient('OM', slow.address).call('openKey', {}, { idempotent: true, failoverMs: 200 }))
  assert.is(err.code, 'UNAVAILABLE')
  assert.match(err.message, 'no SCM leader')
  assert.is(slow.requests(), 1, 'one try: the service spent the call\'s time already')
  // A group alike: the first member's slow answer ends the call.
  const other = await serve(0, 503, unavailable)
  const group = await failure(new RpcClient('OM', [slow.address, other.address]).call('openKey', {}, { idempotent: true, failoverMs: 200 }))
  assert.is(group.code, 'UNAVAILABLE')
  assert.is(slow.requests() + other.requests(), 2)
  const quick = await serve(0, 503, unavailable)
  await failure(new RpcClient('OM', quick.address).call('openKey', {}, { idempotent: true }))
  assert.is(quick.requests(), 5, 'quick refusals are retried as before')
})

test('a frozen leader past the failover time: the next member\'s NOT_LEADER hint is still followed to the new leader', async () => {
  const frozen = await serve(60_000, 200, '{}')
  const leader = await serve(0, 200, JSON.stringify({ result: 'opened' }))
  const follower = await serve(0, 503, JSON.stringify({ code: 'NOT_LEADER', message: 'Cannot openKey: not the leader', leader: leader.address }))
  const result = await new RpcClient('OM', [frozen.address, follower.address, leader.address]).call('openKey', {}, { idempotent: true, timeoutMs: 300, failoverMs: 200 })
  assert.is(result, 'opened')
  assert.equal([frozen.requests(), follower.requests(), leader.requests()], [1, 1, 1])
})

test('a leader frozen past the failover time answers its proposal\'s TIMEOUT: the call goes on to the next member and the new leader', async () => {
  // As a Raft host answers a proposal it held past RAFT_REQUEST_TIMEOUT_MS (kill -STOP of the OM leader, then -CONT).
  const deposed = await serve(400, 504, JSON.stringify({ code: 'TIMEOUT', message: 'Cannot finish proposal 4418 at raft node 3: no answer in 10000 ms' }))
  const leader = await serve(0, 200, JSON.stringify({ result: 'opened' }))
  const follower = await serve(0, 503, JSON.stringify({ code: 'NOT_LEADER', message: 'Cannot openKey: not the leader', leader: leader.address }))
  const result = await new RpcClient('OM', [deposed.address, follower.address, leader.address], { callerIds: true }).call('openKey', {}, { failoverMs: 200 })
  assert.is(result, 'opened')
  assert.equal([deposed.requests(), follower.requests(), leader.requests()], [1, 1, 1])
  // One address has no one else to ask: its TIMEOUT after the failover time is what the caller is told, after one try.
  const alone = await failure(new RpcClient('OM', deposed.address, { callerIds: true }).call('openKey', {}, { failoverMs: 200 }))
  assert.is(alone.code, 'TIMEOUT')
  assert.is(deposed.requests(), 2)
  // A call that is not safe to send again is not: its outcome is unknown.
  const unsafe = await failure(new RpcClient('OM', [deposed.address, leader.address]).call('openKey', {}, { failoverMs: 200 }))
  assert.is(unsafe.code, 'TIMEOUT')
  assert.equal([deposed.requests(), leader.requests()], [3, 1])
})

test('a client given one member follows its NOT_LEADER to a leader it was not given, and keeps it', async () => {
  const leader = await serve(0, 200, JSON.stringify({ result: 'opened' }))
  const follower = await serve(0, 503, JSON.stringify({ code: 'NOT_LEADER', message: 'Cannot openKey: not the leader', leader: leader.address }))
  const client = new RpcClient('OM', follower.address, { followsLeaders: true })
  assert.is(await client.call('openKey', {}), 'opened')
  assert.equal([follower.requests(), leader.requests()], [1, 1])
  // The next call goes to the leader it learned, at once.
  assert.is(await client.call('openKey', {}), 'opened')
  assert.equal([follower.requests(), leader.requests()], [1, 2])
  // A member naming no address (no leader known): one address, a call not safe to send
  // again, so the caller is told NOT_LEADER after that one request.
  const lost = await serve(0, 503, JSON.stringify({ code: 'NOT_LEADER', message: 'Cannot openKey: not the leader (none known)' }))
  const err = await failure(new RpcClient('OM', lost.address, { followsLeaders: true }).call('openKey', {}, { failoverMs: 200 }))
  assert.is(err.code, 'NOT_LEADER')
  assert.is(lost.requests(), 1)
  // A client that keeps to the member it was given (a datanode's heartbeats to each SCM) does not follow.
  const pinned = await failure(new RpcClient('OM', follower.address).call('openKey', {}))
  assert.is(pinned.code, 'NOT_LEADER')
  assert.is(leader.requests(), 2, 'the leader was not asked by a client without followsLeaders')
})

test('one address that does not answer in time is not asked again past the failover time; a group member\'s timeout is followed by the next member', async () => {
  const hung = await serve(60_000, 200, '{}')
  const t0 = Date.now()
  // (undici's timeouts tick in whole seconds: 1000 ms is the shortest that means what it says.)
  const err = await failure(new RpcClient('SCM', hung.address).call('getContainerLocations', {}, { idempotent: true, timeoutMs: 1000, failoverMs: 100 }))
  assert.is(err.code, 'TIMEOUT')
  assert.is(hung.requests(), 1, 'one try: a hung server cost five whole timeouts')
  assert.ok(Date.now() - t0 < 3000, `gave up in ${Date.now() - t0} ms`)
  // Within the failover time a timed-out try is still tried again (it may have been a pause).
  const before = hung.requests()
  await failure(new RpcClient('SCM', hung.address).call('getContainerLocations', {}, { idempotent: true, timeoutMs: 1000, failoverMs: 2500 }))
  assert.ok(hung.requests() - before >= 2, `${hung.requests() - before} tries within the failover time`)
  const answers = await serve(0, 200, JSON.stringify({ result: 'found' }))
  assert.is(await new RpcClient('SCM', [hung.address, answers.address]).call('getContainerLocations', {}, { idempotent: true, timeoutMs: 1000, failoverMs: 100 }), 'found')
})

test('a group whose leader refuses (NO_PIPELINE): five tries of the leader, about as long as one address takes, and the caller is told NO_PIPELINE, not a follower\'s NOT_LEADER', async () => {
  const leader = await serve(0, 503, JSON.stringify({ code: 'NO_PIPELINE', message: 'Cannot allocate an EC/rs-6-3-1024k block: it needs 9 healthy in-service datanodes with room, 4 are' }))
  const follower = await serve(0, 503, JSON.stringify({ code: 'NOT_LEADER', message: 'Cannot openKey: not the leader', leader: leader.address }))
  const t0 = Date.now()
  const err = await failure(new RpcClient('OM', [follower.address, leader.address]).call('openKey', {}, { idempotent: true }))
  assert.is(err.code, 'NO_PIPELINE')
  assert.match(err.message, 'it needs 9 healthy in-service datanodes')
  assert.equal([leader.requests(), follower.requests()], [5, 1])
  assert.ok(Date.now() - t0 < 3000, `gave up after ${Date.now() - t0} ms (it took 16 s)`)
})

test('a group without a leader: the error says how each member answered, not only the last one tried', async () => {
  const gone = await serve(0, 200, '{}')
  servers.pop()!.close()
  const alone = await serve(0, 503, JSON.stringify({ code: 'NOT_LEADER', message: 'Cannot listKeys: not the leader (none known)', leader: '' }))
  const err = await failure(new RpcClient('OM', [alone.address, gone.address]).call('listKeys', {}, { idempotent: true, failoverMs: 300 }))
  assert.match(err.message, `(gave up on OM.listKeys after `)
  assert.match(err.message, `; ${alone.address}: up, knows no leader, ${gone.address}: unreachable)`)
})

test('a server that is no O3 service: the error names the call, the status and what it said', async () => {
  const empty = await serve(0, 404, '', 'text/plain')
  const e1 = await failure(new RpcClient('OM', empty.address).call('listVolumes', {}))
  assert.is(e1.message, 'OM.listVolumes: HTTP 404 from a server that is not an O3 service')
  const s3 = await serve(0, 403, '<?xml version="1.0"?><Error><Code>AccessDenied</Code></Error>', 'application/xml')
  const e2 = await failure(new RpcClient('OM', s3.address).call('listVolumes', {}))
  assert.is(e2.message, 'OM.listVolumes: HTTP 403 from a server that is not an O3 service: <?xml version="1.0"?><Error><Code>AccessDenied</Code></Error>')
  // JSON with an empty message: the status, not nothing.
  const blank = await serve(0, 500, JSON.stringify({ code: 'INTERNAL_ERROR', message: '' }))
  const e3 = await failure(new RpcClient('OM', blank.address).call('listVolumes', {}))
  assert.is(e3.message, 'OM.listVolumes: HTTP 500')
})

test.run()
