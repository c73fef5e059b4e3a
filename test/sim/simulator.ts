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
import { AssertionError } from '../../core/assert.ts'
import type { RawNode as RawNodeClass, Message, NodeId, Restored } from '../../core/raft/index.ts'
import type { bootstrap, joiner } from '../../core/raft/index.ts'
import { KvStore, decodePut, encodePut } from './kv.ts'
import { checkLinearizable, type Operation } from './linearizability.ts'
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
}

export interface SimResult {
  readonly seed: number
  readonly nodes: number
  readonly violations: string[]
  readonly trace: string[]
  readonly ops: number
  readonly commits: number
}

const MS_PER_TICK = 10
const CLIENT_TIMEOUT_MS = 250

type ClientRequest = { readonly kind: 'put' | 'get'; readonly client: number; readonly seq: number; readonly key: string; readonly value: string }
type ClientResponse = { readonly client: number; readonly seq: number; readonly ok: boolean; readonly value: string; readonly leader: NodeId }
type Packet =
  | { readonly kind: 'raft'; readonly msg: Message }
  | { readonly kind: 'request'; readonly to: NodeId; readonly req: ClientRequest }
  | { readonly kind: 'response'; readonly resp: ClientResponse }

interface SimNode {
  readonly id: NodeId
  readonly storage: SimStorage
  raw: RawNodeClass | undefined
  kv: KvStore
  restartAtMs: number
  readonly jitter: Prng
  /** Puts proposed here, answered when applied. */
  pendingPuts: Map<string, ClientRequest>
  /** Gets waiting for their ReadIndex answer, then for the apply index to reach it. */
  pendingReads: Map<string, { req: ClientRequest; index: number | undefined; sinceMs: number }>
  readCounter: number
  checkedCommit: number
}

interface SimClient {
  readonly id: number
  seq: number
  leaderHint: NodeId
  outstanding: { req: ClientRequest; op: number; deadlineMs: number } | undefined
}

class Violation extends Error {}

export function runSimulation(options: SimOptions): SimResult {
  const sim = new Simulation(options)
  try {
    sim.run()
  } catch (err) {
    if (err instanceof Violation) sim.violations.push(err.message)
    else if (err instanceof AssertionError || (err instanceof Error && err.name === 'AssertionError')) sim.violations.push(`assertion: ${err.message}`)
    else throw err
  }
  return { seed: options.seed, nodes: options.nodes, violations: sim.violations, trace: sim.traceLines, ops: sim.history.length, commits: sim.committedTerms.length }
}

class Simulation {
  readonly violations: string[] = []
  readonly traceLines: string[] = []
  readonly history: Operation[] = []
  /** Term of the committed entry at each index, as first seen committed anywhere. */
  readonly committedTerms: number[] = []
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
  /** Blocked directed links `from>to`, and when they heal. */
  private blocked = new Set<string>()
  private healAtMs = 0

  constructor(private readonly options: SimOptions) {
    this.prng = new Prng(options.seed)
    this.net = this.prng.fork()
    const p = this.prng
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
    this.nodeConfig = { inflightCountMax, appendEntriesCountMax, preVote: p.chance(0.75), checkQuorum: p.chance(0.75) }
    // Half the 5-node seeds found the group with 3 voters; nodes 4 and 5 start empty and
    // join through membership changes (they learn the membership from a snapshot).
    const joiners = options.nodes === 5 && p.chance(0.5)
    const all = Array.from({ length: options.nodes }, (_, i) => i + 1)
    const voters = joiners ? [1, 2, 3] : all
    for (const id of all) {
      const jitter = p.fork()
      const node: SimNode = {
        id, storage: new SimStorage(voters.includes(id) ? options.raft.bootstrap({ voters, learners: [] }) : options.raft.joiner()), raw: undefined, kv: new KvStore(), restartAtMs: 0,
        jitter, pendingPuts: new Map(), pendingReads: new Map(), readCounter: 0, checkedCommit: 0,
      }
      this.nodes.push(node)
      this.start(node)
    }
    const clientCount = p.between(1, 4)
    for (let i = 1; i <= clientCount; i++) this.clients.push({ id: i, seq: 0, leaderHint: 0, outstanding: undefined })
    this.trace(`seed ${options.seed}: ${options.nodes} nodes loss ${this.lossP} dup ${this.dupP} delay<=${this.delayMaxMs}ms crash ${this.crashP} leaderCrash ${this.leaderCrashP} midReadyCrash ${this.midReadyCrashP} newLeaderCrash ${this.newLeaderCrashP} partition ${this.partitionP} snapshotEvery ${this.snapshotEvery} inflight ${inflightCountMax} batch ${appendEntriesCountMax} preVote ${this.nodeConfig.preVote} checkQuorum ${this.nodeConfig.checkQuorum} clients ${clientCount} keys ${this.keys.length}${joiners ? ' joiners 4,5' : ''}`)
  }

  private readonly nodeConfig: { inflightCountMax: number; appendEntriesCountMax: number; preVote: boolean; checkQuorum: boolean }

  private trace(line: string): void {
    if (this.options.trace) this.traceLines.push(`${this.nowMs}ms ${line}`)
  }

  private fail(message: string): never {
    this.trace(`VIOLATION ${message}`)
    throw new Violation(message)
  }

  private start(node: SimNode): void {
    const restored: Restored = node.storage.restore()
    node.raw = new this.options.raft.RawNode({
      id: node.id, randomInt: (n) => node.jitter.int(n), electionTimeoutTicks: 10, heartbeatTimeoutTicks: 2,
      ...this.nodeConfig,
    }, restored)
    node.kv = KvStore.restore(restored.snapshot.data, restored.snapshot.meta.index)
    node.pendingPuts = new Map()
    node.pendingReads = new Map()
    node.checkedCommit = restored.snapshot.meta.index
  }

  run(): void {
    const faultMs = (this.options.faultTicks ?? 3000) * MS_PER_TICK
    const livenessMs = (this.options.livenessTicks ?? 200) * MS_PER_TICK
    for (; this.nowMs < faultMs; this.nowMs++) this.step()
    this.heal()
    const deadline = this.nowMs + livenessMs
    for (; this.nowMs < deadline && !this.quiet(); this.nowMs++) this.step()
    if (!this.quiet()) {
      const open = this.clients.filter((c) => c.outstanding).map((c) => `client ${c.id} seq ${c.seq}`)
      const lagging = this.nodes.filter((n) => n.raw !== undefined).map((n) => `n${n.id} applied ${n.raw!.status().applied}/${n.raw!.status().lastIndex}`)
      this.fail(`liveness: ${livenessMs / MS_PER_TICK} ticks after faults stopped, leader ${this.currentLeader()?.id ?? 'none'}, unfinished: ${open.join(', ') || 'none'}; ${lagging.join(', ')}`)
    }
    const bad = checkLinearizable(this.history)
    if (bad.length > 0) this.fail(`linearizability: history of key(s) ${bad.join(', ')} is not linearizable`)
  }

  /** Liveness: a leader, no unfinished request, and every member has applied the leader's whole log. */
  private quiet(): boolean {
    const leader = this.currentLeader()
    if (leader === undefined || this.clients.some((c) => c.outstanding !== undefined)) return false
    const s = leader.raw!.status()
    return [...s.confState.voters, ...s.confState.learners].every((id) => (this.nodes[id - 1].raw?.status().applied ?? 0) >= s.lastIndex)
  }

  private currentLeader(): SimNode | undefined {
    return this.nodes.find((n) => n.raw?.status().role === 'leader')
  }

  private heal(): void {
    this.faulty = false
    this.blocked.clear()
    this.trace('faults stop: partitions healed, crashed nodes restart, no loss')
    for (const n of this.nodes) {
      if (n.raw === undefined) {
        this.start(n)
        this.trace(`n${n.id} restarts`)
      }
    }
  }

  private step(): void {
    const due = this.inflight.get(this.nowMs)
    if (due !== undefined) {
      this.inflight.delete(this.nowMs)
      for (let i = due.length - 1; i > 0; i--) {
        const j = this.net.int(i + 1)
        ;[due[i], due[j]] = [due[j], due[i]]
      }
      for (const p of due) this.deliver(p)
    }
    if (this.nowMs % MS_PER_TICK === 0) {
      if (this.faulty) this.injectFaults()
      for (const n of this.nodes) {
        if (n.raw === undefined && this.faulty && this.nowMs >= n.restartAtMs) {
          this.start(n)
          this.trace(`n${n.id} restarts at term ${n.raw!.status().hardState.term}`)
        }
        if (n.raw === undefined) continue
        n.raw.tick()
        this.drain(n)
      }
      this.tickClients()
    }
    // Every step that changed anything is checked (a step with no delivery and no tick changes nothing).
    if (due !== undefined || this.nowMs % MS_PER_TICK === 0) {
      this.checkSafety()
      this.checkLogMatching()
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
      const long = this.faulty && this.net.chance(0.05)
      const delay = 1 + this.net.int(this.faulty ? (long ? this.delayMaxMs * 5 : this.delayMaxMs) : 5)
      const at = this.nowMs + delay
      let bucket = this.inflight.get(at)
      if (bucket === undefined) this.inflight.set(at, (bucket = []))
      bucket.push(p)
    }
  }

  private deliver(p: Packet): void {
    switch (p.kind) {
      case 'raft': {
        const n = this.nodes[p.msg.to - 1]
        if (n?.raw === undefined) return
        if (this.faulty && this.blocked.has(`${p.msg.from}>${p.msg.to}`)) return
        if (this.options.trace) this.trace(`n${p.msg.to} <- n${p.msg.from} ${describe(p.msg)}`)
        n.raw.step(p.msg)
        this.drain(n)
        break
      }
      case 'request': {
        const n = this.nodes[p.to - 1]
        if (n.raw === undefined) return
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
      if (rd.softState !== undefined) this.trace(`n${n.id} is ${rd.softState.role}, leader ${rd.softState.leader}, term ${raw.status().hardState.term}`)
      const newLeader = rd.softState?.role === 'leader'
      if (this.faulty && this.prng.chance(newLeader ? this.newLeaderCrashP : this.midReadyCrashP)) {
        this.crash(n, 'before sending its Ready')
        return
      }
      for (const m of rd.messages) this.send({ kind: 'raft', msg: m }, m.from, m.to)
      if (rd.snapshot !== undefined) {
        n.kv = KvStore.restore(rd.snapshot.data, rd.snapshot.meta.index)
        this.trace(`n${n.id} installs snapshot at ${rd.snapshot.meta.index}`)
      }
      for (const e of rd.committedEntries) {
        const fingerprint = `${e.term}:${e.type}:${new TextDecoder().decode(e.data)}`
        const seen = this.appliedData[e.index]
        if (seen === undefined) this.appliedData[e.index] = fingerprint
        else if (seen !== fingerprint) this.fail(`state machine safety: n${n.id} applies ${fingerprint} at ${e.index}, another node applied ${seen}`)
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
        if (r.index !== undefined && n.kv.applied >= r.index) {
          n.pendingReads.delete(ctx)
          this.respond(n, { client: r.req.client, seq: r.req.seq, ok: true, value: n.kv.get(r.req.key), leader: n.id })
        }
      }
      raw.advance(rd)
      if (n.kv.applied - raw.firstIndex() + 1 >= this.snapshotEvery) {
        const snapshot = raw.compact(n.kv.snapshot())
        n.storage.write({ kind: 'compact', snapshot })
        this.trace(`n${n.id} compacts to ${snapshot.meta.index}`)
      }
    }
  }

  // ---- clients ----

  private handleRequest(n: SimNode, req: ClientRequest): void {
    const raw = n.raw!
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
    const op = this.history[o.op]
    this.history[o.op] = { ...op, value: o.req.kind === 'get' ? resp.value : op.value, returnTime: this.nowMs }
    this.trace(`client ${c.id} ${o.req.kind} ${o.req.key} = ${this.history[o.op].value} done`)
    c.outstanding = undefined
  }

  private tickClients(): void {
    for (const c of this.clients) {
      if (c.outstanding === undefined) {
        if (!this.faulty || !this.prng.chance(this.opP)) continue
        const kind = this.prng.chance(0.5) ? 'put' : 'get'
        const key = this.prng.pick(this.keys)
        const req: ClientRequest = { kind, client: c.id, seq: ++c.seq, key, value: kind === 'put' ? `${c.id}.${c.seq}` : '' }
        this.history.push({ client: c.id, key, kind, value: req.value, callTime: this.nowMs, returnTime: Infinity })
        c.outstanding = { req, op: this.history.length - 1, deadlineMs: this.nowMs }
      }
      const o = c.outstanding
      if (this.nowMs < o.deadlineMs) continue
      const to = c.leaderHint !== 0 && this.prng.chance(0.8) ? c.leaderHint : this.prng.between(1, this.nodes.length)
      c.leaderHint = 0
      o.deadlineMs = this.nowMs + CLIENT_TIMEOUT_MS
      this.trace(`client ${c.id} -> n${to} ${o.req.kind} ${o.req.key} ${o.req.value} seq ${o.req.seq}`)
      this.send({ kind: 'request', to, req: o.req }, 'client', to)
    }
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
    if (this.blocked.size > 0 && this.nowMs >= this.healAtMs) {
      this.blocked.clear()
      this.trace('partition heals')
    }
    if (this.blocked.size === 0 && p.chance(this.partitionP)) {
      const ids = this.nodes.map((n) => n.id)
      // Half the partitions isolate the leader, which keeps taking client proposals it
      // cannot commit: the uncommitted old-term entries of Raft's Figure 8.
      const leaderNow = this.currentLeader()
      const side = leaderNow !== undefined && p.chance(0.5) ? new Set([leaderNow.id]) : new Set(ids.filter(() => p.chance(0.5)))
      const oneWay = p.chance(0.3)
      for (const a of ids) for (const b of ids) {
        if (side.has(a) && !side.has(b)) {
          this.blocked.add(`${a}>${b}`)
          if (!oneWay) this.blocked.add(`${b}>${a}`)
        }
      }
      this.healAtMs = this.nowMs + p.between(5, 100) * MS_PER_TICK
      this.trace(`partition ${oneWay ? 'one-way' : 'symmetric'} [${[...side].join(',')}] | rest until ${this.healAtMs}ms`)
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
    n.restartAtMs = this.nowMs + this.prng.between(1, 60) * MS_PER_TICK
    this.trace(`n${n.id} crashes ${when}`)
  }

  private changeMembership(leader: SimNode): void {
    const p = this.prng
    const conf = leader.raw!.status().confState
    const minVoters = this.nodes.length === 5 ? 3 : 2
    const outside = this.nodes.map((n) => n.id).filter((id) => !conf.voters.includes(id))
    let change: { type: 'addNode' | 'addLearner' | 'removeNode'; nodeId: NodeId }
    if (outside.length > 0 && (conf.voters.length <= minVoters || p.chance(0.6))) {
      const id = p.pick(outside)
      change = { type: conf.learners.includes(id) ? 'addNode' : 'addLearner', nodeId: id }
    } else if (conf.voters.length > minVoters) {
      change = { type: 'removeNode', nodeId: p.pick(conf.voters) }
    } else return
    const r = leader.raw!.proposeMembershipChange(change)
    this.trace(`n${leader.id} proposes ${change.type} n${change.nodeId}: ${r.ok ? `index ${r.index}` : r.reason}`)
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
          // Leader completeness (Raft §5.4): a new leader holds every committed entry.
          for (let i = raw.firstIndex(); i < this.committedTerms.length; i++) {
            const t = this.committedTerms[i]
            if (t !== undefined && raw.term(i) !== t) this.fail(`leader completeness: n${n.id} leads term ${s.hardState.term} without committed entry ${i} (term ${t})`)
          }
        } else if (prev !== n.id) {
          this.fail(`election safety: n${prev} and n${n.id} both lead term ${s.hardState.term}`)
        }
      }
      for (let i = Math.max(n.checkedCommit + 1, raw.firstIndex()); i <= s.hardState.commit; i++) {
        const t = raw.term(i)
        if (t === undefined) continue
        const seen = this.committedTerms[i]
        if (seen === undefined) this.committedTerms[i] = t
        else if (seen !== t) this.fail(`committed entry changed: n${n.id} commits term ${t} at ${i}, term ${seen} was committed there`)
      }
      n.checkedCommit = Math.max(n.checkedCommit, s.hardState.commit)
    }
  }

  /** Raft §5.3 Log Matching: if two logs hold an entry with the same index and term, they agree up to it. */
  private checkLogMatching(): void {
    const live = this.nodes.filter((n) => n.raw !== undefined)
    for (let x = 0; x < live.length; x++) {
      for (let y = x + 1; y < live.length; y++) {
        const a = live[x].raw!
        const b = live[y].raw!
        const lo = Math.max(a.firstIndex(), b.firstIndex())
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
