/**
 * Goal: a script can always stop `o3 local`: it writes its PID to DIR/pids/local.pid, and
 * SIGTERM to that PID, or the death of the process that started it (npx, a shell script),
 * stops every service it started (with --processes every child process too), closes every
 * port and removes the PID file; kill -9 of `o3 local --processes` itself takes its children
 * down too. Method: start `o3 local --ports free --datanodes 1 --json` under a real `sh`
 * wrapper (as npm exec runs it; once with a Node process above the sh, as npm is), stop it
 * each way, and poll, with a deadline, until every process is gone and every port refuses
 * connections.
 */
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { execFile, spawn, type ChildProcess } from 'node:child_process'
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { connect } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { until } from '../helpers.ts'

const o3 = fileURLToPath(new URL('../../../bin/o3.js', import.meta.url))
const root = mkdtempSync(join(tmpdir(), 'o3-local-pid-'))
/** Every PID a test saw, killed -9 at the end should a test fail half-way (where /proc cannot tell which are still ours). */
const seen = new Set<number>()
const STOP_DEADLINE_MS = 60_000

interface Endpoints { scm: string; om: string; s3: string; s3Admin: string; s3Region: string; datanodes: string[]; pids?: Record<string, number> }
interface Started { wrapper: ChildProcess; dataDir: string; endpoints: Endpoints; localPid: number; servicePids: Record<string, number>; output: () => string }

/** `sh -c 'o3 local ...; echo ...'`: the command after it keeps sh alive as the parent
 *  (a lone command may be exec'd by sh), like the `sh -c` npm exec puts between npx and o3. */
async function startUnderWrapper(name: string, extra: string[] = [], options: { npmLike?: boolean } = {}): Promise<Started> {
  const dataDir = join(root, name)
  const sh = ['sh', '-c', '"$0" "$@"; echo "o3 local exited with $?"', process.execPath, o3, 'local', '--ports', 'free', '--datanodes', '1', '--data', dataDir, '--json', ...extra]
  // npmLike: a Node process above the sh, as npm exec is above `sh -c o3 ...`.
  const wrapper = options.npmLike
    ? spawn(process.execPath, ['-e', `require('node:child_process').spawn(process.argv[1], process.argv.slice(2), { stdio: 'inherit' }); setInterval(() => {}, 60000)`, ...sh], { stdio: ['ignore', 'pipe', 'pipe'] })
    : spawn(sh[0], sh.slice(1), { stdio: ['ignore', 'pipe', 'pipe'] })
  seen.add(wrapper.pid!)
  let out = '', err = ''
  wrapper.stderr!.on('data', (d) => (err += d))
  const endpoints = await new Promise<Endpoints>((resolve, reject) => {
    wrapper.stdout!.on('data', (d) => { out += d; try { resolve(JSON.parse(out) as Endpoints) } catch { /* not all of it yet */ } })
    wrapper.once('exit', (code) => reject(new Error(`o3 local exited ${code}: ${err}`)))
  })
  const localPid = Number(readFileSync(join(dataDir, 'pids', 'local.pid'), 'utf8'))
  seen.add(localPid)
  const servicePids: Record<string, number> = {}
  for (const f of readdirSync(join(dataDir, 'pids'))) {
    if (f !== 'local.pid') servicePids[f.replace(/\.pid$/, '')] = Number(readFileSync(join(dataDir, 'pids', f), 'utf8'))
  }
  for (const pid of Object.values(servicePids)) seen.add(pid)
  return { wrapper, dataDir, endpoints, localPid, servicePids, output: () => out + err }
}

/** A zombie (exited, not yet reaped) counts as gone. */
function alive(pid: number): boolean {
  try {
    process.kill(pid, 0)
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM'
  }
  try {
    return !/^\d+ \(.*\) Z/.test(readFileSync(`/proc/${pid}/stat`, 'utf8'))
  } catch {
    return process.platform !== 'linux'
  }
}

/** PIDs whose command line mentions `text`, but for sh wrappers (Linux; elsewhere none are found). */
function processesWith(text: string, options: { shToo?: boolean } = {}): number[] {
  if (process.platform !== 'linux') return []
  const found: number[] = []
  for (const d of readdirSync('/proc')) {
    if (!/^\d+$/.test(d) || Number(d) === process.pid) continue
    try {
      const cmd = readFileSync(`/proc/${d}/cmdline`, 'utf8')
      if (cmd.includes(text) && (options.shToo || !cmd.startsWith('sh\0')) && alive(Number(d))) found.push(Number(d))
    } catch { /* exited meanwhile */ }
  }
  return found
}

function portOpen(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = connect(port, '127.0.0.1')
    s.once('connect', () => { s.destroy(); resolve(true) })
    s.once('error', () => resolve(false))
  })
}

function ports(e: Endpoints): number[] {
  return [e.scm, e.om, e.s3, e.s3Admin, ...e.datanodes].map((a) => Number(a.slice(a.lastIndexOf(':') + 1)))
}

/** Polls until every process of the cluster has exited and every port refuses. */
async function assertAllGone(s: Started, why: string): Promise<void> {
  const pids = [s.localPid, ...Object.values(s.servicePids)]
  let open: number[] = []
  try {
    await until(`${why}: every process gone`, () => pids.every((p) => !alive(p)), STOP_DEADLINE_MS, 100)
    for (const end = Date.now() + STOP_DEADLINE_MS; ;) {
      open = []
      for (const p of ports(s.endpoints)) if (await portOpen(p)) open.push(p)
      if (open.length === 0 || Date.now() > end) break
      await new Promise((r) => setTimeout(r, 100))
    }
  } catch (err) {
    throw new Error(`${(err as Error).message}; still alive: ${pids.filter(alive).join(' ')}; output:\n${s.output()}`)
  }
  assert.equal(open, [], `${why}: ports still open`)
  // The wrapper (sh) is not the cluster; it may still be on its way out.
  const left = () => processesWith(s.dataDir).filter((p) => p !== s.wrapper.pid)
  await until(`${why}: no process left with ${s.dataDir} on its command line`, () => left().length === 0, STOP_DEADLINE_MS, 100).catch((err) => {
    throw new Error(`${(err as Error).message}: ${left().join(' ')}`)
  })
}

test.after(() => {
  // On Linux only what still names this suite's directory on its command line: a PID seen
  // earlier may since belong to another process (o3 local's own processes all carry --data).
  const left = process.platform === 'linux' ? processesWith(root, { shToo: true }) : [...seen]
  for (const pid of left) { if (pid > 1) try { process.kill(pid, 'SIGKILL') } catch { /* gone, as it should be */ } }
  rmSync(root, { recursive: true, force: true })
})

test('o3 local writes its own PID to DIR/pids/local.pid; SIGTERM to it stops the cluster and removes the file', async () => {
  const s = await startUnderWrapper('term')
  assert.ok(s.localPid > 0 && s.localPid !== s.wrapper.pid && alive(s.localPid))
  for (const p of ports(s.endpoints)) assert.ok(await portOpen(p), `port ${p} serves`)
  assert.is((await fetch(`${s.endpoints.s3Admin}/health`)).status, 200, 'the printed admin endpoint serves /health')
  assert.is(s.endpoints.s3Region, 'us-east-1', 'the region S3 clients sign for')
  // A second o3 local on the same data directory is refused and changes nothing, --fresh included.
  for (const fresh of [[], ['--fresh']]) {
    const second = await new Promise<{ code: number; stderr: string }>((resolve) => {
      execFile(process.execPath, [o3, 'local', '--ports', 'free', '--datanodes', '1', '--data', s.dataDir, ...fresh], { encoding: 'utf8', timeout: 60_000 }, (err, _o, stderr) => resolve({ code: err ? Number((err as { code?: number }).code ?? 1) : 0, stderr }))
    })
    assert.is(second.code, 1, second.stderr)
    assert.match(second.stderr, new RegExp(`Cannot start o3 local: process ${s.localPid} uses ${s.dataDir}/pids`))
    assert.is(Number(readFileSync(join(s.dataDir, 'pids', 'local.pid'), 'utf8')), s.localPid)
    assert.ok(existsSync(join(s.dataDir, 'om')), 'the data is still there')
  }
  process.kill(s.localPid, 'SIGTERM')
  await assertAllGone(s, 'SIGTERM to local.pid')
  assert.not.ok(existsSync(join(s.dataDir, 'pids', 'local.pid')), 'local.pid removed on a clean stop')
  await until('the wrapper exits', () => s.wrapper.exitCode !== null, STOP_DEADLINE_MS, 50)
  assert.match(s.output(), /o3 local exited with 0/)
})

test('o3 local stops when the process that started it is killed -9', async () => {
  const s = await startUnderWrapper('parent-killed')
  s.wrapper.kill('SIGKILL')
  await assertAllGone(s, 'kill -9 of the parent')
  assert.not.ok(existsSync(join(s.dataDir, 'pids', 'local.pid')), 'local.pid removed on a clean stop')
})

test('o3 local stops when the npm-like process above its sh -c parent is killed -9 (the sh lives on)', async () => {
  const s = await startUnderWrapper('grandparent-killed', [], { npmLike: true })
  s.wrapper.kill('SIGKILL')
  await assertAllGone(s, 'kill -9 of the process above sh -c')
  assert.not.ok(existsSync(join(s.dataDir, 'pids', 'local.pid')), 'local.pid removed on a clean stop')
})

test('o3 local --outlive-parent keeps running when its parent is killed -9; SIGTERM to local.pid still stops it', async () => {
  const s = await startUnderWrapper('outlive-parent', ['--outlive-parent'])
  s.wrapper.kill('SIGKILL')
  await until('the wrapper is gone', () => !alive(s.wrapper.pid!), STOP_DEADLINE_MS, 50)
  // Several parent checks' worth of time (lifecycle.ts polls every 500 ms), then it still serves.
  await new Promise((r) => setTimeout(r, 2_000))
  assert.ok(alive(s.localPid), 'o3 local still runs')
  for (const p of ports(s.endpoints)) assert.ok(await portOpen(p), `port ${p} still serves`)
  process.kill(s.localPid, 'SIGTERM')
  await assertAllGone(s, 'SIGTERM to local.pid after its parent died')
  assert.not.ok(existsSync(join(s.dataDir, 'pids', 'local.pid')))
})

test('o3 local --processes: a killed service\'s PID file goes; SIGTERM to local.pid stops every service process and removes every PID file', async () => {
  const s = await startUnderWrapper('processes-term', ['--processes'])
  assert.equal(Object.keys(s.servicePids).sort(), ['datanode-1', 'om', 's3g', 'scm'])
  assert.equal(s.servicePids, s.endpoints.pids)
  for (const pid of Object.values(s.servicePids)) assert.ok(alive(pid))
  // A service killed -9 leaves no PID file naming a dead process (or, later, someone else's).
  process.kill(s.servicePids['datanode-1'], 'SIGKILL')
  await until('the killed datanode\'s PID file removed', () => !existsSync(join(s.dataDir, 'pids', 'datanode-1.pid')), STOP_DEADLINE_MS, 50)
  assert.ok(alive(s.localPid), 'o3 local goes on without it')
  assert.ok(existsSync(join(s.dataDir, 'pids', 'om.pid')))
  process.kill(s.localPid, 'SIGTERM')
  await assertAllGone(s, 'SIGTERM to local.pid (--processes)')
  assert.equal(readdirSync(join(s.dataDir, 'pids')), [], 'every PID file removed')
  await until('the wrapper exits', () => s.wrapper.exitCode !== null, STOP_DEADLINE_MS, 50)
  assert.match(s.output(), /o3 local exited with 0/)
})

test('o3 local --processes stops with all its children when its parent is killed -9', async () => {
  const s = await startUnderWrapper('processes-parent-killed', ['--processes'])
  s.wrapper.kill('SIGKILL')
  await assertAllGone(s, 'kill -9 of the parent (--processes)')
  assert.equal(readdirSync(join(s.dataDir, 'pids')), [], 'every PID file removed')
})

test('kill -9 of o3 local --processes itself: its service processes stop on their own', async () => {
  const s = await startUnderWrapper('processes-local-killed', ['--processes'])
  process.kill(s.localPid, 'SIGKILL')
  await assertAllGone(s, 'kill -9 of o3 local (--processes)')
})

test('o3 local --processes: SIGTERM while it is still starting leaves no service behind', async () => {
  const dataDir = join(root, 'processes-early')
  const child = spawn(process.execPath, [o3, 'local', '--processes', '--ports', 'free', '--datanodes', '1', '--data', dataDir], { stdio: 'ignore' })
  seen.add(child.pid!)
  const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)))
  // The SCM is the first service started, and the cluster is not ready before the OM is.
  const scmPidFile = join(dataDir, 'pids', 'scm.pid')
  const scmPid = await until('scm.pid', () => existsSync(scmPidFile) && Number(readFileSync(scmPidFile, 'utf8')), STOP_DEADLINE_MS, 5)
  seen.add(scmPid)
  const localPid = Number(readFileSync(join(dataDir, 'pids', 'local.pid'), 'utf8'))
  assert.is(localPid, child.pid)
  process.kill(localPid, 'SIGTERM')
  assert.is(await exited, 0)
  // Whatever it had started by then must be gone: no process runs with DIR on its command line.
  await until('every service process gone', () => !alive(scmPid) && processesWith(dataDir).length === 0, STOP_DEADLINE_MS, 100)
  assert.equal(readdirSync(join(dataDir, 'pids')), [], 'every PID file removed')
})

test('o3 local --processes: a service that exits while the cluster starts fails the start, naming it and quoting its log', async () => {
  const dataDir = join(root, 'processes-service-dies')
  mkdirSync(dataDir)
  writeFileSync(join(dataDir, 'scm'), 'a file where the SCM wants its folder\n')
  const child = spawn(process.execPath, [o3, 'local', '--processes', '--ports', 'free', '--datanodes', '1', '--data', dataDir], { stdio: ['ignore', 'pipe', 'pipe'] })
  seen.add(child.pid!)
  let out = ''
  child.stdout!.on('data', (d) => (out += d))
  child.stderr!.on('data', (d) => (out += d))
  const code = await new Promise<number | null>((r) => child.once('exit', (c) => r(c)))
  assert.is(code, 1, out)
  // Not a timeout's "nothing answers": the service, its exit and what it said before it.
  assert.match(out, /Cannot start cluster: scm exited \(1\) while starting; the end of .*logs\/scm\.log:/)
  assert.match(out, /Cannot start the SCM on .*\/scm: .*\/scm is not a directory/)
  assert.not.match(out, /endpoints|s3Key/)
  await until('every service process gone', () => processesWith(dataDir).length === 0, STOP_DEADLINE_MS, 100)
  assert.equal(readdirSync(join(dataDir, 'pids')), [], 'every PID file removed')
})

test("o3 local --processes: a service refused for a data folder another process uses is named once, its code not repeated", async () => {
  const dataDir = join(root, 'processes-service-locked')
  mkdirSync(join(dataDir, 'scm'), { recursive: true })
  // This test's own process, alive, holds the SCM's folder.
  writeFileSync(join(dataDir, 'scm', 'in_use.lock'), `${process.pid}\n`)
  const child = spawn(process.execPath, [o3, 'local', '--processes', '--ports', 'free', '--datanodes', '1', '--data', dataDir], { stdio: ['ignore', 'pipe', 'pipe'] })
  seen.add(child.pid!)
  let out = ''
  child.stdout!.on('data', (d) => (out += d))
  child.stderr!.on('data', (d) => (out += d))
  assert.is(await new Promise<number | null>((r) => child.once('exit', (c) => r(c))), 1, out)
  assert.match(out, new RegExp(`Cannot start the SCM on .*: process ${process.pid} uses .*/scm`))
  // The quoted log ends with the service's own "(UNAVAILABLE)"; o3 local's is the same code.
  assert.not.match(out, /\(UNAVAILABLE\) \(UNAVAILABLE\)/)
  await until('every service process gone', () => processesWith(dataDir).length === 0, STOP_DEADLINE_MS, 100)
})

test.run()
