/**
 * Goal: the cluster survives what real nodes do: a datanode killed with -9 mid-write, a
 * replica whose disk returns flipped bits, a node that comes back; and with every service
 * killed, `o3 local` stops itself and fails (exit 1), leaving no PID file. Method: `o3 local
 * --processes` with four datanodes as real child processes; kill -9 by the PID file; flip a
 * byte in a real block file; restart the node from its config file; check through the CLI.
 */
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { spawn, spawnSync, execFileSync, type ChildProcess } from 'node:child_process'
import { mkdtempSync, readFileSync, readdirSync, rmSync, statSync, openSync, readSync, writeSync, writeFileSync, closeSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { O3Client } from '../../datapath/client/index.ts'
import { CLIENT_EC_READ_ANSWER_MS, KiB, MiB, RPC_TIMEOUT_MS_DEFAULT } from '../../core/limits.ts'
import type { Pipeline } from '../../core/wire.ts'
import { randomBytes, until } from '../helpers.ts'
import { Readable } from 'node:stream'
import { CreateBucketCommand, PutObjectCommand, S3Client } from '@aws-sdk/client-s3'

const o3 = fileURLToPath(new URL('../../../bin/o3.js', import.meta.url))
const dataDir = mkdtempSync(join(tmpdir(), 'o3-fault-'))
const env = { ...process.env, O3_SCM_BLOCK_SIZEBYTES: String(MiB), O3_DATANODE_HEARTBEATINTERVALMS: '300', O3_SCM_HEARTBEAT_STALEMS: '3000', O3_SCM_HEARTBEAT_DEADMS: '6000' }
let local: ChildProcess
let endpoints: { scm: string; om: string; s3: string; datanodes: string[]; pids: Record<string, number> }
let client: O3Client
const restarted: ChildProcess[] = []

function o3json<T>(...args: string[]): T {
  return JSON.parse(execFileSync(process.execPath, [o3, ...args, '--om', endpoints.om, '--scm', endpoints.scm, '--json'], { encoding: 'utf8' })) as T
}



function datanodeName(address: string): string {
  for (const f of readdirSync(join(dataDir, 'conf'))) {
    const c = JSON.parse(readFileSync(join(dataDir, 'conf', f), 'utf8')) as Record<string, unknown>
    if (f.startsWith('datanode-') && `${c.host}:${c['datanode.port']}` === address) return f.replace('.json', '')
  }
  throw new Error(`no datanode at ${address}`)
}

function findBlockFile(name: string, containerId: number, localId: number): string {
  const root = join(dataDir, name, 'o3')
  const [cid] = readdirSync(root).filter((d) => d.startsWith('CID-'))
  return join(root, cid, 'current', `containerDir${Math.floor(containerId / 512) % 256}`, String(containerId), 'chunks', `${localId}.block`)
}

/** Starts `o3 local --processes` on dataDir (again, after a stop: on its data) and waits for its endpoints. */
async function startLocal(): Promise<void> {
  local = spawn(process.execPath, [o3, 'local', '--processes', '--datanodes', '4', '--ports', 'free', '--data', dataDir, '--json'], { env, stdio: ['ignore', 'pipe', 'ignore'] })
  let out = ''
  endpoints = await new Promise((resolve, reject) => {
    local.stdout!.on('data', (d) => { out += d; try { resolve(JSON.parse(out)) } catch { /* not all of it yet */ } })
    local.once('exit', (code) => reject(new Error(`o3 local exited ${code}`)))
  })
}

test.before(async () => {
  await startLocal()
  client = new O3Client({ om: endpoints.om, scm: endpoints.scm, chunkSizeBytes: 256 * KiB })
  await client.createVolume('vol')
  await client.createBucket('vol', 'bkt', { replication: 'RATIS/THREE' })
})

test.after(async () => {
  for (const p of restarted) p.kill('SIGKILL')
  if (local.exitCode === null && local.signalCode === null) {
    const exited = new Promise((r) => local.once('exit', r))
    local.kill('SIGTERM')
    await exited
  }
  rmSync(dataDir, { recursive: true, force: true })
})

const before = randomBytes(3 * MiB + 5, 1)
const big = randomBytes(24 * MiB + 3, 2)
let victim = ''

test('o3 local --processes runs every service, the S3 gateway included, with a PID file each', async () => {
  for (const name of ['scm', 'om', 's3g', 'datanode-1', 'datanode-4']) {
    const pid = Number(readFileSync(join(dataDir, 'pids', `${name}.pid`), 'utf8'))
    assert.ok(pid > 0 && pid === endpoints.pids[name], name)
    process.kill(pid, 0)
  }
  const anonymous = await fetch(`${endpoints.s3}/`)
  assert.is(anonymous.status, 403)
  assert.match(await anonymous.text(), /<Code>AccessDenied<\/Code>/)
})

test('kill -9 of a pipeline datanode mid-write: the write completes, every byte there', async () => {
  await client.putKey('vol', 'bkt', 'before', before)
  // The datanode in every RATIS/THREE pipeline is surely in the one being written.
  const threes = o3json<Pipeline[]>('admin', 'pipeline', 'list').filter((p) => p.replication === 'RATIS/THREE' && p.state === 'OPEN')
  assert.ok(threes.length >= 2, 'four datanodes make at least two RATIS/THREE pipelines')
  const common = threes[0].nodes.find((n) => threes.every((p) => p.nodes.some((m) => m.id === n.id)))!
  victim = datanodeName(common.address)
  const w = await client.createKey('vol', 'bkt', 'big')
  let killed = false
  for (let at = 0; at < big.length; at += 128 * KiB) {
    if (!killed && at >= 5 * MiB) {
      process.kill(Number(readFileSync(join(dataDir, 'pids', `${victim}.pid`), 'utf8')), 'SIGKILL')
      killed = true
    }
    if (!w.write(big.subarray(at, at + 128 * KiB))) await new Promise((r) => w.once('drain', r))
  }
  w.end()
  const key = await w.result
  assert.is(key.size, big.length)
  // Where the rest goes depends on the victim's role (issue 12): a follower's pipeline keeps
  // committing by majority, so the key may stay on it; a leader's elects another or the
  // client moves on to a new block elsewhere. Either way nothing acknowledged is lost.
  // (test/fault/pipeline-processes checks each case on its own.)
  assert.ok((await client.getKey('vol', 'bkt', 'big')).equals(big))
})

test('with one replica\'s datanode gone, reads still succeed', async () => {
  const info = o3json<{ blocks: { datanodes: { address: string }[] }[] }>('sh', 'key', 'info', '/vol/bkt/before')
  assert.ok(info.blocks[0].datanodes.some((d) => datanodeName(d.address) === victim), 'the key had a replica on the killed node')
  assert.ok((await client.getKey('vol', 'bkt', 'before')).equals(before))
})

test('a flipped byte in one replica: the read returns the right bytes and the replica is reported', async () => {
  const info = o3json<{ blocks: { containerId: number; localId: number; datanodes: { id: string; address: string }[] }[] }>('sh', 'key', 'info', '/vol/bkt/before')
  const block = info.blocks[0]
  // Readers try replicas in order, skipping the dead one: the first live replica is read first.
  const target = block.datanodes.find((d) => datanodeName(d.address) !== victim)!
  const file = findBlockFile(datanodeName(target.address), block.containerId, block.localId)
  assert.ok(statSync(file).size > 1000)
  const fd = openSync(file, 'r+')
  const one = Buffer.alloc(1)
  readSync(fd, one, 0, 1, 1000)
  one[0] ^= 0xff
  writeSync(fd, one, 0, 1, 1000)
  closeSync(fd)
  assert.ok((await client.getKey('vol', 'bkt', 'before')).equals(before))
  assert.ok((await client.getKey('vol', 'bkt', 'before', { offset: 900, length: 200 })).equals(before.subarray(900, 1100)))
  await until('the corrupt replica to be reported', () => {
    const c = o3json<{ replicas: { datanodeId: string; state: string }[] }>('admin', 'container', 'info', String(block.containerId))
    return c.replicas.some((r) => r.datanodeId === target.id && r.state === 'UNHEALTHY')
  }, 10_000, 200)
})

test('a killed datanode restarted later rejoins', async () => {
  await until('the killed datanode to be noticed', () => o3json<{ address: string; state: string }[]>('admin', 'datanode', 'list').some((d) => datanodeName(d.address) === victim && d.state !== 'HEALTHY'), 20_000, 200)
  const child = spawn(process.execPath, [o3, 'datanode', '--config', join(dataDir, 'conf', `${victim}.json`)], { env, stdio: 'ignore' })
  restarted.push(child)
  await until('the datanode to be HEALTHY again', () => o3json<{ address: string; state: string }[]>('admin', 'datanode', 'list').some((d) => datanodeName(d.address) === victim && d.state === 'HEALTHY'), 20_000, 200)
  assert.ok((await client.getKey('vol', 'bkt', 'big')).equals(big))
})

test('a second datanode or OM on a running one\'s directory is refused, and the running one keeps its address', () => {
  // A datanode still run by `o3 local` (the killed one was restarted by this test, with no PID file).
  const datanode = ['datanode-1', 'datanode-2', 'datanode-3'].find((n) => n !== victim)!
  for (const [name, command, ports] of [[datanode, 'datanode', ['datanode.port']], ['om', 'om', ['om.port', 'om.raft.port']]] as const) {
    // The running service's own settings, on other ports: all that differs is the process.
    const conf = JSON.parse(readFileSync(join(dataDir, 'conf', `${name}.json`), 'utf8')) as Record<string, unknown>
    for (const p of ports) conf[p] = 0
    const file = join(dataDir, `dup-${name}.json`)
    writeFileSync(file, JSON.stringify(conf))
    const r = spawnSync(process.execPath, [o3, command, '--config', file], { env, encoding: 'utf8', timeout: 60_000 })
    assert.ok(r.status !== 0 && r.status !== null, `${name}: the second process exits non-zero (${r.status})`)
    assert.match(r.stderr, new RegExp(`process ${endpoints.pids[name]} uses`), `${name}: it names the running process`)
  }
  const datanodes = o3json<{ address: string }[]>('admin', 'datanode', 'list').map((d) => d.address).sort()
  assert.equal(datanodes, [...endpoints.datanodes].sort(), 'every datanode keeps its address at the SCM')
})

/**
 * Runs `read` with a new client while the datanode listed first for the key's first block is
 * frozen (SIGSTOP): a client that has seen no failure yet asks it first.
 */
async function withFirstFrozen(bucket: string, key: string, read: (reader: O3Client) => Promise<void>): Promise<void> {
  const reader = new O3Client({ om: endpoints.om, scm: endpoints.scm, chunkSizeBytes: 256 * KiB })
  const first = (await reader.headKey('vol', bucket, key)).locations[0].pipeline.nodes[0]
  const name = datanodeName(first.address)
  const pid = name === victim ? restarted.at(-1)!.pid! : Number(readFileSync(join(dataDir, 'pids', `${name}.pid`), 'utf8'))
  process.kill(pid, 'SIGSTOP')
  try {
    await read(reader)
  } finally {
    process.kill(pid, 'SIGCONT')
  }
}

test('a frozen datanode (SIGSTOP) costs a read a hedge, not the RPC timeout: the next replica is asked too and answers', async () => {
  const data = randomBytes(MiB + 7, 3)
  await client.putKey('vol', 'bkt', 'frozen-read', data)
  await withFirstFrozen('bkt', 'frozen-read', async (reader) => {
    const t0 = Date.now()
    assert.ok((await reader.getKey('vol', 'bkt', 'frozen-read')).equals(data), 'the key reads back from the other replicas')
    // Without asking another replica, the frozen one's read would wait its whole timeout first.
    assert.ok(Date.now() - t0 < RPC_TIMEOUT_MS_DEFAULT / 2, `read in ${Date.now() - t0} ms, under half the ${RPC_TIMEOUT_MS_DEFAULT} ms RPC timeout`)
  })
})

test('a frozen datanode (SIGSTOP) holding an EC data replica costs a read CLIENT_EC_READ_ANSWER_MS, not the RPC timeout: its cells are rebuilt from the others', async () => {
  await client.createBucket('vol', 'ecb', { replication: 'EC/rs-2-1-64k' })
  const data = randomBytes(300 * KiB + 11, 4)
  await client.putKey('vol', 'ecb', 'frozen-ec', data)
  // Replica index 1 holds the first data cell: a read of the key starts there.
  await withFirstFrozen('ecb', 'frozen-ec', async (reader) => {
    const t0 = Date.now()
    assert.ok((await reader.getKey('vol', 'ecb', 'frozen-ec')).equals(data), 'the key reads back, its first replica rebuilt')
    const ms = Date.now() - t0
    assert.ok(ms >= CLIENT_EC_READ_ANSWER_MS - 100, `read in ${ms} ms: the frozen replica was waited for first`)
    assert.ok(ms < RPC_TIMEOUT_MS_DEFAULT / 2, `read in ${ms} ms, under half the ${RPC_TIMEOUT_MS_DEFAULT} ms RPC timeout`)
    // The client now plans around it: a second read does not wait again.
    const t1 = Date.now()
    assert.ok((await reader.getKey('vol', 'ecb', 'frozen-ec')).equals(data))
    assert.ok(Date.now() - t1 < CLIENT_EC_READ_ANSWER_MS, `second read in ${Date.now() - t1} ms`)
  })
})

test('SIGTERM of o3 local lets an S3 upload in flight finish: the gateway stops first, while the datanodes and OM still serve', async () => {
  const { s3Key } = endpoints as unknown as { s3Key: { awsAccessKey: string; awsSecret: string } }
  const s3 = new S3Client({ endpoint: endpoints.s3, region: 'us-east-1', forcePathStyle: true, maxAttempts: 1, credentials: { accessKeyId: s3Key.awsAccessKey, secretAccessKey: s3Key.awsSecret } })
  await s3.send(new CreateBucketCommand({ Bucket: 'drain' }))
  const data = randomBytes(4 * MiB + 7, 9)
  // A body that takes about 2 s to arrive: the stop comes in the middle of it.
  async function* slowly(): AsyncGenerator<Buffer> {
    for (let at = 0; at < data.length; at += 256 * KiB) {
      yield data.subarray(at, at + 256 * KiB)
      await new Promise((r) => setTimeout(r, 120))
    }
  }
  const put = s3.send(new PutObjectCommand({ Bucket: 'drain', Key: 'in-flight', Body: Readable.from(slowly()), ContentLength: data.length }))
  await new Promise((r) => setTimeout(r, 500))
  const exited = new Promise((r) => local.once('exit', r))
  local.kill('SIGTERM')
  const answer = await put
  assert.ok(answer.ETag !== undefined, 'the upload was answered 200')
  s3.destroy()
  await exited
  // Started again on the same data (the datanode an earlier test restarted by hand goes too: it holds its directory): the object is there, whole.
  await Promise.all(restarted.map((p) => p.exitCode !== null || p.signalCode !== null ? undefined : new Promise((r) => { p.once('exit', r); p.kill('SIGKILL') })))
  await startLocal()
  const reader = new O3Client({ om: endpoints.om, scm: endpoints.scm })
  assert.ok((await reader.getKey('s3v', 'drain', 'in-flight')).equals(data), 'the object reads back whole after the restart')
})

test('every service killed -9: o3 local stops, fails (exit 1), and leaves no PID file', async () => {
  const exited = new Promise<number | null>((r) => local.once('exit', (code) => r(code)))
  for (const pid of Object.values(endpoints.pids)) {
    try { process.kill(pid, 'SIGKILL') } catch { /* gone already */ }
  }
  const timeout = new Promise<'hung'>((r) => setTimeout(() => r('hung'), 20_000).unref())
  assert.is(await Promise.race([exited, timeout]), 1, 'o3 local stopped once no service was left, and failed')
  assert.equal(readdirSync(join(dataDir, 'pids')), [], 'no PID file left behind')
})

test.run()
