/** @module
 * A control-plane service replicated by Raft (issue 11, Ozone's OM and SCM HA): each
 * mutating request is split in two, `prepare` on the leader (validates, reads the clock,
 * draws ids, may call out) and `apply` on every replica (pure: the LMDB transaction and the
 * prepared payload in, the answer out). Retried calls apply once (a bounded retry cache in
 * the same database); reads are linearizable (ReadIndex on the leader); a follower answers
 * NOT_LEADER with the leader's service address. Starting a group from its settings, or
 * joining a running one (the members' addresses are replicated: members.ts).
 */
import { existsSync, mkdirSync } from 'node:fs'
import { join } from 'node:path'
import type { RootDatabase } from 'lmdb'
import { assert } from '../../core/assert.ts'
import { openMetadataDb } from '../../core/metadata-db.ts'
import { O3Error } from '../../core/errors.ts'
import { RaftHost, type RaftHostOptions, type RaftSecurity } from '../../core/raft-io/index.ts'
import { LmdbStateMachine, type Applied } from '../../core/raft-io/state-db.ts'
import type { ServiceMetrics } from '../../core/metrics.ts'
import type { Message, NodeId } from '../../core/raft/index.ts'
import { log } from '../../core/log.ts'
import { RpcClient } from '../../core/rpc/client.ts'
import { PLAIN_TRANSPORT } from '../../core/rpc/transport.ts'
import { peerIdentity, requireRole, serviceCaller } from '../../core/security/caller.ts'
import type { ServiceIdentity } from '../../core/security/identity.ts'
import type { ServiceRole } from '../../core/security/service-identity.ts'
import type { Context } from 'hono'
import { GROUP_JOIN_WAIT_MS } from './limits.ts'
import { openMembersTable, readIdentity, recordedMembers, setMembersRequest, writeIdentity, type Identity, type MemberRecord } from './members.ts'
import { parseGroup, selfIn, type GroupMember } from './nodes.ts'
import { RetryCache, type CallerId } from './retry-cache.ts'

export { checkCaller, RetryCache, type CallerId } from './retry-cache.ts'

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
export type AnyRequest = ReplicatedRequest<any, any, any>

interface LogEntry {
  /** Request name. */
  readonly r: string
  readonly p: unknown
  /** With a caller: who made the call, and the leader's clock when it prepared it (retry cache eviction). */
  readonly caller?: CallerId
  readonly t?: number
}

/** A log entry's bytes: the request, its prepared payload and, with a caller, the leader's clock `nowMs`. */
export function encodeEntry(name: string, payload: unknown, caller: CallerId | undefined, nowMs: number): Uint8Array {
  const entry: LogEntry = caller === undefined ? { r: name, p: payload } : { r: name, p: payload, caller, t: nowMs }
  return new TextEncoder().encode(JSON.stringify(entry))
}

/**
 * Every replica, inside the entry's transaction: runs the entry's request through the retry
 * cache. Exported for the simulator (test/sim/om.ts), which drives this same path under Raft.
 */
export function applyEntry(requests: ReadonlyMap<string, AnyRequest>, retries: RetryCache, db: RootDatabase, data: Uint8Array, at: Applied): unknown {
  const entry = JSON.parse(new TextDecoder().decode(data)) as LogEntry
  const request = requests.get(entry.r)
  assert(request !== undefined, `request ${entry.r} is known to every replica`)
  const apply = () => {
    try {
      return request.apply(db, entry.p, at)
    } catch (err) {
      // A key over LMDB's size limit fails alike on every replica (it depends on the entry
      // alone): a refusal, not this node's failure, which would stop it at every replay.
      // Each request's prepare bounds what it takes; this is the net under a bound missed.
      if (isKeyTooLarge(err)) throw new O3Error('INVALID_ARGUMENT', `Cannot ${entry.r}: a name or id is longer than the database takes`)
      throw err
    }
  }
  if (entry.caller === undefined) return apply()
  return retries.applyOnce(entry.caller, at, entry.t ?? 0, apply)
}

/** lmdb-js's refusal of a key past its size limit (a write's, and a read's). */
function isKeyTooLarge(err: unknown): boolean {
  return err instanceof Error && (err.message.startsWith('Key size is larger than the maximum key size') || (err instanceof RangeError && err.message === 'String does not fit in target buffer'))
}

/** Every replica, when an entry's apply refused it: a call's refusal is its answer in the retry cache. */
export function refuseEntry(retries: RetryCache, data: Uint8Array, at: Applied, err: O3Error): void {
  const entry = JSON.parse(new TextDecoder().decode(data)) as LogEntry
  if (entry.caller !== undefined) retries.refused(entry.caller, at, entry.t ?? 0, err)
}

export interface ReplicatedServiceOptions {
  readonly id: NodeId
  /** Folder of this node's Raft log (`raft/`) and state database (`state/`). */
  readonly dir: string
  /** Voters of a new group (ignored once the node has state). */
  readonly voters: readonly NodeId[]
  /** Each member's service address (host:port of its RPC server), for NOT_LEADER answers. */
  readonly serviceAddresses: ReadonlyMap<NodeId, string>
  /**
   * The members known at start, with names and Raft addresses (from the settings, or what a
   * joiner learned); the replicated address book (members.ts) adds to them and wins.
   */
  readonly members?: readonly MemberRecord[]
  readonly requests: readonly AnyRequest[]
  /** Opens the state database (the service's durability settings). */
  readonly open: (path: string) => RootDatabase
  /** Called whenever the state database is opened anew: open the service's tables. */
  readonly opened: (db: RootDatabase) => void
  /** Raft port, timings and snapshot interval (RaftHostOptions); with security, its transport, TLS and peer check. */
  readonly raft?: Pick<RaftHostOptions, 'name' | 'host' | 'port' | 'tickMs' | 'electionTimeoutTicks' | 'heartbeatTimeoutTicks' | 'snapshotEveryEntries' | 'distrustFsync' | 'sync' | 'transport' | 'tls' | 'accept' | 'securityAtStart'>
}

/**
 * What a Raft node of a secure group needs (security.enabled): messages and checkpoints sent
 * through the member's identity, its Raft port serving HTTPS with that identity, and only
 * members of the group's role (an om for the OM group, an scm for the SCM's) let in.
 */
export function raftSecurity(identity: ServiceIdentity, role: ServiceRole, group: string, nameOf: (id: NodeId) => string | undefined): RaftSecurity {
  return {
    transport: identity.transport(),
    tls: identity.serverTls(),
    accept: (c: Context) => requireRole({ caller: serviceCaller(c) }, [role], `reach the ${group} group's Raft port`),
    // Any member's certificate opens the port; each message must come from the member it names,
    // or one member (or anyone enrolled with the role) could speak as the leader.
    senders: (c: Context, messages: readonly Message[]) => {
      const peer = peerIdentity(c)
      for (const m of messages) {
        if (peer === undefined || nameOf(m.from) !== peer.id) throw new O3Error('PERMISSION_DENIED', `Cannot deliver a ${group} Raft message from member ${m.from}: the caller's certificate names ${peer?.id ?? 'nobody'}, not that member`)
      }
    },
  }
}

export class ReplicatedService {
  /** Every member this node has heard of, by Raft id: the settings', then the replicated book's. */
  private readonly book = new Map<NodeId, MemberRecord>()

  private constructor(
    private readonly options: ReplicatedServiceOptions,
    private readonly requests: ReadonlyMap<string, AnyRequest>,
    readonly state: LmdbStateMachine,
    readonly raft: RaftHost,
    private readonly retries: RetryCache,
    private readonly membersTable: () => ReturnType<typeof openMembersTable>,
  ) {
    for (const [id, address] of options.serviceAddresses) this.book.set(id, { id, name: `n${id}`, address, raftAddress: '' })
    for (const m of options.members ?? []) this.book.set(m.id, m)
    this.learn(recordedMembers(membersTable()))
  }

  static async create(options: ReplicatedServiceOptions): Promise<ReplicatedService> {
    const requests = new Map<string, AnyRequest>()
    let service: ReplicatedService | undefined
    let members: ReturnType<typeof openMembersTable> | undefined
    const membersTable = () => {
      assert(members !== undefined, 'the members table is open')
      return members
    }
    for (const r of [...options.requests, setMembersRequest(membersTable, (records) => service?.learn(records))]) {
      assert(!requests.has(r.name), `request ${r.name} is registered once`)
      requests.set(r.name, r)
    }
    const retries = new RetryCache()
    const state = new LmdbStateMachine({
      dir: `${options.dir}/state`,
      open: options.open,
      opened: (db) => {
        retries.open(db)
        members = openMembersTable(db)
        options.opened(db)
        // A snapshot installed: its book may name members we have not heard of.
        service?.learn(recordedMembers(members))
      },
      apply: (db, data, at) => applyEntry(requests, retries, db, data, at),
      refused: (_db, data, at, err) => refuseEntry(retries, data, at, err),
      transport: options.raft?.transport,
    })
    const raft = await RaftHost.create({ id: options.id, dir: `${options.dir}/raft`, voters: options.voters, stateMachine: state, ...options.raft })
    service = new ReplicatedService(options, requests, state, raft, retries, membersTable)
    return service
  }

  /** Starts Raft once every member's Raft URL is known (the replicated book's win over `raftUrls`). */
  start(raftUrls: ReadonlyMap<NodeId, string>): void {
    this.raft.start(raftUrls)
    this.learn(this.recordedMembers())
  }

  /** Records members' names and addresses, and points Raft at them. */
  private learn(records: readonly MemberRecord[]): void {
    for (const r of records) {
      this.book.set(r.id, r)
      if (r.raftAddress !== '') this.raft.setPeer(r.id, `${this.scheme}://${r.raftAddress}`)
    }
  }

  /** What the service's /health adds: DOWN (503) once its Raft node stopped after a failure, which only a restart clears. */
  health(): { status?: 'DOWN'; reason?: string } {
    return this.raft.failed ? { status: 'DOWN', reason: `raft node ${this.id} stopped after a failure (see the log); restart the service` } : {}
  }

  get id(): NodeId {
    return this.options.id
  }

  /** http, or https for a secure group (its Raft URLs). */
  get scheme(): string {
    return this.raft.scheme
  }

  /**
   * Secures a member that started plain (an SCM before its group's CA existed): Raft over
   * mutual TLS with `identity` from now on, only members of `role` let in (RaftHost.secure).
   */
  async secure(identity: ServiceIdentity, role: ServiceRole, group: string, options: { closed?: boolean } = {}): Promise<void> {
    const security = raftSecurity(identity, role, group, (id) => this.book.get(id)?.name)
    await this.raft.secure(options.closed === true ? { ...security, accept: closedRaft(group) } : security)
  }

  /** The name of the member with this Raft id, if this node has heard of it. */
  memberName(id: NodeId): string | undefined {
    return this.book.get(id)?.name
  }

  /** Every member this node has heard of (current or not: the Raft membership says who is). */
  knownMembers(): MemberRecord[] {
    return [...this.book.values()]
  }

  /** The members in the replicated book (what a snapshot carries). */
  recordedMembers(): MemberRecord[] {
    return recordedMembers(this.membersTable())
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
      leader: this.book.get(leader)?.address,
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
      if (seen !== undefined) {
        if ('error' in seen) throw seen.error
        return seen.result
      }
    }
    let payload: unknown
    try {
      payload = await request.prepare(args, this.db)
    } catch (err) {
      if (!(err instanceof O3Error) || !REFUSALS_FROM_STATE.has(err.code) || this.raft.voterCount() === 1) throw err
      // A refusal read from this node's state (no such bucket, key exists, ...) is answered
      // only once that state is known to be current: a new leader may not have applied every
      // committed entry yet, a deposed one does not know it is deposed (found by the OM
      // simulator: an openKey refused BUCKET_NOT_FOUND for a bucket whose creation was
      // acknowledged). The ReadIndex confirms leadership and waits for the apply; then
      // prepare decides again. Costs a round only on refusals.
      await this.read(name, () => undefined)
      payload = await request.prepare(args, this.db)
    }
    this.proposals?.inc()
    try {
      return await this.raft.propose(encodeEntry(name, payload, caller, Date.now()))
    } catch (err) {
      if (err instanceof O3Error && err.code === 'NOT_LEADER') throw this.notLeader(name)
      throw err
    }
  }

  /** This node's place in the group (`o3 admin scm roles`): role, leader, term, commit and applied index. */
  role(): NodeRole {
    const s = this.raft.status()
    const learners = s.confState.learners
    const role = learners.includes(this.options.id) ? 'LEARNER' : s.role === 'preCandidate' ? 'CANDIDATE' : s.role.toUpperCase()
    const member = (id: NodeId, voter: boolean) => ({ id, name: this.book.get(id)?.name ?? `n${id}`, address: this.book.get(id)?.address ?? '', raftAddress: this.book.get(id)?.raftAddress ?? '', voter })
    return {
      id: this.options.id, name: this.book.get(this.options.id)?.name ?? `n${this.options.id}`, address: this.book.get(this.options.id)?.address,
      role, leader: s.leader, term: s.hardState.term, commit: s.hardState.commit, applied: s.applied,
      members: [...s.confState.voters, ...learners],
      group: [...s.confState.voters.map((id) => member(id, true)), ...learners.map((id) => member(id, false))],
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

/** One node's answer to `roles`: its own place, and the membership as it knows it. */
export interface NodeRole {
  readonly id: NodeId
  readonly name: string
  readonly address: string | undefined
  /** LEADER, FOLLOWER, CANDIDATE or LEARNER. */
  readonly role: string
  readonly leader: NodeId
  readonly term: number
  readonly commit: number
  readonly applied: number
  /** Raft ids of voters and learners. */
  readonly members: NodeId[]
  readonly group: (MemberRecord & { readonly voter: boolean })[]
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
  /** The group's timing (settings raft.tickMs, raft.electionTimeoutTicks, raft.heartbeatTimeoutTicks). */
  readonly timing: { readonly tickMs: number; readonly electionTimeoutTicks: number; readonly heartbeatTimeoutTicks: number }
  readonly requests: readonly AnyRequest[]
  readonly opened: (db: RootDatabase) => void
  /** Join a running group (`om.bootstrap=1`) when this node has no state yet, instead of founding one. */
  readonly bootstrap?: boolean
  /** Security on: the member's identity (Raft over mutual TLS, only members of `prefix`'s role let in). */
  readonly identity?: ServiceIdentity
  /**
   * Security on without an identity yet (the SCM, whose CA its group holds): a group of one
   * takes no Raft message at all (it needs none); a named group stays plain HTTP.
   */
  readonly closedWhenAlone?: boolean
  /**
   * Security on, the identity known only from the node's own state (the SCM: its CA is in the
   * group's state once made): asked with the member's name once the state is open, before the
   * Raft port listens. An identity makes Raft mutual TLS from the first message.
   */
  readonly identityAtStart?: (name: string) => Promise<ServiceIdentity | undefined>
}

/**
 * Codes a prepare answers from the node's own state (as opposed to bad input or an
 * unreachable peer): confirmed by a ReadIndex before they are answered (submit).
 */
const REFUSALS_FROM_STATE: ReadonlySet<string> = new Set([
  'VOLUME_NOT_FOUND', 'BUCKET_NOT_FOUND', 'KEY_NOT_FOUND', 'OPEN_KEY_NOT_FOUND', 'VOLUME_ALREADY_EXISTS', 'BUCKET_ALREADY_EXISTS',
  'KEY_ALREADY_EXISTS', 'VOLUME_NOT_EMPTY', 'BUCKET_NOT_EMPTY', 'QUOTA_EXCEEDED', 'QUOTA_ERROR', 'CONTAINER_NOT_FOUND',
])

/** The caller check of a secure group of one: nobody (it needs no messages). */
function closedRaft(group: string): (c: Context) => void {
  return () => { throw new O3Error('PERMISSION_DENIED', `Cannot reach the ${group} Raft port: a secure group of one takes no messages`) }
}

/** The Raft security of a group member: its identity's, or for a secure group of one without one, no caller at all. */
function raftSecurityOf(o: ServiceGroupOptions, alone: boolean, nameOf: (id: NodeId) => string | undefined): Partial<Pick<RaftHostOptions, 'transport' | 'tls' | 'accept' | 'senders'>> {
  if (o.identity !== undefined) return raftSecurity(o.identity, o.prefix, o.service, nameOf)
  if (o.closedWhenAlone === true && alone) return { accept: closedRaft(o.service) }
  return {}
}

/** How long a starting service waits for its group to elect a leader. */
const LEADER_WAIT_MS = 30_000

/**
 * Starts a service's Raft group from its settings: `<prefix>.nodes` names the members, or
 * the node is a group of one (the same code path). A node with `bootstrap` and no state
 * joins a running group instead: it asks the members its settings list for its id and the
 * group, which `o3 admin <prefix> add` records, and starts empty until the leader's snapshot.
 * The id a node starts with is kept (`ha/member.json`), so later edits of the settings do
 * not renumber it. Waits until a leader is known. Answers the group and, for a member of a
 * named group, the RPC port its entry gives it.
 */
export async function startServiceGroup(o: ServiceGroupOptions): Promise<{ ha: ReplicatedService; rpcPort: number | undefined }> {
  if (existsSync(join(o.dir, o.legacyDb))) {
    throw new O3Error('INVALID_ARGUMENT', `Cannot start ${o.service}: ${join(o.dir, o.legacyDb)} is the state of an O3 from before Raft, which this version does not read; move it away or use a fresh ${o.prefix}.dir`)
  }
  const configured = parseGroup(`${o.prefix}.nodes`, o.nodes)
  const haDir = join(o.dir, 'ha')
  mkdirSync(haDir, { recursive: true })
  let self: GroupMember | undefined
  let identity: Identity
  let members: MemberRecord[]
  if (configured.length === 0) {
    if (o.bootstrap) throw new O3Error('INVALID_ARGUMENT', `Cannot start ${o.service} with ${o.prefix}.bootstrap=1: ${o.prefix}.nodes must list the group it joins`)
    identity = { name: o.id === '' ? `${o.prefix}1` : o.id, id: 1 }
    members = [{ id: 1, name: identity.name, address: '', raftAddress: '' }]
  } else {
    self = selfIn(configured, `${o.prefix}.id`, o.id)
    const kept = readIdentity(haDir)
    if (kept !== undefined && kept.name !== self.name) throw new O3Error('INVALID_ARGUMENT', `Cannot start ${o.service} ${self.name}: ${haDir} holds the state of ${kept.name}`)
    const fresh = !existsSync(join(haDir, 'raft'))
    identity = kept ?? (o.bootstrap && fresh ? await joinGroup(o, configured, self) : { name: self.name, id: self.id })
    if (kept === undefined) writeIdentity(haDir, identity)
    members = identity.members !== undefined ? [...identity.members] : configured.map((n) => ({ id: n.id, name: n.name, address: n.address, raftAddress: n.raftAddress }))
    if (!members.some((m) => m.id === identity.id)) members.push({ id: identity.id, name: self.name, address: self.address, raftAddress: self.raftAddress })
  }
  const [raftHost, raftPort] = self === undefined ? [o.host, o.raftPort] : [self.raftAddress.split(':')[0], Number(self.raftAddress.split(':')[1])]
  const joining = identity.members !== undefined
  // Member names by Raft id: the service's book once it exists (it learns members added later).
  let service: ReplicatedService | undefined
  const nameOf = (id: NodeId): string | undefined => service?.memberName(id) ?? members.find((m) => m.id === id)?.name
  const ha = await ReplicatedService.create({
    id: identity.id, dir: haDir, voters: joining ? [] : self === undefined ? [1] : configured.map((n) => n.id),
    serviceAddresses: new Map(members.map((n) => [n.id, n.address])), members, requests: o.requests,
    // The Raft log is the write-ahead log (synced per db.sync); the state it feeds is replayed
    // from it after a crash, so the state's own commits need no fsync on the event loop.
    open: (path) => openMetadataDb(path, { 'db.sync': 0 }),
    opened: o.opened,
    raft: {
      name: `${o.service} ${identity.name}`, host: raftHost, port: raftPort, ...o.timing, sync: o.sync, ...raftSecurityOf(o, self === undefined, nameOf),
      securityAtStart: o.identityAtStart === undefined ? undefined : async () => {
        const known = await o.identityAtStart!(identity.name)
        if (known === undefined) return undefined
        const security = raftSecurity(known, o.prefix, o.service, nameOf)
        return o.closedWhenAlone === true && self === undefined ? { ...security, accept: closedRaft(o.service) } : security
      },
    },
  })
  service = ha
  const scheme = ha.scheme
  ha.start(self === undefined ? new Map([[1, `${scheme}://127.0.0.1:${ha.raft.port}`]]) : new Map(members.map((n) => [n.id, `${scheme}://${n.raftAddress}`])))
  // A joiner hears of its leader once the leader has made it a learner.
  const waitMs = joining ? GROUP_JOIN_WAIT_MS : LEADER_WAIT_MS
  const deadline = Date.now() + waitMs
  while (ha.raft.status().leader === 0) {
    if (Date.now() > deadline) throw new O3Error('UNAVAILABLE', `Cannot start ${o.service}: no Raft leader within ${waitMs} ms`)
    await new Promise((r) => setTimeout(r, 10))
  }
  return { ha, rpcPort: self === undefined ? undefined : Number(self.address.split(':')[1]) }
}

/**
 * A new node's way in (etcd's --initial-cluster-state existing, Ozone's `om --bootstrap`):
 * asks the members its settings list until the group's book names it, which `o3 admin
 * <prefix> add` does; answers its id and the group's members.
 */
async function joinGroup(o: ServiceGroupOptions, configured: readonly GroupMember[], self: GroupMember): Promise<Identity> {
  const others = configured.filter((n) => n.name !== self.name).map((n) => n.address)
  if (others.length === 0) throw new O3Error('INVALID_ARGUMENT', `Cannot join the ${o.service} group as ${self.name}: ${o.prefix}.nodes lists no other member`)
  const rpc = new RpcClient(o.service, others, { transport: o.identity?.transport() ?? PLAIN_TRANSPORT })
  const deadline = Date.now() + GROUP_JOIN_WAIT_MS
  log.info(`${o.service} ${self.name}: waiting to be added to the group (o3 admin ${o.prefix} add ${self.name}@${self.address.split(':')[0]}:${self.address.split(':')[1]}:${self.raftAddress.split(':')[1]})`)
  let last = 'no answer yet'
  for (;;) {
    try {
      const { members } = await rpc.call<{ members: MemberRecord[] }>('groupMembers', {}, { idempotent: true, timeoutMs: 5000 })
      const me = members.filter((m) => m.name === self.name && m.removed !== true).sort((a, b) => b.id - a.id)[0]
      if (me !== undefined) {
        if (me.raftAddress !== self.raftAddress || me.address !== self.address) {
          throw new O3Error('INVALID_ARGUMENT', `Cannot join the ${o.service} group as ${self.name}: the group knows it at ${me.address} (raft ${me.raftAddress}), its settings say ${self.address} (raft ${self.raftAddress})`)
        }
        return { name: self.name, id: me.id, members }
      }
      last = `the group does not name ${self.name} yet`
    } catch (err) {
      if (err instanceof O3Error && err.code === 'INVALID_ARGUMENT') throw err
      last = (err as Error).message
    }
    if (Date.now() > deadline) throw new O3Error('UNAVAILABLE', `Cannot join the ${o.service} group as ${self.name}: not added within ${GROUP_JOIN_WAIT_MS} ms (${last})`)
    await new Promise((r) => setTimeout(r, 200))
  }
}
