/** @module
 * `npm run bench:om [-- --quick] [--json] [--concurrency C] [--seconds S] [--rounds R] [--kills K] [--profile] [--keep]`:
 * OM key create+commit pairs per second (openKey then commitKey of a zero-byte key, Ozone's
 * freon omkg) against a single OM and against a 3-OM Raft group, each warmed up until its
 * rate settles, in interleaved rounds of the same run (ratio HA / single), then the failover
 * time over K kill -9s of the group's leader (until a pair succeeds through the
 * failover-aware client). Every OM, the SCM and one datanode are real `o3` processes on
 * loopback in a temp dir; the load runs in this process.
 */
import { spawn, type ChildProcess } from 'node:child_process'
import { once } from 'node:events'
import { closeSync, mkdirSync, mkdtempSync, openSync, rmSync, writeFileSync } from 'node:fs'
import { cpus, loadavg, tmpdir } from 'node:os'
import { join } from 'node:path'
import { performance } from 'node:perf_hooks'
import { loadConfig, type O3Config } from '../core/config.ts'
import { ErrorCode, O3Error } from '../core/errors.ts'
import { percentile } from '../core/percentile.ts'
import { RpcClient } from '../core/rpc/client.ts'
import { freePort } from '../cli/free-port.ts'
import { moduleCommand } from './child.ts'
import { warmUntilSettled } from './measure.ts'
import { cpuMs } from './proc-cpu.ts'
import { Progress } from './progress.ts'
import { formatWarmUp } from './report.ts'
import { positiveOption, resultsPath, writeResults } from './results.ts'

const quick = process.argv.includes('--quick')
const json = process.argv.includes('--json')
const concurrency = positiveOption('concurrency', 32)
const seconds = positiveOption('seconds', quick ? 3 : 8)
const rounds = positiveOption('rounds', quick ? 2 : 4)
/** Leader kills; 0 skips the failover part (e.g. to profile a leader that lives to the end). */
const kills = process.argv.includes('--kills') && process.argv[process.argv.indexOf('--kills') + 1] === '0' ? 0 : positiveOption('kills', quick ? 3 : 10)
const profileDir = process.argv.includes('--profile') ? resultsPath(`om-${Date.now()}-profile`) : undefined
/** Writers that keep the group busy while its leader is killed. */
const FAILOVER_LOAD_CONCURRENCY = 4
/** Load before each kill, so that the leader is mid-work when it dies. */
const FAILOVER_LOAD_BEFORE_KILL_MS = 500
const READY_TIMEOUT_MS = 60_000
const CATCH_UP_TIMEOUT_MS = 60_000
/** How long the group may take to serve again after its leader is killed before the benchmark fails. */
const FAILOVER_TIMEOUT_MS = 60_000
/** Untimed warm-up per target until its rate settles: pairs per round, and the most rounds. */
const WARM_UP = quick ? { roundOps: 1000, roundsMax: 4 } : { roundOps: 4000, roundsMax: 10 }
/** How long a writer waits after a failed pair before its next (the timed load), or before trying a warm-up pair again (retryable codes, until FAILOVER_TIMEOUT_MS). */
const PAIR_RETRY_MS = 10
const VOLUME = 'bench'
const BUCKET = 'omkg'

interface Role { id: number; role: string; leader: number; term: number; commit: number; applied: number; address: string }

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))

/** One `o3 scm|om|datanode --config FILE` process; restartable with the same config (same dir, same ports). */
class Service {
  private child: ChildProcess | undefined

  constructor(readonly name: string, readonly kind: 'scm' | 'om' | 'datanode', readonly config: O3Config, private readonly dir: string) {}

  start(): void {
    const confFile = join(this.dir, 'conf', `${this.name}.json`)
    writeFileSync(confFile, JSON.stringify(this.config, null, 2))
    const log = openSync(join(this.dir, 'logs', `${this.name}.log`), 'a')
    const cmd = moduleCommand('cli/main', { profileDir })
    this.child = spawn(cmd.file, [...cmd.args, this.kind, '--config', confFile], { stdio: ['ignore', log, log] })
    closeSync(log)
    // Which profile is whose: CPU.<date>.<time>.<pid>.<tid>.<seq>.cpuprofile.
    if (profileDir !== undefined) writeFileSync(join(profileDir, 'pids.txt'), `${this.child.pid} ${this.name}\n`, { flag: 'a' })
  }

  get pid(): number {
    return this.child!.pid!
  }

  running(): boolean {
    return this.child !== undefined && this.child.exitCode === null && this.child.signalCode === null
  }

  /** kill -9: no clean stop, as a crash. */
  async kill(): Promise<void> {
    if (!this.running()) return
    const exited = once(this.child!, 'exit')
    this.child!.kill('SIGKILL')
    await exited
  }

  /** Pauses (SIGSTOP) or resumes (SIGCONT) the process: an idle target must not take CPU from the measured one. */
  signal(sig: 'SIGSTOP' | 'SIGCONT'): void {
    if (this.running()) this.child!.kill(sig)
  }

  async stop(): Promise<void> {
    if (!this.running()) return
    this.signal('SIGCONT')
    const exited = once(this.child!, 'exit')
    const timer = setTimeout(() => this.child!.kill('SIGKILL'), 15_000)
    this.child!.kill('SIGTERM')
    await exited
    clearTimeout(timer)
  }
}

/** An OM target: one OM, or a group; its failover-aware client knows every member's address. */
interface Target {
  readonly label: string
  readonly oms: Service[]
  readonly client: RpcClient
  /** Pairs/s of each untimed warm-up round, and the pairs in them made only on a later try. */
  warmUp?: number[]
  warmUpRetried?: number
}

async function waitFor<T>(what: string, timeoutMs: number, probe: () => Promise<T | undefined>): Promise<T> {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    const v = await probe().catch(() => undefined)
    if (v !== undefined) return v
    if (Date.now() > deadline) throw new Error(`Cannot run bench:om: ${what} not reached after ${timeoutMs} ms`)
    await sleep(20)
  }
}

/** The roles of the group's members that answer, each asked directly (one address, no failover). */
async function roles(oms: readonly Service[]): Promise<Role[]> {
  const answers = await Promise.all(oms.filter((s) => s.running()).map((s) =>
    new RpcClient('OM', s.config['om.address']).call<Role[]>('roles', {}, { timeoutMs: 1000 }).then((r) => r[0], () => undefined)))
  return answers.filter((r): r is Role => r !== undefined)
}

/** A zero-byte key opened and committed: two OM calls, two Raft entries. */
async function pair(client: RpcClient, key: string): Promise<void> {
  const open = await client.call<{ clientId: string }>('openKey', { volume: VOLUME, bucket: BUCKET, key, sizeBytes: 0 })
  await client.call('commitKey', { clientId: open.clientId, blocks: [], size: 0 })
}

interface Round {
  target: string; pairs: number; seconds: number; pairsPerSecond: number; p50Ms: number; p99Ms: number; errors: number
  /** CPU time of the target's OM processes per pair (all of them; the busiest one): steadier than pairs/s on a shared machine. */
  cpuUsPerPair: number; busiestCpuUsPerPair: number
  /** Terms the group went through during the round (elections: each costs the pairs in flight a retry). */
  newTerms: number
}

/** The highest term any member reports. */
async function termOf(oms: readonly Service[]): Promise<number> {
  return Math.max(0, ...(await roles(oms)).map((r) => r.term))
}

let keySeq = 0

/** `workers` writers doing pairs until `stop()` says so; latencies of successful pairs. */
async function load(client: RpcClient, workers: number, stop: () => boolean): Promise<{ latencies: number[]; errors: number }> {
  const latencies: number[] = []
  let errors = 0
  const worker = async () => {
    while (!stop()) {
      const t0 = performance.now()
      try {
        await pair(client, `k${keySeq++}`)
        latencies.push(performance.now() - t0)
      } catch {
        errors++
        await sleep(PAIR_RETRY_MS)
      }
    }
  }
  await Promise.all(Array.from({ length: workers }, worker))
  return { latencies, errors }
}

async function measureRound(t: Target): Promise<Round> {
  const termBefore = await termOf(t.oms)
  const cpuBefore = t.oms.map((s) => cpuMs([s.pid]))
  const started = performance.now()
  const endAt = started + seconds * 1000
  const { latencies, errors } = await load(t.client, concurrency, () => performance.now() >= endAt)
  const elapsed = (performance.now() - started) / 1000
  const cpu = t.oms.map((s, i) => cpuMs([s.pid]) - cpuBefore[i])
  const newTerms = (await termOf(t.oms)) - termBefore
  latencies.sort((a, b) => a - b)
  return {
    newTerms, cpuUsPerPair: (cpu.reduce((a, b) => a + b, 0) * 1000) / latencies.length, busiestCpuUsPerPair: (Math.max(...cpu) * 1000) / latencies.length,
    target: t.label, pairs: latencies.length, seconds: elapsed, pairsPerSecond: latencies.length / elapsed,
    p50Ms: latencies.length === 0 ? NaN : percentile(latencies, 0.5), p99Ms: latencies.length === 0 ? NaN : percentile(latencies, 0.99), errors,
  }
}

interface Failover { killed: string; term: number; electedMs: number; failoverMs: number; catchUpMs: number; errorsDuringLoad: number }

/** Kills the group's leader, times the first pair through the failover client, restarts the node and waits for it to catch up. */
async function failoverOnce(group: Target): Promise<Failover> {
  const leaderRole = await waitFor('a leader', READY_TIMEOUT_MS, async () => (await roles(group.oms)).find((r) => r.role === 'LEADER'))
  const leader = group.oms.find((s) => s.config['om.address'] === leaderRole.address)!
  let loading = true
  const background = load(group.client, FAILOVER_LOAD_CONCURRENCY, () => !loading)
  await sleep(FAILOVER_LOAD_BEFORE_KILL_MS)
  const killedAt = performance.now()
  await leader.kill()
  // Who leads now, as the survivors say (polled beside the probe).
  let electedMs = NaN
  const survivors = group.oms.filter((s) => s !== leader)
  const elected = (async () => {
    while (performance.now() - killedAt < FAILOVER_TIMEOUT_MS) {
      const r = await roles(survivors)
      if (r.some((x) => x.role === 'LEADER' && x.term > leaderRole.term)) { electedMs = performance.now() - killedAt; return }
      await sleep(5)
    }
  })()
  // A fresh pair through the same failover-aware client the load uses (its current address is the dead leader's).
  for (;;) {
    try {
      await pair(group.client, `failover-${keySeq++}`)
      break
    } catch (err) {
      // The client gave up after RPC_FAILOVER_MS_MAX: try again, the clock keeps running.
      if (performance.now() - killedAt > FAILOVER_TIMEOUT_MS) throw new Error(`Cannot run bench:om: no pair succeeded within ${FAILOVER_TIMEOUT_MS} ms of killing ${leader.name}: ${(err as Error).message}`)
    }
  }
  const failoverMs = performance.now() - killedAt
  await elected
  loading = false
  const { errors } = await background
  const restartedAt = performance.now()
  leader.start()
  await waitFor(`${leader.name} caught up`, CATCH_UP_TIMEOUT_MS, async () => {
    const r = await roles(group.oms)
    const lead = r.find((x) => x.role === 'LEADER')
    const back = r.find((x) => x.address === leader.config['om.address'])
    return lead !== undefined && back !== undefined && back.role === 'FOLLOWER' && back.applied >= lead.commit ? true : undefined
  })
  return { killed: leader.name, term: leaderRole.term, electedMs, failoverMs, catchUpMs: performance.now() - restartedAt, errorsDuringLoad: errors }
}

function median(xs: number[]): number {
  return percentile([...xs].sort((a, b) => a - b), 0.5)
}

async function main(): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'o3-bench-om-'))
  if (profileDir !== undefined) mkdirSync(profileDir, { recursive: true })
  for (const d of ['conf', 'logs']) mkdirSync(join(dir, d))
  const services: Service[] = []
  const killAll = () => { for (const s of services) if (s.running()) process.kill(s.pid, 'SIGKILL') }
  process.once('exit', killAll)
  const progress = new Progress(4 + 2 * rounds + kills)
  try {
    progress.step('starting SCM and a datanode')
    const base = loadConfig({ env: {}, overrides: { 'scm.safemode.minDatanodes': 1, 'datanode.heartbeatIntervalMs': 250, 'datanode.workerThreads': 1 } })
    const scmPort = await freePort()
    const scmAddress = `127.0.0.1:${scmPort}`
    const scm = new Service('scm', 'scm', { ...base, 'scm.port': scmPort, 'scm.raft.port': await freePort(), 'scm.address': scmAddress, 'scm.dir': join(dir, 'scm') }, dir)
    const dn = new Service('datanode', 'datanode', { ...base, 'datanode.port': await freePort(), 'scm.address': scmAddress, 'datanode.dirs': join(dir, 'dn') }, dir)
    services.push(scm, dn)
    scm.start()
    await waitFor('SCM health', READY_TIMEOUT_MS, () => fetch(`http://${scmAddress}/health`).then((r) => r.ok || undefined))
    dn.start()

    progress.step('starting a single OM and a 3-OM group')
    const omConfig = (extra: Partial<O3Config>): O3Config => ({ ...base, 'scm.address': scmAddress, ...extra })
    const singlePort = await freePort()
    const single = new Service('om-single', 'om', omConfig({ 'om.port': singlePort, 'om.raft.port': await freePort(), 'om.address': `127.0.0.1:${singlePort}`, 'om.dir': join(dir, 'om-single') }), dir)
    const ports = [] as [number, number][]
    for (let i = 0; i < 3; i++) ports.push([await freePort(), await freePort()])
    const nodes = ports.map(([rpc, raft], i) => `om${i + 1}@127.0.0.1:${rpc}:${raft}`).join(',')
    const group = ports.map(([rpc], i) => new Service(`om${i + 1}`, 'om', omConfig({ 'om.port': rpc, 'om.address': `127.0.0.1:${rpc}`, 'om.nodes': nodes, 'om.id': `om${i + 1}`, 'om.dir': join(dir, `om${i + 1}`) }), dir))
    services.push(single, ...group)
    for (const s of [single, ...group]) s.start()
    const targets: Target[] = [
      { label: 'single OM', oms: [single], client: new RpcClient('OM', single.config['om.address'], { callerIds: true }) },
      { label: '3-OM group', oms: group, client: new RpcClient('OM', group.map((s) => s.config['om.address']), { callerIds: true }) },
    ]
    for (const t of targets) await waitFor(`a leader in ${t.label}`, READY_TIMEOUT_MS, async () => (await roles(t.oms)).some((r) => r.role === 'LEADER') || undefined)
    const admin = new RpcClient('SCM', scmAddress)
    await waitFor('SCM out of safemode', READY_TIMEOUT_MS, async () => !(await admin.call<{ inSafeMode: boolean }>('safemodeStatus', {})).inSafeMode || undefined)

    progress.step('volume, bucket, warm-up')
    for (const t of targets) {
      await t.client.call('createVolume', { volume: VOLUME, owner: 'bench' })
      await t.client.call('createBucket', { volume: VOLUME, bucket: BUCKET, replication: 'RATIS/ONE', owner: 'bench' })
      // Untimed rounds until the target's rate settles (bench/measure.ts warmUntilSettled,
      // the S3 bench's rule): three processes on two cores take longer to warm up (JIT,
      // LMDB's maps) than one. After a fixed 8 s a full run's group still rose from 1292 to
      // 1599-1672 pairs/s between its first timed round and the next.
      // A pair refused for a passing reason (a retryable code: no leader for a moment) is
      // tried again after 10 ms, as the timed load waits one out (load()), so that a round's
      // rate counts pairs made; any other refusal, or one past FAILOVER_TIMEOUT_MS, ends the run.
      let retried = 0
      t.warmUp = await warmUntilSettled(WARM_UP, concurrency, async (i) => {
        const giveUpAt = performance.now() + FAILOVER_TIMEOUT_MS
        for (let tries = 1; ; tries++) {
          try {
            await pair(t.client, `warm-${keySeq++}-${i}`)
            if (tries > 1) retried++
            return
          } catch (err) {
            if (!(err instanceof O3Error) || !ErrorCode[err.code].retry || performance.now() >= giveUpAt) throw err
            await sleep(PAIR_RETRY_MS)
          }
        }
      })
      t.warmUpRetried = retried
      if (!json) process.stderr.write(`  ${t.label}: untimed warm-up, pairs/s by round: ${formatWarmUp(t.warmUp)}; ${retried} pairs made only on a later try\n`)
    }

    // Interleaved A/B rounds, the order alternating; the target not measured is paused.
    const results: Round[] = []
    for (let r = 0; r < rounds; r++) {
      const order = r % 2 === 0 ? targets : [...targets].reverse()
      for (const t of order) {
        progress.step(`round ${r + 1}/${rounds}: ${t.label}, ${seconds} s at ${concurrency} in flight`)
        const idle = targets.find((x) => x !== t)!
        for (const s of idle.oms) s.signal('SIGSTOP')
        try {
          results.push(await measureRound(t))
        } finally {
          for (const s of idle.oms) s.signal('SIGCONT')
        }
        const last = results[results.length - 1]
        if (!json) process.stderr.write(`  ${last.target}: ${last.pairsPerSecond.toFixed(0)} pairs/s, p50 ${last.p50Ms.toFixed(1)} ms, p99 ${last.p99Ms.toFixed(1)} ms, CPU ${last.cpuUsPerPair.toFixed(0)} us/pair (busiest OM ${last.busiestCpuUsPerPair.toFixed(0)}), ${last.newTerms} new terms, ${last.errors} errors\n`)
      }
    }

    // Failover: the single OM rests; the group's leader dies K times.
    single.signal('SIGSTOP')
    const failovers: Failover[] = []
    for (let k = 0; k < kills; k++) {
      progress.step(`failover ${k + 1}/${kills}: kill -9 the leader`)
      const f = await failoverOnce(targets[1])
      failovers.push(f)
      if (!json) process.stderr.write(`  killed ${f.killed} (term ${f.term}): elected after ${f.electedMs.toFixed(0)} ms, a pair after ${f.failoverMs.toFixed(0)} ms; caught up ${f.catchUpMs.toFixed(0)} ms after restart\n`)
    }
    single.signal('SIGCONT')
    progress.step('stopping')
    progress.stop()

    const of = (label: string) => results.filter((x) => x.target === label)
    const totals = targets.map((t) => {
      const rs = of(t.label)
      const pairs = rs.reduce((n, x) => n + x.pairs, 0)
      const secs = rs.reduce((n, x) => n + x.seconds, 0)
      return {
        target: t.label, pairsPerSecond: pairs / secs, rounds: rs.map((x) => Math.round(x.pairsPerSecond)), p50Ms: median(rs.map((x) => x.p50Ms)), p99Ms: median(rs.map((x) => x.p99Ms)),
        cpuUsPerPair: median(rs.map((x) => x.cpuUsPerPair)), busiestCpuUsPerPair: median(rs.map((x) => x.busiestCpuUsPerPair)), errors: rs.reduce((n, x) => n + x.errors, 0),
        newTerms: rs.reduce((n, x) => n + x.newTerms, 0), warmUpPairsPerSecond: (t.warmUp ?? []).map((x) => Math.round(x)), warmUpRetriedPairs: t.warmUpRetried ?? 0,
      }
    })
    const roundRatios = of('3-OM group').map((h, i) => h.pairsPerSecond / of('single OM')[i].pairsPerSecond)
    const cpuRatio = totals[1].cpuUsPerPair / totals[0].cpuUsPerPair
    const failoverMs = failovers.map((f) => f.failoverMs)
    const summary = {
      bench: 'om', quick, concurrency, secondsPerRound: seconds, rounds, kills,
      machine: { cpus: cpus().length, model: cpus()[0]?.model, node: process.version, loadavg: loadavg() },
      totals, ratioHaOverSingle: totals[1].pairsPerSecond / totals[0].pairsPerSecond, roundRatios, cpuRatioHaOverSingle: cpuRatio,
      failover: { medianMs: kills === 0 ? NaN : median(failoverMs), maxMs: kills === 0 ? NaN : Math.max(...failoverMs), electedMedianMs: kills === 0 ? NaN : median(failovers.map((f) => f.electedMs)), runs: failovers },
      results,
    }
    const file = writeResults('om-', summary)
    if (json) {
      console.log(JSON.stringify(summary, null, 2))
      return
    }
    console.log(`bench:om: zero-byte key create+commit pairs (openKey + commitKey), ${concurrency} in flight, ${rounds} interleaved rounds of ${seconds} s; ${cpus().length} CPUs, Node ${process.version}, load ${loadavg().map((x) => x.toFixed(1)).join(' ')}`)
    console.log('target       pairs/s   rounds                 p50 ms   p99 ms  CPU us/pair (busiest OM)  errors')
    for (const t of totals) console.log(`${t.target.padEnd(11)} ${t.pairsPerSecond.toFixed(0).padStart(8)}   ${t.rounds.join(', ').padEnd(20)} ${t.p50Ms.toFixed(1).padStart(7)} ${t.p99Ms.toFixed(1).padStart(8)}  ${t.cpuUsPerPair.toFixed(0).padStart(6)} (${t.busiestCpuUsPerPair.toFixed(0)})`.padEnd(88) + String(t.errors).padStart(7))
    console.log(`HA / single: ${summary.ratioHaOverSingle.toFixed(2)} x (rounds: ${roundRatios.map((x) => x.toFixed(2)).join(', ')}; goal >= 0.5)`)
    console.log(`elections during the rounds: ${totals[1].newTerms} new terms in the group`)
    console.log(`CPU per pair, HA / single: ${cpuRatio.toFixed(2)} x (all three OMs against the one)`)
    console.log(`failover over ${kills} leader kills: median ${summary.failover.medianMs.toFixed(0)} ms, max ${summary.failover.maxMs.toFixed(0)} ms (goal: median < 3000 ms); new leader seen after a median ${summary.failover.electedMedianMs.toFixed(0)} ms`)
    console.log(`bench:om: results in ${file}`)
  } finally {
    progress.stop()
    await Promise.all(services.map((s) => s.stop()))
    process.removeListener('exit', killAll)
    if (process.argv.includes('--keep')) process.stderr.write(`bench:om: data and logs kept in ${dir}\n`)
    else rmSync(dir, { recursive: true, force: true })
  }
}

main().catch((err: Error) => {
  console.error(`bench:om failed: ${err.stack ?? err.message}`)
  process.exit(1)
})
