/**
 * Goal: erasure coding as a person uses it from the `o3` command: an EC bucket made with
 * `sh bucket create --replication EC/...` (bad configs refused with a clear one-line message
 * and a non-zero exit; in s3v before any S3 request too), a file put with `--replication EC/xor-2-1-1024k` drawing its progress
 * on a terminal and read back byte for byte, `sh key info` listing its block group with each
 * replica's index (table and --json), `admin container info` listing the container's
 * replicas by index, and an rs-6-3 put on five datanodes refused by the SCM with a clear
 * message, a non-zero exit and no key left behind.
 * Method: bin/o3.js as child processes (one on a pseudo-terminal, through util-linux
 * `script`) against a real in-process cluster of five datanodes on free ports.
 */
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { randomBytes } from '../cluster/mini-cluster.ts'
import { CliCluster } from './o3-cli.ts'

const cli = new CliCluster('o3-cli-ec-', { datanodes: 5 })
const { work, run, json, runTty } = cli

type Replica = { id: string; address: string; replicaIndex: number; role: string; replicaBytes: number }
type KeyJson = { size: number; replication: string; blocks: { containerId: number; localId: number; offset: number; length: number; datanodes: Replica[] }[] }

test.before(async () => {
  await cli.start()
  assert.is((await run('sh', 'volume', 'create', '/ecvol')).code, 0)
})
test.after(cli.stop)

test('o3 sh bucket create --replication EC/rs-3-2-1024k makes an EC bucket; bad EC configs are refused with a clear message', async () => {
  const made = await run('sh', 'bucket', 'create', '/ecvol/rs32', '--replication', 'EC/rs-3-2-1024k')
  assert.is(made.code, 0, made.stderr)
  assert.match(made.stdout, 'created bucket /ecvol/rs32 (EC/rs-3-2-1024k)')
  assert.is((await json<{ replication: string }>('sh', 'bucket', 'info', '/ecvol/rs32')).replication, 'EC/rs-3-2-1024k')
  const listed = await run('sh', 'bucket', 'list', '/ecvol')
  assert.match(listed.stdout, /rs32\s+│ EC\/rs-3-2-1024k/)
  for (const [bad, why] of [
    ['EC/rs-3-2-3k', /Cannot parse replication EC\/rs-3-2-3k: cell size must be a multiple of 4k/],
    ['EC/foo', /Cannot parse replication EC\/foo: expected RATIS\/ONE, RATIS\/THREE or EC\/<codec>-<k>-<m>-<cell>k/],
    ['EC/xor-3-2-1024k', /xor has exactly one parity replica/],
    ['EC/rs-3-0-1024k', /data and parity must be at least 1/],
  ] as const) {
    const r = await run('sh', 'bucket', 'create', '/ecvol/bad', '--replication', bad)
    assert.ok(r.code !== 0, `${bad}: a non-zero exit`)
    assert.match(r.stderr, why, bad)
    assert.is(r.stderr.trim().split('\n').length, 1, `${bad}: one line`)
  }
  assert.equal((await json<{ name: string }[]>('sh', 'bucket', 'list', '/ecvol')).map((b) => b.name), ['rs32'], 'no bucket made by a refused create')
  // Any case, as Ozone takes it; stored as the canonical name.
  const upper = await run('sh', 'bucket', 'create', '/ecvol/upper', '--replication', 'ec/RS-3-2-1024K')
  assert.is(upper.code, 0, upper.stderr)
  assert.is((await json<{ replication: string }>('sh', 'bucket', 'info', '/ecvol/upper')).replication, 'EC/rs-3-2-1024k')
  assert.is((await run('sh', 'bucket', 'delete', '/ecvol/upper')).code, 0)
})

test('o3 sh bucket create /s3v/NAME --replication EC/... before any S3 request: the S3 volume is made as the gateway makes it', async () => {
  const r = await run('sh', 'bucket', 'create', '/s3v/photos', '--replication', 'EC/rs-3-2-1024k')
  assert.is(r.code, 0, r.stderr)
  assert.is((await json<{ replication: string }>('sh', 'bucket', 'info', '/s3v/photos')).replication, 'EC/rs-3-2-1024k')
  assert.is((await json<{ owner: string }>('sh', 'volume', 'info', '/s3v')).owner, 's3')
  // Only s3v: any other missing volume is still an error.
  const other = await run('sh', 'bucket', 'create', '/novol/photos', '--replication', 'EC/rs-3-2-1024k')
  assert.ok(other.code !== 0)
  assert.match(other.stderr, 'Volume novol not found (VOLUME_NOT_FOUND)')
})

test('o3 sh key put --replication EC/xor-2-1-1024k draws its progress on a terminal; key get reads it back byte for byte', async () => {
  const src = join(work, 'xor.bin'), dst = join(work, 'xor-out.bin')
  // Past the 8 MiB a progress bar needs, and not whole stripes (2 MiB each): a short last one.
  const data = randomBytes(9 * 1024 * 1024 + 123_457, 21)
  writeFileSync(src, data)
  const put = await runTty('sh', 'key', 'put', '/ecvol/rs32/xor.bin', src, '--replication', 'EC/xor-2-1-1024k')
  assert.is(put.code, 0, put.stdout)
  assert.match(put.stdout, /put \[[█░]+\] 100% \| 9\.1 MiB\/9\.1 MiB/, 'the progress bar reaches 100%')
  assert.match(put.stdout, 'put /ecvol/rs32/xor.bin (9.1 MiB)')
  // Again with --json, on the same terminal: the JSON alone, no bar (freon does the same).
  const quiet = await runTty('sh', 'key', 'put', '/ecvol/rs32/xor.bin', src, '--replication', 'EC/xor-2-1-1024k', '--json')
  assert.is(quiet.code, 0, quiet.stdout)
  assert.not.match(quiet.stdout, /\[[█░]+\]/)
  assert.is((JSON.parse(quiet.stdout) as { size: number }).size, data.length)
  const got = await run('sh', 'key', 'get', '/ecvol/rs32/xor.bin', dst)
  assert.is(got.code, 0, got.stderr)
  assert.ok(readFileSync(dst).equals(data), 'key get gives the bytes put')
  const listed = await json<{ keys: { name: string; replication: string }[] }>('sh', 'key', 'list', '/ecvol/rs32')
  assert.equal(listed.keys, [{ ...listed.keys[0], name: 'xor.bin', replication: 'EC/xor-2-1-1024k' }], 'a key\'s own replication over its bucket\'s')
})

test('o3 sh key info lists each block group with its replicas\' indexes (table and --json); o3 admin container info by index', async () => {
  const src = join(work, 'rs.bin')
  // Bucket default (rs-3-2, 1 MiB cells): two full stripes and 5 bytes.
  const data = randomBytes(6 * 1024 * 1024 + 5, 22)
  writeFileSync(src, data)
  assert.is((await run('sh', 'key', 'put', '/ecvol/rs32/rs.bin', src)).code, 0)
  const info = await json<KeyJson>('sh', 'key', 'info', '/ecvol/rs32/rs.bin')
  assert.is(info.replication, 'EC/rs-3-2-1024k')
  assert.is(info.size, data.length)
  assert.is(info.blocks.length, 1)
  const [group] = info.blocks
  const MiB = 1024 * 1024
  assert.equal(group.datanodes.map((d) => [d.replicaIndex, d.role, d.replicaBytes]), [
    [1, 'data', 2 * MiB + 5], [2, 'data', 2 * MiB], [3, 'data', 2 * MiB], [4, 'parity', 2 * MiB + 5], [5, 'parity', 2 * MiB + 5],
  ])
  assert.is(new Set(group.datanodes.map((d) => d.id)).size, 5, 'five distinct datanodes')
  const table = await run('sh', 'key', 'info', '/ecvol/rs32/rs.bin')
  assert.is(table.code, 0)
  assert.match(table.stdout, /│ block group\s+│ offset\s+│ length\s+│ index\s+│ role\s+│ replica bytes\s+│ datanode/)
  for (const d of group.datanodes) {
    assert.match(table.stdout, new RegExp(`│ ${group.containerId}:${group.localId}\\s+│ 0\\s+│ ${data.length}\\s+│ ${d.replicaIndex}\\s+│ ${d.role}\\s+│ ${d.replicaBytes}\\s+│ ${d.address.replace(/\./g, '\\.')}`))
  }

  type Container = { replication: string; usedBytes: number; blockCount: number; replicas: { datanodeId: string; address: string; replicaIndex: number; blockCount: number; usedBytes: number }[] }
  // Replicas report on their heartbeats: wait for all five.
  let c: Container | undefined
  for (let tries = 0; tries < 100 && (c === undefined || c.replicas.length < 5); tries++) {
    if (c !== undefined) await new Promise((r) => setTimeout(r, 100))
    c = await json<Container>('admin', 'container', 'info', String(group.containerId))
  }
  assert.is(c!.replication, 'EC/rs-3-2-1024k')
  // The container's used bytes and blocks are its fullest replica's (index 1 and the parity: 2 MiB + 5).
  assert.is(c!.usedBytes, Math.max(...c!.replicas.map((r) => r.usedBytes)))
  assert.is(c!.usedBytes, 2 * MiB + 5)
  assert.is(c!.blockCount, 1)
  assert.equal(c!.replicas.map((r) => [r.replicaIndex, r.datanodeId]).sort((a, b) => Number(a[0]) - Number(b[0])), group.datanodes.map((d) => [d.replicaIndex, d.id]))
  // The EC pipeline, listed with its members in replica-index order and no leader starred.
  const pipelines = await run('admin', 'pipeline', 'list')
  assert.is(pipelines.code, 0)
  const row = pipelines.stdout.split('\n').find((l) => l.includes('│ EC/rs-3-2-1024k'))
  assert.ok(row !== undefined, 'the EC pipeline is listed')
  assert.match(row, new RegExp(`│ ${group.datanodes.map((d) => d.address.replace(/\./g, '\\.')).join(' ')}\\s+│ -`))
  assert.not.match(row, '*')
  const shown = await run('admin', 'container', 'info', String(group.containerId))
  assert.is(shown.code, 0)
  assert.match(shown.stdout, /│ index\s+│ datanode/)
  for (const d of group.datanodes) assert.match(shown.stdout, new RegExp(`│ ${d.replicaIndex}\\s+│ ${d.id}\\s+│ ${d.address.replace(/\./g, '\\.')}`))
  // An on-demand scan names each replica's index too (an open replica is SKIPPED: only closed ones are scanned).
  const scans = await json<{ datanodeId: string; replicaIndex?: number; result: string }[]>('admin', 'container', 'scan', String(group.containerId))
  assert.equal(scans.map((s) => [s.replicaIndex, s.datanodeId]), group.datanodes.map((d) => [d.replicaIndex, d.id]))
  const scanned = await run('admin', 'container', 'scan', String(group.containerId))
  assert.is(scanned.code, 0)
  for (const d of group.datanodes) assert.match(scanned.stdout, new RegExp(`│ ${d.replicaIndex}\\s+│ ${d.id}\\s+│ ${d.address.replace(/\./g, '\\.')}\\s+│ (SKIPPED|HEALTHY)`))
})

test('an rs-6-3 key on five datanodes: the SCM\'s refusal is one clear line, the exit non-zero, and no key is left', async () => {
  const src = join(work, 'rs63.bin')
  writeFileSync(src, randomBytes(3 * 1024 * 1024, 23))
  for (const args of [['--replication', 'EC/rs-6-3-1024k'], ['--replication', 'EC/rs-6-3-1024k', '--json']]) {
    const r = await run('sh', 'key', 'put', '/ecvol/rs32/rs63.bin', src, ...args)
    assert.ok(r.code !== 0, 'a non-zero exit')
    assert.match(r.stderr, /Cannot allocate an EC\/rs-6-3-1024k block: it needs 9 healthy in-service datanodes with room, 5 are/)
    assert.match(r.stderr, /NO_PIPELINE/)
    assert.is(r.stderr.trim().split('\n').length, 1, 'one line')
  }
  // A bucket whose default cannot be placed: made (more datanodes may come), its keys refused.
  assert.is((await run('sh', 'bucket', 'create', '/ecvol/rs63', '--replication', 'EC/rs-6-3-1024k')).code, 0)
  const r = await run('sh', 'key', 'put', '/ecvol/rs63/k', src)
  assert.ok(r.code !== 0)
  assert.match(r.stderr, /it needs 9 healthy in-service datanodes with room, 5 are/)
  const listed = await json<{ keys: { name: string }[] }>('sh', 'key', 'list', '/ecvol/rs32')
  assert.not.ok(listed.keys.some((k) => k.name === 'rs63.bin'), 'no partial key')
  assert.equal((await json<{ keys: unknown[] }>('sh', 'key', 'list', '/ecvol/rs63')).keys, [])
  assert.is((await json<{ usedNamespace: number; usedBytes: number }>('sh', 'bucket', 'info', '/ecvol/rs63')).usedBytes, 0)
})

test.run()
