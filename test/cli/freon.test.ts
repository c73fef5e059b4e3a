/**
 * Goal: `o3 freon ockg|ockr|s3kg` write and read what they say, verify every byte they read,
 * count what failed and exit non-zero then, and print a summary a script can read (--json).
 * Method: run bin/o3.js as a child process against a real in-process cluster with an S3
 * gateway on free ports (s3-cluster.ts), then check the keys with the native client. No
 * timing is asserted: only counts, sizes and contents.
 */
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { execFile, spawn } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import { startS3Cluster, type S3TestCluster } from '../datapath/s3/s3-cluster.ts'
import { pattern, parseSize, PayloadCheck } from '../../cli/freon/payload.ts'
import { FREON_PATTERN_BYTES } from '../../core/limits.ts'
import { openKeyCount } from '../helpers.ts'

const o3 = fileURLToPath(new URL('../../../bin/o3.js', import.meta.url))
let s3: S3TestCluster

interface Run { code: number; stdout: string; stderr: string }
function run(args: string[], env: NodeJS.ProcessEnv = {}): Promise<Run> {
  return new Promise((resolve) => {
    // The cluster's gateway answers for us-east-1: a region the machine's environment names would not sign for it.
    execFile(process.execPath, [o3, ...args], { encoding: 'utf8', env: { ...process.env, AWS_REGION: '', AWS_DEFAULT_REGION: '', ...env }, timeout: 120_000 }, (err, stdout, stderr) => {
      resolve({ code: err ? Number((err as { code?: number }).code ?? 1) : 0, stdout, stderr })
    })
  })
}
const cluster = () => ['--om', s3.cluster.omAddress, '--scm', s3.cluster.scmAddress]

interface Summary {
  generator: string; prefix: string; sizeBytes: number | null; threads: number
  requested: number; ops: number; succeeded: number; failures: number; bytes: number
  elapsedSeconds: number; opsPerSec: number; mbPerSec: number
  latencyMs: { p50: number; p95: number; p99: number; max: number } | null
  firstError: string | null; verified?: number
}
function summary(r: Run): Summary {
  try { return JSON.parse(r.stdout) as Summary } catch { throw new Error(`not JSON (exit ${r.code}): ${r.stdout} ${r.stderr}`) }
}

test.before(async () => {
  s3 = await startS3Cluster()
})
test.after(async () => {
  await s3.dispose()
})

let prefix = ''

test('ockg -n 20 -t 4 -s 10KiB --json writes 20 keys of 10240 bytes under a random prefix', async () => {
  const r = await run(['freon', 'ockg', '-n', '20', '-t', '4', '-s', '10KiB', '-v', 'vol1', '-b', 'bucket1', '--json', ...cluster()])
  assert.is(r.code, 0, r.stderr)
  assert.is(r.stderr, '', 'no bar and no announcement with --json')
  const s = summary(r)
  assert.is(s.generator, 'ockg')
  assert.match(s.prefix, /^[a-z0-9]{10}$/)
  prefix = s.prefix
  assert.equal([s.requested, s.ops, s.succeeded, s.failures, s.sizeBytes, s.bytes, s.threads], [20, 20, 20, 0, 10240, 20 * 10240, 4])
  assert.is(s.firstError, null)
  assert.ok(s.latencyMs !== null && s.latencyMs.p50 <= s.latencyMs.p95 && s.latencyMs.p95 <= s.latencyMs.p99 && s.latencyMs.p99 <= s.latencyMs.max)
  assert.ok(s.opsPerSec > 0 && s.mbPerSec > 0 && s.elapsedSeconds > 0)
  const client = s3.cluster.client()
  const listed = await client.listKeys('vol1', 'bucket1', { prefix: `${prefix}/` })
  assert.equal(listed.keys.map((k) => k.name).sort(), Array.from({ length: 20 }, (_, i) => `${prefix}/${i}`).sort())
  assert.ok(listed.keys.every((k) => k.size === 10240))
  // The bytes are the pattern ockr checks against.
  const data = await client.getKey('vol1', 'bucket1', `${prefix}/7`)
  assert.ok(Buffer.from(pattern(10240)).equals(data))
})

test('ockr on the same prefix reads and verifies all 20 keys', async () => {
  const r = await run(['freon', 'ockr', '-n', '20', '-t', '4', '-p', prefix, '--json', ...cluster()])
  assert.is(r.code, 0, r.stderr)
  const s = summary(r)
  assert.equal([s.generator, s.prefix, s.ops, s.succeeded, s.verified, s.failures, s.sizeBytes, s.bytes], ['ockr', prefix, 20, 20, 20, 0, 10240, 20 * 10240])
  // With -s the size is checked too.
  const sized = await run(['freon', 'ockr', '-n', '20', '-p', prefix, '-s', '10240', '--json', ...cluster()])
  assert.is(summary(sized).succeeded, 20, sized.stderr)
})

test('ockr counts a key with other bytes, a wrong size and missing keys as failures and exits 1', async () => {
  const client = s3.cluster.client()
  // Key 3 gets the right length but one wrong byte: a read that is fast but wrong.
  const bad = Buffer.from(pattern(10240))
  bad[5000] ^= 0xff
  await client.putKey('vol1', 'bucket1', `${prefix}/3`, bad)
  const r = await run(['freon', 'ockr', '-n', '20', '-t', '4', '-p', prefix, '-f', '--json', ...cluster()])
  assert.is(r.code, 1, r.stderr)
  const s = summary(r)
  assert.equal([s.ops, s.succeeded, s.failures], [20, 19, 1])
  assert.match(s.firstError!, /wrong bytes/)
  assert.match(r.stderr, /^o3: freon ockr: 1 of 20 operations failed; the first: .*wrong bytes/m)
  const sized = await run(['freon', 'ockr', '-n', '2', '-t', '1', '-p', prefix, '-s', '4KiB', '--json', ...cluster()])
  assert.is(sized.code, 1)
  assert.match(summary(sized).firstError!, /not the 4096 of --size/)
  // No keys under this prefix: every read fails, and without -f the run stops at the first.
  const none = await run(['freon', 'ockr', '-n', '20', '-t', '2', '-p', 'nosuchprefix', '--json', ...cluster()])
  assert.is(none.code, 1)
  const n = summary(none)
  assert.is(n.succeeded, 0)
  assert.ok(n.failures >= 1 && n.failures <= 2, `stops after the failures in flight: ${n.failures}`)
  assert.is(n.latencyMs, null)
  assert.match(n.firstError!, /KEY_NOT_FOUND/)
  // A bucket that does not exist, with -f: all 5 fail.
  const nob = await run(['freon', 'ockr', '-n', '5', '-t', '2', '-b', 'nosuchbucket', '-p', prefix, '-f', '--json', ...cluster()])
  assert.is(nob.code, 1)
  assert.equal([summary(nob).ops, summary(nob).failures], [5, 5])
  assert.match(summary(nob).firstError!, /BUCKET_NOT_FOUND/)
})

test('ockg prints a table for people, without --json, and the prefix it chose', async () => {
  const r = await run(['freon', 'ockg', '-n', '3', '-t', '2', '-s', '1KB', '-v', 'vol2', '-b', 'bucket2', '--replication', 'RATIS/ONE', ...cluster()])
  assert.is(r.code, 0, r.stderr)
  assert.match(r.stdout, /│ field\s+│ value/)
  assert.match(r.stdout, /│ succeeded\s+│ 3\s+│/)
  assert.match(r.stdout, /│ latency p99 ms\s+│/)
  const chosen = /│ prefix\s+│ ([a-z0-9]{10})\s+│/.exec(r.stdout)?.[1]
  assert.ok(chosen !== undefined, r.stdout)
  assert.match(r.stderr, new RegExp(`prefix ${chosen}`))
  const k = await s3.cluster.client().headKey('vol2', 'bucket2', `${chosen}/2`)
  assert.equal([k.size, k.replication], [1000, 'RATIS/ONE'])
})

test('ockg and ockr over one pattern: a 6 MiB key is the pattern repeated, written and verified', async () => {
  const w = await run(['freon', 'ockg', '-n', '1', '-s', '6MiB', '-p', 'large', '--json', ...cluster()])
  assert.is(w.code, 0, w.stderr)
  assert.equal([summary(w).succeeded, summary(w).bytes], [1, 6 * 2 ** 20])
  const data = await s3.cluster.client().getKey('vol1', 'bucket1', 'large/0')
  const whole = pattern(FREON_PATTERN_BYTES)
  assert.ok(data.subarray(0, FREON_PATTERN_BYTES).equals(whole) && data.subarray(FREON_PATTERN_BYTES).equals(whole.subarray(0, 2 * 2 ** 20)))
  const r = await run(['freon', 'ockr', '-n', '1', '-p', 'large', '--json', ...cluster()])
  assert.equal([summary(r).succeeded, summary(r).sizeBytes], [1, 6 * 2 ** 20], r.stderr)
})

test('s3kg PUTs through the gateway with the key pair from the environment', async () => {
  const env = { AWS_ACCESS_KEY_ID: s3.alice.awsAccessKey, AWS_SECRET_ACCESS_KEY: s3.alice.awsSecret }
  const r = await run(['freon', 's3kg', '-n', '12', '-t', '3', '-s', '5KiB', '-b', 'freon-s3', '-p', 's3run', '-e', s3.endpoint, '--json'], env)
  assert.is(r.code, 0, r.stderr)
  const s = summary(r)
  assert.equal([s.generator, s.prefix, s.ops, s.succeeded, s.failures, s.sizeBytes, s.bytes], ['s3kg', 's3run', 12, 12, 0, 5120, 12 * 5120])
  const client = s3.cluster.client()
  const listed = await client.listKeys('s3v', 'freon-s3', { prefix: 's3run/' })
  assert.is(listed.keys.length, 12)
  assert.ok(listed.keys.every((k) => k.size === 5120))
  // ockr reads S3-written keys back too: the same pattern, whichever way it was written.
  const back = await run(['freon', 'ockr', '-n', '12', '-v', 's3v', '-b', 'freon-s3', '-p', 's3run', '--json', ...cluster()])
  assert.is(summary(back).succeeded, 12, back.stderr)
  // A payload over one pattern is streamed as repeated views; the gateway's SHA-256 and
  // ETag checks pass only if every byte is right.
  const big = await run(['freon', 's3kg', '-n', '2', '-t', '2', '-s', '5MiB', '-b', 'freon-s3', '-p', 'big', '-e', s3.endpoint, '--access-key', s3.bob.awsAccessKey, '--secret-key', s3.bob.awsSecret, '--json'])
  // Bob does not own alice's bucket: the PUTs fail and are counted.
  assert.is(big.code, 1)
  assert.equal([summary(big).succeeded, summary(big).failures > 0], [0, true])
  assert.match(summary(big).firstError!, /403 AccessDenied/)
  const own = await run(['freon', 's3kg', '-n', '2', '-t', '2', '-s', '5MiB', '-b', 'freon-big', '-p', 'big', '-e', s3.endpoint, '--json'], env)
  assert.is(own.code, 0, own.stderr)
  assert.equal([summary(own).succeeded, summary(own).bytes], [2, 2 * 5 * 1024 * 1024])
  const readBig = await run(['freon', 'ockr', '-n', '2', '-v', 's3v', '-b', 'freon-big', '-p', 'big', '-s', '5MiB', '--json', ...cluster()])
  assert.is(summary(readBig).succeeded, 2, readBig.stderr)
})

test('s3kg with a wrong secret or region: every PUT refused, counted, exit 1; no key pair: usage error', async () => {
  const r = await run(['freon', 's3kg', '-n', '4', '-t', '2', '-b', 'freon-s3', '-e', s3.endpoint, '--access-key', s3.alice.awsAccessKey, '--secret-key', 'wrong', '--json'])
  assert.is(r.code, 1)
  assert.match(r.stderr, /SignatureDoesNotMatch/)
  // Signed for another region than the gateway's (--region, or the environment's): refused as S3 refuses it.
  const key = { AWS_ACCESS_KEY_ID: s3.alice.awsAccessKey, AWS_SECRET_ACCESS_KEY: s3.alice.awsSecret }
  for (const [args, env] of [[['--region', 'eu-west-1'], key], [[], { ...key, AWS_DEFAULT_REGION: 'eu-west-1' }]] as const) {
    const elsewhere = await run(['freon', 's3kg', '-n', '2', '-t', '1', '-b', 'freon-s3', '-e', s3.endpoint, ...args, '--json'], env)
    assert.is(elsewhere.code, 1, elsewhere.stderr)
    assert.match(elsewhere.stderr, /AuthorizationHeaderMalformed/)
  }
  assert.is((await run(['freon', 's3kg', '-n', '1', '-t', '1', '-b', 'freon-s3', '-e', s3.endpoint, '--region', 'us-east-1', '--json'], { ...key, AWS_REGION: 'eu-west-1' })).code, 0, '--region wins over the environment')
  const none = await run(['freon', 's3kg', '-n', '1', '-e', s3.endpoint], { AWS_ACCESS_KEY_ID: '', AWS_SECRET_ACCESS_KEY: '' })
  assert.is(none.code, 2)
  assert.match(none.stderr, /S3 key pair is needed/)
})

const openKeys = () => openKeyCount(s3.cluster.omAddress)

test('Ctrl-C gives up the writes in flight: their keys are aborted, not left open with their blocks, and none appears', async () => {
  const before = await openKeys()
  assert.ok(Number.isFinite(before), 'the OM exports o3_om_open_keys')
  const child = spawn(process.execPath, [o3, 'freon', 'ockg', '-n', '2', '-t', '2', '-s', '1GiB', '-p', 'cut', '-v', 'vol1', '-b', 'bucket1', ...cluster()], { stdio: ['ignore', 'pipe', 'pipe'] })
  let stderr = ''
  child.stderr.on('data', (d) => { stderr += d })
  const exited = new Promise<number | null>((resolve) => child.on('close', resolve))
  // Both writers hold an open key: Ctrl-C while their chunks go out.
  for (let i = 0; i < 600 && await openKeys() < before + 2; i++) await new Promise((r) => setTimeout(r, 50))
  assert.ok(await openKeys() >= before + 2, 'two keys being written')
  child.kill('SIGINT')
  assert.is(await exited, 1, stderr)
  assert.match(stderr, /stopping at Ctrl-C; the operations in flight are given up/)
  assert.is(await openKeys(), before, 'no key left open')
  // Both were cut early (1 GiB each; finishing them would have committed them).
  assert.equal((await s3.cluster.client().listKeys('vol1', 'bucket1', { prefix: 'cut/' })).keys, [])
})

test('Ctrl-C stops taking operations, gives up those in flight, prints the summary and exits 1', async () => {
  const child = spawn(process.execPath, [o3, 'freon', 'ockg', '-n', '1000000', '-t', '2', '-s', '1KB', '-p', 'interrupted', ...cluster()], { stdio: ['ignore', 'pipe', 'pipe'] })
  let stdout = '', stderr = ''
  child.stdout.on('data', (d) => { stdout += d })
  // The announcement is written once Ctrl-C is handled: send it then.
  child.stderr.on('data', (d) => { if (!stderr.includes('prefix')) { stderr += d; if (stderr.includes('prefix')) child.kill('SIGINT') } else stderr += d })
  const code = await new Promise<number | null>((resolve) => child.on('close', resolve))
  assert.is(code, 1, stderr)
  assert.match(stderr, /stopping at Ctrl-C/)
  assert.match(stderr, /o3: freon ockg: interrupted: only \d+ of 1000000 operations ran/)
  assert.match(stdout, /│ interrupted\s+│ true\s+│/)
  assert.match(stdout, /│ requested\s+│ 1000000\s+│/)
})

test('bad option values are usage errors (exit 2) before anything runs', async () => {
  for (const [args, pattern] of [
    [['freon', 'ockg', '-s', '10XB'], /--size must be bytes/],
    [['freon', 'ockg', '-n', '0'], /--number-of-tests must be a whole number/],
    [['freon', 'ockr', '-t', 'many'], /--threads must be a whole number/],
    [['freon', 'ockg', '-p', ''], /--prefix must not be empty/],
    [['freon', 's3kg', '-e', 'not a url', '--access-key', 'a', '--secret-key', 'b'], /--endpoint must be a URL/],
    [['freon', 'ockg', '--duration', '5m'], /unknown option --duration/],
  ] as const) {
    const r = await run([...args, ...(args[1] === 's3kg' ? [] : cluster())])
    assert.is(r.code, 2, `${args.join(' ')}: ${r.stderr}`)
    assert.match(r.stderr, pattern)
  }
})

test('parseSize() reads bytes and KB/KiB/MB/MiB/GB/GiB in any case', () => {
  assert.equal(['10240', '4KB', '4KiB', '1MB', '64MiB', '2gib', '0', '7 kb'].map(parseSize), [10240, 4000, 4096, 1e6, 64 * 2 ** 20, 2 * 2 ** 30, 0, 7000])
  for (const bad of ['', 'KB', '1.5MB', '-1', '4 K B', '1PB']) assert.throws(() => parseSize(bad), /--size/)
})

test('PayloadCheck accepts the stream in any split and rejects a short, long or changed read', () => {
  const whole = pattern(FREON_PATTERN_BYTES)
  const size = FREON_PATTERN_BYTES + 100
  const expected = Buffer.concat([whole, whole.subarray(0, 100)])
  const ok = new PayloadCheck(whole, size, 'k')
  for (let at = 0; at < size; at += 1_000_003) ok.update(expected.subarray(at, Math.min(size, at + 1_000_003)))
  ok.end()
  const short = new PayloadCheck(whole, size, 'k')
  short.update(expected.subarray(0, size - 1))
  assert.throws(() => short.end(), /of its/)
  assert.throws(() => new PayloadCheck(whole, 10, 'k').update(expected.subarray(0, 11)), /more than/)
  const changed = Buffer.from(expected)
  changed[FREON_PATTERN_BYTES + 50] ^= 1
  assert.throws(() => new PayloadCheck(whole, size, 'k').update(changed), /wrong bytes/)
})

test.run()
