/**
 * Goal: what a user of `o3 sh` found in the third round is fixed. Output piped to a slow
 * reader arrives whole (it was cut at 64 KiB with exit 0); `key get` never replaces what it
 * should not: an existing file only with --force, a directory gets DIR/<key name>, a symbolic
 * link stays a link (the file it names is written), a FIFO is written in place; a path longer
 * than the command takes is refused instead of acting on its first parts (`bucket delete
 * /v/b/k` deleted /v/b); deleting an S3 bucket natively drops its unfinished uploads; a
 * negative option value is named as such; key rename takes a whole path as the new key;
 * freon refuses a bad replication up front.
 * Method: bin/o3.js as a child process (through bash for pipes) against a real in-process
 * cluster on free ports; files, links and FIFOs in a temp dir.
 */
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { execFileSync, spawnSync } from 'node:child_process'
import { createReadStream, lstatSync, readdirSync, mkdirSync, readFileSync, readlinkSync, symlinkSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { CliCluster } from './o3-cli.ts'

const cli = new CliCluster('o3-cli-targets-')
const { work, run } = cli
const KEY_BYTES = Buffer.from('the bytes of the key\n'.repeat(50))

test.before(async () => {
  await cli.start()
  const client = cli.client()
  await client.createVolume('vtg')
  await client.createBucket('vtg', 'btg')
  await client.putKey('vtg', 'btg', 'dir/k1', KEY_BYTES)
})
test.after(cli.stop)

test('output piped to a reader that waits comes whole (past the 64 KiB a pipe holds) and parses', async () => {
  const client = cli.client()
  await client.createBucket('vtg', 'many')
  const names = Array.from({ length: 900 }, (_, i) => `a-rather-long-key-name-so-that-the-listing-passes-the-pipe-size/${String(i).padStart(5, '0')}`)
  for (let i = 0; i < names.length; i += 50) await Promise.all(names.slice(i, i + 50).map((n) => client.putKey('vtg', 'many', n, new Uint8Array(0))))
  const r = await cli.runPiped('(sleep 1; cat)', 'sh', 'key', 'list', '/vtg/many', '--json')
  assert.is(r.code, 0, r.stderr)
  assert.ok(r.stdout.length > 128 * 1024, `only ${r.stdout.length} bytes`)
  const listed = JSON.parse(r.stdout) as { keys: { name: string }[] }
  assert.equal(listed.keys.map((k) => k.name), names)
  // A reader that stops early (head): the command ends quietly, no EPIPE stack trace.
  for (let i = 0; i < 3; i++) {
    const cut = await cli.runPiped('head -c 100', 'sh', 'key', 'list', '/vtg/many')
    assert.is(cut.code, 0, cut.stderr)
    assert.ok(cut.stdout.startsWith('┌'), 'the table began')
    assert.not.match(cut.stderr, /EPIPE|Unhandled/)
  }
})

test('o3 admin cert on a cluster without security says security is off', async () => {
  const r = await run('admin', 'cert', 'list')
  assert.is(r.code, 1, r.stderr)
  assert.match(r.stderr, 'Cannot run o3 admin cert list: security is off on this cluster')
})

test('key get refuses to replace an existing file unless --force, and then replaces it whole', async () => {
  const file = join(work, 'existing.txt')
  writeFileSync(file, 'mine')
  const refused = await run('sh', 'key', 'get', '/vtg/btg/dir/k1', file)
  assert.is(refused.code, 2, refused.stderr)
  assert.match(refused.stderr, /exists.*--force/)
  assert.is(readFileSync(file, 'utf8'), 'mine')
  const forced = await run('sh', 'key', 'get', '/vtg/btg/dir/k1', file, '--force')
  assert.is(forced.code, 0, forced.stderr)
  assert.ok(readFileSync(file).equals(KEY_BYTES))
  assert.equal(readdirSync(work).filter((f) => f.includes('.o3-part')), [], 'no part file left')
})

test('key get and put name the user\'s file and the real cause: a missing directory, a place that takes no new file, a directory to upload', async () => {
  const missing = await run('sh', 'key', 'get', '/vtg/btg/dir/k1', join(work, 'no-such-dir', 'x'))
  assert.is(missing.code, 2)
  assert.match(missing.stderr, `o3: cannot write ${join(work, 'no-such-dir', 'x')}: there is no directory ${join(work, 'no-such-dir')}`)
  // /proc/version exists; /proc takes no new file beside it (the part file the download goes to first).
  const proc = await run('sh', 'key', 'get', '/vtg/btg/dir/k1', '/proc/version', '--force')
  assert.is(proc.code, 1)
  assert.match(proc.stderr, /^o3: cannot write \/proc\/version: \/proc does not take new files \(E[A-Z]+\)\n$/)
  assert.not.match(proc.stderr, 'o3-part')
  const dir = await run('sh', 'key', 'put', '/vtg/btg/dir/k9', work)
  assert.is(dir.code, 2)
  assert.match(dir.stderr, `o3: ${work} is a directory: key put uploads one file`)
})

test('key get to - writes the key to standard output, and what it says about it to stderr', async () => {
  const r = await run('sh', 'key', 'get', '/vtg/btg/dir/k1', '-')
  assert.is(r.code, 0, r.stderr)
  assert.is(r.stdout, KEY_BYTES.toString())
  assert.match(r.stderr, /standard output/)
})

test('key get into a directory writes DIR/<the key\'s last name>', async () => {
  const dir = join(work, 'into-dir')
  mkdirSync(dir)
  const r = await run('sh', 'key', 'get', '/vtg/btg/dir/k1', dir)
  assert.is(r.code, 0, r.stderr)
  assert.ok(readFileSync(join(dir, 'k1')).equals(KEY_BYTES))
})

test('key get --force through a symbolic link writes the file it names; the link stays', async () => {
  const real = join(work, 'real.txt')
  const link = join(work, 'link.txt')
  writeFileSync(real, 'old')
  symlinkSync(real, link)
  const r = await run('sh', 'key', 'get', '/vtg/btg/dir/k1', link, '--force')
  assert.is(r.code, 0, r.stderr)
  assert.ok(lstatSync(link).isSymbolicLink())
  assert.is(readlinkSync(link), real)
  assert.ok(readFileSync(real).equals(KEY_BYTES))
})

test('key get into a FIFO writes through it; it stays a FIFO', async () => {
  const fifo = join(work, 'pipe')
  execFileSync('mkfifo', [fifo])
  const parts: Buffer[] = []
  const reading = new Promise<void>((resolve, reject) => {
    createReadStream(fifo).on('data', (d) => parts.push(d as Buffer)).on('end', resolve).on('error', reject)
  })
  const r = await run('sh', 'key', 'get', '/vtg/btg/dir/k1', fifo)
  await reading
  assert.is(r.code, 0, r.stderr)
  assert.ok(Buffer.concat(parts).equals(KEY_BYTES))
  assert.ok(lstatSync(fifo).isFIFO())
})

test('a path longer than the command takes is refused and nothing is deleted or created', async () => {
  const client = cli.client()
  await client.createBucket('vtg', 'keep')
  for (const args of [['bucket', 'delete', '/vtg/keep/somekey'], ['volume', 'delete', '/vtg/whatever'], ['volume', 'create', '/vnew/extra'], ['bucket', 'list', '/vtg/keep']]) {
    const r = await run('sh', ...args)
    assert.is(r.code, 2, `${args.join(' ')}: ${r.stderr}`)
    assert.match(r.stderr, /bad path/)
  }
  assert.is((await client.getBucket('vtg', 'keep')).name, 'keep')
  assert.is((await run('sh', 'volume', 'info', '/vnew')).code, 1)
})

test('deleting an S3 bucket with o3 sh drops its unfinished uploads too', async () => {
  const client = cli.client()
  await client.createVolume('s3v').catch(() => undefined)
  await client.createVolume('s3v-multipart').catch(() => undefined)
  await client.createBucket('s3v', 'gone')
  await client.createBucket('s3v-multipart', 'gone')
  await client.putKey('s3v-multipart', 'gone', `u/${'a'.repeat(32)}`, new Uint8Array(0), { metadata: { 's3:key': 'pending', 's3:initiatedAtMs': '1' } })
  await client.putKey('s3v-multipart', 'gone', `p/${'a'.repeat(32)}/00001`, new Uint8Array(7))
  const r = await run('sh', 'bucket', 'delete', '/s3v/gone')
  assert.is(r.code, 0, r.stderr)
  assert.equal((await client.listBuckets('s3v-multipart')).map((b) => b.name).filter((n) => n === 'gone'), [])
})

test('key rename takes the new key as a name or as the whole path in the same bucket; another bucket is refused', async () => {
  const client = cli.client()
  await client.putKey('vtg', 'btg', 'r/one', new Uint8Array(3))
  assert.is((await run('sh', 'key', 'rename', '/vtg/btg/r/one', '/vtg/btg/r/two')).code, 0)
  assert.equal((await client.listKeys('vtg', 'btg', { prefix: 'r/' })).keys.map((k) => k.name), ['r/two'])
  const elsewhere = await run('sh', 'key', 'rename', '/vtg/btg/r/two', '/vtg/other/r/three')
  assert.is(elsewhere.code, 2)
  assert.match(elsewhere.stderr, /stays within its bucket/)
})

test('freon ockg refuses a replication it cannot use before it runs', async () => {
  const r = await run('freon', 'ockg', '-n', '3', '--replication', 'FOO')
  assert.is(r.code, 2, r.stderr)
  assert.match(r.stderr, /--replication FOO/)
})

test('a negative option value is named as such, not as an ambiguous argument; an empty address is a usage error', async () => {
  const r = await run('sh', 'key', 'list', '/vtg/bt', '--max', '-1')
  assert.is(r.code, 2)
  assert.match(r.stderr, /--max -1: a negative value is not allowed/)
  // A short option too.
  const short = await run('freon', 'ockg', '-n', '-5')
  assert.is(short.code, 2, short.stderr)
  assert.match(short.stderr, /-n -5: a negative value is not allowed for o3 freon ockg/)
  // An address given empty is a usage error (exit 2) too, not a failed call.
  const o3 = fileURLToPath(new URL('../../../bin/o3.js', import.meta.url))
  const empty = spawnSync(process.execPath, [o3, 'sh', 'volume', 'list', '--om', ''], { encoding: 'utf8' })
  assert.is(empty.status, 2, empty.stderr)
  assert.match(empty.stderr, /--om needs a value/)
})

test.run()
