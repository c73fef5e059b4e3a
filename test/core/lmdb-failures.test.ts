/**
 * Goal: a failed LMDB commit does not end a service's process. lmdb-js rejects promises of its
 * own that no caller holds when a commit fails; with surviveLmdbCommitFailures installed the
 * process logs them and goes on (and can still read), while any other unhandled rejection
 * still ends it with exit code 1; without it, the same failure ends the process.
 * Method: child processes whose files may not grow past 1 MB (`ulimit -f`, SIGXFSZ ignored,
 * so a write past it fails with EFBIG as on a full disk) write to a real LMDB in a temp dir.
 */
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { spawnSync } from 'node:child_process'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'

const root = mkdtempSync(join(tmpdir(), 'o3-lmdb-failures-'))
test.after(() => rmSync(root, { recursive: true, force: true }))
const policy = fileURLToPath(new URL('../../core/lmdb-failures.js', import.meta.url))
// The children run in the repository, where `import('lmdb')` finds the package.
const repo = fileURLToPath(new URL('../../../', import.meta.url))

/** Runs `body` (an async function's text, with `open` from lmdb in scope) in a child whose files stop at 1 MB. */
function child(name: string, install: boolean, body: string): { code: number | null; out: string } {
  const script = `
    const { open } = await import('lmdb')
    if (${install}) (await import(${JSON.stringify(policy)})).surviveLmdbCommitFailures()
    const dir = ${JSON.stringify(join(root, name))}
    ${body}`
  const r = spawnSync('bash', ['-c', 'trap "" XFSZ; ulimit -f 2048; exec "$0" --input-type=module -e "$1"', process.execPath, script], { cwd: repo, encoding: 'utf8', timeout: 60_000, env: { ...process.env, O3_LOG: 'info' } })
  return { code: r.status, out: `${r.stdout}${r.stderr}` }
}

const fillUntilACommitFails = `
  const root = open({ path: dir, compression: false })
  const db = root.openDB({ name: 'x' })
  const big = Buffer.alloc(64 * 1024, 7)
  let failed = false
  for (let i = 0; i < 1000 && !failed; i++) {
    try { await root.transaction(() => { db.put(i, big) }) } catch { failed = true }
  }
  console.log(failed ? 'a commit failed' : 'no commit failed')
  await new Promise((r) => setTimeout(r, 300))
  console.log('still running, reads', db.get(0)?.length)
`

test('with the policy, a failed commit is logged and the process goes on reading', () => {
  const r = child('with', true, fillUntilACommitFails)
  assert.match(r.out, 'a commit failed')
  assert.match(r.out, 'an LMDB commit failed (is a disk full or failing?)')
  assert.match(r.out, 'still running, reads 65536')
  assert.is(r.code, 0, r.out)
})

test('without it, the same failure ends the process (what a datanode with a full disk did)', () => {
  const r = child('without', false, fillUntilACommitFails)
  assert.match(r.out, 'a commit failed')
  assert.not.match(r.out, 'still running')
  assert.is.not(r.code, 0)
})

test('any other unhandled rejection still ends the process with 1', () => {
  const r = child('other', true, `Promise.reject(new Error('a bug of ours')); await new Promise((r) => setTimeout(r, 300)); console.log('still running')`)
  assert.match(r.out, 'a bug of ours')
  assert.not.match(r.out, 'still running')
  assert.is(r.code, 1)
})

test.run()
