/** @module
 * `o3 local`: the embedded cluster (SCM, OM, datanodes, S3 gateway; with --ha three SCMs and
 * three OMs, each trio a Raft group), in this process (with
 * --datanode-thread, the datanodes on a worker thread of their own) or (--processes) as one
 * child process per service with its PID in DIR/pids/<service>.pid, so that a node can be
 * killed like a real one. Which is fastest was measured: bench/README.md. Its own PID is in DIR/pids/local.pid. Prints the endpoints once ready; Ctrl-C,
 * SIGTERM or the exit of the process that started it stops everything it started, and data
 * stays in DIR.
 */
import { surviveLmdbCommitFailures } from '../core/lmdb-failures.ts'
import { spawn, type ChildProcess } from 'node:child_process'
import { createServer } from 'node:net'
import { chmodSync, closeSync, existsSync, mkdirSync, openSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import { DEFAULT_CONFIG, loadConfig, type O3Config } from '../core/config.ts'
import { O3Error } from '../core/errors.ts'
import { O3Client, type S3Secret } from '../datapath/client/index.ts'
import { servesHttps } from '../datapath/s3/index.ts'
import { LocalCluster, localDatanodePort, localGroup, localOverrides } from './cluster.ts'
import { freePort } from './free-port.ts'
import { flag, option, UsageError, type Invocation } from './args.ts'
import { StopRequest } from './lifecycle.ts'
import { DirLock } from '../core/dir-lock.ts'
import { printJson, printTable } from './output.ts'
import { adminS3Key, secureLines, secureSettings, SECURE_ADMIN, waitForCaFiles, writeClientFiles, type ScmCaFiles, type SecureClient } from './local-secure.ts'
import { Agent, fetch as undiciFetch } from 'undici'
import { tlsTransport } from '../core/rpc/transport.ts'
import { enrollUser } from '../core/security/identity.ts'
import type { Credentials } from '../core/security/pki.ts'

/** How long a service process may take to stop on SIGTERM before it is killed. */
const SERVICE_STOP_GRACE_MS = 15_000

/** Fails clearly when a fixed port is taken, before any child is started. */
async function checkPortFree(port: number, name: string): Promise<void> {
  await new Promise<void>((res, rej) => {
    const s = createServer()
    s.once('error', () => rej(new O3Error('UNAVAILABLE', `Cannot start ${name}: port ${port} on 127.0.0.1 is already in use (use --ports free, or stop what holds it)`)))
    s.listen(port, '127.0.0.1', () => s.close(() => res()))
  })
}

/** Runs `o3 local`; args.ts has checked its options. */
export async function local(inv: Invocation): Promise<void> {
  surviveLmdbCommitFailures()
  const datanodes = option(inv, 'datanodes')
  const n = Number(datanodes)
  if (!/^\d+$/.test(datanodes) || !Number.isSafeInteger(n) || n < 1 || n > 32) throw new UsageError('--datanodes must be 1..32')
  const ports = option(inv, 'ports')
  if (ports !== 'fixed' && ports !== 'free') throw new UsageError('--ports must be fixed or free')
  // Every check of the options alone comes before DIR/pids is made: a refused command leaves nothing on disk.
  if (flag(inv, 'processes') && flag(inv, 'datanode-thread')) throw new UsageError('--processes and --datanode-thread do not go together: --processes already runs each datanode in a process of its own')
  const dataDir = resolve(option(inv, 'data'))
  const json = flag(inv, 'json')
  const ha = flag(inv, 'ha')
  // DIR/pids/local.pid names this process while it runs (scripts stop it by that PID); taken
  // before --fresh, since wiping the data of a running cluster would lose it, and kept
  // through the wipe, so that no other o3 local starts on DIR meanwhile.
  const pids = join(dataDir, 'pids')
  const pidFile = DirLock.acquire(pids, 'o3 local', LOCAL_PID_FILE)
  if (flag(inv, 'fresh')) {
    for (const entry of readdirSync(dataDir)) if (entry !== 'pids') rmSync(join(dataDir, entry), { recursive: true, force: true })
    for (const entry of readdirSync(pids)) if (entry !== LOCAL_PID_FILE) rmSync(join(pids, entry), { recursive: true, force: true })
  }
  // The stop request listens before anything starts: a SIGTERM that comes while the
  // cluster starts stops it once started, instead of killing this process and leaving its
  // children (--processes) running.
  let forceStop: () => void = () => process.exit(1)
  const stop = new StopRequest({ watchParent: !flag(inv, 'outlive-parent'), onRepeat: () => forceStop() })
  try {
    // The two layouts keep their state in different folders (DIR/scm, DIR/scm1..3): starting
    // one on the other's data would look like an empty cluster.
    if (ha && existsSync(join(dataDir, 'scm'))) throw new UsageError(`${dataDir} holds a cluster started without --ha: drop --ha, or use another --data`)
    if (!ha && existsSync(join(dataDir, 'scm1'))) throw new UsageError(`${dataDir} holds a cluster started with --ha: add --ha, or use another --data`)
    // A secure cluster's data started without security would serve it to anyone, its ACLs unenforced.
    if (!flag(inv, 'secure') && existsSync(join(dataDir, 'ca.pem'))) throw new UsageError(`${dataDir} holds a cluster started with --secure: add --secure, or use another --data`)
    const free = ports === 'free'
    const secure = flag(inv, 'secure')
    if (flag(inv, 'processes')) return await localProcesses({ dataDir, n, free, json, ha, secure, stop, onForce: (f) => { forceStop = f } })
    // Secure: security.enabled=1 makes LocalCluster give every service a certificate from the SCM's CA.
    const overrides = secure ? secureSettings(loadConfig({ env: process.env })) : undefined
    const cluster = new LocalCluster({ dataDir, datanodes: n, freePorts: free, env: true, s3: true, datanodeThread: flag(inv, 'datanode-thread'), ha, overrides })
    try {
      await cluster.start()
    } catch (err) {
      await cluster.stop().catch(() => {})
      throw err
    }
    try {
      if (!stop.requested) {
        let s3Key: S3Secret, client: SecureClient | undefined
        if (secure) {
          // The administrator's certificate straight from the CA this process holds.
          const ca = cluster.scm.ca
          if (ca === undefined) throw new O3Error('INTERNAL_ERROR', 'Cannot start a secure cluster: the SCM holds no CA')
          const admin = await ca.issueUserCertificate(SECURE_ADMIN)
          client = writeClientFiles(dataDir, admin)
          s3Key = await adminS3Key({ om: cluster.omAddress, scm: cluster.scmAddress, admin })
        } else s3Key = await cluster.client().getS3Secret(S3_USER)
        const groups = ha ? { scms: cluster.scms.map((s, i) => ({ name: `scm${i + 1}`, address: s.address })), oms: cluster.oms.map((o, i) => ({ name: `om${i + 1}`, address: o.address })) } : {}
        printEndpoints({ scm: cluster.scmAddress, om: cluster.omAddress, ...groups, s3: cluster.s3g!.endpoint, s3Region: cluster.s3g!.region, s3Admin: `http://${cluster.s3g!.adminAddress}`, s3Key, datanodes: cluster.datanodeAddresses, dataDir, ...(client === undefined ? {} : { secure: client }) }, json)
      }
      console.error(`o3 local: stopping (${await stop.promise})`)
    } finally {
      await cluster.stop()
    }
  } finally {
    stop.dispose()
    pidFile.release()
  }
}

/** DIR/pids/local.pid: the PID of the `o3 local` running on DIR, its lock on DIR and what scripts stop it by. */
const LOCAL_PID_FILE = 'local.pid'

/** The user whose S3 key pair `o3 local` prints (created on first start, the same after). */
const S3_USER = process.env.USER || 'o3'

/** What `o3 local` prints. With --ha, `scm` and `om` list every member (comma-separated, as
 *  clients take them) and `scms`/`oms` name each. */
interface Endpoints {
  scm: string; om: string; scms?: GroupEndpoint[]; oms?: GroupEndpoint[]
  s3: string; s3Key: { awsAccessKey: string; awsSecret: string }; datanodes: string[]; dataDir: string; pids?: Record<string, number>
  /** The region S3 clients sign for (s3g.region). */
  s3Region: string
  /** The gateway's admin endpoint (plain HTTP): /prom and /health. */
  s3Admin: string
  /** --secure: the CA and administrator files clients read (s3Key is then the administrator's). */
  secure?: SecureClient
}
interface GroupEndpoint { name: string; address: string }

function printEndpoints(e: Endpoints, json: boolean): void {
  if (json) return printJson(e)
  const scheme = e.secure === undefined ? 'http' : 'https'
  console.log(`O3 is ready${e.secure === undefined ? '' : ', secure'} (data in ${e.dataDir})`)
  printTable(['service', 'endpoint'], [
    ['S3 gateway', e.s3],
    ['S3 gateway /prom, /health', e.s3Admin],
    ...(e.scms?.map((s) => [`SCM ${s.name}`, `${scheme}://${s.address}`]) ?? [['SCM', `${scheme}://${e.scm}`]]),
    ...(e.oms?.map((o) => [`OM ${o.name}`, `${scheme}://${o.address}`]) ?? [['OM', `${scheme}://${e.om}`]]),
    ...e.datanodes.map((d, i) => [`datanode-${i + 1}`, `${scheme}://${d}`]),
  ])
  if (e.secure !== undefined) {
    for (const line of secureLines({ client: e.secure, s3Key: e.s3Key, s3: e.s3, s3Region: e.s3Region })) console.log(line)
  } else {
    console.log(`S3 key pair of ${S3_USER} (o3 s3 getsecret --user ${S3_USER} shows it again):`)
    console.log(`  export AWS_ACCESS_KEY_ID=${e.s3Key.awsAccessKey} AWS_SECRET_ACCESS_KEY=${e.s3Key.awsSecret} AWS_DEFAULT_REGION=${e.s3Region}`)
    console.log(`  aws --endpoint-url ${e.s3} s3 mb s3://bucket1 && aws --endpoint-url ${e.s3} s3 cp ./README.md s3://bucket1/`)
  }
  const d = DEFAULT_CONFIG
  const at = e.om === `${d.host}:${d['om.port']}` && e.scm === `${d.host}:${d['scm.port']}` ? '' : ` --om ${e.om} --scm ${e.scm}`
  console.log(`Native: npx o3 sh volume create /vol1${at} && npx o3 sh bucket create /vol1/bucket1${at} && npx o3 sh key put /vol1/bucket1/hello ./README.md${at}`)
  if (at !== '') console.log(`(not the default ports: pass${at} to every o3 sh, o3 admin and o3 s3 command)`)
  console.log(`Stop with Ctrl-C or kill $(cat ${join(e.dataDir, 'pids', 'local.pid')}); starting again on the same --data keeps every key.`)
}

/** A service process of `o3 local --processes`: its name (pids/<name>.pid), command and settings. */
interface ServiceProcess { name: string; command: 'scm' | 'om' | 'datanode' | 's3g'; config: O3Config }

async function localProcesses(o: { dataDir: string; n: number; free: boolean; json: boolean; ha: boolean; secure: boolean; stop: StopRequest; onForce: (f: () => void) => void }): Promise<void> {
  const port = async (fixed: number) => (o.free ? freePort() : fixed)
  const plain = loadConfig({ overrides: localOverrides(o.n) })
  // Secure: every service with security.enabled=1; the OMs, datanodes and gateway also get the
  // SCM's bootstrap token once it has made its CA (below), and enroll with it.
  const base = o.secure ? loadConfig({ overrides: { ...localOverrides(o.n), ...secureSettings(plain) } }) : plain
  const s3Port = await port(base['s3g.port']), s3AdminPort = await port(base['s3g.adminPort'])
  let scms: ServiceProcess[], oms: ServiceProcess[]
  if (o.ha) {
    scms = (await localGroup('scm', base, o.dataDir, o.free)).map((m) => ({ ...m, command: 'scm' }))
    oms = (await localGroup('om', base, o.dataDir, o.free)).map((m) => ({ ...m, command: 'om' }))
  } else {
    const scmPort = await port(base['scm.port']), omPort = await port(base['om.port'])
    const scmRaftPort = await port(base['scm.raft.port']), omRaftPort = await port(base['om.raft.port'])
    scms = [{ name: 'scm', command: 'scm', config: { ...base, 'scm.port': scmPort, 'scm.raft.port': scmRaftPort, 'scm.address': `${base.host}:${scmPort}`, 'scm.dir': join(o.dataDir, 'scm') } }]
    oms = [{ name: 'om', command: 'om', config: { ...base, 'om.port': omPort, 'om.raft.port': omRaftPort, 'om.address': `${base.host}:${omPort}`, 'om.dir': join(o.dataDir, 'om') } }]
  }
  // Every client of a group (OM, datanode, gateway) is given every member's address.
  const scmAddress = scms.map((s) => s.config['scm.address']).join(','), omAddress = oms.map((s) => s.config['om.address']).join(',')
  for (const om of oms) om.config = { ...om.config, 'scm.address': scmAddress }
  const datanodes: ServiceProcess[] = []
  for (let i = 1; i <= o.n; i++) {
    datanodes.push({ name: `datanode-${i}`, command: 'datanode', config: { ...base, 'datanode.port': await port(localDatanodePort(i)), 'scm.address': scmAddress, 'datanode.dirs': join(o.dataDir, `datanode-${i}`), 'datanode.workerThreads': 1 } })
  }
  const s3g: ServiceProcess = { name: 's3g', command: 's3g', config: { ...base, 's3g.port': s3Port, 's3g.adminPort': s3AdminPort, 'om.address': omAddress, 'scm.address': scmAddress, 's3g.dir': join(o.dataDir, 's3g') } }
  const services = [...scms, ...oms, ...datanodes, s3g]
  if (!o.free) {
    for (const s of scms) {
      await checkPortFree(s.config['scm.port'], `SCM ${s.name}`)
      if (o.ha) await checkPortFree(s.config['scm.raft.port'], `SCM ${s.name} Raft`)
    }
    for (const s of oms) {
      await checkPortFree(s.config['om.port'], `OM ${s.name}`)
      if (o.ha) await checkPortFree(s.config['om.raft.port'], `OM ${s.name} Raft`)
    }
    await checkPortFree(s3Port, 'S3 gateway')
    await checkPortFree(s3AdminPort, 'S3 gateway admin')
    for (const d of datanodes) await checkPortFree(d.config['datanode.port'], d.name)
  }
  // conf/ holds each service's settings, security.bootstrapToken among them with --secure (it
  // enrolls any om, datanode or s3g identity), and logs/ what the services say: the owner's only.
  for (const dir of ['conf', 'pids', 'logs']) mkdirSync(join(o.dataDir, dir), { recursive: true })
  for (const dir of ['conf', 'logs']) chmodSync(join(o.dataDir, dir), 0o700)
  const o3 = fileURLToPath(new URL('../../bin/o3.js', import.meta.url))
  const children = new Map<string, ChildProcess>()
  let caFiles: ScmCaFiles | undefined
  const pidPath = (name: string) => join(o.dataDir, 'pids', `${name}.pid`)
  let stopping = false
  /** Why the cluster stopped when no service was left: `o3 local` then fails (exit 1), not stops. */
  let allExited: string | undefined
  // A service that exits before the cluster is up fails the start, with the end of its log.
  let started = false
  let failStart!: (err: Error) => void
  const startFailed = new Promise<never>((_, rej) => { failStart = rej })
  startFailed.catch(() => { /* raced below; unobserved when the start succeeds */ })
  o.onForce(() => {
    for (const c of children.values()) c.kill('SIGKILL')
    process.exit(1)
  })
  const pids: Record<string, number> = {}
  /** Starts every service and waits until the cluster serves; gives what to print (none if stopped meanwhile). */
  const start = async (): Promise<{ s3Key: S3Secret; secureClient?: SecureClient } | undefined> => {
    for (const { name, command, config } of services) {
      if (o.stop.requested) break
      const confFile = join(o.dataDir, 'conf', `${name}.json`)
      writeFileSync(confFile, JSON.stringify(config, null, 2), { mode: 0o600 })
      chmodSync(confFile, 0o600)
      const logFile = join(o.dataDir, 'logs', `${name}.log`)
      const log = openSync(logFile, 'a', 0o600)
      chmodSync(logFile, 0o600)
      // The IPC channel is how the child knows this process is gone even after kill -9:
      // it closes, and the service stops (lifecycle.ts).
      // The services run with this process's Node flags (--cpu-prof, --max-old-space-size, ...).
      const child = spawn(process.execPath, [...process.execArgv, o3, command, '--config', confFile], { stdio: ['ignore', log, log, 'ipc'] })
      closeSync(log) // the child has its own copy
      children.set(name, child)
      pids[name] = child.pid!
      writeFileSync(pidPath(name), String(child.pid))
      child.on('exit', (code, signal) => {
        if (stopping) return
        // Its PID names nothing of ours now (soon, perhaps, another process): the file goes.
        rmSync(pidPath(name), { force: true })
        if (started) {
          // With none left there is no cluster to go on: stop as asked to (pid files removed, a last word).
          const alive = [...children.values()].filter((c) => c.exitCode === null && c.signalCode === null).length
          if (alive === 0) {
            allExited = `every service exited, the last ${name} (pid ${child.pid}, ${signal ?? code})`
            return o.stop.request(allExited)
          }
          return console.error(`o3 local: ${name} (pid ${child.pid}) exited (${signal ?? code}); the cluster goes on without it (${alive} service(s) left)`)
        }
        if (o.stop.requested) return // asked to stop while starting (Ctrl-C reaches the children too)
        o.stop.request(`${name} exited while the cluster started`)
        failStart(new O3Error('UNAVAILABLE', `Cannot start cluster: ${name} exited (${signal ?? code}) while starting; the end of ${logFile}:\n${logTail(logFile)}`))
      })
      // An SCM serves once its group has a leader: the members start together, and the
      // OMs (which ask the SCM at start) after them.
      if (name === scms[scms.length - 1].name) {
        if (o.secure) {
          // Every SCM writes the group's CA and tokens once the CA exists (control/scm/ca.ts).
          for (const s of scms) caFiles = await waitForCaFiles(s.config['scm.dir'], () => o.stop.requested)
          if (caFiles === undefined) break
          for (const other of [...oms, ...datanodes, s3g]) other.config = { ...other.config, 'security.bootstrapToken': caFiles.bootstrapToken }
        }
        for (const s of scms) await waitHealthy(s.config['scm.address'], o.stop, caFiles?.ca)
      }
    }
    let admin: Credentials | undefined
    let secureClient: SecureClient | undefined
    if (o.secure && caFiles !== undefined && !o.stop.requested) {
      // The administrator's certificate from the SCM with its admin token: the CA's key stays in the SCM.
      admin = await enrollUser({ user: SECURE_ADMIN, scm: scmAddress, adminToken: caFiles.adminToken })
      secureClient = writeClientFiles(o.dataDir, admin)
    }
    const adminCredentials = admin
    const client = new O3Client({ om: omAddress, scm: scmAddress, ...(adminCredentials === undefined ? {} : { transport: tlsTransport(() => adminCredentials) }) })
    for (const until = Date.now() + 60_000; !o.stop.requested;) {
      const s = await client.admin<{ inSafeMode: boolean }>('safemodeStatus').catch(() => ({ inSafeMode: true }))
      const omUp = await client.listVolumes().then(() => true, () => false)
      // The admin port answers once the S3 port listens, and is plain HTTP even when S3 is HTTPS.
      const s3Up = await fetch(`http://${base.host}:${s3AdminPort}/health`).then((r) => r.ok, () => false)
      if (!s.inSafeMode && omUp && s3Up) break
      if (Date.now() > until) throw new Error(`Cannot start cluster: not ready after 60 s (see ${join(o.dataDir, 'logs')})`)
      await new Promise((r) => setTimeout(r, 100))
    }
    if (o.stop.requested) return undefined
    const s3Key = await client.getS3Secret(secureClient === undefined ? S3_USER : SECURE_ADMIN)
    return { s3Key, ...(secureClient === undefined ? {} : { secureClient }) }
  }
  try {
    const up = await Promise.race([start(), startFailed])
    started = true
    if (up !== undefined && !o.stop.requested) {
      const { s3Key, secureClient } = up
      const groups = o.ha ? { scms: scms.map((s) => ({ name: s.name, address: s.config['scm.address'] })), oms: oms.map((s) => ({ name: s.name, address: s.config['om.address'] })) } : {}
      printEndpoints({ scm: scmAddress, om: omAddress, ...groups, s3: `${servesHttps(s3g.config) ? 'https' : 'http'}://${base.host}:${s3Port}`, s3Region: base['s3g.region'], s3Admin: `http://${base.host}:${s3AdminPort}`, s3Key, datanodes: datanodes.map(({ config: c }) => `${c.host}:${c['datanode.port']}`), dataDir: o.dataDir, pids, ...(secureClient === undefined ? {} : { secure: secureClient }) }, o.json)
    }
    console.error(`o3 local: stopping (${await o.stop.promise})`)
  } finally {
    stopping = true
    // In the order the in-process cluster stops: the gateway first, while the datanodes, OMs
    // and SCMs still serve, so that the uploads it drains can finish; then the datanodes, OMs, SCMs.
    for (const tier of STOP_ORDER) {
      await Promise.all([...children].filter(([name]) => tier(name)).map(([, c]) => stopChild(c)))
    }
    for (const name of children.keys()) rmSync(pidPath(name), { force: true })
  }
  if (allExited !== undefined) throw new O3Error('UNAVAILABLE', `The cluster is gone: ${allExited} (their logs: ${join(o.dataDir, 'logs')})`)
}

/** The last `lines` lines of a service's log (what it said before it exited). */
function logTail(path: string, lines = 20): string {
  try {
    return readFileSync(path, 'utf8').trimEnd().split('\n').slice(-lines).join('\n')
  } catch (err) {
    return `(cannot read it: ${(err as Error).message})`
  }
}

/** Which services stop in each turn (by process name): gateway, datanodes, OMs, then the rest (SCMs). */
const STOP_ORDER: readonly ((name: string) => boolean)[] = [
  (name) => name === 's3g', (name) => name.startsWith('datanode'), (name) => name.startsWith('om'), () => true,
]

/** SIGTERM, then SIGKILL if the service has not stopped after SERVICE_STOP_GRACE_MS. */
function stopChild(c: ChildProcess): Promise<void> {
  return new Promise<void>((res) => {
    if (c.exitCode !== null || c.signalCode !== null) return res()
    const timer = setTimeout(() => c.kill('SIGKILL'), SERVICE_STOP_GRACE_MS)
    c.once('exit', () => { clearTimeout(timer); res() })
    c.kill('SIGTERM')
  })
}

/** Waits for `address`'s /health; over HTTPS trusting `ca` when given (a secure cluster). */
async function waitHealthy(address: string, stop: StopRequest, ca?: string): Promise<void> {
  const dispatcher = ca === undefined ? undefined : new Agent({ connect: { ca } })
  try {
    for (const until = Date.now() + 30_000; Date.now() < until && !stop.requested;) {
      const ok = await undiciFetch(`${ca === undefined ? 'http' : 'https'}://${address}/health`, { dispatcher }).then((r) => r.ok, () => false)
      if (ok) return
      await new Promise((r) => setTimeout(r, 50))
    }
  } finally {
    await dispatcher?.close()
  }
  if (stop.requested) return
  throw new Error(`Cannot start cluster: nothing answers on ${address}`)
}
