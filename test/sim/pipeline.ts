/** @module
 * The simulator's pipeline mode (`npm run sim -- --pipeline`, issue 12): one datanode pipeline,
 * a Raft group of three on the real core/raft RawNode, each member a PipelineReplica (chunk
 * store, staged bytes, pending chunks, container database; pipeline-replica.ts states its
 * durability model) running the real entry codec and putBlock commit rule. Clients write
 * blocks as Ozone's do: chunks to the leader, which stages the bytes on the followers beside
 * the Raft log and proposes a writeChunk entry; a putBlock once chunks are sent (pipelined)
 * or acknowledged; the SCM closes containers and deletes finished blocks through the log.
 * Faults: message loss, delay, duplication and long holds, lost forwards and failed fetches,
 * partitions (symmetric and one-way), crashes (the leader's too, and between persisting and
 * sending) with restarts, log compaction so that a member may install a snapshot.
 * Checks, as each entry applies: the block it touched is backed by exactly the chunks it
 * names (no gap, no duplicate, checksums and bytes as the client wrote them); members that
 * applied the index agree on its outcome and on the block (pending chunks included) or
 * container it touched; an entry replayed after a restart changes nothing; a putBlock sent
 * after its chunks were acknowledged is never refused. Every tick: every acknowledged
 * putBlock has its bytes whole in a majority of block files and its record on each member
 * that applied it; every 10 ticks, the first check over every block of every member. At the
 * end, once faults stop: every request finishes, every member catches up (unless the SCM
 * closed the pipeline) and all hold the same committed state. Members that installed a
 * snapshot (diverged) are held to the metadata checks only: by design they lack the bytes.
 * Pure: time is a counter and randomness a seeded Prng, so a seed replays one trace exactly.
 */
import { assert, AssertionError } from '../../core/assert.ts'
import { O3Error } from '../../core/errors.ts'
import type { ContainerId, LocalId } from '../../core/wire.ts'
import type { Entry, Message, NodeId, RawNode as RawNodeClass } from '../../core/raft/index.ts'
import * as realRaft from '../../core/raft/index.ts'
import { blockChunks } from '../../datapath/datanode/pipeline/block-chunks.ts'
import { chunkKey, decodeEntry, encodeEntry, type PipelineEntry, type WriteChunkEntry } from '../../datapath/datanode/pipeline/entries.ts'
import { BYTES_PER_CHECKSUM, blockKey, checksumsOf, PipelineReplica, type Applied, type PipelineModules } from './pipeline-replica.ts'
import { Prng } from './prng.ts'
import { drawPartition, shuffle, type RaftModule, type SimResult } from './simulator.ts'
import { SimStorage } from './storage.ts'

export const realPipeline: PipelineModules = { blockChunks, encodeEntry, decodeEntry, Replica: PipelineReplica }

export interface PipelineSimOptions {
  readonly seed: number
  readonly modules?: PipelineModules
  readonly raft?: RaftModule
  /** Ticks of faults and client load (default PIPELINE_FAULT_TICKS). */
  readonly faultTicks?: number
  /** Ticks after faults stop within which every request must finish and every member catch up. */
  readonly livenessTicks?: number
  readonly trace?: boolean
}

export const PIPELINE_FAULT_TICKS = 1500
const MEMBERS = 3
const MS_PER_TICK = 10
const ELECTION_TIMEOUT_TICKS = 10
const CLIENT_TIMEOUT_MS = 200
const CHUNK_BYTES_MAX = 40
const CHUNKS_PER_BLOCK_MAX = 5
/** The SCM deletes a finished block only this long after its last answer: no retry of it is still on the wire. */
const DELETE_AFTER_MS = 3000
/** A full sweep of every member's blocks every this many ticks (each apply checks the block it touched). */
const SWEEP_EVERY_TICKS = 10

type Req =
  | { readonly kind: 'writeChunk'; readonly client: number; readonly seq: number; readonly containerId: number; readonly localId: number; readonly offset: number; readonly length: number; readonly commit: boolean }
  | { readonly kind: 'putBlock'; readonly client: number; readonly seq: number; readonly containerId: number; readonly localId: number; readonly length: number; readonly attempt?: number }
type Resp = { readonly client: number; readonly seq: number; readonly leader: NodeId; readonly applied?: Applied; readonly index?: number; readonly notLeader?: boolean; readonly attempt?: number }
type Packet =
  | { readonly kind: 'raft'; readonly msg: Message }
  | { readonly kind: 'stage'; readonly to: NodeId; readonly key: string; readonly bytes: Uint8Array }
  | { readonly kind: 'request'; readonly to: NodeId; readonly req: Req }
  | { readonly kind: 'response'; readonly resp: Resp }

interface Member {
  readonly id: NodeId
  readonly storage: SimStorage
  raw: RawNodeClass | undefined
  replica: PipelineReplica
  readonly jitter: Prng
  restartAtMs: number
  nextTickMs: number
  /** Client requests proposed here, answered when applied: index -> request and the term it was proposed in. */
  waiting: Map<number, { req: Req; term: number }>
  starts: number
}

interface Outstanding {
  req: Req
  deadlineMs: number
  /** A putBlock: sent only once its chunks are acknowledged (an ordered client); the attempts sent after they were. */
  readonly ackedAttempts: Set<number>
  attempts: number
}

interface ClientBlock {
  readonly containerId: number
  readonly localId: number
  readonly chunks: readonly { offset: number; length: number }[]
  /** Chunk indexes per putBlock, in order; each ends with a putBlock of the length so far. */
  readonly batches: readonly number[][]
  batch: number
  readonly ackedOffsets: Set<number>
  /** A one-chunk block written as one writeChunk with commit (no putBlock). */
  readonly oneShot: boolean
}

interface Client {
  readonly id: number
  readonly ordered: boolean
  leaderHint: NodeId
  block: ClientBlock | undefined
  outstanding: Map<number, Outstanding>
}

/** An acknowledged putBlock: the block must hold at least `length` of the client's bytes. */
interface Ack { readonly block: string; readonly containerId: number; readonly localId: number; readonly length: number; readonly index: number }

class Violation extends Error {}

/** The bytes a client writes at `offset` of a block: fixed per place, so a retry sends the same bytes. */
export function chunkBytes(containerId: number, localId: number, offset: number, length: number): Uint8Array {
  const key = `${containerId}:${localId}:${offset}:${length}`
  const known = written.get(key)
  if (known !== undefined) return known
  const p = new Prng((containerId * 1_000_003 + localId * 8191 + offset) >>> 0)
  const out = new Uint8Array(length)
  for (let i = 0; i < length; i++) out[i] = p.int(256)
  if (written.size >= WRITTEN_CACHE_MAX) {
    written.clear()
    writtenChecksums.clear()
  }
  written.set(key, out)
  return out
}

/** The checksums of chunkBytes' answer. */
function chunkChecksums(containerId: number, localId: number, offset: number, length: number): Uint8Array {
  const key = `${containerId}:${localId}:${offset}:${length}`
  let sums = writtenChecksums.get(key)
  if (sums === undefined) writtenChecksums.set(key, (sums = checksumsOf(chunkBytes(containerId, localId, offset, length))))
  return sums
}
const writtenChecksums = new Map<string, Uint8Array>()
/** chunkBytes' answers, kept for the checks (a bounded cache: the bytes are a function of their place). */
const written = new Map<string, Uint8Array>()
const WRITTEN_CACHE_MAX = 10_000

const sameBytes = (a: Uint8Array, b: Uint8Array) => a.length === b.length && Buffer.compare(a, b) === 0

export function runPipelineSimulation(options: PipelineSimOptions): SimResult {
  const sim = new PipelineSimulation(options)
  // Refusals are O3Errors, thousands per seed when a restart replays a log of writes to a
  // closed container: their stack traces were a third of the run time, and nothing reads them.
  const stackTraceLimit = Error.stackTraceLimit
  Error.stackTraceLimit = 0
  try {
    sim.run()
  } catch (err) {
    if (err instanceof Violation) sim.violations.push(err.message)
    else if (err instanceof AssertionError || (err instanceof Error && err.name === 'AssertionError')) sim.violations.push(`assertion: ${err.message}`)
    else throw err
  } finally {
    Error.stackTraceLimit = stackTraceLimit
  }
  if (options.trace) for (const v of sim.violations) sim.traceLines.push(`VIOLATION ${v}`)
  return { seed: options.seed, nodes: MEMBERS, violations: sim.violations, trace: sim.traceLines, ops: sim.acks.length, commits: sim.acks.length, progressRate: 0, referenceRate: 0, detected: [] }
}

/** Runs seeds first..first+count-1; stops at the first violation when asked (mutant hunting). */
export function runPipelineSeeds(range: { first: number; count: number; modules?: PipelineModules; faultTicks?: number; stopAtFirst?: boolean }, onFailure?: (r: SimResult) => void): { seeds: number; failures: SimResult[] } {
  const failures: SimResult[] = []
  let seeds = 0
  for (let seed = range.first; seed < range.first + range.count; seed++) {
    seeds++
    const r = runPipelineSimulation({ seed, modules: range.modules, faultTicks: range.faultTicks })
    if (r.violations.length > 0) {
      failures.push(r)
      onFailure?.(r)
      if (range.stopAtFirst) break
    }
  }
  return { seeds, failures }
}

class PipelineSimulation {
  readonly violations: string[] = []
  readonly traceLines: string[] = []
  readonly acks: Ack[] = []
  private readonly modules: PipelineModules
  private readonly raft: RaftModule
  private readonly prng: Prng
  private readonly net: Prng
  private readonly members: Member[] = []
  private readonly clients: Client[] = []
  private readonly inflight = new Map<number, Packet[]>()
  private nowMs = 0
  private faulty = true
  private seq = 0
  private nextLocalId = 1
  private nextContainerId = 1
  private txId = 0
  /** The SCM's open containers (new blocks go there) and the blocks it may delete once finished. */
  private readonly openContainers: number[] = []
  private readonly finished: { containerId: number; localId: number; atMs: number }[] = []
  /** Blocks a deleteBlocks entry removed (applied by some member). */
  private readonly deletedBlocks = new Set<string>()
  /** The first member's outcome of each index, with the state it left in what it touched. */
  private readonly effects = new Map<number, { by: NodeId; text: string }>()
  private blocked = new Set<string>()
  private healAtMs = 0
  /** A member reported diverged: the SCM closed the pipeline (no new blocks; clients take their writes elsewhere). */
  private closed = false
  /** When the SCM learns of a diverged member and closes the pipeline (a heartbeat or more later). */
  private closeAtMs = Infinity
  // Per-seed fault profile.
  private readonly lossP: number
  private readonly dupP: number
  private readonly delayMaxMs: number
  private readonly holdP: number
  private readonly stageLossP: number
  private readonly fetchFailP: number
  private readonly crashP: number
  private readonly leaderCrashP: number
  private readonly midReadyCrashP: number
  private readonly partitionP: number
  private readonly snapshotEvery: number
  private readonly opP: number
  private readonly closeP: number
  private readonly deleteP: number
  private readonly containersOpen: number

  constructor(private readonly options: PipelineSimOptions) {
    this.modules = options.modules ?? realPipeline
    this.raft = options.raft ?? realRaft
    this.prng = new Prng(options.seed)
    this.net = this.prng.fork()
    const p = this.prng
    this.lossP = p.pick([0, 0.01, 0.05, 0.15])
    this.dupP = p.pick([0, 0.02, 0.1])
    this.delayMaxMs = p.pick([5, 20, 60])
    this.holdP = p.pick([0, 0.002, 0.01])
    this.stageLossP = p.pick([0, 0.1, 0.5, 1])
    this.fetchFailP = p.pick([0, 0.1, 0.5])
    const storm = p.chance(1 / 3)
    this.crashP = storm ? 0.01 : p.pick([0, 0.003, 0.01])
    this.leaderCrashP = storm ? 0.02 : p.pick([0, 0.005, 0.01])
    this.midReadyCrashP = storm ? 0.005 : p.pick([0, 0.001, 0.005])
    this.partitionP = storm ? 0.02 : p.pick([0, 0.005, 0.02])
    this.snapshotEvery = p.pick([10, 40, 100_000])
    this.opP = p.pick([0.1, 0.3, 0.8])
    this.closeP = p.pick([0, 0.002, 0.01])
    this.deleteP = p.pick([0, 0.01, 0.05])
    this.containersOpen = p.between(1, 3)
    const clientCount = p.between(1, 3)
    const voters = Array.from({ length: MEMBERS }, (_, i) => i + 1)
    for (const id of voters) {
      const m: Member = {
        id, storage: new SimStorage(this.raft.bootstrap({ voters, learners: [] })), raw: undefined, replica: new this.modules.Replica(this.modules),
        jitter: p.fork(), restartAtMs: 0, nextTickMs: 0, waiting: new Map(), starts: 0,
      }
      this.members.push(m)
      this.start(m)
    }
    for (let i = 0; i < this.containersOpen; i++) this.openContainers.push(this.nextContainerId++)
    for (let i = 1; i <= clientCount; i++) this.clients.push({ id: i, ordered: p.chance(0.5), leaderHint: 0, block: undefined, outstanding: new Map() })
    this.trace(`seed ${options.seed}: loss ${this.lossP} dup ${this.dupP} delay<=${this.delayMaxMs}ms hold ${this.holdP} stageLoss ${this.stageLossP} fetchFail ${this.fetchFailP} crash ${this.crashP} leaderCrash ${this.leaderCrashP} midReadyCrash ${this.midReadyCrashP} partition ${this.partitionP} snapshotEvery ${this.snapshotEvery} op ${this.opP} close ${this.closeP} delete ${this.deleteP} containers ${this.containersOpen} clients ${this.clients.map((c) => (c.ordered ? 'ordered' : 'pipelined')).join(',')}`)
  }

  private trace(line: string): void {
    if (this.options.trace) this.traceLines.push(`${this.nowMs}ms ${line}`)
  }

  private fail(message: string): never {
    throw new Violation(message)
  }

  /** A (re)start from what the member's disk holds: the log from its last snapshot, the database as it is. */
  private start(m: Member, keepStaged = false): void {
    const restored = m.storage.restore()
    m.starts++
    m.raw = new this.raft.RawNode({ id: m.id, randomInt: (n) => m.jitter.int(n), electionTimeoutTicks: ELECTION_TIMEOUT_TICKS, heartbeatTimeoutTicks: 2, preVote: true, checkQuorum: true }, restored)
    const staged = m.replica.staged
    m.replica.restart(restored.snapshot.data, restored.snapshot.meta.index)
    if (keepStaged) m.replica.staged = staged
    m.waiting = new Map()
  }

  run(): void {
    const faultMs = (this.options.faultTicks ?? PIPELINE_FAULT_TICKS) * MS_PER_TICK
    for (; this.nowMs < faultMs; this.nowMs++) this.step()
    this.heal()
    const deadline = this.nowMs + (this.options.livenessTicks ?? 300) * MS_PER_TICK
    for (; this.nowMs < deadline && !this.quiet(); this.nowMs++) this.step()
    if (!this.quiet()) {
      const open = this.clients.filter((c) => c.outstanding.size > 0).map((c) => `client ${c.id}: ${[...c.outstanding.values()].map((o) => `${o.req.kind} ${blockKey(o.req.containerId, o.req.localId)}`).join(', ')}`)
      const states = this.members.map((m) => m.raw === undefined ? `n${m.id} down` : `n${m.id} ${m.raw.status().role} t${m.raw.status().hardState.term} applied ${m.raw.status().applied}/${m.raw.status().lastIndex}`)
      this.fail(`liveness: ${this.options.livenessTicks ?? 300} ticks after faults stopped, unfinished: ${open.join('; ') || 'none'}; ${states.join(', ')}`)
    }
    this.sweep()
    this.checkAcks()
    if (this.closed) return
    const digests = this.members.map((m) => m.replica.digest())
    for (const m of this.members) if (digests[m.id - 1] !== digests[0]) this.fail(`replicas differ: n${m.id} holds ${digests[m.id - 1]}, n1 holds ${digests[0]}`)
  }

  /** Every client request answered and every member has applied the leader's whole log (or the SCM closed the pipeline). */
  private quiet(): boolean {
    if (this.clients.some((c) => c.outstanding.size > 0)) return false
    if (this.closed) return true
    const leaders = this.members.filter((m) => m.raw?.status().role === 'leader')
    if (leaders.length !== 1) return false
    const last = leaders[0].raw!.status().lastIndex
    return this.members.every((m) => m.raw !== undefined && m.raw.status().applied >= last)
  }

  private heal(): void {
    this.blocked.clear()
    this.faulty = false
    this.trace('faults stop: partitions healed, crashed members restart, no loss')
    for (const m of this.members) {
      m.nextTickMs = this.nowMs
      if (m.raw === undefined) {
        this.start(m)
        this.trace(`n${m.id} restarts`)
      }
    }
  }

  private step(): void {
    const due = this.inflight.get(this.nowMs)
    if (due !== undefined) {
      this.inflight.delete(this.nowMs)
      shuffle(this.net, due)
      for (const p of due) this.deliver(p)
    }
    if (this.nowMs % MS_PER_TICK === 0) {
      if (this.faulty) this.injectFaults()
      for (const m of this.members) {
        if (m.raw === undefined && this.faulty && this.nowMs >= m.restartAtMs) {
          this.start(m)
          this.trace(`n${m.id} restarts at term ${m.raw!.status().hardState.term}`)
        }
        if (m.raw === undefined) continue
        m.raw.tick()
        this.drain(m)
      }
      this.tickClients()
      this.tickScm()
      if ((this.nowMs / MS_PER_TICK) % SWEEP_EVERY_TICKS === 0) this.sweep()
      this.checkAcks()
    }
  }

  // ---- faults ----

  private injectFaults(): void {
    const p = this.prng
    const live = this.members.filter((m) => m.raw !== undefined)
    if (live.length > 0 && p.chance(this.crashP)) this.crash(p.pick(live), '')
    const leader = this.leader()
    if (leader !== undefined && p.chance(this.leaderCrashP)) this.crash(leader, 'as leader')
    if (live.length > 0 && p.chance(0.05)) p.pick(live).storage.flushSome(p)
    if (this.blocked.size > 0 && this.nowMs >= this.healAtMs) {
      this.blocked.clear()
      this.trace('partition heals')
    }
    if (this.blocked.size === 0 && p.chance(this.partitionP)) {
      const cut = drawPartition(p, this.members.map((m) => m.id), this.leader()?.id)
      this.blocked = cut.blocked
      this.healAtMs = this.nowMs + cut.healInTicks * MS_PER_TICK
      this.trace(`partition ${cut.description} | rest until ${this.healAtMs}ms`)
    }
  }

  private crash(m: Member, when: string): void {
    m.storage.crash(this.prng)
    m.replica.crash()
    m.raw = undefined
    m.waiting = new Map()
    m.restartAtMs = this.nowMs + this.prng.between(1, 60) * MS_PER_TICK
    this.trace(`n${m.id} crashes ${when}`)
  }

  private leader(): Member | undefined {
    let best: Member | undefined
    for (const m of this.members) {
      const s = m.raw?.status()
      if (s?.role === 'leader' && (best === undefined || s.hardState.term > best.raw!.status().hardState.term)) best = m
    }
    return best
  }

  // ---- network ----

  private send(p: Packet, from: NodeId | 'client', to: NodeId | 'client'): void {
    if (this.faulty) {
      if (this.net.chance(this.lossP)) return
      if (from !== 'client' && to !== 'client' && this.blocked.has(`${from}>${to}`)) return
    }
    const copies = this.faulty && p.kind === 'raft' && this.net.chance(this.dupP) ? 2 : 1
    for (let i = 0; i < copies; i++) {
      let delay: number
      if (this.faulty && p.kind === 'raft' && this.holdP > 0 && this.net.chance(this.holdP)) delay = 2 * ELECTION_TIMEOUT_TICKS * MS_PER_TICK + this.net.int(600)
      else delay = 1 + this.net.int(this.faulty ? (this.net.chance(0.05) ? this.delayMaxMs * 5 : this.delayMaxMs) : 5)
      const at = this.nowMs + delay
      let bucket = this.inflight.get(at)
      if (bucket === undefined) this.inflight.set(at, (bucket = []))
      bucket.push(p)
    }
  }

  private deliver(p: Packet): void {
    switch (p.kind) {
      case 'raft': {
        const m = this.members[p.msg.to - 1]
        if (m.raw === undefined || (this.faulty && this.blocked.has(`${p.msg.from}>${p.msg.to}`))) return
        m.raw.step(p.msg)
        this.drain(m)
        break
      }
      case 'stage': {
        const m = this.members[p.to - 1]
        if (m.raw !== undefined) m.replica.stage(p.key, p.bytes)
        break
      }
      case 'request': {
        const m = this.members[p.to - 1]
        if (m.raw === undefined) return
        this.handleRequest(m, p.req)
        this.drain(m)
        break
      }
      case 'response':
        this.handleResponse(p.resp)
        break
    }
  }

  /** A follower that lacks a chunk's bytes asks the leader it knows (POST /pipeline/<id>/chunk-data). */
  private fetch(m: Member, e: WriteChunkEntry, key: string): Uint8Array | 'gone' | undefined {
    const leaderId = m.raw!.status().leader
    if (leaderId === 0 || leaderId === m.id) return undefined
    const l = this.members[leaderId - 1]
    if (l.raw === undefined) return undefined
    if (this.faulty && (this.blocked.has(`${m.id}>${l.id}`) || this.blocked.has(`${l.id}>${m.id}`) || this.net.chance(this.fetchFailP))) return undefined
    const bytes = l.replica.chunkData(e, key)
    this.trace(`n${m.id} fetches ${key} from n${l.id}: ${bytes === undefined ? 'missing' : bytes === 'gone' ? 'gone (block deleted)' : 'ok'}`)
    return bytes
  }

  // ---- one member's Ready loop: persist data, persist entries, send, apply, advance ----

  private drain(m: Member): void {
    const raw = m.raw!
    while (raw.hasReady()) {
      const rd = raw.ready()
      if (rd.entries.length > 0 && !m.replica.persistData(rd.entries, (e, key) => this.fetch(m, e, key), (e) => chunkKey(e.containerId, e.localId, e.offset, e.length))) {
        // RaftHost stops the group when persistData fails: it restarts from its disk, and the
        // entries it could not back with bytes were never saved nor acknowledged.
        this.trace(`n${m.id} lacks a chunk's bytes for entries ${rd.entries[0].index}..${rd.entries.at(-1)!.index}: restarts its group without them`)
        m.storage.sync()
        this.start(m, true)
        return
      }
      for (const msg of rd.earlyMessages) this.send({ kind: 'raft', msg }, msg.from, msg.to)
      if (rd.earlyMessages.length > 0 && rd.entries.length > 0 && this.faulty && this.prng.chance(this.midReadyCrashP)) {
        this.crash(m, 'after its early messages, before persisting')
        return
      }
      if (rd.snapshot !== undefined) m.storage.write({ kind: 'install', snapshot: rd.snapshot })
      if (rd.entries.length > 0) m.storage.write({ kind: 'entries', entries: rd.entries })
      if (rd.hardState !== undefined) m.storage.write({ kind: 'hardState', hardState: rd.hardState })
      if (rd.mustSync) m.storage.sync()
      if (rd.softState !== undefined) this.trace(`n${m.id} is ${rd.softState.role}, leader ${rd.softState.leader}, term ${raw.status().hardState.term}`)
      if (this.faulty && this.prng.chance(this.midReadyCrashP)) {
        this.crash(m, 'before sending its Ready')
        return
      }
      for (const msg of rd.messages) this.send({ kind: 'raft', msg }, msg.from, msg.to)
      if (rd.snapshot !== undefined) {
        m.replica.install(rd.snapshot.data)
        this.trace(`n${m.id} installs snapshot at ${rd.snapshot.meta.index}: diverged`)
      }
      for (const e of rd.committedEntries) this.apply(m, e)
      raw.advance(rd)
      const applied = raw.status().applied
      if (m.replica.db.appliedIndex === applied && applied - raw.firstIndex() + 1 >= this.snapshotEvery) {
        const snapshot = raw.compact(m.replica.snapshot())
        m.storage.write({ kind: 'compact', snapshot })
        this.trace(`n${m.id} compacts to ${snapshot.meta.index}`)
      }
    }
  }

  /** Applies one committed entry on `m` and checks it: same outcome as the other members, a replay changes nothing, the block it touched is whole. */
  private apply(m: Member, e: Entry): void {
    const r = m.replica
    if (e.type !== 'normal' || e.data.byteLength === 0) {
      r.skip(e.index)
      return
    }
    const fresh = e.index > r.db.appliedIndex
    let entry: PipelineEntry | undefined
    try {
      entry = this.modules.decodeEntry(e.data)
    } catch (err) {
      if (!(err instanceof O3Error)) throw err
    }
    const before = entry === undefined || fresh ? '' : this.touched(m, entry, false)
    const outcome = r.apply(e)
    const after = entry === undefined || fresh ? '' : this.touched(m, entry, false)
    const what = entry === undefined ? 'undecodable' : `${entry.op} ${'localId' in entry ? blockKey(entry.containerId, entry.localId) : entry.containerId}${'length' in entry ? ` length ${entry.length}` : ''}`
    this.trace(`n${m.id} applies ${e.index}${fresh ? '' : ' (replay)'} ${what}: ${outcome.ok ? (outcome.skipped ? 'skipped' : 'ok') : outcome.code}`)
    if (!fresh && before !== after) this.fail(`replay: n${m.id} replaying ${what} at ${e.index} changed ${before} to ${after}`)
    if (fresh) {
      const text = `${e.term} ${outcome.ok ? `ok${outcome.skipped ? ' skipped' : ''}` : outcome.code} ${entry === undefined ? '' : this.touched(m, entry, true)}`
      const seen = this.effects.get(e.index)
      if (seen === undefined) this.effects.set(e.index, { by: m.id, text })
      else if (seen.text !== text) this.fail(`agreement: n${m.id} applied ${e.index} as ${text}, n${seen.by} as ${seen.text}`)
      if (entry?.op === 'deleteBlocks' && outcome.ok) for (const l of entry.localIds) this.deletedBlocks.add(blockKey(entry.containerId, l))
    }
    if (entry !== undefined && 'localId' in entry && !r.db.diverged) this.checkBlock(m, blockKey(entry.containerId, entry.localId))
    const w = m.waiting.get(e.index)
    if (w === undefined) return
    m.waiting.delete(e.index)
    if (w.term !== e.term) this.respond(m, { client: w.req.client, seq: w.req.seq, leader: m.raw?.status().leader ?? 0, notLeader: true })
    else this.respond(m, { client: w.req.client, seq: w.req.seq, leader: m.id, applied: outcome, index: e.index, attempt: w.req.kind === 'putBlock' ? w.req.attempt : undefined })
  }

  /** The state an entry touches on `m`: its block's record (and, with `pending`, its recorded chunks), or its container's state. */
  private touched(m: Member, entry: PipelineEntry, pending: boolean): string {
    const db = m.replica.db
    const state = `container ${db.containers.get(entry.containerId) ?? 'none'}@${db.bcsids.get(entry.containerId) ?? 0}`
    if (entry.op === 'closeContainer') return state
    const locals = entry.op === 'deleteBlocks' ? entry.localIds : [entry.localId]
    return `${state} ${locals.map((l) => {
      const k = blockKey(entry.containerId, l)
      const b = db.blocks.get(k)
      const rec = b === undefined ? `${k} ${db.deleted.has(k) ? 'deleted' : 'none'}` : `${k} ${b.length}@${b.bcsid} [${b.chunks.map((c) => `${c.offset}+${c.length}:${Buffer.from(c.checksums).toString('hex')}`).join(',')}]`
      const p = pending ? m.replica.pending.get(k) : undefined
      return p === undefined ? rec : `${rec} pending [${[...p.values()].sort((x, y) => x.offset - y.offset).map((c) => `${c.offset}+${c.length}`).join(',')}]`
    }).join(' ')}`
  }

  // ---- invariants ----

  /** A committed block on a member that applied its putBlocks: chunks tile [0, length) and its block file holds each, as the client wrote it. */
  private checkBlock(m: Member, key: string): void {
    const b = m.replica.db.blocks.get(key)
    if (b === undefined) return
    const [containerId, localId] = key.split(':').map(Number)
    let covered = 0
    const file = m.replica.blockFiles.get(key)
    for (const ch of b.chunks) {
      if (ch.offset !== covered) this.fail(`gap or overlap: n${m.id} block ${key} (length ${b.length}, bcsid ${b.bcsid}) names a chunk at ${ch.offset} where ${covered} was expected`)
      covered += ch.length
      const expected = chunkBytes(containerId, localId, ch.offset, ch.length)
      if (!sameBytes(ch.checksums, chunkChecksums(containerId, localId, ch.offset, ch.length))) this.fail(`checksums: n${m.id} block ${key} names chunk ${ch.offset}+${ch.length} with checksums the client's bytes do not have`)
      const held = file?.get(ch.offset)
      if (held === undefined) this.fail(`missing chunk: n${m.id} applied a putBlock of ${key} (bcsid ${b.bcsid}) naming chunk ${ch.offset}+${ch.length}, and its block file lacks it`)
      if (!sameBytes(held, expected)) this.fail(`wrong bytes: n${m.id} block ${key} chunk ${ch.offset}+${ch.length} holds other bytes than the client wrote`)
    }
    if (covered !== b.length) this.fail(`length: n${m.id} block ${key} of length ${b.length} names chunks covering ${covered}`)
  }

  /** Every member's committed blocks (diverged members hold the metadata only, by design). */
  private sweep(): void {
    for (const m of this.members) {
      if (m.replica.db.diverged) continue
      for (const key of m.replica.db.blocks.keys()) this.checkBlock(m, key)
    }
  }

  /**
   * Every acknowledged putBlock not deleted since: its bytes are in the block files of a
   * majority, and each member whose database applied it holds the block at least that long.
   */
  private checkAcks(): void {
    for (const a of this.acks) {
      if (this.deletedBlocks.has(a.block)) continue
      let holders = 0
      for (const m of this.members) {
        const file = m.replica.blockFiles.get(a.block)
        let whole = file !== undefined
        for (let offset = 0; whole && offset < a.length;) {
          const held = file!.get(offset)
          if (held === undefined || !sameBytes(held, chunkBytes(a.containerId, a.localId, offset, held.length))) whole = false
          else offset += held.length
        }
        if (whole) holders++
        const db = m.replica.db
        if (db.appliedIndex >= a.index && !db.deleted.has(a.block) && (db.blocks.get(a.block)?.length ?? -1) < a.length) {
          this.fail(`lost putBlock: n${m.id} applied through ${db.appliedIndex} but holds block ${a.block} at ${db.blocks.get(a.block)?.length ?? 'none'}, below the ${a.length} acknowledged at ${a.index}`)
        }
      }
      if (holders * 2 <= MEMBERS) this.fail(`lost bytes: acknowledged block ${a.block} (${a.length} bytes at ${a.index}) is whole in ${holders} of ${MEMBERS} block files`)
    }
  }

  // ---- the leader's request handling (the datanode's /chunk/write and putBlock) ----

  private handleRequest(m: Member, req: Req): void {
    const raw = m.raw!
    if (!raw.isLeader()) {
      this.respond(m, { client: req.client, seq: req.seq, leader: raw.status().leader, notLeader: true })
      return
    }
    const containerId = req.containerId as ContainerId
    const localId = req.localId as LocalId
    let data: Uint8Array
    if (req.kind === 'writeChunk') {
      // The leader writes the bytes while it forwards them to the followers (stage), then
      // proposes the entry: metadata and checksums only.
      const bytes = chunkBytes(req.containerId, req.localId, req.offset, req.length)
      const key = chunkKey(req.containerId, req.localId, req.offset, req.length)
      m.replica.stage(key, bytes)
      for (const o of this.members) {
        if (o.id === m.id) continue
        if (this.faulty && this.net.chance(this.stageLossP)) continue
        this.send({ kind: 'stage', to: o.id, key, bytes }, m.id, o.id)
      }
      data = this.modules.encodeEntry({
        op: 'writeChunk', containerId, localId, offset: req.offset, length: req.length, checksumType: 'CRC32C', bytesPerChecksum: BYTES_PER_CHECKSUM,
        checksums: chunkChecksums(req.containerId, req.localId, req.offset, req.length), replication: 'RATIS/THREE', commit: req.commit,
      })
    } else {
      data = this.modules.encodeEntry({ op: 'putBlock', containerId, localId, length: req.length })
    }
    const r = raw.propose(data)
    if (!r.ok) {
      this.respond(m, { client: req.client, seq: req.seq, leader: r.leader, notLeader: true })
      return
    }
    m.waiting.set(r.index, { req, term: r.term })
    this.trace(`n${m.id} proposes ${r.index} ${req.kind} ${blockKey(req.containerId, req.localId)}${req.kind === 'writeChunk' ? ` chunk ${req.offset}+${req.length}${req.commit ? ' commit' : ''}` : ` length ${req.length}`} for client ${req.client}`)
  }

  private respond(m: Member, resp: Resp): void {
    this.send({ kind: 'response', resp }, m.id, 'client')
  }

  // ---- the SCM: closes containers and deletes finished blocks through the leader ----

  private tickScm(): void {
    if (this.closeAtMs === Infinity && this.members.some((m) => m.replica.db.diverged)) {
      this.closeAtMs = this.nowMs + this.prng.between(5, 50) * MS_PER_TICK
      this.trace(`n${this.members.filter((m) => m.replica.db.diverged).map((m) => m.id).join(',n')} reports diverged: the scm closes the pipeline at ${this.closeAtMs}ms`)
    }
    if (!this.closed && this.nowMs >= this.closeAtMs) {
      // PipelineReport.diverged: the SCM closes the pipeline; its writers drop what was not
      // acknowledged (Ozone's client writes it again on another pipeline).
      this.closed = true
      for (const c of this.clients) {
        c.outstanding.clear()
        c.block = undefined
      }
      this.trace(`scm closes the pipeline: n${this.members.filter((m) => m.replica.db.diverged).map((m) => m.id).join(',n')} diverged`)
    }
    if (!this.faulty || this.closed) return
    const leader = this.leader()
    if (leader === undefined || !leader.raw!.isLeader()) return
    if (this.openContainers.length > 0 && this.prng.chance(this.closeP)) {
      const containerId = this.openContainers.splice(this.prng.int(this.openContainers.length), 1)[0]
      this.openContainers.push(this.nextContainerId++)
      const r = leader.raw!.propose(this.modules.encodeEntry({ op: 'closeContainer', containerId: containerId as ContainerId }))
      this.trace(`scm closes container ${containerId} through n${leader.id}: ${r.ok ? `index ${r.index}` : r.reason}`)
      this.drain(leader)
    }
    const ready = this.finished.filter((f) => this.nowMs - f.atMs >= DELETE_AFTER_MS)
    if (ready.length > 0 && this.prng.chance(this.deleteP)) {
      const f = ready[0]
      const localIds = this.finished.filter((g) => g.containerId === f.containerId && this.nowMs - g.atMs >= DELETE_AFTER_MS).map((g) => g.localId)
      const r = leader.raw!.propose(this.modules.encodeEntry({ op: 'deleteBlocks', containerId: f.containerId as ContainerId, localIds: localIds as LocalId[], txId: ++this.txId }))
      this.trace(`scm deletes blocks ${localIds.join(',')} of container ${f.containerId} through n${leader.id}: ${r.ok ? `index ${r.index}` : r.reason}`)
      if (r.ok) for (const l of localIds) this.finished.splice(this.finished.findIndex((g) => g.containerId === f.containerId && g.localId === l), 1)
      this.drain(leader)
    }
  }

  // ---- clients: blocks of chunks, then putBlock, through the leader ----

  private tickClients(): void {
    for (const c of this.clients) {
      if (c.block === undefined && this.faulty && !this.closed && this.openContainers.length > 0 && this.prng.chance(this.opP)) this.allocate(c)
      for (const o of c.outstanding.values()) {
        if (this.nowMs < o.deadlineMs) continue
        const b = c.block!
        let req = o.req
        if (req.kind === 'putBlock') {
          const acked = this.chunksBelow(b, req.length).every((ch) => b.ackedOffsets.has(ch.offset))
          if (c.ordered && !acked) continue
          req = { ...req, attempt: ++o.attempts }
          if (acked) o.ackedAttempts.add(o.attempts)
        }
        const to = c.leaderHint !== 0 && this.prng.chance(0.8) ? c.leaderHint : this.prng.between(1, MEMBERS)
        c.leaderHint = 0
        o.deadlineMs = this.nowMs + CLIENT_TIMEOUT_MS
        this.send({ kind: 'request', to, req }, 'client', to)
      }
    }
  }

  private chunksBelow(b: ClientBlock, length: number): { offset: number; length: number }[] {
    return b.chunks.filter((ch) => ch.offset < length)
  }

  private allocate(c: Client): void {
    const p = this.prng
    const containerId = p.pick(this.openContainers)
    const localId = this.nextLocalId++
    const count = p.between(1, CHUNKS_PER_BLOCK_MAX)
    const chunks: { offset: number; length: number }[] = []
    let offset = 0
    for (let i = 0; i < count; i++) {
      const length = i === count - 1 ? p.between(1, CHUNK_BYTES_MAX) : CHUNK_BYTES_MAX
      chunks.push({ offset, length })
      offset += length
    }
    const batches: number[][] = [[]]
    for (let i = 0; i < count; i++) {
      batches.at(-1)!.push(i)
      if (i < count - 1 && p.chance(0.3)) batches.push([])
    }
    const oneShot = count === 1 && p.chance(0.5)
    c.block = { containerId, localId, chunks, batches, batch: 0, ackedOffsets: new Set(), oneShot }
    this.trace(`client ${c.id} writes block ${blockKey(containerId, localId)}: chunks ${chunks.map((ch) => ch.length).join(',')} putBlock after ${batches.map((x) => x.length).join(',')}${oneShot ? ' (one writeChunk with commit)' : ''}`)
    this.startBatch(c)
  }

  private startBatch(c: Client): void {
    const b = c.block!
    const batch = b.batches[b.batch]
    for (const i of batch) {
      const ch = b.chunks[i]
      const req: Req = { kind: 'writeChunk', client: c.id, seq: ++this.seq, containerId: b.containerId, localId: b.localId, offset: ch.offset, length: ch.length, commit: b.oneShot }
      c.outstanding.set(req.seq, { req, deadlineMs: this.nowMs, ackedAttempts: new Set(), attempts: 0 })
    }
    if (b.oneShot) return
    const last = b.chunks[batch.at(-1)!]
    const req: Req = { kind: 'putBlock', client: c.id, seq: ++this.seq, containerId: b.containerId, localId: b.localId, length: last.offset + last.length }
    c.outstanding.set(req.seq, { req, deadlineMs: this.nowMs, ackedAttempts: new Set(), attempts: 0 })
  }

  private handleResponse(resp: Resp): void {
    const c = this.clients[resp.client - 1]
    const o = c.outstanding.get(resp.seq)
    if (o === undefined) return
    c.leaderHint = resp.leader
    if (resp.notLeader || resp.applied === undefined) {
      o.deadlineMs = Math.min(o.deadlineMs, this.nowMs + MS_PER_TICK)
      return
    }
    const b = c.block!
    const a = resp.applied
    const req = o.req
    const where = `${req.kind} ${blockKey(req.containerId, req.localId)}`
    if (!a.ok) {
      this.trace(`client ${c.id} ${where}: ${a.code}`)
      if (a.code === 'CONTAINER_NOT_OPEN') {
        // Ozone's client writes the rest to a new block; the acknowledged part stays.
        c.outstanding.clear()
        c.block = undefined
        return
      }
      if (a.code === 'CHUNK_NOT_FOUND' && req.kind === 'putBlock') {
        if (o.ackedAttempts.has(resp.attempt ?? 0)) this.fail(`refused putBlock: ${where} length ${req.length} refused (${a.message}) though every chunk below it was acknowledged before it was sent`)
        o.deadlineMs = this.nowMs + 2 * MS_PER_TICK // a chunk is still on its way: again once it is acknowledged
        return
      }
      this.fail(`unexpected refusal: ${where}: ${a.code} ${a.message}`)
    }
    c.outstanding.delete(resp.seq)
    if (req.kind === 'writeChunk') b.ackedOffsets.add(req.offset)
    if (req.kind === 'putBlock' || (req.kind === 'writeChunk' && req.commit)) {
      const length = req.kind === 'putBlock' ? req.length : req.offset + req.length
      this.acks.push({ block: blockKey(req.containerId, req.localId), containerId: req.containerId, localId: req.localId, length, index: resp.index! })
      this.trace(`client ${c.id} ${where} length ${length} acknowledged`)
    }
    if (c.outstanding.size > 0) return
    b.batch++
    if (b.batch < b.batches.length) {
      this.startBatch(c)
      return
    }
    this.finished.push({ containerId: b.containerId, localId: b.localId, atMs: this.nowMs })
    c.block = undefined
  }
}

// Full chunks end on a checksum window, as the client's do (Ozone's bytesPerChecksum divides the chunk size).
assert(CHUNK_BYTES_MAX % BYTES_PER_CHECKSUM === 0, 'a full chunk is whole checksum windows')
