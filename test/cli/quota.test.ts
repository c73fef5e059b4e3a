/**
 * Goal: the quota commands as Ozone's shell has them (`ozone sh volume|bucket setquota`,
 * `clrquota`, `--space-quota`/`--namespace-quota` at create), sizes read as Ozone's
 * OzoneQuota reads them (powers of 1024), quotas and usage in `info` (table and --json), and
 * every refusal as one line with a non-zero exit (2 for bad input, 1 for the OM's QUOTA_*).
 * Method: run bin/o3.js as a child process against a real in-process cluster on free ports;
 * the size parser also directly.
 */
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { UsageError } from '../../cli/args.ts'
import { parseNamespaceQuota, parseSpaceQuota } from '../../cli/sh.ts'
import type { BucketInfo, VolumeInfo } from '../../core/om-wire.ts'
import { randomBytes } from '../cluster/mini-cluster.ts'
import { CliCluster } from './o3-cli.ts'

const cli = new CliCluster('o3-cli-quota-', { datanodes: 1 })
const { work, run, json } = cli
/** A command that must fail: its exit code, and its one line on stderr matching `pattern`. */
async function fails(code: number, pattern: RegExp, ...args: string[]): Promise<void> {
  const r = await run(...args)
  assert.is(r.code, code, `${args.join(' ')}: ${r.stdout}${r.stderr}`)
  assert.is(r.stderr.trim().split('\n').length, 1, `one line: ${r.stderr}`)
  assert.match(r.stderr, pattern, r.stderr)
}

test.before(cli.start)
test.after(cli.stop)

test('parseSpaceQuota() reads B, KB, MB, GB, TB, PB as powers of 1024, as Ozone\'s OzoneQuota', () => {
  const cases: [string, number][] = [
    ['5', 5], ['5B', 5], ['10KB', 10 * 1024], ['10 kb', 10 * 1024], ['1MB', 1024 ** 2], ['10GB', 10 * 1024 ** 3],
    ['1TB', 1024 ** 4], ['7PB', 7 * 1024 ** 5], ['1KiB', 1024], ['3gib', 3 * 1024 ** 3],
  ]
  for (const [text, bytes] of cases) assert.is(parseSpaceQuota(text), bytes, text)
  for (const bad of ['', '0', '0GB', '-1', '1.5GB', 'GB', '10XB', '10 G', '8PB', '1EB', '+5', '1IB']) {
    assert.throws(() => parseSpaceQuota(bad), (err: Error) => err instanceof UsageError && /invalid space quota/.test(err.message), bad)
  }
  assert.is(parseNamespaceQuota('1000'), 1000)
  for (const bad of ['0', '-3', '1.5', 'ten', '']) assert.throws(() => parseNamespaceQuota(bad), (err: Error) => err instanceof UsageError, bad)
})

test('o3 sh volume create --space-quota --namespace-quota; info shows quotas and usage', async () => {
  const v = await json<VolumeInfo>('sh', 'volume', 'create', '/qvol', '--space-quota', '1GB', '--namespace-quota', '2')
  assert.equal([v.quotaBytes, v.quotaNamespace], [1024 ** 3, 2])
  const table = await run('sh', 'volume', 'info', '/qvol')
  assert.is(table.code, 0, table.stderr)
  assert.match(table.stdout, /spaceQuota\s+│ 1\.0 GiB \(1073741824 bytes\)/)
  assert.match(table.stdout, /namespaceQuota\s+│ 2 /)
  await fails(1, /needs one too.*QUOTA_ERROR/, 'sh', 'bucket', 'create', '/qvol/nolimit')
  const b = await json<BucketInfo>('sh', 'bucket', 'create', '/qvol/bkt', '--replication', 'RATIS/ONE', '--space-quota', '10KB', '--namespace-quota', '5')
  assert.equal([b.quotaBytes, b.quotaNamespace, b.usedBytes, b.usedNamespace], [10240, 5, 0, 0])
  await fails(1, /would add up to 1073752064 bytes.*QUOTA_EXCEEDED/, 'sh', 'bucket', 'create', '/qvol/huge', '--space-quota', '1GB')
})

test('o3 sh key put past the bucket\'s space quota fails with QUOTA_EXCEEDED; setquota makes room', async () => {
  const file = join(work, '12k.bin')
  writeFileSync(file, randomBytes(12 * 1024, 1))
  await fails(1, /qvol\/bkt would use 12288 bytes .* quota of 10240 \(QUOTA_EXCEEDED\)/, 'sh', 'key', 'put', '/qvol/bkt/k', file)
  assert.is((await json<BucketInfo>('sh', 'bucket', 'setquota', '/qvol/bkt', '--space-quota', '20kb')).quotaBytes, 20 * 1024)
  assert.is((await run('sh', 'key', 'put', '/qvol/bkt/k', file)).code, 0)
  const b = await json<BucketInfo>('sh', 'bucket', 'info', '/qvol/bkt')
  assert.equal([b.quotaBytes, b.quotaNamespace, b.usedBytes, b.usedNamespace], [20480, 5, 12288, 1])
  const table = await run('sh', 'bucket', 'info', '/qvol/bkt')
  assert.match(table.stdout, /usedBytes\s+│ 12\.0 KiB \(replicated\)/)
  assert.match(table.stdout, /keys\s+│ 1 /)
  await fails(1, /uses 12288.*QUOTA_ERROR/, 'sh', 'bucket', 'setquota', '/qvol/bkt', '--space-quota', '10KB')
  const v = await json<VolumeInfo>('sh', 'volume', 'info', '/qvol')
  assert.equal([v.usedNamespace, v.usedBytes], [1, 12288])
})

test('o3 sh volume setquota --namespace-quota counts buckets; clrquota clears; a cleared volume quota lets bucket quotas go', async () => {
  await json('sh', 'volume', 'setquota', '/qvol', '--namespace-quota', '1')
  await fails(1, /namespace quota is 1 buckets.*QUOTA_EXCEEDED/, 'sh', 'bucket', 'create', '/qvol/second', '--space-quota', '1MB')
  assert.is((await json<VolumeInfo>('sh', 'volume', 'clrquota', '/qvol', '--namespace-quota')).quotaNamespace, -1)
  await fails(1, /volume qvol has a space quota.*QUOTA_ERROR/, 'sh', 'bucket', 'clrquota', '/qvol/bkt', '--space-quota')
  const v = await json<VolumeInfo>('sh', 'volume', 'clrquota', '/qvol', '--space-quota')
  assert.equal([v.quotaBytes, v.quotaNamespace], [-1, -1])
  const b = await json<BucketInfo>('sh', 'bucket', 'clrquota', '/qvol/bkt', '--space-quota', '--namespace-quota')
  assert.equal([b.quotaBytes, b.quotaNamespace], [-1, -1])
  const r = await run('sh', 'bucket', 'setquota', '/qvol/bkt', '--namespace-quota', '7')
  assert.is(r.code, 0, r.stderr)
  assert.match(r.stdout, /bucket \/qvol\/bkt: space quota none, namespace quota 7/)
})

test('the largest space quota, 2^53 - 1 bytes, is shown in PiB', async () => {
  assert.is((await json<VolumeInfo>('sh', 'volume', 'create', '/bigq')).name, 'bigq')
  const r = await run('sh', 'volume', 'setquota', '/bigq', '--space-quota', String(Number.MAX_SAFE_INTEGER))
  assert.is(r.code, 0, r.stderr)
  assert.match(r.stdout, /space quota 8\.0 PiB \(9007199254740991 bytes\)/)
  const info = await run('sh', 'volume', 'info', '/bigq')
  assert.match(info.stdout, /spaceQuota\s+│ 8\.0 PiB \(9007199254740991 bytes\)/)
})

test('bad quota input: one line, exit 2, naming the flag\'s --help', async () => {
  await fails(2, /invalid space quota "1\.5GB".*powers of 1024.*see 'o3 sh volume setquota --help'/, 'sh', 'volume', 'setquota', '/qvol', '--space-quota', '1.5GB')
  await fails(2, /invalid space quota "0"/, 'sh', 'bucket', 'setquota', '/qvol/bkt', '--space-quota', '0')
  await fails(2, /invalid space quota "10XB"/, 'sh', 'bucket', 'create', '/qvol/other', '--space-quota', '10XB')
  // 8PB is 2^53 bytes: the limit is named in bytes, not as the 8 PB just refused.
  await fails(2, /invalid space quota "8PB": more than 2\^53 - 1 bytes \(9007199254740991, just under 8 PiB\), the most O3 stores exactly/, 'sh', 'bucket', 'setquota', '/qvol/bkt', '--space-quota', '8PB')
  await fails(2, /invalid namespace quota "many"/, 'sh', 'volume', 'create', '/other', '--namespace-quota', 'many')
  await fails(2, /setquota needs --space-quota SIZE, --namespace-quota N or both/, 'sh', 'bucket', 'setquota', '/qvol/bkt')
  await fails(2, /clrquota needs --space-quota, --namespace-quota or both/, 'sh', 'volume', 'clrquota', '/qvol')
  await fails(2, /unknown option --quota-space/, 'sh', 'volume', 'setquota', '/qvol', '--quota-space', '1GB')
  await fails(1, /Volume nope not found \(VOLUME_NOT_FOUND\)/, 'sh', 'volume', 'setquota', '/nope', '--space-quota', '1GB')
  const help = await run('sh', 'bucket', 'setquota', '--help')
  assert.is(help.code, 0)
  assert.match(help.stdout, /--space-quota SIZE/)
  assert.match(help.stdout, /replicated bytes/)
})

test.run()
