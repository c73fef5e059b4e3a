/** @module
 * A control-plane service replicated by Raft (issue 11, Ozone's OM and SCM HA): each
 * mutating request is split in two, `prepare` on the leader (validates, reads the clock,
 * draws ids, may call out) and `apply` on every replica (pure: the LMDB transaction and the
 * prepared payload in, the answer out). Retried calls apply once (a bounded retry cache in
 * the same database); reads are linearizable (ReadIndex on the leader); a follower answers
 * NOT_LEADER with the leader's service address.
 */
import { existsSync } from 'node:fs'
import { join } from 'node:path'
import type { RootDatabase } from 'lmdb'
import { assert } from '../../core/assert.ts'
import { openMetadataDb } from '../../core/metadata-db.ts'
import { O3Error } from '../../core/errors.ts'
import { RaftHost, type RaftHostOptions } from '../../core/raft-io/index.ts'
import { LmdbStateMachine, type Applied } from '../../core/raft-io/state-db.ts'
import type { ServiceMetrics } from '../../core/metrics.ts'
import type { NodeId } from '../../core/raft/index.ts'
import { parseGroup, selfIn } from './nodes.ts'
import { RetryCache, type CallerId } from './retry-cache.ts'

export { checkCaller, type CallerId } from './retry-cache.ts'

/** One kind of mutating request: its name on the log, what the leader decides, what every replica does. */
export interface ReplicatedRequest<Args, Payload, Result> {
  readonly name: string
  /**
   * Leader only, before the entry exists: validate `args` and decide every value apply
   * needs (time, ids, secrets, blocks from another service). May read `db` (a hint only:
   * apply re-checks what it relies on) and do I/O. Returns the entry's payload (JSON).
   */
  prepare(args: Args, db: RootDatabase): Payload | Promise<Payload>
  /** Every replica, inside the entry's transaction: no clock, no randomness, no I/O but `db`. A throw rolls back. */
  apply(db: RootDatabase, payload: Payload, at: Applied): Result
}

// Any request, whatever its types: the registry holds them side by side.
// eslint-disable-next-line @typescript-eslint/no-explicit-any
type AnyRequest = ReplicatedRequest<any, any, any>

interface LogEntry {
  /** Request name. */
  readonly r: string
  readonly p: unknown
  /** With a caller: who made the call, and the leader's clock when it prepared it (retry cache eviction). */
  readonly caller?: CallerId
  readonly t?: number
}

export interface ReplicatedServiceOptions {
  readonly id: NodeId
  /** Folder of this node's Raft log (`raft/`) and state database (`state/`). */
  readonly dir: string
  /** Voters of a new group (ignored once the node has state). */
  readonly voters: readonly NodeId[]
  /** Each member's service address (host:port of its RPC server), for NOT_LEADER answers. */
  readonly serviceAddresses: ReadonlyMap<NodeId, string>
  readonly requests: readonly AnyRequest[]
  /** Opens the state database (the service's durability settings). */
  readonly open: (path: string) => RootDatabase
  /** Called whenever the state database is opened anew: open the service's tables. */
  readonly opened: (db: RootDatabase) => void
  /** Raft port, timings and snapshot interval (RaftHostOptions). */
  readonly raft?: Pick<RaftHostOptions, 'host' | 'port' | 'tickMs' | 'electionTimeoutTicks' | 'heartbeatTimeoutTicks' | 'snapshotEveryEntries' | 'distrustFsync' | 'sync'>
}

export class ReplicatedService {
  private constructor(
    private readonly options: ReplicatedServiceOptions,
    private readonly requests: ReadonlyMap<string, AnyRequest>,
    readonly state: LmdbStateMachine,
    readonly raft: RaftHost,
    private readonly retries: RetryCache,
  ) {}

  static async create(options: ReplicatedServiceOptions): Promise<ReplicatedService> {
    const requests = new Map<string, AnyRequest>()
    for (const r of options.requests) {
      assert(!requests.has(r.name), `request ${r.name} is registered once`)
      requests.set(r.name, r)
    }
    const retries = new RetryCache()
    const state = new LmdbStateMachine({
      dir: `${options.dir}/state`,
      open: options.open,
      opened: (db) => {
        retries.open(db)
        options.opened(db)
      },
      apply: (db, data, at) => {
        const entry = JSON.parse(new TextDecoder().decode(data)) as LogEntry
        const request = requests.get(entry.r)
        assert(request !== undefined, `request ${entry.r} is known to every replica`)
        if (entry.caller === undefined) return request.apply(db, entry.p, at)
        return retries.applyOnce(entry.caller, at, entry.t ?? 0, () => request.apply(db, entry.p, at))
      },
    })
    const raft = await RaftHost.create({ id: options.id, dir: `${options.dir}/raft`, voters: options.voters, stateMachine: state, ...options.raft })
    return new ReplicatedService(options, requests, state, raft, retries)
  }

  /** Starts Raft once every member's Raft URL is known. */
  start(raftUrls: ReadonlyMap<NodeId, string>): void {
    this.raft.start(raftUrls)
  }

  get db(): RootDatabase {
    return this.state.db
  }

  isLeader(): boolean {
    return this.raft.isLeader()
  }

  /** Throws NOT_LEADER (naming the leader's address) unless this node leads. */
  requireLeader(what: string): void {
    if (!this.isLeader()) throw this.notLeader(what)
  }

  private notLeader(what: string): O3Error {
    const leader = this.raft.status().leader
    return new O3Error('NOT_LEADER', `Cannot ${what} at node ${this.options.id}: not the leader${leader === 0 ? ' (none known)' : ` (node ${leader})`}`, {
      leader: this.options.serviceAddresses.get(leader),
    })
  }

  /**
   * Runs request `name` on the leader: prepare, replicate, apply; resolves with apply's
   * answer. With `caller`, a call retried (after a timeout, across a failover) returns the
   * first answer and applies nothing again.
   */
  async submit(name: string, args: unknown, caller?: CallerId): Promise<unknown> {
    const request = this.requests.get(name)
    if (request === undefined) throw new O3Error('INVALID_ARGUMENT', `Cannot submit ${name}: no such request`)
    if (!this.isLeader()) throw this.notLeader(name)
    if (caller !== undefined) {
      const seen = this.retries.answer(caller)
      if (seen !== undefined) return seen.result
    }
    const payload = await request.prepare(args, this.db)
    const entry: LogEntry = caller === undefined ? { r: name, p: payload } : { r: name, p: payload, caller, t: Date.now() }
    this.proposals?.inc()
    try {
      return await this.raft.propose(new TextEncoder().encode(JSON.stringify(entry)))
    } catch (err) {
      if (err instanceof O3Error && err.code === 'NOT_LEADER') throw this.notLeader(name)
      throw err
    }
  }

  /** This node's place in the group (`o3 admin scm roles`): role, leader, term, commit and applied index. */
  role(): { id: NodeId; address: string | undefined; role: string; leader: NodeId; term: number; commit: number; applied: number; members: NodeId[] } {
    const s = this.raft.status()
    return {
      id: this.options.id, address: this.options.serviceAddresses.get(this.options.id), role: s.role.toUpperCase(), leader: s.leader,
      term: s.hardState.term, commit: s.hardState.commit, applied: s.applied, members: [...s.confState.voters, ...s.confState.learners],
    }
  }

  /** Exports the node's Raft state on the service's /prom: term, leadership, commit and applied index, proposals. */
  exportMetrics(metrics: ServiceMetrics): void {
    this.proposals = metrics.counter('raft_proposals_total', 'Raft entries this node proposed as leader')
    metrics.gauge('raft_term', 'Raft term', () => this.raft.term())
    metrics.gauge('raft_leader', '1 while this node leads its Raft group', () => (this.isLeader() ? 1 : 0))
    metrics.gauge('raft_commit_index', 'Raft commit index', () => this.raft.status().hardState.commit)
    metrics.gauge('raft_applied_index', 'Raft applied index', () => this.raft.status().applied)
  }

  private proposals: { inc(): void } | undefined

  /** A linearizable read: on the leader, once its state holds every write acknowledged before the call. */
  async read<T>(what: string, run: (db: RootDatabase) => T): Promise<T> {
    if (!this.isLeader()) throw this.notLeader(what)
    // In a group of one, every acknowledged write is applied here already: no round to wait for.
    if (this.raft.voterCount() === 1) return run(this.db)
    try {
      await this.raft.readBarrier()
    } catch (err) {
      if (err instanceof O3Error && err.code === 'NOT_LEADER') throw this.notLeader(what)
      throw err
    }
    return run(this.db)
  }

  /** Stops Raft, then closes the state. Idempotent: a second call (a service stopped twice) waits for the first. */
  stop(): Promise<void> {
    this.stopping ??= (async () => {
      await this.raft.stop()
      await this.state.close()
    })()
    return this.stopping
  }

  private stopping: Promise<void> | undefined
}

/** What a service (the OM, the SCM) says about its group when it starts one. */
export interface ServiceGroupOptions {
  /** OM or SCM, for messages; `prefix` names its settings (`om.nodes`, `om.id`). */
  readonly service: string
  readonly prefix: 'om' | 'scm'
  /** The service's folder; the group keeps `ha/raft` and `ha/state` in it. */
  readonly dir: string
  /** The file the service kept its state in before Raft: refused, not migrated. */
  readonly legacyDb: string
  readonly nodes: string
  readonly id: string
  /** Where this node listens when it is a group of one (no `nodes`). */
  readonly host: string
  readonly raftPort: number
  /** Sync the Raft log on each write (db.sync 1). */
  readonly sync: boolean
  readonly requests: readonly AnyRequest[]
  readonly opened: (db: RootDatabase) => void
}

/** How long a starting service waits for its group to elect a leader. */
const LEADER_WAIT_MS = 30_000

/**
 * Starts a service's Raft group from its settings: `<prefix>.nodes` names the members, or
 * the node is a group of one (the same code path). Waits until a leader is known. Answers
 * the group and, for a member of a named group, the RPC port its entry gives it.
 */
export async function startServiceGroup(o: ServiceGroupOptions): Promise<{ ha: ReplicatedService; rpcPort: number | undefined }> {
  if (existsSync(join(o.dir, o.legacyDb))) {
    throw new O3Error('INVALID_ARGUMENT', `Cannot start ${o.service}: ${join(o.dir, o.legacyDb)} is the state of an O3 from before Raft, which this version does not read; move it away or use a fresh ${o.prefix}.dir`)
  }
  const members = parseGroup(`${o.prefix}.nodes`, o.nodes)
  const self = members.length === 0 ? undefined : selfIn(members, `${o.prefix}.id`, o.id)
  const [raftHost, raftPort] = self === undefined ? [o.host, o.raftPort] : [self.raftAddress.split(':')[0], Number(self.raftAddress.split(':')[1])]
  const ha = await ReplicatedService.create({
    id: self?.id ?? 1, dir: join(o.dir, 'ha'), voters: self === undefined ? [1] : members.map((n) => n.id),
    serviceAddresses: new Map(members.map((n) => [n.id, n.address])), requests: o.requests,
    // The Raft log is the write-ahead log (synced per db.sync); the state it feeds is replayed
    // from it after a crash, so the state's own commits need no fsync on the event loop.
    open: (path) => openMetadataDb(path, { 'db.sync': 0 }),
    opened: o.opened,
    raft: { host: raftHost, port: raftPort, tickMs: 10, electionTimeoutTicks: 10, heartbeatTimeoutTicks: 2, sync: o.sync },
  })
  ha.start(self === undefined ? new Map([[1, `http://127.0.0.1:${ha.raft.port}`]]) : new Map(members.map((n) => [n.id, `http://${n.raftAddress}`])))
  const deadline = Date.now() + LEADER_WAIT_MS
  while (ha.raft.status().leader === 0) {
    if (Date.now() > deadline) throw new O3Error('UNAVAILABLE', `Cannot start ${o.service}: no Raft leader within ${LEADER_WAIT_MS} ms`)
    await new Promise((r) => setTimeout(r, 10))
  }
  return { ha, rpcPort: self === undefined ? undefined : Number(self.address.split(':')[1]) }
}
