/** @module
 * One deterministic run of a whole Raft cluster (3 or 5 nodes) for one seed: a simulated
 * network that loses, delays, reorders and duplicates messages and partitions nodes
 * (symmetric and one-way), disks that lose unsynced writes in crash-restarts, membership
 * changes and leadership transfers, and clients of a replicated key-value store that time
 * out and retry. After every step it checks election safety, log matching, leader
 * completeness and state machine safety; at the end, that the client history is
 * linearizable and that, once faults stop, a leader is elected and every request completes
 * within a bounded number of ticks (TigerBeetle's VOPR, FoundationDB's simulation).
 * Pure: time is a counter, randomness a seeded Prng, so a seed replays one trace exactly.
 */
import { assert, AssertionError } from '../../core/assert.ts'
import * as realRaft from '../../core/raft/index.ts'
import type { RawNode as RawNodeClass, Entry, Message, NodeId, Restored } from '../../core/raft/index.ts'
import { O3Error } from '../../core/errors.ts'
import type { bootstrap, joiner } from '../../core/raft/index.ts'
import { KvStore, decodePut, encodePut } from './kv.ts'
import { checkLinearizable, type Operation } from './linearizability.ts'
import { OmNode, OmWorld, imageDifference, withSimulatedClock, type OmModules } from './om.ts'
import { Prng } from './prng.ts'
import { SimStorage } from './storage.ts'

/** The Raft implementation under test (a planted-bug copy for mutants). */
export interface RaftModule {
  readonly RawNode: typeof RawNodeClass
  readonly bootstrap: typeof bootstrap
  readonly joiner: typeof joiner
}

export interface SimOptions {
  readonly seed: number
  readonly nodes: 3 | 5
  readonly raft: RaftModule
  /** Ticks of faults and client load. */
  readonly faultTicks?: number
  /** Ticks after faults stop within which a leader must exist and every request must finish. */
  readonly livenessTicks?: number
  readonly trace?: boolean
  /** The storage fault class: torn, reordered and lost writes (its own seeds; see storage.ts). */
  readonly storageFaults?: boolean
  /** With storageFaults: fsyncs that report success and lose the writes. */
  readonly lostFsync?: boolean
  /** Skip the progress phase and its fault-free reference run (the reference itself). */
  readonly noProgressCheck?: boolean
  /** Internal: run a fresh cluster of this shape without faults to measure its commit rate. */
  readonly reference?: Shape
  /** The OM mode (runOmSimulation): each node's state machine is the OM's requests over a real LMDB database. */
  readonly om?: OmModules
}

export interface SimResult {
  readonly seed: number
  readonly nodes: number
  readonly violations: string[]
  readonly trace: string[]
  readonly ops: number
  readonly commits: number
  /** Commits per tick in the progress phase, and the fault-free reference rate. */
  readonly progressRate: number
  readonly referenceRate: number
  /** Storage-fault seeds: outcomes that show the fault was caught or cost only availability. */
  readonly detected: string[]
}

const MS_PER_TICK = 10
const ELECTION_TIMEOUT_TICKS = 10
/** After faults stop, a leader behind a newer term hears of it from the first answer to its heartbeats. */
const STALE_LEADER_TICKS_MAX = 3 * ELECTION_TIMEOUT_TICKS
/** The progress phase: fault-free put load after the liveness check. */
const PROGRESS_TICKS = 60
const PAUSE_TICKS_MAX = 60
const PROGRESS_FACTOR = 2
const decoder = new TextDecoder()

/** What decides the fault-free commit rate: the reference run of a shape uses the real core. */
interface Shape {
  readonly nodes: 3 | 5
  readonly inflightCountMax: number
  readonly appendEntriesCountMax: number
  readonly preVote: boolean
  readonly checkQuorum: boolean
  readonly joiners: boolean
  readonly clientCount: number
}
const CLIENT_TIMEOUT_MS = 250

/** An OM client's call: a put is openKey then commitKey; a delete or rename is one call. `seq` is its call id. */
type OmCall = { readonly name: 'openKey' | 'commitKey' | 'deleteKey' | 'renameKey'; readonly args: Record<string, unknown> }
type ClientRequest = { readonly kind: 'put' | 'get'; readonly client: number; readonly seq: number; readonly key: string; readonly value: string; readonly om?: OmCall }
/** `ok` false: not the leader (try `leader`). OM answers carry apply's result or the refusal's code. */
type ClientResponse = { readonly client: number; readonly seq: number; readonly ok: boolean; readonly value: string; readonly leader: NodeId; readonly result?: unknown; readonly error?: string }
/** An OM call whose prepare runs on the leader; proposed at the next step if the node still leads. */
interface Preparing { readonly n: SimNode; readonly raw: RawNodeClass; readonly req: ClientRequest; readonly promise: Promise<unknown>; payload?: unknown; error?: string }
type Packet =
  | { readonly kind: 'raft'; readonly msg: Message; readonly checksum?: number }
  | { readonly kind: 'request'; readonly to: NodeId; readonly req: ClientRequest }
  | { readonly kind: 'response'; readonly resp: ClientResponse }

interface SimNode {
  readonly id: NodeId
  readonly storage: SimStorage
  raw: RawNodeClass | undefined
  kv: KvStore
  /** OM mode: the node's state database (it outlives crashes, as a process's LMDB file does). */
  readonly om: OmNode | undefined
  restartAtMs: number
  /** Starts so far: every start after the first follows a crash (the simulator never stops a node cleanly). */
  starts: number
  readonly jitter: Prng
  /** Puts proposed here, answered when applied. */
  pendingPuts: Map<string, ClientRequest>
  /** Gets waiting for their ReadIndex answer, then for the apply index to reach it. */
  pendingReads: Map<string, { req: ClientRequest; index: number | undefined; sinceMs: number }>
  readCounter: number
  checkedCommit: number
  /** Clock drift: this node's tick period (10 ms without drift). */
  tickPeriodMs: number
  nextTickMs: number
  /** Process pause: no ticks and no input until then; input waits in `backlog`. */
  pausedUntilMs: number
  backlog: Packet[]
  missedTicks: number
  /** Own ticks as leader without a reachable quorum (check-quorum seeds), or behind a newer term after faults stop. */
  isolatedTicks: number
  staleTicks: number
  removedTicks: number
  /** As leader: when each voter was last reachable both ways (wall-clock ms, sampled every 10 ms). */
  reachableAtMs: Map<NodeId, number>
  leaderSinceMs: number
}

interface SimClient {
  readonly id: number
  seq: number
  leaderHint: NodeId
  outstanding: { req: ClientRequest; op: number; deadlineMs: number } | undefined
}

class Violation extends Error {}

/** Outcomes a storage fault may cause: a node stops on an assertion, or the group stops serving. */
const TOLERATED_UNDER_STORAGE_FAULTS = /^(assertion|liveness|stale leader|isolated leader|progress|election safety):/

export function runSimulation(options: SimOptions): SimResult {
  assert(options.om === undefined, 'an OM run is asynchronous: runOmSimulation')
  const sim = new Simulation(options)
  try {
    sim.run()
  } catch (err) {
    caught(sim, err)
  }
  return result(sim, options)
}

/**
 * One OM run (SimOptions.om): as runSimulation, with the OM's requests as the state machine.
 * Asynchronous because a request's prepare may await (the SCM's blocks, stubbed here); the
 * simulated clock stands still while prepares settle, so a seed still replays exactly. The
 * progress phase is the Raft core's concern and is left to the key-value runs.
 */
export async function runOmSimulation(options: SimOptions & { readonly om: OmModules }): Promise<SimResult> {
  let sim: Simulation | undefined
  return await withSimulatedClock(() => sim?.clockMs() ?? 0, async () => {
    sim = new Simulation({ ...options, noProgressCheck: true })
    try {
      await sim.runAsync()
    } catch (err) {
      caught(sim, err)
    }
    return result(sim, options)
  })
}

function caught(sim: Simulation, err: unknown): void {
  if (err instanceof Violation) sim.violations.push(err.message)
  else if (err instanceof AssertionError || (err instanceof Error && err.name === 'AssertionError')) sim.violations.push(`assertion: ${err.message}`)
  else throw err
}

function result(sim: Simulation, options: SimOptions): SimResult {
  // Storage faults that lose acknowledged data must be caught (a node stops on an
  // assertion, two leaders meet) or cost only availability; a wrong answer still fails.
  const detected = options.storageFaults ? sim.violations.filter((v) => TOLERATED_UNDER_STORAGE_FAULTS.test(v)) : []
  const violations = sim.violations.filter((v) => !detected.includes(v))
  return {
    seed: options.seed, nodes: options.nodes, violations, detected, trace: sim.traceLines, ops: sim.history.length, commits: sim.committedTerms.length,
    progressRate: sim.progressRate, referenceRate: sim.referenceRate,
  }
}

/** Commits per tick of a fault-free cluster of the real core, per cluster shape (computed once each). */
const referenceRates = new Map<string, number>()

class Simulation {
  readonly violations: string[] = []
  readonly traceLines: string[] = []
  readonly history: Operation[] = []
  /** Term of the committed entry at each index, as first seen committed anywhere. */
  readonly committedTerms: number[] = []
  /**
   * The term of the node that first showed each index committed: the entry was committed in
   * that term or an earlier one (usually the committing leader's own, seen in its Ready).
   */
  private readonly committedBy: number[] = []
  private readonly appliedData: (string | undefined)[] = []
  private readonly leaders = new Map<number, NodeId>()
  private readonly prng: Prng
  private readonly net: Prng
  private readonly nodes: SimNode[] = []
  private readonly clients: SimClient[] = []
  private readonly inflight = new Map<number, Packet[]>()
  private nowMs = 0
  private faulty = true
  // Per-seed fault profile.
  private readonly lossP: number
  private readonly dupP: number
  private readonly delayMaxMs: number
  private readonly crashP: number
  /** Crashes aimed at the leader: the schedules of Raft's Figure 8 need them. */
  private readonly leaderCrashP: number
  /** Crash between persisting a Ready and sending it; far likelier when it makes a leader. */
  private readonly midReadyCrashP: number
  private readonly newLeaderCrashP: number
  private readonly partitionP: number
  private readonly snapshotEvery: number
  private readonly keys: string[]
  private readonly opP: number
  /** Messages held back for up to several election timeouts (across crashes, restarts and elections). */
  private readonly holdP: number
  private readonly holdMaxMs: number
  /** Process pauses (a GC or a stopped VM): the node misses ticks and input, then catches up at once. */
  private readonly pauseP: number
  /** Client reads sent to a leader that was deposed and may not know it yet. */
  private readonly staleReadP: number
  /** Phases in which clients mostly read, so that ReadIndex requests pile up at leaders. */
  private readonly readHeavyP: number
  private readHeavyUntilMs = 0
  /** Messages whose bytes are flipped in flight; the receiver's checksum drops them. */
  private readonly corruptP: number
  private corruptedCount = 0
  private readonly shape: Shape
  private phase: 'faults' | 'liveness' | 'progress' = 'faults'
  progressRate = 0
  referenceRate = 0
  private faultEndMs = 0
  /** Blocked directed links `from>to`, and when they heal. */
  private blocked = new Set<string>()
  private healAtMs = 0
  /** OM mode: prepares under way (settled between steps) and settled (proposed at the next step). */
  private readonly omWorld: OmWorld | undefined
  private preparing: Preparing[] = []
  private prepared: Preparing[] = []
  /** History entries of calls refused for good: they did not happen, so the checker leaves them out. */
  private readonly dropped = new Set<number>()

  constructor(private readonly options: SimOptions) {
    this.prng = new Prng(options.seed)
    this.net = this.prng.fork()
    const p = this.prng
    // The new fault kinds draw from their own generator, so that adding one does not
    // reshuffle every older kind's schedule.
    const q = this.prng.fork()
    this.holdP = q.pick([0, 0.002, 0.01, 0.03])
    this.holdMaxMs = q.pick([300, 600, 1000])
    this.pauseP = q.pick([0, 0, 0.003, 0.01])
    this.staleReadP = q.pick([0, 0.3, 0.7])
    this.readHeavyP = q.pick([0, 0.005, 0.02])
    this.corruptP = q.pick([0, 0, 0.01, 0.05])
    const drift = q.chance(0.3)
    this.lossP = p.pick([0, 0.01, 0.05, 0.15])
    this.dupP = p.pick([0, 0.02, 0.1])
    this.delayMaxMs = p.pick([5, 20, 60])
    // A third of the seeds are storms: every kind of crash and partition at once, as the
    // schedules behind Raft's Figure 8 need several faults in a row.
    const storm = p.chance(1 / 3)
    this.crashP = storm ? 0.01 : p.pick([0, 0.003, 0.01, 0.03])
    this.partitionP = storm ? 0.02 : p.pick([0, 0.005, 0.02])
    this.leaderCrashP = storm ? 0.03 : p.pick([0, 0, 0.01, 0.03])
    this.midReadyCrashP = storm ? 0.005 : p.pick([0, 0.001, 0.005])
    this.newLeaderCrashP = storm ? 0.5 : p.pick([0, 0.2, 0.5])
    this.snapshotEvery = p.pick([3, 10, 40, 1000])
    this.keys = ['a', 'b', 'c'].slice(0, p.between(1, 3))
    this.opP = p.pick([0.1, 0.3, 0.8])
    const inflightCountMax = storm ? 1 : p.pick([1, 4, 256])
    const appendEntriesCountMax = storm ? p.pick([1, 2]) : p.pick([1, 2, 8, 64])
    // Most seeds run with pre-vote and check-quorum, some without either, so that the
    // plain Raft paths (a vote bumps the term; a cut-off leader stays) are covered too.
    const preVote = p.chance(0.75)
    const checkQuorum = p.chance(0.75)
    // Half the 5-node seeds found the group with 3 voters; nodes 4 and 5 start empty and
    // join through membership changes (they learn the membership from a snapshot).
    const joiners = options.nodes === 5 && p.chance(0.5)
    const clientCount = p.between(1, 4)
    this.shape = options.reference ?? { nodes: options.nodes, inflightCountMax, appendEntriesCountMax, preVote, checkQuorum, joiners, clientCount }
    // Most seeds run with pre-vote and check-quorum, some without either, so that the
    // plain Raft paths (a vote bumps the term; a cut-off leader stays) are covered too.
    this.nodeConfig = { inflightCountMax: this.shape.inflightCountMax, appendEntriesCountMax: this.shape.appendEntriesCountMax, preVote: this.shape.preVote, checkQuorum: this.shape.checkQuorum }
    this.omWorld = options.om === undefined ? undefined : new OmWorld(options.om)
    const all = Array.from({ length: this.shape.nodes }, (_, i) => i + 1)
    const voters = this.shape.joiners ? [1, 2, 3] : all
    for (const id of all) {
      const jitter = p.fork()
      const tickPeriodMs = drift && options.reference === undefined ? q.between(7, 13) : MS_PER_TICK
      const initial = voters.includes(id) ? options.raft.bootstrap({ voters, learners: [] }) : options.raft.joiner()
      const node: SimNode = {
        id, storage: new SimStorage(initial, options.storageFaults ? q.fork() : undefined, options.lostFsync), raw: undefined, kv: new KvStore(), om: this.omNode(id), restartAtMs: 0, starts: 0,
        jitter, pendingPuts: new Map(), pendingReads: new Map(), readCounter: 0, checkedCommit: 0,
        tickPeriodMs, nextTickMs: 0, pausedUntilMs: 0, backlog: [], missedTicks: 0, isolatedTicks: 0, staleTicks: 0, removedTicks: 0, reachableAtMs: new Map(), leaderSinceMs: -1,
      }
      this.nodes.push(node)
      this.start(node)
    }
    for (let i = 1; i <= this.shape.clientCount; i++) this.clients.push({ id: i, seq: 0, leaderHint: 0, outstanding: undefined })
    if (this.options.trace) this.trace(`seed ${options.seed}: ${this.shape.nodes} nodes loss ${this.lossP} dup ${this.dupP} delay<=${this.delayMaxMs}ms crash ${this.crashP} leaderCrash ${this.leaderCrashP} midReadyCrash ${this.midReadyCrashP} newLeaderCrash ${this.newLeaderCrashP} partition ${this.partitionP} snapshotEvery ${this.snapshotEvery} inflight ${this.shape.inflightCountMax} batch ${this.shape.appendEntriesCountMax} preVote ${preVote} checkQuorum ${checkQuorum} clients ${this.shape.clientCount} keys ${this.keys.length}${this.shape.joiners ? ' joiners 4,5' : ''}`)
    if (this.options.trace) this.trace(`  hold ${this.holdP} <=${this.holdMaxMs}ms pause ${this.pauseP} staleRead ${this.staleReadP} readHeavy ${this.readHeavyP} corrupt ${this.corruptP} tick periods ${this.nodes.map((n) => n.tickPeriodMs).join(',')}ms${options.storageFaults ? ` storage faults${options.lostFsync ? ' with lost fsyncs' : ''}` : ''}${options.reference ? ' (fault-free reference)' : ''}`)
  }

  private readonly nodeConfig: { inflightCountMax: number; appendEntriesCountMax: number; preVote: boolean; checkQuorum: boolean }

  private omNode(id: NodeId): OmNode | undefined {
    if (this.omWorld === undefined) return undefined
    const om = new OmNode(this.omWorld, id)
    om.found()
    return om
  }

  /** The simulated time (OM mode: what Date.now() reads outside an apply). */
  clockMs(): number {
    return this.nowMs
  }

  private trace(line: string): void {
    if (this.options.trace) this.traceLines.push(`${this.nowMs}ms ${line}`)
  }

  private fail(message: string): never {
    if (this.options.trace) this.trace(`VIOLATION ${message}`)
    throw new Violation(message)
  }

  private start(node: SimNode): void {
    const restored: Restored = node.storage.restore()
    node.starts++
    node.raw = new this.options.raft.RawNode({
      id: node.id, randomInt: (n) => node.jitter.int(n), electionTimeoutTicks: ELECTION_TIMEOUT_TICKS, heartbeatTimeoutTicks: 2,
      // With fsyncs that lie, nodes run as hosts configured to distrust them do.
      ...(this.options.lostFsync === true ? { restartedAfterCrash: node.starts > 1, incarnation: node.starts } : {}),
      ...this.nodeConfig,
    }, restored)
    if (node.om !== undefined) node.om.install(restored.snapshot.data, restored.snapshot.meta.index)
    else node.kv = KvStore.restore(restored.snapshot.data, restored.snapshot.meta.index)
    node.pendingPuts = new Map()
    node.pendingReads = new Map()
    node.checkedCommit = restored.snapshot.meta.index
    node.isolatedTicks = 0
    node.staleTicks = 0
    node.removedTicks = 0
    node.reachableAtMs = new Map()
    node.leaderSinceMs = -1
  }

  run(): void {
    for (const _ of this.phases()) assert(false, 'only an OM run waits for prepares')
  }

  async runAsync(): Promise<void> {
    for (const _ of this.phases()) await this.settlePrepares()
  }

  /** The run; yields after a step that started prepares, for the caller to let them settle. */
  private *phases(): Generator<void> {
    const faultMs = (this.options.reference !== undefined ? 0 : this.options.faultTicks ?? 3000) * MS_PER_TICK
    const livenessMs = (this.options.livenessTicks ?? 200) * MS_PER_TICK
    for (; this.nowMs < faultMs; this.nowMs++) {
      this.step()
      if (this.preparing.length > 0) yield
    }
    this.heal()
    const deadline = this.nowMs + livenessMs
    for (; this.nowMs < deadline && !this.quiet(); this.nowMs++) {
      this.step()
      if (this.preparing.length > 0) yield
    }
    if (!this.quiet()) {
      const open = this.clients.filter((c) => c.outstanding).map((c) => `client ${c.id} seq ${c.seq}`)
      const lagging = this.nodes.filter((n) => n.raw !== undefined).map((n) => `n${n.id} ${n.raw!.status().role} t${n.raw!.status().hardState.term} applied ${n.raw!.status().applied}/${n.raw!.status().lastIndex}`)
      this.fail(`liveness: ${livenessMs / MS_PER_TICK} ticks after faults stopped, leader ${this.currentLeader()?.id ?? 'none'}, unfinished: ${open.join(', ') || 'none'}; ${lagging.join(', ')}`)
    }
    this.checkReplicasEqual()
    if (!this.options.noProgressCheck) this.checkProgress()
    const bad = checkLinearizable(this.dropped.size === 0 ? this.history : this.history.filter((_, i) => !this.dropped.has(i)))
    if (bad.length > 0) this.fail(`linearizability: history of key(s) ${bad.join(', ')} is not linearizable`)
  }

  /** Liveness: one leader, no unfinished request, and every member has applied the leader's whole log. */
  private quiet(): boolean {
    const leader = this.currentLeader()
    if (leader === undefined || this.clients.some((c) => c.outstanding !== undefined)) return false
    if (this.nodes.some((n) => n !== leader && n.raw?.status().role === 'leader')) return false
    const s = leader.raw!.status()
    return [...s.confState.voters, ...s.confState.learners].every((id) => (this.nodes[id - 1].raw?.status().applied ?? 0) >= s.lastIndex)
  }

  /** The node leading the highest term (a deposed leader that was not told may still think it leads). */
  private currentLeader(): SimNode | undefined {
    let best: SimNode | undefined
    for (const n of this.nodes) {
      const s = n.raw?.status()
      if (s?.role === 'leader' && (best === undefined || s.hardState.term > best.raw!.status().hardState.term)) best = n
    }
    return best
  }

  /** Once quiet, every member has applied the same entries: their state machines must be byte-equal. */
  private checkReplicasEqual(): void {
    const leader = this.currentLeader()!
    const conf = leader.raw!.status().confState
    if (leader.om !== undefined) {
      const expected = leader.om.image()
      for (const id of [...conf.voters, ...conf.learners]) {
        const image = this.nodes[id - 1].om!.image()
        if (Buffer.compare(image, expected) !== 0) this.fail(`replicas differ: n${id}'s OM database differs from leader n${leader.id}'s (${imageDifference(image, expected)})`)
      }
      return
    }
    const expected = decoder.decode(leader.kv.snapshot())
    for (const id of [...conf.voters, ...conf.learners]) {
      const image = decoder.decode(this.nodes[id - 1].kv.snapshot())
      if (image !== expected) this.fail(`replicas differ: n${id} applied state ${image} differs from leader n${leader.id}'s ${expected}`)
    }
  }

  /** Fault-free load for a while: commits per tick must stay within PROGRESS_FACTOR of a fresh cluster's. */
  private checkProgress(): void {
    // Messages held during the faults may still arrive (up to a second late) and set off
    // elections: the rate is measured once the network has delivered them all.
    const settledMs = this.faultEndMs + Math.max(this.delayMaxMs * 5, this.holdP > 0 ? this.holdMaxMs : 0) + MS_PER_TICK
    for (; this.nowMs < settledMs; this.nowMs++) this.step()
    const deadline = this.nowMs + (this.options.livenessTicks ?? 200) * MS_PER_TICK
    for (; this.nowMs < deadline && !this.quiet(); this.nowMs++) this.step()
    if (!this.quiet()) this.fail(`liveness: no quiet leader once the messages held during the faults had arrived`)
    const leader = this.currentLeader()!
    for (const c of this.clients) c.leaderHint = leader.id
    this.phase = 'progress'
    const before = this.committedTerms.length
    const end = this.nowMs + PROGRESS_TICKS * MS_PER_TICK
    for (; this.nowMs < end; this.nowMs++) this.step()
    this.progressRate = (this.committedTerms.length - before) / PROGRESS_TICKS
    if (this.options.trace) this.trace(`progress: ${this.progressRate} commits per tick`)
    if (this.options.reference !== undefined) return
    // Pre-vote and check-quorum do not change the steady-state rate: one reference serves both.
    const shape: Shape = { ...this.shape, preVote: true, checkQuorum: true }
    const key = JSON.stringify(shape)
    let reference = referenceRates.get(key)
    if (reference === undefined) {
      const r = runSimulation({ seed: 1, nodes: shape.nodes, raft: realRaft, reference: shape })
      assert(r.violations.length === 0, `the fault-free reference run passes: ${r.violations.join('; ')}`)
      reference = r.progressRate
      referenceRates.set(key, reference)
    }
    this.referenceRate = reference
    if (this.progressRate * PROGRESS_FACTOR < reference) {
      this.fail(`progress: ${this.progressRate} commits per tick after faults stopped, under 1/${PROGRESS_FACTOR} of a fault-free cluster's ${reference}`)
    }
  }

  private heal(): void {
    this.blocked.clear()
    // Paused nodes catch up first, as the last faults: the checks of a fault-free cluster
    // start once every node runs on time.
    for (const n of this.nodes) if (n.pausedUntilMs !== 0 && n.raw !== undefined) this.resume(n)
    this.faulty = false
    this.faultEndMs = this.nowMs
    this.phase = 'liveness'
    this.trace('faults stop: partitions healed, paused nodes resume, crashed nodes restart, no loss, clocks agree')
    for (const n of this.nodes) {
      n.tickPeriodMs = MS_PER_TICK
      n.nextTickMs = this.nowMs
      if (n.pausedUntilMs !== 0 && n.raw !== undefined) this.resume(n)
      n.pausedUntilMs = 0
      if (n.raw === undefined) {
        this.start(n)
        if (this.options.trace) this.trace(`n${n.id} restarts`)
      }
    }
  }

  private step(): void {
    let changed = false
    if (this.prepared.length > 0) {
      this.proposePrepared()
      changed = true
    }
    const due = this.inflight.get(this.nowMs)
    if (due !== undefined) {
      this.inflight.delete(this.nowMs)
      shuffle(this.net, due)
      for (const p of due) this.deliver(p)
      changed = true
    }
    if (this.nowMs % MS_PER_TICK === 0 && this.faulty) {
      this.injectFaults()
      if (this.nodeConfig.checkQuorum) this.sampleReachability()
      changed = true
    }
    // Each node ticks on its own clock: with drift, some run fast and some slow.
    for (const n of this.nodes) {
      if (this.nowMs < n.nextTickMs) continue
      n.nextTickMs = this.nowMs + n.tickPeriodMs
      changed = true
      if (n.raw === undefined && this.faulty && this.nowMs >= n.restartAtMs) {
        this.start(n)
        if (this.options.trace) this.trace(`n${n.id} restarts at term ${n.raw!.status().hardState.term}`)
      }
      if (n.raw === undefined) continue
      if (n.pausedUntilMs > this.nowMs) {
        n.missedTicks++
        continue
      }
      if (n.pausedUntilMs !== 0) this.resume(n)
      this.tickNode(n)
    }
    if (this.nowMs % MS_PER_TICK === 0) this.tickClients()
    // Every step that changed anything is checked (a step with no delivery and no tick changes nothing).
    if (changed) {
      this.checkSafety()
      this.checkLogMatching()
      if (this.nowMs % MS_PER_TICK === 0) this.checkMatchIndexes()
    }
  }

  private tickNode(n: SimNode): void {
    if (n.raw === undefined) return
    n.raw.tick()
    this.drain(n)
    this.checkLeaderBounds(n)
  }

  /** A paused process wakes up: its timers fire at once and the input that waited arrives. */
  private resume(n: SimNode): void {
    const backlog = n.backlog
    const ticks = n.missedTicks
    n.pausedUntilMs = 0
    n.backlog = []
    n.missedTicks = 0
    if (this.options.trace) this.trace(`n${n.id} resumes ${ticks} ticks and ${backlog.length} messages behind`)
    // What waited in the socket buffers arrives in any order: a client read that came in
    // during the pause may be handled before an acknowledgement sent before it.
    for (let i = backlog.length - 1; i > 0; i--) {
      const j = this.prng.int(i + 1)
      ;[backlog[i], backlog[j]] = [backlog[j], backlog[i]]
    }
    const ticksFirst = this.prng.chance(0.5)
    if (ticksFirst) for (let i = 0; i < ticks; i++) this.tickNode(n)
    for (const p of backlog) this.deliver(p)
    if (!ticksFirst) for (let i = 0; i < ticks; i++) this.tickNode(n)
  }

  /** Notes, for every node that believes it leads, which of its voters it can reach both ways now. */
  private sampleReachability(): void {
    for (const n of this.nodes) {
      const s = n.raw?.status()
      if (s === undefined || s.role !== 'leader') continue
      for (const id of s.confState.voters) {
        const o = this.nodes[id - 1]
        // A voter just added counts as heard from (the core marks a new member active).
        if (id !== n.id && !n.reachableAtMs.has(id)) n.reachableAtMs.set(id, this.nowMs)
        if (id !== n.id && o.raw !== undefined && o.pausedUntilMs === 0 && !this.blocked.has(`${n.id}>${id}`) && !this.blocked.has(`${id}>${n.id}`)) n.reachableAtMs.set(id, this.nowMs)
      }
    }
  }

  /**
   * With check-quorum, a leader that for a whole window could not reach a quorum of its
   * voters steps down within an election timeout (its own ticks). The window covers two
   * election timeouts of its clock (check-quorum looks back one, not aligned) plus the
   * longest a message can have been delayed or waited at a paused node.
   * Once faults stop, a leader behind a newer term held by one of its voters or by another
   * leader (deposed, or removed from the membership, while cut off) steps down within a few
   * election timeouts: the first answer to its heartbeats tells it.
   */
  private checkLeaderBounds(n: SimNode): void {
    const s = n.raw?.status()
    if (s === undefined || s.role !== 'leader') {
      n.isolatedTicks = 0
      n.staleTicks = 0
      n.removedTicks = 0
      n.reachableAtMs.clear()
      n.leaderSinceMs = -1
      return
    }
    if (n.leaderSinceMs < 0) n.leaderSinceMs = this.nowMs
    // A leader that applied its own removal steps down (etcd): it must not lead a group it is not in.
    n.removedTicks = s.confState.voters.includes(n.id) ? 0 : n.removedTicks + 1
    if (n.removedTicks > 1) this.fail(`removed leader: n${n.id} still leads term ${s.hardState.term} after applying its removal (voters ${s.confState.voters.join(',')})`)
    if (this.faulty && this.nodeConfig.checkQuorum) {
      const maxDelayMs = Math.max(this.delayMaxMs * 5, this.holdP > 0 ? this.holdMaxMs : 0) + (this.pauseP > 0 ? PAUSE_TICKS_MAX * MS_PER_TICK : 0)
      const windowMs = 2 * ELECTION_TIMEOUT_TICKS * n.tickPeriodMs + maxDelayMs + 2 * MS_PER_TICK
      const heard = 1 + s.confState.voters.filter((id) => id !== n.id && (n.reachableAtMs.get(id) ?? -Infinity) >= this.nowMs - windowMs).length
      const isolated = heard < Math.floor(s.confState.voters.length / 2) + 1 && this.nowMs - n.leaderSinceMs > windowMs
      n.isolatedTicks = isolated ? n.isolatedTicks + 1 : 0
      // Two election timeouts: a leadership transfer restarts the leader's election timer.
      if (n.isolatedTicks > 2 * ELECTION_TIMEOUT_TICKS + 2) this.fail(`isolated leader: n${n.id} still leads term ${s.hardState.term}, ${n.isolatedTicks} of its ticks after ${windowMs}ms without a reachable quorum`)
    }
    if (!this.faulty) {
      const voters = new Set(s.confState.voters)
      const newer = this.nodes.some((o) => {
        const os = o.raw?.status()
        return os !== undefined && os.hardState.term > s.hardState.term && (voters.has(o.id) || os.role === 'leader')
      })
      n.staleTicks = newer ? n.staleTicks + 1 : 0
      if (n.staleTicks > STALE_LEADER_TICKS_MAX) this.fail(`stale leader: n${n.id} still leads term ${s.hardState.term} ${n.staleTicks} ticks after faults stopped, behind a newer term (voters in its view: ${s.confState.voters.join(',')})`)
    }
  }

  // ---- network ----

  private send(p: Packet, from: NodeId | 'client', to: NodeId | 'client'): void {
    if (this.faulty) {
      if (this.net.chance(this.lossP)) return
      if (from !== 'client' && to !== 'client' && this.blocked.has(`${from}>${to}`)) return
    }
    const copies = this.faulty && this.net.chance(this.dupP) ? 2 : 1
    for (let i = 0; i < copies; i++) {
      let packet = p
      let delay: number
      // Acknowledgements are held five times as often: a late one reaching a leader of a later
      // term is the schedule behind counting an old term's acks toward commit.
      if (this.faulty && p.kind === 'raft' && this.holdP > 0 && this.net.chance(p.msg.type === 'appResp' ? this.holdP * 5 : this.holdP)) {
        // Held for two election timeouts or more: it may arrive after crashes, restarts and elections.
        delay = 2 * ELECTION_TIMEOUT_TICKS * MS_PER_TICK + this.net.int(this.holdMaxMs - 2 * ELECTION_TIMEOUT_TICKS * MS_PER_TICK)
      } else {
        const long = this.faulty && this.net.chance(0.05)
        delay = 1 + this.net.int(this.faulty ? (long ? this.delayMaxMs * 5 : this.delayMaxMs) : 5)
      }
      if (p.kind === 'raft' && this.corruptP > 0) {
        // The sender seals each message with a checksum; a flipped bit on the wire breaks it.
        const sum = messageChecksum(p.msg)
        packet = { kind: 'raft', msg: this.faulty && this.net.chance(this.corruptP) ? corrupt(p.msg, this.net) : p.msg, checksum: sum }
      }
      const at = this.nowMs + delay
      let bucket = this.inflight.get(at)
      if (bucket === undefined) this.inflight.set(at, (bucket = []))
      bucket.push(packet)
    }
  }

  private deliver(p: Packet): void {
    switch (p.kind) {
      case 'raft': {
        const n = this.nodes[p.msg.to - 1]
        if (n?.raw === undefined) return
        if (this.faulty && this.blocked.has(`${p.msg.from}>${p.msg.to}`)) return
        if (n.pausedUntilMs !== 0) {
          n.backlog.push(p)
          return
        }
        if (p.checksum !== undefined && messageChecksum(p.msg) !== p.checksum) {
          this.corruptedCount++
          if (this.options.trace) this.trace(`n${p.msg.to} drops a corrupted message from n${p.msg.from} (checksum mismatch)`)
          return
        }
        if (this.options.trace) this.trace(`n${p.msg.to} <- n${p.msg.from} ${describe(p.msg)}`)
        n.raw.step(p.msg)
        this.drain(n)
        break
      }
      case 'request': {
        const n = this.nodes[p.to - 1]
        if (n.raw === undefined) return
        if (n.pausedUntilMs !== 0) {
          n.backlog.push(p)
          return
        }
        this.handleRequest(n, p.req)
        this.drain(n)
        break
      }
      case 'response':
        this.handleResponse(p.resp)
        break
    }
  }

  // ---- one node's Ready loop: persist, send, apply, advance ----

  private drain(n: SimNode): void {
    const raw = n.raw!
    while (raw.hasReady()) {
      const rd = raw.ready()
      for (const m of rd.earlyMessages) this.send({ kind: 'raft', msg: m }, m.from, m.to)
      if (rd.earlyMessages.length > 0 && rd.entries.length > 0 && this.faulty && this.prng.chance(this.midReadyCrashP)) {
        // The leader's appends left, its own write did not happen.
        this.crash(n, 'after its early messages, before persisting')
        return
      }
      if (rd.snapshot !== undefined) n.storage.write({ kind: 'install', snapshot: rd.snapshot })
      if (rd.entries.length > 0) n.storage.write({ kind: 'entries', entries: rd.entries })
      if (rd.hardState !== undefined) n.storage.write({ kind: 'hardState', hardState: rd.hardState })
      if (rd.mustSync) n.storage.sync()
      if (rd.softState !== undefined && this.options.trace) this.trace(`n${n.id} is ${rd.softState.role}, leader ${rd.softState.leader}, term ${raw.status().hardState.term}`)
      const newLeader = rd.softState?.role === 'leader'
      if (this.faulty && this.prng.chance(newLeader ? this.newLeaderCrashP : this.midReadyCrashP)) {
        this.crash(n, 'before sending its Ready')
        return
      }
      for (const m of rd.messages) this.send({ kind: 'raft', msg: m }, m.from, m.to)
      if (rd.snapshot !== undefined && n.om !== undefined) {
        n.om.install(rd.snapshot.data, rd.snapshot.meta.index)
        if (this.options.trace) this.trace(`n${n.id} installs snapshot at ${rd.snapshot.meta.index}`)
      } else if (rd.snapshot !== undefined) {
        n.kv = KvStore.restore(rd.snapshot.data, rd.snapshot.meta.index)
        if (this.options.trace) this.trace(`n${n.id} installs snapshot at ${rd.snapshot.meta.index}`)
      }
      for (const e of rd.committedEntries) {
        const fingerprint = `${e.term}:${e.type}:${decoder.decode(e.data)}`
        const seen = this.appliedData[e.index]
        if (seen === undefined) this.appliedData[e.index] = fingerprint
        else if (seen !== fingerprint) this.fail(`state machine safety: n${n.id} applies ${fingerprint} at ${e.index}, another node applied ${seen}`)
        if (n.om !== undefined) {
          this.applyOm(n, e)
          continue
        }
        if (e.type !== 'normal' || e.data.byteLength === 0) {
          n.kv.skip(e.index)
          continue
        }
        const cmd = decodePut(e.data)
        n.kv.apply(e.index, cmd)
        const key = `${cmd.client}:${cmd.seq}`
        if (n.pendingPuts.delete(key)) this.respond(n, { client: cmd.client, seq: cmd.seq, ok: true, value: '', leader: n.id })
      }
      for (const rs of rd.readStates) {
        const r = n.pendingReads.get(rs.context)
        if (r !== undefined) r.index = rs.index
      }
      for (const [ctx, r] of n.pendingReads) {
        if (r.index !== undefined && (n.om?.appliedIndex() ?? n.kv.applied) >= r.index) {
          n.pendingReads.delete(ctx)
          this.respond(n, { client: r.req.client, seq: r.req.seq, ok: true, value: n.om?.get(r.req.key) ?? n.kv.get(r.req.key), leader: n.id })
        }
      }
      raw.advance(rd)
      if (n.om !== undefined) {
        // The database may be ahead of Raft's applied index after a restart: it snapshots only at that index.
        const applied = n.om.appliedIndex()
        if (applied === raw.status().applied && applied - raw.firstIndex() + 1 >= this.snapshotEvery) {
          const snapshot = raw.compact(n.om.image())
          n.storage.write({ kind: 'compact', snapshot })
          if (this.options.trace) this.trace(`n${n.id} compacts to ${snapshot.meta.index}`)
        }
      } else if (n.kv.applied - raw.firstIndex() + 1 >= this.snapshotEvery) {
        const snapshot = raw.compact(n.kv.snapshot())
        n.storage.write({ kind: 'compact', snapshot })
        if (this.options.trace) this.trace(`n${n.id} compacts to ${snapshot.meta.index}`)
      }
    }
  }

  // ---- clients ----

  private handleRequest(n: SimNode, req: ClientRequest): void {
    const raw = n.raw!
    if (req.om !== undefined) {
      this.submitOm(n, req, req.om)
      return
    }
    if (req.kind === 'put') {
      if (n.kv.seen(req.client, req.seq)) {
        this.respond(n, { client: req.client, seq: req.seq, ok: true, value: '', leader: n.id })
        return
      }
      const r = raw.propose(encodePut({ client: req.client, seq: req.seq, key: req.key, value: req.value }))
      if (r.ok) n.pendingPuts.set(`${req.client}:${req.seq}`, req)
      else this.respond(n, { client: req.client, seq: req.seq, ok: false, value: '', leader: r.leader })
      return
    }
    const ctx = `${n.id}.${++n.readCounter}`
    for (const [c, r] of n.pendingReads) if (this.nowMs - r.sinceMs > CLIENT_TIMEOUT_MS * 2) n.pendingReads.delete(c)
    if (raw.readIndex(ctx)) n.pendingReads.set(ctx, { req, index: undefined, sinceMs: this.nowMs })
    else this.respond(n, { client: req.client, seq: req.seq, ok: false, value: '', leader: raw.status().leader })
  }

  private respond(n: SimNode, resp: ClientResponse): void {
    this.send({ kind: 'response', resp }, n.id, 'client')
  }

  private handleResponse(resp: ClientResponse): void {
    const c = this.clients[resp.client - 1]
    const o = c.outstanding
    if (o === undefined || o.req.seq !== resp.seq) return
    if (!resp.ok) {
      c.leaderHint = resp.leader
      o.deadlineMs = Math.min(o.deadlineMs, this.nowMs + MS_PER_TICK)
      return
    }
    c.leaderHint = resp.leader
    if (o.req.om !== undefined) {
      this.omAnswered(c, o, o.req.om, resp)
      return
    }
    const op = this.history[o.op]
    this.history[o.op] = { ...op, value: o.req.kind === 'get' ? resp.value : op.value, returnTime: this.nowMs }
    if (this.options.trace) this.trace(`client ${c.id} ${o.req.kind} ${o.req.key} = ${this.history[o.op].value} done`)
    c.outstanding = undefined
  }

  private tickClients(): void {
    if (this.faulty && this.nowMs >= this.readHeavyUntilMs && this.readHeavyP > 0 && this.prng.chance(this.readHeavyP)) {
      this.readHeavyUntilMs = this.nowMs + this.prng.between(20, 100) * MS_PER_TICK
      if (this.options.trace) this.trace(`read-heavy phase until ${this.readHeavyUntilMs}ms`)
    }
    const readHeavy = this.faulty && this.nowMs < this.readHeavyUntilMs
    for (const c of this.clients) {
      if (c.outstanding === undefined) {
        if (this.phase === 'liveness' || !this.prng.chance(this.phase === 'progress' ? 1 : readHeavy ? 0.9 : this.opP)) continue
        const kind = this.phase === 'progress' ? 'put' : readHeavy ? (this.prng.chance(0.9) ? 'get' : 'put') : this.prng.chance(0.5) ? 'put' : 'get'
        const key = this.prng.pick(this.keys)
        let req: ClientRequest = { kind, client: c.id, seq: ++c.seq, key, value: kind === 'put' ? `${c.id}.${c.seq}` : '' }
        if (this.omWorld !== undefined && kind === 'put') req = this.omMutation(req)
        this.history.push({ client: c.id, key, kind, value: req.value, callTime: this.nowMs, returnTime: Infinity })
        c.outstanding = { req, op: this.history.length - 1, deadlineMs: this.nowMs }
      }
      const o = c.outstanding
      if (this.nowMs < o.deadlineMs) continue
      // During the faults a fifth of the tries go to a random node, to exercise redirects
      // and deposed leaders. The progress phase measures replication, not that routing: the
      // client follows the leader it was told. Otherwise, once the faults have shrunk the
      // membership, a random pick can land on a removed node that knows no leader, and the
      // client wanders between such nodes for a chain of tries a fault-free cluster (every
      // node a member) never pays (seeds 44135, 63397, 69555: one put in 60 ticks took 295 ms
      // over 15 tries, each 5 to 17 ms once it reached the leader). The draws stay the same.
      const followHint = c.leaderHint !== 0 && this.prng.chance(0.8)
      let to = followHint ? c.leaderHint : this.prng.between(1, this.nodes.length)
      if (this.phase === 'progress' && c.leaderHint !== 0) to = c.leaderHint
      if (o.req.kind === 'get' && this.faulty && this.staleReadP > 0 && this.prng.chance(this.staleReadP)) {
        // Aim the read at a leader deposed and not yet told: it must not answer from its stale state.
        const deposed = this.deposedLeader()
        if (deposed !== undefined) to = deposed.id
      }
      c.leaderHint = 0
      o.deadlineMs = this.nowMs + CLIENT_TIMEOUT_MS
      if (this.options.trace) this.trace(`client ${c.id} -> n${to} ${o.req.om?.name ?? o.req.kind} ${o.req.key} ${o.req.value} seq ${o.req.seq}`)
      this.send({ kind: 'request', to, req: o.req }, 'client', to)
    }
  }

  /** A node that still believes it leads while some node has moved to a newer term. */
  private deposedLeader(): SimNode | undefined {
    let maxTerm = 0
    for (const n of this.nodes) maxTerm = Math.max(maxTerm, n.raw?.status().hardState.term ?? 0)
    return this.nodes.find((n) => {
      const s = n.raw?.status()
      return s?.role === 'leader' && s.hardState.term < maxTerm
    })
  }

  // ---- the OM mode: ReplicatedService.submit and apply, and the clients' S3-like calls ----

  /** A put (openKey, then commitKey), a delete or a rename (to a name no client reads: a delete of the key). */
  private omMutation(req: ClientRequest): ClientRequest {
    const what = this.prng.pick(['put', 'put', 'put', 'delete', 'rename'] as const)
    const target = { volume: 'vol', bucket: 'bkt', key: req.key }
    if (what === 'delete') return { ...req, value: '', om: { name: 'deleteKey', args: target } }
    if (what === 'rename') return { ...req, value: '', om: { name: 'renameKey', args: { ...target, toKey: `${req.key}.moved.${req.client}.${req.seq}` } } }
    const sizeBytes = 1 + (req.seq % 7) * 100
    return { ...req, om: { name: 'openKey', args: { ...target, sizeBytes, metadata: { v: req.value } } } }
  }

  /** ReplicatedService.submit on node `n`: leader check, the retry cache's first answer, then prepare. */
  private submitOm(n: SimNode, req: ClientRequest, call: OmCall): void {
    const raw = n.raw!
    if (!raw.isLeader()) {
      this.respond(n, { client: req.client, seq: req.seq, ok: false, value: '', leader: raw.status().leader })
      return
    }
    const seen = n.om!.answer({ client: `c${req.client}`, call: req.seq })
    if (seen !== undefined) {
      this.respond(n, { client: req.client, seq: req.seq, ok: true, value: '', leader: n.id, ...('error' in seen ? { error: seen.error.code } : { result: seen.result }) })
      return
    }
    this.preparing.push({ n, raw, req, promise: n.om!.prepare(call.name, call.args) })
  }

  /** Lets the prepares started in this step settle (the SCM stub answers at once), in the order they started. */
  private async settlePrepares(): Promise<void> {
    const batch = this.preparing
    this.preparing = []
    for (const p of batch) {
      try {
        p.payload = await p.promise
      } catch (err) {
        if (!(err instanceof O3Error)) throw err
        p.error = err.code
      }
      this.prepared.push(p)
    }
  }

  /** Proposes the prepared entries of nodes that still lead; a refusal in prepare is the client's answer. */
  private proposePrepared(): void {
    const batch = this.prepared
    this.prepared = []
    for (const p of batch) {
      const { n, req } = p
      if (n.raw !== p.raw || n.pausedUntilMs !== 0) continue // crashed or paused meanwhile: the client times out
      if (p.error !== undefined) {
        this.respond(n, { client: req.client, seq: req.seq, ok: true, value: '', leader: n.id, error: p.error })
        continue
      }
      const data = n.om!.encode(req.om!.name, p.payload, { client: `c${req.client}`, call: req.seq }, this.nowMs)
      const r = p.raw.propose(data)
      if (r.ok) n.pendingPuts.set(`${req.client}:${req.seq}`, req)
      else this.respond(n, { client: req.client, seq: req.seq, ok: false, value: '', leader: r.leader })
      this.drain(n)
    }
  }

  /** A committed entry on an OM node: apply (or skip) it on the node's own clock; answer the proposer's client. */
  private applyOm(n: SimNode, e: Entry): void {
    const om = n.om!
    if (e.type !== 'normal' || e.data.byteLength === 0) {
      om.skip(e)
      return
    }
    // After a restart the database may hold the entry already: applying it again is a no-op with no answer.
    const fresh = e.index > om.appliedIndex()
    const answer = om.apply(e, OmWorld.nodeClock(this.nowMs, n.id))
    if (!fresh) return
    const { r, caller } = JSON.parse(decoder.decode(e.data)) as { r: string; caller?: { client: string; call: number } }
    if (this.options.trace) this.trace(`n${n.id} applies ${e.index} ${r} of ${caller?.client}:${caller?.call}: ${'error' in answer ? answer.error : 'ok'}`)
    if (caller === undefined) return
    const client = Number(caller.client.slice(1))
    if (!n.pendingPuts.delete(`${client}:${caller.call}`)) return
    this.respond(n, { client, seq: caller.call, ok: true, value: '', leader: n.id, ...answer })
  }

  /**
   * A client's call answered. A put's openKey leads to its commitKey (a new call); a refusal
   * means the operation did not happen (dropped from the history); a delete or rename of a
   * missing key read the key as absent.
   */
  private omAnswered(c: SimClient, o: NonNullable<SimClient['outstanding']>, call: OmCall, resp: ClientResponse): void {
    if (this.options.trace) this.trace(`client ${c.id} ${call.name} ${o.req.key} seq ${o.req.seq}: ${resp.error ?? 'ok'}`)
    const op = this.history[o.op]
    if (call.name === 'openKey' && resp.error === undefined) {
      const clientId = (resp.result as { clientId: string; blocks: { blockId: unknown }[] })
      const size = (call.args.sizeBytes as number)
      const blocks = clientId.blocks.map((b, i) => ({ blockId: b.blockId, length: i === 0 ? size : 0 }))
      const req: ClientRequest = { ...o.req, seq: ++c.seq, om: { name: 'commitKey', args: { clientId: clientId.clientId, blocks, size } } }
      c.outstanding = { req, op: o.op, deadlineMs: this.nowMs }
      return
    }
    if (resp.error === undefined) this.history[o.op] = { ...op, returnTime: this.nowMs }
    else if (resp.error === 'KEY_NOT_FOUND' && (call.name === 'deleteKey' || call.name === 'renameKey')) this.history[o.op] = { ...op, kind: 'get', value: '', returnTime: this.nowMs }
    else this.dropped.add(o.op)
    c.outstanding = undefined
  }

  // ---- faults ----

  private injectFaults(): void {
    const p = this.prng
    const live = this.nodes.filter((n) => n.raw !== undefined)
    if (live.length > 0 && p.chance(this.crashP)) {
      this.crash(p.pick(live), '')
    }
    const target = this.currentLeader()
    if (target !== undefined && p.chance(this.leaderCrashP)) {
      this.crash(target, 'as leader')
    }
    if (live.length > 0 && p.chance(0.05)) p.pick(live).storage.flushSome(p)
    if (this.pauseP > 0 && live.length > 0 && p.chance(this.pauseP)) {
      // Half the pauses hit the leader: it wakes up deposed, with reads and a backlog of ticks.
      const leaderNow = this.currentLeader()
      const n = leaderNow !== undefined && p.chance(0.5) ? leaderNow : p.pick(live)
      if (n.pausedUntilMs === 0) {
        n.pausedUntilMs = this.nowMs + p.between(5, PAUSE_TICKS_MAX) * MS_PER_TICK
        if (this.options.trace) this.trace(`n${n.id} pauses until ${n.pausedUntilMs}ms`)
      }
    }
    if (this.blocked.size > 0 && this.nowMs >= this.healAtMs) {
      this.blocked.clear()
      this.trace('partition heals')
    }
    if (this.blocked.size === 0 && p.chance(this.partitionP)) {
      // Half the partitions isolate the leader, which keeps taking client proposals it
      // cannot commit: the uncommitted old-term entries of Raft's Figure 8.
      const cut = drawPartition(p, this.nodes.map((n) => n.id), this.currentLeader()?.id)
      this.blocked = cut.blocked
      this.healAtMs = this.nowMs + cut.healInTicks * MS_PER_TICK
      if (this.options.trace) this.trace(`partition ${cut.description} | rest until ${this.healAtMs}ms`)
    }
    const leader = this.currentLeader()
    if (leader !== undefined && p.chance(0.01)) {
      const to = p.pick(leader.raw!.status().confState.voters)
      if (leader.raw!.transferLeadership(to)) this.trace(`n${leader.id} transfers leadership to n${to}`)
      this.drain(leader)
    }
    const stillLeader = this.currentLeader()
    if (stillLeader !== undefined && p.chance(0.01)) this.changeMembership(stillLeader)
  }

  private crash(n: SimNode, when: string): void {
    n.storage.crash(this.prng)
    n.raw = undefined
    n.pausedUntilMs = 0
    n.backlog = []
    n.missedTicks = 0
    n.restartAtMs = this.nowMs + this.prng.between(1, 60) * MS_PER_TICK
    if (this.options.trace) this.trace(`n${n.id} crashes ${when}`)
  }

  private changeMembership(leader: SimNode): void {
    const p = this.prng
    const conf = leader.raw!.status().confState
    const minVoters = this.nodes.length === 5 ? 3 : 2
    const outside = this.nodes.map((n) => n.id).filter((id) => !conf.voters.includes(id))
    let change: { type: 'addNode' | 'addLearner' | 'removeNode'; nodeId: NodeId }
    const deposed = this.deposedLeader()
    if (deposed !== undefined && deposed !== leader && conf.voters.includes(deposed.id) && conf.voters.length > minVoters && p.chance(0.5)) {
      // Remove the old leader while it is cut off: it never hears of its removal.
      change = { type: 'removeNode', nodeId: deposed.id }
    } else if (outside.length > 0 && (conf.voters.length <= minVoters || p.chance(0.6))) {
      const id = p.pick(outside)
      change = { type: conf.learners.includes(id) ? 'addNode' : 'addLearner', nodeId: id }
    } else if (conf.voters.length > minVoters) {
      change = { type: 'removeNode', nodeId: p.pick(conf.voters) }
    } else return
    const r = leader.raw!.proposeMembershipChange(change)
    if (this.options.trace) this.trace(`n${leader.id} proposes ${change.type} n${change.nodeId}: ${r.ok ? `index ${r.index}` : r.reason}`)
    this.drain(leader)
  }

  // ---- invariants ----

  private checkSafety(): void {
    for (const n of this.nodes) {
      const raw = n.raw
      if (raw === undefined) continue
      const s = raw.status()
      if (s.role === 'leader') {
        const prev = this.leaders.get(s.hardState.term)
        if (prev === undefined) {
          this.leaders.set(s.hardState.term, n.id)
          // Leader completeness (Raft §5.4): a new leader holds every entry committed in an
          // earlier term. A leader of an older term may still win an election after a later
          // term committed (two memberships whose majorities share a node that voted in both
          // terms, found by seed 57937); it lacks that later entry and can commit nothing.
          for (let i = raw.firstIndex(); i < this.committedTerms.length; i++) {
            const t = this.committedTerms[i]
            if (t !== undefined && this.committedBy[i] < s.hardState.term && raw.term(i) !== t) this.fail(`leader completeness: n${n.id} leads term ${s.hardState.term} without committed entry ${i} (term ${t})`)
          }
        } else if (prev !== n.id) {
          this.fail(`election safety: n${prev} and n${n.id} both lead term ${s.hardState.term}`)
        }
      }
      for (let i = Math.max(n.checkedCommit + 1, raw.firstIndex()); i <= s.hardState.commit; i++) {
        const t = raw.term(i)
        if (t === undefined) continue
        const seen = this.committedTerms[i]
        if (seen === undefined) {
          this.committedTerms[i] = t
          this.committedBy[i] = s.hardState.term
        } else if (seen !== t) this.fail(`committed entry changed: n${n.id} commits term ${t} at ${i}, term ${seen} was committed there`)
      }
      n.checkedCommit = Math.max(n.checkedCommit, s.hardState.commit)
    }
  }

  /**
   * A leader's match index for a member is a promise: that member acknowledged, in this
   * leader's term, holding the leader's log up to it. While the member is still in that
   * term nothing else can have changed its log below it (storage faults aside), so its
   * entry there has the leader's term. A count of an old term's acknowledgement, or an
   * acknowledgement of entries the follower holds from another leader, breaks this.
   */
  private checkMatchIndexes(): void {
    if (this.options.storageFaults) return
    for (const n of this.nodes) {
      const raw = n.raw
      if (raw === undefined) continue
      const progress = raw.progress()
      if (progress.length === 0) continue
      const term = raw.status().hardState.term
      for (const pr of progress) {
        const f = this.nodes[pr.id - 1]?.raw
        if (pr.id === n.id || f === undefined || pr.match === 0 || f.status().hardState.term !== term) continue
        if (pr.match < f.firstIndex() || pr.match < raw.firstIndex()) continue
        const theirs = f.term(pr.match)
        if (theirs !== raw.term(pr.match)) this.fail(`match index: leader n${n.id} (term ${term}) holds match ${pr.match} for n${pr.id}, whose entry there has term ${theirs ?? 'none'}, the leader's ${raw.term(pr.match) ?? 'none'}`)
      }
    }
  }

  /** Raft §5.3 Log Matching: if two logs hold an entry with the same index and term, they agree up to it. */
  private checkLogMatching(): void {
    const live = this.nodes.filter((n) => n.raw !== undefined)
    for (let x = 0; x < live.length; x++) {
      for (let y = x + 1; y < live.length; y++) {
        const a = live[x].raw!
        const b = live[y].raw!
        // Entries up to a node's commit index were checked against committedTerms in
        // checkSafety, so two logs already agree below the lower of their commit indexes.
        const lo = Math.max(a.firstIndex(), b.firstIndex(), Math.min(live[x].checkedCommit, live[y].checkedCommit))
        const hi = Math.min(a.status().lastIndex, b.status().lastIndex)
        let matched = false
        for (let i = hi; i >= lo; i--) {
          const same = a.term(i) === b.term(i)
          if (same) matched = true
          else if (matched) this.fail(`log matching: n${live[x].id} and n${live[y].id} agree at a later index but differ at ${i}`)
        }
      }
    }
  }
}

/** Shuffles `items` in place (Fisher-Yates) with the simulator's network randomness. */
export function shuffle<T>(prng: Prng, items: T[]): void {
  for (let i = items.length - 1; i > 0; i--) {
    const j = prng.int(i + 1)
    ;[items[i], items[j]] = [items[j], items[i]]
  }
}

/**
 * A random partition of `ids`: half the time the leader alone (if there is one), else a
 * random side; symmetric, or one-way three times in ten. `blocked` holds `from>to` pairs.
 */
export function drawPartition(p: Prng, ids: readonly NodeId[], leader: NodeId | undefined): { blocked: Set<string>; healInTicks: number; description: string } {
  const side = leader !== undefined && p.chance(0.5) ? new Set([leader]) : new Set(ids.filter(() => p.chance(0.5)))
  const oneWay = p.chance(0.3)
  const blocked = new Set<string>()
  for (const a of ids) for (const b of ids) {
    if (side.has(a) && !side.has(b)) {
      blocked.add(`${a}>${b}`)
      if (!oneWay) blocked.add(`${b}>${a}`)
    }
  }
  return { blocked, healInTicks: p.between(5, 100), description: `${oneWay ? 'one-way' : 'symmetric'} [${[...side].join(',')}]` }
}

function describe(m: Message): string {
  switch (m.type) {
    case 'app':
      return `app t${m.term} prev ${m.prevIndex}/${m.prevTerm} n=${m.entries.length} commit ${m.commit}`
    case 'appResp':
      return `appResp t${m.term} index ${m.index}${m.reject ? ` reject hint ${m.hint}` : ''}`
    case 'vote':
      return `${m.pre ? 'preVote' : 'vote'} t${m.term} last ${m.lastIndex}/${m.lastTerm}${m.transfer ? ' transfer' : ''}`
    case 'voteResp':
      return `${m.pre ? 'preVoteResp' : 'voteResp'} t${m.term}${m.reject ? ' reject' : ' grant'}`
    case 'snap':
      return `snap t${m.term} at ${m.snapshot.meta.index}/${m.snapshot.meta.term}`
    default:
      return `${m.type} t${m.term}`
  }
}

/** FNV-1a over a message's fields and payload bytes: the checksum the transport seals a message with. */
export function messageChecksum(m: Message): number {
  let h = 0x811c9dc5
  const mix = (x: number) => {
    h = Math.imul(h ^ (x & 0xffff), 0x01000193)
    h = Math.imul(h ^ (x >>> 16), 0x01000193)
  }
  const bytes = (b: Uint8Array) => {
    mix(b.byteLength)
    for (let i = 0; i < b.byteLength; i++) h = Math.imul(h ^ b[i], 0x01000193)
  }
  const record = m as unknown as Record<string, unknown>
  for (const k in record) {
    const v = record[k]
    if (typeof v === 'number') mix(v)
    else if (typeof v === 'boolean') mix(v ? 1 : 2)
    else if (typeof v === 'string') for (let i = 0; i < v.length; i++) mix(v.charCodeAt(i))
  }
  if (m.type === 'app') {
    for (const e of m.entries) {
      mix(e.index)
      mix(e.term)
      mix(e.type === 'normal' ? 1 : 2)
      bytes(e.data)
    }
  } else if (m.type === 'snap') {
    mix(m.snapshot.meta.index)
    mix(m.snapshot.meta.term)
    bytes(m.snapshot.data)
  }
  return h >>> 0
}

/** A copy of `m` with one bit flipped in a number field or in a payload byte. */
function corrupt(m: Message, prng: Prng): Message {
  const copy = { ...m } as Record<string, unknown>
  if (m.type === 'app' && m.entries.length > 0 && prng.chance(0.5)) {
    const entries = [...m.entries]
    const i = prng.int(entries.length)
    const data = entries[i].data.byteLength === 0 ? new Uint8Array(1) : new Uint8Array(entries[i].data)
    data[prng.int(data.byteLength)] ^= 1 << prng.int(8)
    entries[i] = { ...entries[i], data }
    copy.entries = entries
    return copy as unknown as Message
  }
  const fields = Object.keys(copy).filter((k) => typeof copy[k] === 'number')
  const k = prng.pick(fields)
  copy[k] = (copy[k] as number) ^ (1 << prng.int(8))
  return copy as unknown as Message
}
