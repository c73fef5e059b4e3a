/** @module
 * What the pipeline fault tests share: `o3 local --processes --datanodes 3` as a child process
 * with its datanodes by name, id and address; who leads a pipeline's Raft group; kill -9 and
 * restart of a datanode; a load of native-client writers of mixed sizes; byte-for-byte reads;
 * and a comparison of the block files of a pipeline's containers across the datanode dirs.
 */
import { spawn, execFile, type ChildProcess } from 'node:child_process'
import { createHash } from 'node:crypto'
import { closeSync, existsSync, mkdtempSync, openSync, readdirSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { O3Error } from '../../core/errors.ts'
import { MiB } from '../../core/limits.ts'
import type { KeyInfo } from '../../core/om-wire.ts'
import { RpcClient } from '../../core/rpc/client.ts'
import type { BlockId, DatanodeId, Pipeline } from '../../core/wire.ts'
import { O3Client } from '../../datapath/client/index.ts'
import { readChunk } from '../../datapath/client/datanode-io.ts'
import { randomBytes, until } from '../helpers.ts'
import { exitedEarly, o3, pidOf, rng, teeStderr } from './ha-cluster.ts'

const execFileAsync = promisify(execFile)

export interface LocalEndpoints { scm: string; om: string; s3: string; datanodes: string[]; pids: Record<string, number> }
/** A datanode of the cluster: `datanode-<i>` (its PID file, conf and log name), id and address. */
export interface Dn { name: string; id: string; address: string; dir: string }

/** Who leads a pipeline, as far as the cluster says, and where that came from. */
export interface PipelineLeader {
  pipelineId: string
  leader: Dn
  followers: Dn[]
  term: number
  /** The leader's applied index when asked (datanode reports only). */
  applied?: number
  source: 'datanode listPipelines' | 'scm pipeline list'
}

/** One member's own report of a pipeline group (core/wire.ts PipelineReport). */
export interface Report { pipelineId: string; leaderId: string; term: number; applied: number; diverged?: boolean }

/**
 * Settings of every pipeline fault test. A follower down for the length of a test is a short
 * outage next to the stale interval (Ozone's is 5 min): the SCM must not close the pipeline
 * under the writers, or "writes keep succeeding on the same pipeline" could not hold with three
 * datanodes (no second RATIS/THREE pipeline). Blocks of 8 MiB make the larger keys multi-block.
 */
export const PIPELINE_TEST_ENV: NodeJS.ProcessEnv = {
  O3_SCM_BLOCK_SIZEBYTES: String(8 * MiB),
  O3_DATANODE_HEARTBEATINTERVALMS: '500',
  O3_SCM_HEARTBEAT_STALEMS: '90000',
  O3_SCM_HEARTBEAT_DEADMS: '180000',
}

/**
 * Settings of the replication manager's fault tests (issue 13): 1 MiB blocks in 4 MiB
 * containers (keys fill and close several), fast heartbeats and replication rounds. Each test
 * sets its own STALE/DEAD intervals on top.
 */
export const REPLICATION_TEST_ENV: NodeJS.ProcessEnv = {
  O3_SCM_BLOCK_SIZEBYTES: String(1 * MiB),
  O3_SCM_CONTAINER_SIZEBYTES: String(4 * MiB),
  O3_DATANODE_HEARTBEATINTERVALMS: '500',
  O3_SCM_PIPELINE_DESTROYTIMEOUTMS: '2000',
  O3_SCM_REPLICATION_INTERVALMS: '1000',
  O3_SCM_REPLICATION_COMMANDTIMEOUTMS: '30000',
}

/** Logs one step of a scenario with the seconds since it started: a failure names the last one. */
export class Steps {
  private readonly startedAt = performance.now()
  last = '(none)'
  constructor(private readonly scenario: string) {}
  step(what: string): void {
    this.last = what
    console.log(`[${this.scenario} +${((performance.now() - this.startedAt) / 1000).toFixed(1)}s] ${what}`)
  }
}

/**
 * One `o3 local --processes` cluster of three datanodes in a temp dir, for one test. `run`
 * starts it, runs the scenario, and always stops it; on failure it prints the failing step,
 * the tail of each service log, and keeps the data dir when O3_TEST_KEEP is set.
 */
export class PipelineCluster {
  readonly dataDir: string
  local!: ChildProcess
  endpoints!: LocalEndpoints
  client!: O3Client
  datanodes: Dn[] = []
  readonly steps: Steps
  /** Datanodes this test started again (its own to stop), by name. */
  private readonly restarted = new Map<string, ChildProcess>()
  /** Datanodes killed and not restarted. */
  readonly down = new Set<string>()

  constructor(readonly scenario: string, readonly env: NodeJS.ProcessEnv = { ...process.env, ...PIPELINE_TEST_ENV }, readonly datanodeCount = 3) {
    this.dataDir = mkdtempSync(join(tmpdir(), 'o3-pipe-fault-'))
    this.steps = new Steps(scenario)
  }

  step(what: string): void {
    this.steps.step(what)
  }

  /** Runs `body` on a fresh cluster (three datanodes and PIPELINE_TEST_ENV unless told); see the class comment. */
  static async run(scenario: string, body: (c: PipelineCluster) => Promise<void>, options: { datanodes?: number; env?: NodeJS.ProcessEnv } = {}): Promise<void> {
    const c = new PipelineCluster(scenario, { ...process.env, ...(options.env ?? PIPELINE_TEST_ENV) }, options.datanodes ?? 3)
    let failed = true
    try {
      await c.start()
      await body(c)
      failed = false
    } catch (err) {
      console.error(`[${scenario}] FAILED at step: ${c.steps.last}\n  ${(err as Error).stack ?? err}`)
      c.printLogTails()
      if (err instanceof Error) err.message = `${scenario}: at step "${c.steps.last}": ${err.message}`
      throw err
    } finally {
      await c.stop(failed && process.env.O3_TEST_KEEP !== undefined && process.env.O3_TEST_KEEP !== '' && process.env.O3_TEST_KEEP !== '0')
    }
  }

  async start(): Promise<void> {
    this.step(`start o3 local --processes --datanodes ${this.datanodeCount} in ${this.dataDir}`)
    this.local = spawn(process.execPath, [o3, 'local', '--processes', '--datanodes', String(this.datanodeCount), '--ports', 'free', '--data', this.dataDir, '--json'], { env: this.env, stdio: ['ignore', 'pipe', 'pipe'] })
    const said = teeStderr(this.local)
    let out = ''
    this.endpoints = await new Promise<LocalEndpoints>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error('o3 local printed no endpoints within 90 s')), 90_000)
      this.local.stdout!.on('data', (d) => { out += d; try { resolve(JSON.parse(out)); clearTimeout(timer) } catch { /* not all of it yet */ } })
      this.local.once('exit', (code, signal) => { clearTimeout(timer); reject(exitedEarly(code, signal, said())) })
    })
    // o3 local is ready once safemode ends (three datanodes): a fourth may still be starting.
    this.datanodes = await Promise.all(this.endpoints.datanodes.map(async (address, i) => {
      const name = `datanode-${i + 1}`
      const dir = join(this.dataDir, name)
      const idFile = join(dir, 'datanode.id')
      await until(`${name} wrote its id`, () => existsSync(idFile), 60_000, 100)
      const { id } = JSON.parse(readFileSync(idFile, 'utf8')) as { id: string }
      return { name, id, address, dir }
    }))
    this.client = new O3Client({ om: this.endpoints.om, scm: this.endpoints.scm })
  }

  async stop(keep: boolean): Promise<void> {
    for (const c of this.restarted.values()) c.kill('SIGKILL')
    if (this.local !== undefined && this.local.exitCode === null && this.local.signalCode === null) {
      const exited = new Promise((r) => this.local.once('exit', r))
      this.local.kill('SIGTERM')
      await Promise.race([exited, new Promise((r) => setTimeout(r, 30_000))])
    }
    if (keep) console.error(`[${this.scenario}] O3_TEST_KEEP: data, conf and logs kept in ${this.dataDir}`)
    else rmSync(this.dataDir, { recursive: true, force: true })
  }

  printLogTails(lines = 25): void {
    const logs = join(this.dataDir, 'logs')
    if (!existsSync(logs)) return
    for (const f of readdirSync(logs).sort()) {
      const text = readFileSync(join(logs, f), 'utf8').trimEnd().split('\n').slice(-lines)
      console.error(`--- ${f} (last ${text.length} lines) ---\n${text.join('\n')}`)
    }
    console.error(`(set O3_TEST_KEEP=1 to keep ${this.dataDir})`)
  }

  dn(idOrName: string): Dn {
    const d = this.datanodes.find((x) => x.id === idOrName || x.name === idOrName || x.address === idOrName)
    if (d === undefined) throw new Error(`no datanode ${idOrName} in this cluster`)
    return d
  }

  live(): Dn[] {
    return this.datanodes.filter((d) => !this.down.has(d.name))
  }

  /** `o3 <args> --om --scm --json`, parsed. */
  async o3json<T>(...args: string[]): Promise<T> {
    const { stdout } = await execFileAsync(process.execPath, [o3, ...args, '--om', this.endpoints.om, '--scm', this.endpoints.scm, '--json'], { encoding: 'utf8', timeout: 20_000, env: this.env })
    return JSON.parse(stdout) as T
  }

  /** The SCM's view of the RATIS/THREE pipelines (`o3 admin pipeline list`). */
  async threePipelines(): Promise<(Pipeline & { leaderId?: string; term?: number })[]> {
    return (await this.o3json<(Pipeline & { leaderId?: string; term?: number })[]>('admin', 'pipeline', 'list')).filter((p) => p.replication === 'RATIS/THREE')
  }

  /** The one OPEN RATIS/THREE pipeline over the three datanodes (waits for it). */
  async threePipeline(timeoutMs = 30_000): Promise<Pipeline & { leaderId?: string; term?: number }> {
    return until('an OPEN RATIS/THREE pipeline', async () => {
      const open = (await this.threePipelines()).filter((p) => p.state === 'OPEN')
      return open.length === 1 ? open[0] : undefined
    }, timeoutMs, 200)
  }

  /** Each live member's own reports (datanode RPC `listPipelines`); undefined where it does not answer or has no such RPC. */
  async reportsOf(d: Dn): Promise<Report[] | undefined> {
    try {
      const answer = await new RpcClient('Datanode', d.address).call<unknown>('listPipelines', {}, { timeoutMs: 2000 })
      const list = Array.isArray(answer) ? answer : (answer as { pipelines?: unknown[] }).pipelines
      return Array.isArray(list) ? list as Report[] : undefined
    } catch {
      return undefined
    }
  }

  /**
   * Who leads pipeline `pipelineId` now: the one place to change how that is learnt. First
   * the members themselves (datanode RPC `listPipelines`): the live member that reports
   * itself leader at the highest term. Without that RPC (before issue 12), the SCM's
   * `o3 admin pipeline list`: `leaderId`, else nodes[0] (the node writes go to). Undefined
   * when no member claims the lead (an election under way).
   */
  async leaderOf(pipelineId: string, among: Dn[] = this.live()): Promise<PipelineLeader | undefined> {
    const members = (await this.threePipelines()).find((p) => p.id === pipelineId)?.nodes.map((n) => this.dn(n.id)) ?? this.datanodes
    const lists = await Promise.all(among.map(async (d) => ({ d, list: await this.reportsOf(d) })))
    if (lists.some(({ list }) => list !== undefined)) {
      const reports = lists.map(({ d, list }) => ({ d, r: list?.find((x) => x.pipelineId === pipelineId) }))
      const claims = reports.filter(({ d, r }) => r !== undefined && r.leaderId === d.id).sort((a, b) => b.r!.term - a.r!.term)
      if (claims.length === 0) return undefined
      const { d: leader, r } = claims[0]
      return { pipelineId, leader, followers: members.filter((m) => m.id !== leader.id), term: r!.term, applied: r!.applied, source: 'datanode listPipelines' }
    }
    const p = (await this.threePipelines()).find((x) => x.id === pipelineId)
    if (p === undefined) return undefined
    const leader = this.dn(p.leaderId !== undefined && p.leaderId !== '' ? p.leaderId : p.nodes[0].id)
    return { pipelineId, leader, followers: members.filter((m) => m.id !== leader.id), term: p.term ?? 0, source: 'scm pipeline list' }
  }

  /** Waits (bounded) for a leader of `pipelineId` among the live members, optionally not `notId` and past `termAbove`. */
  async waitLeader(pipelineId: string, o: { notId?: string; termAbove?: number; timeoutMs?: number } = {}): Promise<PipelineLeader> {
    return until(`a leader of pipeline ${pipelineId}${o.notId !== undefined ? ` other than ${this.dn(o.notId).name}` : ''}`, async () => {
      const l = await this.leaderOf(pipelineId)
      if (l === undefined || l.leader.id === o.notId || this.down.has(l.leader.name)) return undefined
      if (o.termAbove !== undefined && l.source === 'datanode listPipelines' && l.term <= o.termAbove) return undefined
      return l
    }, o.timeoutMs ?? 30_000, 100)
  }

  /** The applied index `d` reports for `pipelineId` (undefined without the RPC or the group). */
  async appliedOf(d: Dn, pipelineId: string): Promise<number | undefined> {
    return (await this.reportsOf(d))?.find((r) => r.pipelineId === pipelineId)?.applied
  }

  /** kill -9 of datanode `name`: the test's own process if it restarted it, else by PID file. */
  kill(d: Dn): void {
    this.step(`kill -9 ${d.name} (${d.address}, id ${d.id})`)
    const mine = this.restarted.get(d.name)
    if (mine !== undefined) {
      mine.kill('SIGKILL')
      this.restarted.delete(d.name)
    } else process.kill(pidOf(this.dataDir, d.name), 'SIGKILL')
    this.down.add(d.name)
  }

  /** Starts datanode `name` again from DATA/conf (as an operator would), logging to its log. */
  restart(d: Dn): void {
    this.step(`restart ${d.name} from ${join('conf', `${d.name}.json`)}`)
    const log = openSync(join(this.dataDir, 'logs', `${d.name}.log`), 'a')
    const child = spawn(process.execPath, [o3, 'datanode', '--config', join(this.dataDir, 'conf', `${d.name}.json`)], { env: this.env, stdio: ['ignore', log, log] })
    closeSync(log)
    this.restarted.set(d.name, child)
    this.down.delete(d.name)
  }

  /** The datanode's answer to its health probe, or undefined (not up yet). */
  async answers(d: Dn): Promise<boolean> {
    try {
      const res = await fetch(`http://${d.address}/health`, { signal: AbortSignal.timeout(2000) })
      await res.body?.cancel()
      return res.ok
    } catch {
      return false
    }
  }

  /** The containers the SCM placed on `pipelineId`. */
  async containersOf(pipelineId: string): Promise<number[]> {
    const cs = await this.o3json<{ id: number; pipelineId: string }[]>('admin', 'container', 'list')
    return cs.filter((c) => c.pipelineId === pipelineId).map((c) => c.id).sort((a, b) => a - b)
  }

  /** sha256 of every block file of container `containerId` on `d`, by file name. */
  blockHashes(d: Dn, containerId: number): Map<string, string> {
    const out = new Map<string, string>()
    const root = join(d.dir, 'o3')
    const cid = readdirSync(root).find((x) => x.startsWith('CID-'))
    if (cid === undefined) return out
    const chunks = join(root, cid, 'current', `containerDir${Math.floor(containerId / 512) % 256}`, String(containerId), 'chunks')
    if (!existsSync(chunks)) return out
    for (const f of readdirSync(chunks)) if (f.endsWith('.block')) out.set(f, createHash('sha256').update(readFileSync(join(chunks, f))).digest('hex'))
    return out
  }

  /** Datanode `d`'s block records of container `containerId` (RPC listBlock, every page), or the error it gave. */
  async blockRecords(d: Dn, containerId: number): Promise<Map<number, BlockRecord> | string> {
    const out = new Map<number, BlockRecord>()
    try {
      for (let start = 0; ;) {
        const page = await new RpcClient('Datanode', d.address).call<BlockRecord[]>('listBlock', { containerId, startLocalId: start, count: 1000 }, { timeoutMs: 5000 })
        for (const b of page) out.set(b.localId, b)
        if (page.length < 1000) return out
        start = page[page.length - 1].localId + 1
      }
    } catch (err) {
      return describeError(err)
    }
  }

  /**
   * Differences between the members' replicas of the given containers; empty when they match
   * byte for byte: the same block records (localId, length, packed) on every member, every
   * acknowledged block (`mustHold`, with the length the key uses) among them, the same block
   * files with the same sha256 (a file one member lacks counts), and a packed block (small,
   * kept in the datanode's LMDB, not in a file) with the same bytes read from each member.
   */
  async replicaDifferences(members: Dn[], containers: number[], mustHold: { containerId: number; localId: number; length: number }[]): Promise<string[]> {
    const diffs: string[] = []
    for (const c of containers) {
      const records = await Promise.all(members.map((d) => this.blockRecords(d, c)))
      records.forEach((r, i) => { if (typeof r === 'string') diffs.push(`container ${c} on ${members[i].name}: listBlock failed: ${r}`) })
      if (records.some((r) => typeof r === 'string')) continue
      const rs = records as Map<number, BlockRecord>[]
      const ids = new Set(rs.flatMap((r) => [...r.keys()]))
      for (const id of [...ids].sort((a, b) => a - b)) {
        const each = rs.map((r) => r.get(id))
        const shown = (b: BlockRecord | undefined) => (b === undefined ? 'none' : `${b.length}${b.packed ? ' packed' : ''}`)
        if (each.some((b) => shown(b) !== shown(each[0]))) diffs.push(`block ${c}:${id} records: ${members.map((d, i) => `${d.name}=${shown(each[i])}`).join(' ')}`)
        else if (each[0]!.packed) {
          const bytes = await Promise.all(members.map((d) => readChunk({ id: d.id as DatanodeId, address: d.address }, { containerId: c, localId: id } as BlockId, 0, each[0]!.length).then((r) => createHash('sha256').update(r.data.subarray(0, each[0]!.length)).digest('hex'), (err: unknown) => `read failed: ${describeError(err)}`)))
          if (bytes.some((h) => h !== bytes[0])) diffs.push(`packed block ${c}:${id}: ${members.map((d, i) => `${d.name}=${bytes[i].slice(0, 12)}`).join(' ')}`)
        }
      }
      const hashes = members.map((d) => this.blockHashes(d, c))
      const names = new Set(hashes.flatMap((h) => [...h.keys()]))
      for (const n of [...names].sort()) {
        const hs = hashes.map((h) => h.get(n))
        if (hs.some((h) => h !== hs[0])) diffs.push(`container ${c} ${n}: ${members.map((d, i) => `${d.name}=${hs[i]?.slice(0, 12) ?? 'missing'}`).join(' ')}`)
      }
      for (const [id, b] of rs[0]) if (!b.packed && !names.has(`${id}.block`)) diffs.push(`block ${c}:${id} (${b.length} bytes, not packed) has no block file`)
    }
    for (const b of mustHold) {
      const records = await Promise.all(members.map((d) => this.blockRecords(d, b.containerId)))
      records.forEach((r, i) => {
        const rec = typeof r === 'string' ? undefined : r.get(b.localId)
        if (rec === undefined || rec.length < b.length) diffs.push(`acknowledged block ${b.containerId}:${b.localId} (${b.length} bytes of a key) on ${members[i].name}: ${typeof r === 'string' ? r : rec === undefined ? 'no record' : `${rec.length} bytes`}`)
      })
    }
    return [...new Set(diffs)]
  }
}

/** A datanode's record of a committed block (RPC listBlock). */
export interface BlockRecord { localId: number; length: number; packed?: boolean }

/** Sizes from 4 KiB to 64 MiB, odd ones included (a chunk or block not filled). */
const SIZES = [4 * 1024, 64 * 1024 + 1, MiB + 3, 4 * 1024 + 7, 5 * MiB + 1, 256 * 1024, 12 * MiB + 5, 4 * 1024 + 11, 2 * MiB - 1, 700 * 1024]
export const BIG_KEY_BYTES = 64 * MiB

/** The bytes every key is cut from: random, so two keys at different offsets differ. */
let pool: Buffer | undefined
export function payloadPool(): Buffer {
  pool ??= randomBytes(BIG_KEY_BYTES + 8 * MiB, 12)
  return pool
}

export interface PlannedKey { key: string; size: number; offset: number }
export interface AckedKey extends PlannedKey { info: KeyInfo; startedAt: number; endedAt: number }
export interface FailedKey extends PlannedKey { error: unknown; startedAt: number; endedAt: number }

/**
 * The keys of `writers` writers: each writes `keysEach` keys of SIZES in its own order, and
 * writer 0's second key is 64 MiB (about 230 MiB in all for 8 writers of 10 keys).
 */
export function planKeys(prefix: string, writers: number, keysEach: number, seed: number): PlannedKey[][] {
  const random = rng(seed)
  const room = payloadPool().length
  return Array.from({ length: writers }, (_, w) => Array.from({ length: keysEach }, (_, i) => {
    const size = w === 0 && i === 1 ? BIG_KEY_BYTES : SIZES[(w + i) % SIZES.length]
    return { key: `${prefix}-w${w}-k${i}`, size, offset: Math.floor(random() * (room - size + 1)) }
  }))
}

export function bytesOf(k: PlannedKey): Buffer {
  return payloadPool().subarray(k.offset, k.offset + k.size)
}

/** A load of writers running: what was acknowledged and what failed so far, and when it ends. */
export interface RunningWriters {
  acked: AckedKey[]
  failed: FailedKey[]
  /** Bytes acknowledged so far. */
  ackedBytes: () => number
  done: Promise<void>
}

/**
 * Each writer puts its planned keys one after another through the native client (the key's
 * bytes borrowed from the pool, no copy); a writer stops at its first failure (recorded with
 * its error), so a broken pipeline does not cost a timeout per key.
 */
export function startWriters(client: O3Client, volume: string, bucket: string, plans: PlannedKey[][]): RunningWriters {
  const acked: AckedKey[] = []
  const failed: FailedKey[] = []
  const done = Promise.all(plans.map(async (plan) => {
    for (const k of plan) {
      const startedAt = performance.now()
      try {
        const info = await client.putKey(volume, bucket, k.key, bytesOf(k))
        acked.push({ ...k, info, startedAt, endedAt: performance.now() })
      } catch (error) {
        failed.push({ ...k, error, startedAt, endedAt: performance.now() })
        return
      }
    }
  })).then(() => {})
  return { acked, failed, ackedBytes: () => acked.reduce((s, k) => s + k.size, 0), done }
}

export function describeError(err: unknown): string {
  return err instanceof O3Error ? `O3Error ${err.code}: ${err.message}` : `${(err as Error)?.name ?? typeof err}: ${(err as Error)?.message ?? String(err)}`
}

/**
 * Reads key `k` back through the OM's record and compares every byte with what was written;
 * answers undefined when equal, else where it differs (or the read's error).
 */
export async function readBackMismatch(client: O3Client, volume: string, bucket: string, k: PlannedKey): Promise<string | undefined> {
  const want = bytesOf(k)
  try {
    const r = await client.readKey(volume, bucket, k.key)
    if (r.key.size !== k.size) { r.destroy(); return `${k.key}: size ${r.key.size}, written ${k.size}` }
    let at = 0
    for await (const piece of r as AsyncIterable<Buffer>) {
      if (at + piece.length > want.length || !piece.equals(want.subarray(at, at + piece.length))) {
        r.destroy()
        return `${k.key}: bytes differ in [${at}, ${at + piece.length})`
      }
      at += piece.length
    }
    return at === want.length ? undefined : `${k.key}: read ${at} of ${want.length} bytes`
  } catch (err) {
    return `${k.key}: read failed: ${describeError(err)}`
  }
}

/** readBackMismatch for every key, a few at a time; the mismatches found. */
export async function readBackAll(client: O3Client, volume: string, bucket: string, keys: PlannedKey[], parallel = 4): Promise<string[]> {
  const out: string[] = []
  let next = 0
  await Promise.all(Array.from({ length: parallel }, async () => {
    while (next < keys.length) {
      const m = await readBackMismatch(client, volume, bucket, keys[next++])
      if (m !== undefined) out.push(m)
    }
  }))
  return out
}

/** Rejects with a clear message when `p` does not settle within `ms` (a hang is a failure, not a wait). */
export function within<T>(what: string, ms: number, p: Promise<T>): Promise<T> {
  let timer: ReturnType<typeof setTimeout>
  return Promise.race([
    p.finally(() => clearTimeout(timer)),
    new Promise<never>((_, reject) => { timer = setTimeout(() => reject(new Error(`${what} did not settle within ${ms / 1000} s`)), ms) }),
  ])
}
