/**
 * Goal: one process per data directory. While a process holds DIR's lock another process is
 * refused with UNAVAILABLE naming the holder; once released, or once the holder died without
 * releasing it (kill -9), another process takes it, and of several starting together on
 * such a lock exactly one; the holder itself may take it again; a path that is a file is
 * refused as such; the directory is made, or made again, its owner's alone (0700).
 * Method: real files in a temp dir and real child processes (`node -e`) taking the lock.
 */
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { spawn, spawnSync } from 'node:child_process'
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { once } from 'node:events'
import { fileURLToPath } from 'node:url'
import { DIR_LOCK_FILE, DirLock, processAlive } from '../../core/dir-lock.ts'

const dir = mkdtempSync(join(tmpdir(), 'o3-dir-lock-'))
const module = fileURLToPath(new URL('../../core/dir-lock.js', import.meta.url))
test.after(() => rmSync(dir, { recursive: true, force: true }))

/** Another process tries to take DIR's lock: its exit code and what it printed. */
function otherProcessTakes(): { code: number | null; out: string } {
  const script = `import(${JSON.stringify(module)}).then(({ DirLock }) => { DirLock.acquire(${JSON.stringify(dir)}, 'the test service').release(); console.log('took it') }).catch((e) => { console.log(e.code + ': ' + e.message); process.exit(3) })`
  const r = spawnSync(process.execPath, ['-e', script], { encoding: 'utf8' })
  return { code: r.status, out: r.stdout.trim() }
}

test('a held directory is refused to another process, naming the holder; released, it is taken', () => {
  const lock = DirLock.acquire(dir, 'the test service')
  assert.is(readFileSync(join(dir, DIR_LOCK_FILE), 'utf8').trim(), String(process.pid))
  // The holder itself may take it again (a service restarted in place).
  DirLock.acquire(dir, 'the test service')
  const refused = otherProcessTakes()
  assert.is(refused.code, 3)
  assert.match(refused.out, `UNAVAILABLE: Cannot start the test service: process ${process.pid} uses ${dir}`)
  lock.release()
  assert.not.ok(existsSync(join(dir, DIR_LOCK_FILE)), 'released, the file is gone')
  const taken = otherProcessTakes()
  assert.is(taken.code, 0, taken.out)
  assert.is(taken.out, 'took it')
  assert.equal(DirLock.acquire(dir, 'the test service').path, join(dir, DIR_LOCK_FILE))
})

test('a lock left by a process killed with -9 is taken over', async () => {
  rmSync(join(dir, DIR_LOCK_FILE), { force: true })
  const child = spawn(process.execPath, ['-e', `import(${JSON.stringify(module)}).then(({ DirLock }) => { DirLock.acquire(${JSON.stringify(dir)}, 'x'); console.log('held'); setInterval(() => {}, 1000) })`], { stdio: ['ignore', 'pipe', 'inherit'] })
  await once(child.stdout!, 'data')
  assert.is(readFileSync(join(dir, DIR_LOCK_FILE), 'utf8').trim(), String(child.pid))
  assert.match(otherProcessTakes().out, `process ${child.pid} uses`)
  child.kill('SIGKILL')
  await once(child, 'exit')
  assert.not.ok(processAlive(child.pid!))
  const taken = otherProcessTakes()
  assert.is(taken.out, 'took it')
  // And a file naming no process at all (garbage) is no lock either.
  writeFileSync(join(dir, DIR_LOCK_FILE), 'not a pid\n')
  assert.is(otherProcessTakes().out, 'took it')
})

test('processes starting together on a stale lock: exactly one takes it', async () => {
  const holdScript = `import(${JSON.stringify(module)}).then(({ DirLock }) => { DirLock.acquire(${JSON.stringify(dir)}, 'x'); console.log('took'); setTimeout(() => {}, 1500) }).catch((e) => console.log(e.code))`
  for (let trial = 0; trial < 5; trial++) {
    writeFileSync(join(dir, DIR_LOCK_FILE), '999999999\n') // no such process
    const children = Array.from({ length: 6 }, () => spawn(process.execPath, ['-e', holdScript], { stdio: ['ignore', 'pipe', 'inherit'] }))
    const outs = await Promise.all(children.map(async (c) => {
      let out = ''
      c.stdout!.on('data', (d) => (out += d))
      await once(c, 'exit')
      return out.trim()
    }))
    assert.is(outs.filter((o) => o === 'took').length, 1, `trial ${trial}: ${outs.join(', ')}`)
    assert.ok(outs.every((o) => o === 'took' || o === 'UNAVAILABLE'), outs.join(', '))
  }
})

test('a path that is a file is no data directory: a clear error, nothing written', () => {
  const file = join(dir, 'a-file')
  writeFileSync(file, 'x')
  assert.throws(() => DirLock.acquire(file, 'the test service'), (e: Error & { code?: string }) => e.code === 'INVALID_ARGUMENT' && e.message === `Cannot start the test service: ${file} is not a directory`)
  assert.is(readFileSync(file, 'utf8'), 'x')
})

test('the directory is its owner\'s alone (0700): made so, and an existing one made so, whatever the umask', () => {
  const made = join(dir, 'private', 'new')
  const before = process.umask(0o022)
  try {
    DirLock.acquire(made, 'x').release()
    assert.is(statSync(made).mode & 0o777, 0o700)
    const open = join(dir, 'open')
    mkdirSync(open)
    chmodSync(open, 0o755)
    DirLock.acquire(open, 'x').release()
    assert.is(statSync(open).mode & 0o777, 0o700)
  } finally {
    process.umask(before)
  }
})

test.run()
