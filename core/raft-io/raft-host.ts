/** @module
 * RaftHost: one Raft node with its I/O. Owns the loop around the pure core: take inputs
 * (peer messages, proposals, reads, clock ticks), then for each Ready persist to LMDB,
 * sync when the Ready says so, only then send, apply committed entries to the state
 * machine, answer reads, advance; snapshot and compact now and then. Decides nothing
 * about Raft itself; the core does.
 */
import { randomInt } from 'node:crypto'
import { assert } from '../assert.ts'
import { O3Error, type ErrorCodeName } from '../errors.ts'
import { log } from '../log.ts'
import { bootstrap, joiner, NONE, RAFT_ELECTION_TIMEOUT_TICKS_DEFAULT, RawNode, type ConfChange, type MemberProgress, type Entry, type Restored, type Message, type NodeId, type Ready, type Snapshot, type Status } from '../raft/index.ts'
import type { Context, Hono } from 'hono'
import type { Transport } from '../rpc/transport.ts'
import { serveApp, type Listener } from '../http/serve.ts'
import { HttpTransport, raftApp, type ReplyHold } from './http-transport.ts'
import { RAFT_INBOX_COUNT_MAX, RAFT_LOG_HELD_FOR_MEMBERS_INTERVALS, RAFT_REQUEST_TIMEOUT_MS, RAFT_SNAPSHOT_EVERY_ENTRIES_DEFAULT, RAFT_SNAPSHOT_RETRY_MS } from './limits.ts'
import { RaftLmdbStore } from './lmdb-store.ts'

/** What the replicated service supplies: it applies committed entries and snapshots itself. */
export interface StateMachine {
  /** Applies one committed entry (never a leader's empty no-op); returns the proposer's answer. */
  apply(entry: Entry): unknown
  /** The state as of the last applied entry, as the snapshot's data (or a name for it, see LmdbStateMachine). */
  snapshot(): Uint8Array | Promise<Uint8Array>
  /**
   * Replaces the state with a snapshot's; empty data means the initial, empty state. `from`
   * is the base URL of the leader that sent it (undefined at start, from our own store).
   */
  restore(snapshot: Snapshot, from: string | undefined): void | Promise<void>
  /**
   * Before a snapshot from the leader at `from` is persisted: get what restore() will need
   * (a checkpoint to fetch), so that a failure leaves the node on its old log, not on a
   * snapshot it cannot install.
   */
  prepareRestore?(snapshot: Snapshot, from: string | undefined): Promise<void>
  /**
   * A snapshot taken off the loop while entries keep applying (preferred over snapshot() when
   * present): the state as of some applied index at or after the one when called, which it
   * answers with the entry's term.
   */
  snapshotBehind?(): Promise<{ readonly data: Uint8Array; readonly index: number; readonly term: number }>
  /**
   * A state that persists itself (preferred over both snapshot methods for compacting the
   * log): make it durable as of some applied index at or after the one when called, and answer
   * that index as a snapshot that is the state itself, not a copy (installable() says false).
   * A member that needs a snapshot then gets one made for it by snapshotBehind().
   */
  persisted?(): Promise<{ readonly data: Uint8Array; readonly index: number; readonly term: number }>
  /** Whether a member can install this snapshot as it is (default yes); false for what persisted() answered. */
  installable?(snapshot: Snapshot): boolean
  /** The log was compacted to `snapshot` (this node's own): copies made before it may go. */
  compacted?(snapshot: Snapshot): void
  /** A committed entry apply() is not called for (a leader's no-op, a membership change): its index is applied too. */
  skip?(entry: Entry): void
  /**
   * All the committed entries of one Ready at once (instead of apply/skip per entry, e.g. in
   * one storage transaction): each entry's answer, or the O3Error it was refused with, in order.
   */
  applyAll?(entries: readonly Entry[]): AppliedOutcome[]
  /** The last index the state holds (a state that persists itself), checked against the log at start. */
  appliedIndex?(): number
  /** Security on from now: fetch what restore() needs through this transport. */
  useTransport?(transport: Transport): void
  /** Routes served beside the Raft messages on the node's port (a snapshot's bytes, for one). */
  routes?(): Hono
  /**
   * Before new log entries are saved (and so before this node acknowledges them): make
   * durable what they refer to but do not carry (Ozone's state machine data, a chunk's bytes
   * beside its WriteChunk entry). `leader` is the leader's id as this node knows it.
   */
  persistData?(entries: readonly Entry[], leader: NodeId): Promise<void>
}

/** What applying one committed entry came to: the proposer's answer, or the state machine's refusal. */
export interface AppliedOutcome {
  readonly result?: unknown
  readonly failure?: O3Error
}

export interface RaftHostOptions {
  readonly id: NodeId
  /** What the log calls this node (`OM om2`, `pipeline 9bac…`); default `raft node <id>`. */
  readonly name?: string
  /** The LMDB directory of this node's log and hard state. */
  readonly dir: string
  /** Voters of a brand-new group, or none for a node that joins an existing one (ignored when the store holds state). */
  readonly voters: readonly NodeId[]
  readonly stateMachine: StateMachine
  /**
   * Serve the Raft messages on a port of the node's own (default), or not: false leaves
   * delivery to the caller's server, which hands each batch to deliver().
   */
  readonly listen?: boolean
  /** The path peers take messages at, below their URL (default /raft/messages). */
  readonly messagesPath?: string
  /** Listen address (default 127.0.0.1) and port; 0 picks a free one. */
  readonly host?: string
  readonly port?: number
  readonly tickMs?: number
  readonly electionTimeoutTicks?: number
  readonly heartbeatTimeoutTicks?: number
  /** Group commit and per-peer message batching (on), or one proposal per Ready and one message per request (off). */
  readonly batching?: boolean
  /** Applied entries between snapshots (default RAFT_SNAPSHOT_EVERY_ENTRIES_DEFAULT). */
  readonly snapshotEveryEntries?: number
  /**
   * Applied entries of at least this many bytes keep only their size in memory, and are read
   * back from the log on disk when a member that lags needs them (RaftLog.evictData): a log of
   * snapshotEveryEntries entries that carry payload (a pipeline's small blocks) would
   * otherwise hold all of it in memory. Unset: every entry stays whole until its snapshot.
   */
  readonly evictAppliedBytesMin?: number
  /**
   * The disk's fsync may report success and lose the writes (a volatile write cache): after
   * a start that did not follow a clean stop, the node learns from its peers what it may have
   * lost before it votes or acknowledges (Raft.recovery). Off by default, as in etcd and Ratis.
   */
  readonly distrustFsync?: boolean
  /** Sync the log to disk on each write (default); off, writes reach the OS only (the service's db.sync 0). */
  readonly sync?: boolean
  /**
   * Security on: messages (and checkpoints) go out through this transport (peer URLs are
   * `https://`), the node's own port serves HTTPS with `tls`, and `accept` refuses callers
   * that are not peers of the group (it throws).
   */
  readonly transport?: Transport
  readonly tls?: { current: () => { key: string; cert: string; ca?: string } }
  readonly accept?: (c: Context) => void
  readonly senders?: (c: Context, messages: readonly Message[]) => void
  /**
   * Security decided once the state is restored, before the port listens (the SCM, whose
   * certificate comes from the CA its own state holds): what it answers replaces transport,
   * tls and accept; undefined keeps them. secure() switches later.
   */
  readonly securityAtStart?: () => Promise<RaftSecurity | undefined>
}

/** How a secure node's Raft traffic goes: out through `transport`, in on a port serving `tls`, each caller checked by `accept` (throws to refuse). */
export interface RaftSecurity {
  readonly transport: Transport
  readonly tls: { current: () => { key: string; cert: string; ca?: string } }
  readonly accept: (c: Context) => void
  /** Refuses a batch holding a message from a member the caller's certificate does not name (throws). */
  readonly senders?: (c: Context, messages: readonly Message[]) => void
}

type Input =
  | { readonly kind: 'messages'; readonly messages: Message[]; readonly hold?: ReplyHold }
  | { readonly kind: 'propose'; readonly data: Uint8Array; readonly waiter: Waiter }
  | { readonly kind: 'confChange'; readonly change: ConfChange; readonly waiter: Waiter }
  | { readonly kind: 'read'; readonly waiter: Waiter }
  | { readonly kind: 'transfer'; readonly to: NodeId }
  | { readonly kind: 'campaign' }
  | { readonly kind: 'snapshotTaken'; readonly data: Uint8Array; readonly index: number; readonly term: number; readonly startedAt: number; readonly startedMs: number; readonly made: SnapshotMade }

/** How a snapshot was made: the state's own database persisted (no copy), a copy made for a member that lags, or a copy made to compact (a state machine without persisted()). */
type SnapshotMade = 'own' | 'copyForMember' | 'copy'

interface Waiter {
  readonly resolve: (value: unknown) => void
  readonly reject: (err: O3Error) => void
  readonly deadlineMs: number
}

/** How a refused proposal crosses the wire (NOT_LEADER is built with the leader's address instead). */
const REFUSAL_CODE = {
  tooLarge: 'ENTITY_TOO_LARGE', busy: 'UNAVAILABLE', confPending: 'UNAVAILABLE', badConfChange: 'INVALID_ARGUMENT',
} as const satisfies Record<'tooLarge' | 'busy' | 'confPending' | 'badConfChange', ErrorCodeName>

export class RaftHost {
  readonly id: NodeId
  private readonly options: RaftHostOptions
  private readonly store: RaftLmdbStore
  private readonly raw: RawNode
  private readonly batching: boolean
  private transport: HttpTransport | undefined
  private listener: Listener | undefined
  port = 0
  private inbox: Input[] = []
  private pendingTicks = 0
  private wake: (() => void) | undefined
  private timer: NodeJS.Timeout | undefined
  private loopDone: Promise<void> | undefined
  private stopped = false
  private failed_ = false
  private lastWrite: Promise<void> = Promise.resolve()
  private writeError: unknown = undefined
  private readonly proposals = new Map<number, { term: number; waiter: Waiter }>()
  private readonly reads = new Map<string, { index: number | undefined; waiter: Waiter }>()
  private readCounter = 0
  private lastSnapshotIndex: number
  /** A snapshot is being made off the loop (StateMachine.snapshotBehind or persisted). */
  private snapshotting = false
  /** Whether members can install the log's snapshot as it is (StateMachine.installable). */
  private snapshotInstallable: boolean
  /** A member needs the snapshot and it is not installable: make a copy (snapshotBehind) next. */
  private copyWanted = false
  /** After a failed snapshot, none is tried before this time. */
  private snapshotRetryAtMs = 0
  private snapshotInFlight: Promise<void> | undefined
  /**
   * A leader's snapshot whose data is being fetched (StateMachine.prepareRestore, off the
   * loop), and the last one fetched: a snap message is stepped only once its data is here.
   */
  private snapshotFetching: { readonly key: string; readonly term: number } | undefined
  private snapshotFetched: string | undefined
  private lastConfChangeIndex = 0
  private peerUrls = new Map<NodeId, string>()
  /** Security now: the options', securityAtStart's, or secure()'s. */
  private security: Partial<RaftSecurity>
  private app: Hono | undefined

  private constructor(options: RaftHostOptions, store: RaftLmdbStore, restored: Restored, afterCrash: boolean) {
    this.id = options.id
    this.options = options
    this.batching = options.batching ?? true
    this.store = store
    this.security = { transport: options.transport, tls: options.tls, accept: options.accept, senders: options.senders }
    this.lastSnapshotIndex = restored.snapshot.meta.index
    this.snapshotInstallable = options.stateMachine.installable?.(restored.snapshot) ?? true
    this.raw = new RawNode({
      id: options.id, randomInt: (n) => randomInt(n), electionTimeoutTicks: options.electionTimeoutTicks ?? RAFT_ELECTION_TIMEOUT_TICKS_DEFAULT,
      heartbeatTimeoutTicks: options.heartbeatTimeoutTicks ?? 2, appendEntriesCountMax: this.batching ? undefined : 1,
      // Anyone may send to a plain cluster's Raft port: a message no correct peer sends is dropped.
      dropped: (why) => log.warn(`raft node ${options.id}: dropped a message no correct peer sends (forged or corrupt): ${why}`),
      // The clock at start grows from one start to the next, even if the disk lost a counter.
      ...(options.distrustFsync === true ? { restartedAfterCrash: afterCrash, incarnation: Date.now() } : {}),
    }, restored)
  }

  /** Opens the store and starts listening; call `start(peers)` once every peer's URL is known. */
  static async create(options: RaftHostOptions): Promise<RaftHost> {
    const store = RaftLmdbStore.open(options.dir, { sync: options.sync })
    let restored = store.restore()
    const afterCrash = restored !== undefined && !(await store.takeCleanStop())
    if (restored === undefined) {
      // A founding member: the membership snapshot is stored before anything else happens.
      restored = options.voters.length > 0 ? bootstrap({ voters: [...options.voters], learners: [] }) : joiner()
      await store.save({ snapshot: restored.snapshot, hardState: restored.hardState, entries: [] })
      await store.sync()
    }
    await options.stateMachine.restore(restored.snapshot, undefined)
    // A state ahead of its log (both written without fsync and a machine crash in between)
    // would skip entries the leader reuses those indexes for: refuse to start on it.
    const lastIndex = restored.snapshot.meta.index + restored.entries.length
    const applied = options.stateMachine.appliedIndex?.() ?? 0
    if (applied > lastIndex) {
      throw new O3Error('INTERNAL_ERROR', `Cannot start raft node ${options.id}: its state holds entry ${applied} but its log ends at ${lastIndex} (writes lost in a crash without fsync); restore this node's data from a peer`)
    }
    // The state may be ahead of the commit index on disk (the store holds back a commit-only
    // change, and a crash can fall between an apply and the next write): what was applied was
    // committed, and a snapshot of that state must not claim an index past the node's commit.
    if (applied > restored.hardState.commit) restored = { ...restored, hardState: { ...restored.hardState, commit: applied } }
    const host = new RaftHost(options, store, restored, afterCrash)
    const atStart = await options.securityAtStart?.()
    if (atStart !== undefined) {
      host.security = atStart
      options.stateMachine.useTransport?.(atStart.transport)
    }
    if (options.listen === false) return host
    // The caller check is read per request: secure() replaces it.
    host.app = raftApp((messages, wantReplies) => host.deliver(messages, wantReplies), (c) => host.security.accept?.(c), (c, m) => host.security.senders?.(c, m))
    const routes = options.stateMachine.routes?.()
    if (routes !== undefined) host.app.route('/', routes)
    await host.listen(options.port ?? 0)
    return host
  }

  private async listen(port: number): Promise<void> {
    const tls = this.security.tls
    this.listener = await serveApp(this.app!, { host: this.options.host ?? '127.0.0.1', port, name: `raft node ${this.options.id}`, ...(tls === undefined ? {} : { tls }) })
    this.port = this.listener.port
  }

  /** http, or https once the node is secure (its peers' URLs). */
  get scheme(): 'http' | 'https' {
    return this.security.transport?.scheme ?? 'http'
  }

  /**
   * Makes a plain node secure from now on: its port serves TLS only (the plain listener is
   * closed and the same port opened again with `tls`; messages sent meanwhile are lost, as Raft
   * allows), every caller is checked by `accept`, checkpoints and messages go out through
   * `transport` (a peer still plain is reached plainly until it secures its own port: see
   * HttpTransport.secure). Does nothing on a node secure already.
   */
  async secure(security: RaftSecurity): Promise<void> {
    if (this.security.tls !== undefined || this.stopped) return
    this.security = security
    // Checkpoints come from the leader's port, TLS from now on (messages: see HttpTransport.secure).
    for (const [id, url] of this.peerUrls) this.peerUrls.set(id, url.replace(/^http:/, 'https:'))
    this.options.stateMachine.useTransport?.(security.transport)
    this.transport?.secure(security.transport)
    if (this.listener === undefined) return
    await this.listener.close()
    this.listener = undefined
    await this.listen(this.port)
  }

  start(peers: ReadonlyMap<NodeId, string>): void {
    assert(this.transport === undefined, 'a host starts once')
    // Peers set before the start (setPeer) are kept unless `peers` names them anew.
    for (const [id, url] of peers) this.peerUrls.set(id, url)
    const others = new Map([...this.peerUrls].filter(([id]) => id !== this.id))
    this.transport = new HttpTransport({
      peers: others, batching: this.batching, path: this.options.messagesPath, transport: this.security.transport,
      replies: (messages) => this.push({ kind: 'messages', messages }),
    })
    this.timer = setInterval(() => {
      this.pendingTicks++
      this.wake?.()
    }, this.options.tickMs ?? 20)
    this.loopDone = this.loop().catch((err: unknown) => {
      // The node cannot keep its promises any more: it stops taking input, and says why.
      this.stopped = true
      this.failed_ = true
      this.transport?.releaseHolds(false)
      log.error(`raft node ${this.id} stopped: ${(err as Error).message}`, err)
      const failed = new O3Error('UNAVAILABLE', `Cannot serve: raft node ${this.id} stopped after a failure`)
      for (const p of this.proposals.values()) p.waiter.reject(failed)
      for (const r of this.reads.values()) r.waiter.reject(failed)
      this.proposals.clear()
      this.reads.clear()
    })
  }

  /**
   * Hands the node a batch of peer messages its server received. With `wantReplies` (the
   * sender batches), resolves with what the node sends the sender while it handles the batch:
   * the answer to the request carries them, and the node posts them no request of its own.
   */
  deliver(messages: Message[], wantReplies = false): void | Promise<Message[]> {
    const from = messages[0]?.from
    if (!wantReplies || this.transport === undefined || from === undefined || this.stopped) {
      this.push({ kind: 'messages', messages })
      return
    }
    const hold = this.transport.hold(from)
    if (!this.push({ kind: 'messages', messages, hold })) hold.release()
    return hold.replied
  }

  /** Starts an election now (a new group's suggested leader need not wait out a timeout). */
  campaign(): void {
    this.push({ kind: 'campaign' })
  }

  /** Queues an input for the loop; false if it was refused (stopped, inbox full). */
  private push(input: Input): boolean {
    if (this.stopped) {
      if ('waiter' in input) input.waiter.reject(new O3Error('UNAVAILABLE', `Cannot queue request at raft node ${this.id}: it stopped`))
      return false
    }
    if (this.inbox.length >= RAFT_INBOX_COUNT_MAX) {
      if ('waiter' in input) input.waiter.reject(new O3Error('UNAVAILABLE', `Cannot queue request at raft node ${this.id}: inbox full`))
      return false
    }
    this.inbox.push(input)
    this.wake?.()
    return true
  }

  private waiter(resolve: (v: unknown) => void, reject: (e: O3Error) => void): Waiter {
    return { resolve, reject, deadlineMs: Date.now() + RAFT_REQUEST_TIMEOUT_MS }
  }

  /** Replicates `data`; resolves with the state machine's answer once it is committed and applied here. */
  propose(data: Uint8Array): Promise<unknown> {
    return new Promise((resolve, reject) => this.push({ kind: 'propose', data, waiter: this.waiter(resolve, reject) }))
  }

  /** Resolves once this node's state machine is at least as new as any write acknowledged before the call (ReadIndex). */
  readBarrier(): Promise<void> {
    return new Promise((resolve, reject) => this.push({ kind: 'read', waiter: this.waiter(() => resolve(), reject) }))
  }

  /** Adds or removes one member (one at a time); resolves once the change is committed and applied here. */
  changeMembership(change: ConfChange): Promise<void> {
    return new Promise((resolve, reject) => this.push({ kind: 'confChange', change, waiter: this.waiter(() => resolve(), reject) }))
  }

  transferLeadership(to: NodeId): void {
    this.push({ kind: 'transfer', to })
  }

  /** Tells the node where member `id` listens (a member added later: its URL is replicated, not configured). */
  setPeer(id: NodeId, url: string): void {
    if (id === this.id || this.peerUrls.get(id) === url) return
    this.peerUrls.set(id, url)
    this.transport?.setPeer(id, url)
  }

  /** The node stopped after a failure (a log write that failed: a full or broken disk), not by stop(). */
  get failed(): boolean {
    return this.failed_
  }

  /** Ticks of this node's election timeout (what quietTicks in progress() are measured against). */
  get electionTimeoutTicks(): number {
    return this.options.electionTimeoutTicks ?? RAFT_ELECTION_TIMEOUT_TICKS_DEFAULT
  }

  /** Applied entries between this node's snapshots. */
  private get snapshotEveryEntries(): number {
    return this.options.snapshotEveryEntries ?? RAFT_SNAPSHOT_EVERY_ENTRIES_DEFAULT
  }

  /** The leader's view of each member's replication (empty unless leading): how far a new member has caught up, how long it has been quiet. */
  progress(): MemberProgress[] {
    return this.raw.progress()
  }

  status(): Status {
    return this.raw.status()
  }

  /** Whether this node leads now (cheaper than status() on hot paths). */
  isLeader(): boolean {
    return this.raw.isLeader()
  }

  /**
   * Bytes of entry data this node's in-memory log holds (entries whose data was evicted hold
   * none), and the bytes of the buffers under them (a view keeps its whole buffer alive).
   */
  logBytesInMemory(): { data: number; buffers: number } {
    let data = 0
    const buffers = new Set<ArrayBufferLike>()
    for (const e of this.raw.entriesFrom(this.raw.firstIndex())) {
      data += e.data.byteLength
      buffers.add(e.data.buffer)
    }
    let under = 0
    for (const b of buffers) under += b.byteLength
    return { data, buffers: under }
  }

  /** The index the log was last compacted to (this node's snapshot, or one installed from the leader). */
  snapshotIndex(): number {
    return this.lastSnapshotIndex
  }

  voterCount(): number {
    return this.raw.voterCount()
  }

  term(): number {
    return this.raw.currentTerm()
  }

  private async loop(): Promise<void> {
    while (!this.stopped) {
      // A failed write leaves the node unable to keep its promises: stop it, loudly.
      if (this.writeError !== undefined) throw this.writeError
      if (this.inbox.length === 0 && this.pendingTicks === 0 && !this.raw.hasReady()) {
        await new Promise<void>((resolve) => (this.wake = resolve))
        this.wake = undefined
        continue
      }
      // With batching on, every queued input goes into one Ready: one transaction, one sync.
      // Inputs before ticks: after a stall (a long snapshot, a pause) the followers' answers
      // waiting in the inbox count before the clock does.
      const inputs = this.batching ? this.inbox.splice(0) : this.inbox.splice(0, 1)
      for (const input of inputs) this.handle(input)
      if (this.pendingTicks > 0) {
        // A stall costs at most two ticks, not a burst of them: a burst would expire
        // check-quorum and election timers at once, as if the stall had passed without messages.
        const ticks = Math.min(this.pendingTicks, 2)
        this.pendingTicks = 0
        for (let i = 0; i < ticks; i++) this.raw.tick()
        this.expireWaiters()
      }
      while (this.raw.hasReady() && !this.stopped) await this.handleReady(this.raw.ready())
      this.transport!.releaseHolds(true)
      if (!this.stopped) await this.maybeSnapshot()
    }
  }

  private handle(input: Input): void {
    switch (input.kind) {
      case 'messages':
        for (const m of input.messages) {
          if (m.to !== this.id) continue
          if (m.type === 'snap' && !this.snapshotHere(m)) continue
          this.raw.step(m)
        }
        // What this pass sends the batch's sender rides back in the held answer.
        if (input.hold !== undefined) input.hold.active = true
        break
      case 'propose':
      case 'confChange': {
        const r = input.kind === 'propose' ? this.raw.propose(input.data) : this.raw.proposeMembershipChange(input.change)
        if (r.ok) this.proposals.set(r.index, { term: r.term, waiter: input.waiter })
        else if (r.reason === 'notLeader' || r.reason === 'transferring') input.waiter.reject(this.notLeader(r.leader, r.reason))
        else input.waiter.reject(new O3Error(REFUSAL_CODE[r.reason], `Cannot propose at raft node ${this.id}: ${r.reason}`))
        break
      }
      case 'read': {
        const context = `${this.id}.${++this.readCounter}`
        if (this.raw.readIndex(context)) this.reads.set(context, { index: undefined, waiter: input.waiter })
        else input.waiter.reject(this.notLeader(this.raw.status().leader, 'no leader'))
        break
      }
      case 'transfer':
        this.raw.transferLeadership(input.to)
        break
      case 'campaign':
        if (!this.raw.isLeader()) this.raw.campaign()
        break
      case 'snapshotTaken':
        this.snapshotTaken(input)
        break
    }
  }

  /**
   * Whether the data of a leader's snapshot is here to install (or there is nothing to
   * fetch); if not, fetches it off the loop and the message is dropped meanwhile: once the
   * data is here the message is stepped, and a failed fetch is a lost message (the leader
   * sends the snapshot again when its wait times out) instead of a node stopped on a leader
   * that died or a network that failed during the copy.
   */
  private snapshotHere(m: Extract<Message, { type: 'snap' }>): boolean {
    const sm = this.options.stateMachine
    const key = `${m.snapshot.meta.index}:${m.snapshot.meta.term}`
    if (sm.prepareRestore === undefined || this.snapshotFetched === key) return true
    // One the core will not install (an old leader's, or behind what is committed here) needs no data.
    if (m.term < this.raw.currentTerm() || m.snapshot.meta.index <= this.raw.status().hardState.commit) return true
    // One fetch at a time, unless a newer leader sends its own.
    if (this.snapshotFetching !== undefined && m.term <= this.snapshotFetching.term) return false
    const fetching = { key, term: m.term }
    this.snapshotFetching = fetching
    const from = this.peerUrls.get(m.from)
    sm.prepareRestore(m.snapshot, from).then(() => {
      if (this.snapshotFetching === fetching) this.snapshotFetching = undefined
      this.snapshotFetched = key
      this.push({ kind: 'messages', messages: [m] })
    }, (err: unknown) => {
      if (this.snapshotFetching === fetching) this.snapshotFetching = undefined
      log.warn(`raft node ${this.id}: could not fetch the snapshot at ${m.snapshot.meta.index} from ${from ?? 'an unknown leader'}, waiting for the leader to send it again: ${(err as Error).message}`)
    })
    return false
  }

  private notLeader(leader: NodeId, why: string): O3Error {
    return new O3Error('NOT_LEADER', `Cannot serve at raft node ${this.id}: ${why}`, { leader: this.peerUrls.get(leader) ?? '' })
  }

  /** Persist, sync, send, apply, advance: the order the core's safety depends on. */
  private async handleReady(rd: Ready): Promise<void> {
    if (rd.softState !== undefined) this.logRole(rd.softState)
    // Only a Ready with a snapshot needs to know whom to fetch it from.
    const from = rd.snapshot === undefined ? undefined : this.peerUrls.get(this.raw.status().leader)
    if (rd.snapshot !== undefined) await this.options.stateMachine.prepareRestore?.(rd.snapshot, from)
    // What the new entries refer to is durable before they are: a node acknowledges an
    // entry only once it holds the data beside it.
    if (rd.entries.length > 0) await this.options.stateMachine.persistData?.(rd.entries, this.raw.status().leader)
    // A leader's appends leave while its own write is in flight: the two fsyncs overlap.
    this.transport!.send(this.outgoing(rd.earlyMessages))
    const written = this.store.save(rd)
    // What must be durable before it is answered (vote, term, entries) is awaited; a Ready
    // that only moves the commit index may be written behind the sends (etcd MustSync).
    if (rd.mustSync) await written
    else this.writeBehind(written)
    this.transport!.send(this.outgoing(rd.messages))
    if (rd.snapshot !== undefined) {
      // The state is replaced: a copy of it still being made finishes first.
      await this.snapshotInFlight
      await this.options.stateMachine.restore(rd.snapshot, from)
      this.lastSnapshotIndex = rd.snapshot.meta.index
      this.snapshotInstallable = this.options.stateMachine.installable?.(rd.snapshot) ?? true
    }
    for (const e of rd.committedEntries) if (e.type === 'confChange') this.lastConfChangeIndex = e.index
    const outcomes = this.applyCommitted(rd.committedEntries)
    for (const [i, e] of rd.committedEntries.entries()) {
      const p = this.proposals.get(e.index)
      if (p === undefined) continue
      this.proposals.delete(e.index)
      const outcome = outcomes[i]
      if (p.term !== e.term) p.waiter.reject(this.notLeader(this.raw.status().leader, 'the proposal was overwritten by a new leader'))
      else if (outcome.failure !== undefined) p.waiter.reject(outcome.failure)
      else p.waiter.resolve(outcome.result)
    }
    for (const rs of rd.readStates) {
      const r = this.reads.get(rs.context)
      if (r !== undefined) r.index = rs.index
    }
    this.raw.advance(rd)
    if (this.options.evictAppliedBytesMin !== undefined) this.raw.evictData(this.options.evictAppliedBytesMin)
    const applied = this.raw.status().applied
    for (const [ctx, r] of this.reads) {
      if (r.index !== undefined && r.index <= applied) {
        this.reads.delete(ctx)
        r.waiter.resolve(undefined)
      }
    }
  }

  /**
   * Every snapshotEveryEntries applied entries, the log is compacted to a snapshot: the state
   * persisted in place when the state machine can (no copy), else a copy made off the loop,
   * else one made here. A member that needs the snapshot while it is not installable gets a
   * copy made for it (outgoing() asked for one). The state's own snapshot waits while a
   * member that answers still needs the entries it would drop (compactionIndex).
   */
  private async maybeSnapshot(): Promise<void> {
    if (this.snapshotting || Date.now() < this.snapshotRetryAtMs) return
    const sm = this.options.stateMachine
    const applied = this.raw.status().applied
    // Only a leader sends snapshots: one that stepped down since it was asked copies nothing.
    const copy = this.copyWanted && !this.snapshotInstallable && this.raw.isLeader()
    this.copyWanted = false
    const made: SnapshotMade = copy ? 'copyForMember' : sm.persisted !== undefined ? 'own' : 'copy'
    const every = this.snapshotEveryEntries
    // The state's own snapshot may stop short of `applied` for a member that lags (compactionIndex, asked only when due).
    if (!copy && (applied - this.lastSnapshotIndex < every || (made === 'own' && this.compactionIndex(applied) - this.lastSnapshotIndex < every))) return
    const take = made === 'own' ? sm.persisted : sm.snapshotBehind
    if (take !== undefined) {
      // Off the loop: the node goes on replicating and applying while the state is made
      // durable or copied; it comes back as an input (snapshotTaken) and the log is compacted to it.
      this.snapshotting = true
      const startedAt = applied, startedMs = Date.now()
      this.snapshotInFlight = take.call(sm).then((taken) => {
        this.inbox.push({ kind: 'snapshotTaken', ...taken, startedAt, startedMs, made })
        this.wake?.()
      }, (err: unknown) => {
        this.snapshotting = false
        // Not again at once (a full or failing disk): the next try after a pause.
        this.snapshotRetryAtMs = Date.now() + RAFT_SNAPSHOT_RETRY_MS
        log.warn(`raft node ${this.id}: snapshot failed, the log keeps its entries: ${(err as Error).message}`)
      })
      return
    }
    const startedMs = Date.now()
    const snapshot = this.raw.compact(await sm.snapshot())
    await this.store.compact(snapshot)
    this.compacted(snapshot)
    this.lastSnapshotIndex = snapshot.meta.index
    this.snapshotInstallable = true
    // The loop waits for the snapshot: how long it took is how long this node stood still.
    log.info(`raft node ${this.id}: snapshot at ${snapshot.meta.index} in ${Date.now() - startedMs} ms`)
  }

  /**
   * What goes out: withData(messages), less any snapshot a member cannot install (the state
   * machine's own state, persisted()); for that member a copy is made next, and the core sends
   * it when its wait for the dropped one times out (a lost message, as far as Raft knows).
   */
  private outgoing(messages: readonly Message[]): readonly Message[] {
    const sm = this.options.stateMachine
    const held = (m: Message) => m.type === 'snap' && sm.installable?.(m.snapshot) === false
    if (!messages.some(held)) return this.withData(messages)
    // A member that does not answer (down while it waited for a snapshot: the core sends it one
    // again when its wait times out) gets no copy made for it; it is sent one once it answers.
    const answering = new Set(this.raw.progress().filter((p) => p.quietTicks < this.electionTimeoutTicks).map((p) => p.id))
    if (messages.some((m) => held(m) && answering.has(m.to))) this.copyWanted = true
    return this.withData(messages.filter((m) => !held(m)))
  }

  /**
   * `messages` with the entries whose data this node evicted read back from its log on disk.
   * An append whose entries the disk no longer holds (compacted by a snapshot since the core
   * made the message) is dropped, as a lost message would be: the core sends the member what
   * it needs next (the snapshot) when it hears from it again.
   */
  private withData(messages: readonly Message[]): readonly Message[] {
    if (this.options.evictAppliedBytesMin === undefined) return messages
    const out: Message[] = []
    for (const m of messages) {
      if (m.type !== 'app' || !m.entries.some((e) => e.evictedBytes !== undefined)) {
        out.push(m)
        continue
      }
      const entries: Entry[] = []
      for (const e of m.entries) {
        const whole = e.evictedBytes === undefined ? e : this.store.entry(e.index, e.term)
        if (whole === undefined) break
        entries.push(whole)
      }
      if (entries.length === m.entries.length) out.push({ ...m, entries })
      else log.debug(`raft node ${this.id}: an append to ${m.to} from ${m.entries[0].index} dropped: its entries were compacted meanwhile`)
    }
    return out
  }

  /** Elections and leader changes, for whoever reads the log after a failover. */
  private logRole(soft: { leader: NodeId; role: string }): void {
    const name = this.options.name ?? `raft node ${this.id}`
    const term = this.raw.status().hardState.term
    if (soft.role === 'leader') log.info(`${name}: leader at term ${term}`)
    else if (soft.role === 'follower' && soft.leader !== NONE) log.info(`${name}: follower of node ${soft.leader} (${this.peerUrls.get(soft.leader) ?? 'address unknown'}) at term ${term}`)
    else if (soft.role === 'candidate') log.info(`${name}: campaigning at term ${term}`)
  }

  /**
   * A snapshot made off the loop is back: compact the log to the index the copy holds, unless
   * the node moved past it meanwhile (a leader's snapshot installed) or a membership change
   * applied after the copy began (the snapshot would carry a membership not its own; the
   * next one is taken soon, as the log is still long).
   */
  private snapshotTaken(t: Extract<Input, { kind: 'snapshotTaken' }>): void {
    this.snapshotting = false
    // The state's own database holds every entry up to t.index, so the log may keep more of itself.
    const index = t.made === 'own' ? this.compactionIndex(t.index) : t.index
    // A copy made for a member replaces the state's own snapshot at the same index too.
    const forMember = t.made === 'copyForMember'
    const newer = index > this.lastSnapshotIndex || (index === this.lastSnapshotIndex && forMember && !this.snapshotInstallable)
    if (!newer || this.lastConfChangeIndex > t.startedAt) {
      if (forMember) this.copyWanted = true
      return
    }
    assert(t.index >= t.startedAt && t.index <= this.raw.status().applied, 'a snapshot holds an applied entry at or after the one it began at')
    const snapshot = this.raw.compact(t.data, index)
    assert(index !== t.index || snapshot.meta.term === t.term, 'the snapshot holds the log\'s entry at its index')
    this.writeBehind(this.store.compact(snapshot))
    this.lastSnapshotIndex = snapshot.meta.index
    this.snapshotInstallable = this.options.stateMachine.installable?.(snapshot) ?? true
    // Now, in this pass: a copy begun after it must not be taken for an old one.
    this.compacted(snapshot)
    log.info(`raft node ${this.id}: ${forMember ? 'copy for a member that lags' : 'snapshot'} at ${snapshot.meta.index} in ${Date.now() - t.startedMs} ms, off the loop`)
  }

  /** Tells the state machine its log was compacted (it drops copies no longer sent); a failure there costs only disk. */
  private compacted(snapshot: Snapshot): void {
    try {
      this.options.stateMachine.compacted?.(snapshot)
    } catch (err) {
      log.warn(`raft node ${this.id}: could not drop the copies before the snapshot at ${snapshot.meta.index}: ${(err as Error).message}`)
    }
  }

  /**
   * Where a leader compacts its log to its state's own database at `at`: not past an entry a
   * member that answers still lacks (Ratis too keeps the log down to its followers' indexes),
   * so that a member slightly behind needs no snapshot, and one installing a copy finds the
   * entries after it: without this, a copy that takes longer to fetch than the log takes to
   * pass it is never enough. Bounded: a log held longer than RAFT_LOG_HELD_FOR_MEMBERS_INTERVALS
   * snapshot intervals, or across a membership change, is compacted to `at` all the same.
   */
  private compactionIndex(at: number): number {
    if (!this.raw.isLeader()) return at
    let needed = at
    for (const p of this.raw.progress()) {
      if (p.id !== this.id && p.quietTicks < this.electionTimeoutTicks) needed = Math.min(needed, p.match)
    }
    const keepFrom = Math.max(needed, this.lastSnapshotIndex)
    const every = this.snapshotEveryEntries
    if (at - keepFrom > every * RAFT_LOG_HELD_FOR_MEMBERS_INTERVALS || this.lastConfChangeIndex > keepFrom) return at
    return keepFrom
  }

  /** Applies a Ready's committed entries: all at once if the state machine can, else one by one. */
  private applyCommitted(entries: readonly Entry[]): AppliedOutcome[] {
    const sm = this.options.stateMachine
    if (entries.length === 0) return []
    if (sm.applyAll !== undefined) {
      const outcomes = sm.applyAll(entries)
      assert(outcomes.length === entries.length, 'one outcome per committed entry')
      return outcomes
    }
    return entries.map((e) => {
      try {
        if (e.type === 'normal' && e.data.byteLength > 0) return { result: sm.apply(e) }
        sm.skip?.(e)
        return { result: undefined }
      } catch (err) {
        // A request the state machine refuses (an O3Error: deterministically, on every
        // replica alike). Anything else is this node's failure: it stops, loudly.
        if (!(err instanceof O3Error)) throw err
        return { failure: err }
      }
    })
  }

  private writeBehind(written: Promise<void>): void {
    this.lastWrite = written.then(undefined, (err: unknown) => {
      this.writeError = err
      this.wake?.()
    })
  }

  private expireWaiters(): void {
    const now = Date.now()
    const timeout = (what: string) => new O3Error('TIMEOUT', `Cannot finish ${what} at raft node ${this.id}: no answer in ${RAFT_REQUEST_TIMEOUT_MS} ms`)
    for (const [index, p] of this.proposals) {
      if (p.waiter.deadlineMs > now) continue
      this.proposals.delete(index)
      p.waiter.reject(timeout(`proposal ${index}`))
    }
    for (const [ctx, r] of this.reads) {
      if (r.waiter.deadlineMs > now) continue
      this.reads.delete(ctx)
      r.waiter.reject(timeout(`read ${ctx}`))
    }
  }

  async stop(): Promise<void> {
    this.stopped = true
    clearInterval(this.timer)
    this.wake?.()
    await this.loopDone
    const stopping = new O3Error('UNAVAILABLE', `Cannot finish request: raft node ${this.id} stopped`)
    for (const p of this.proposals.values()) p.waiter.reject(stopping)
    for (const r of this.reads.values()) r.waiter.reject(stopping)
    for (const input of this.inbox) if ('waiter' in input) input.waiter.reject(stopping)
    this.proposals.clear()
    this.reads.clear()
    this.inbox = []
    // Answers still held go back now, or closing the listener would wait out its drain for them.
    this.transport?.releaseHolds(false)
    await this.listener?.close()
    await this.transport?.close()
    await this.lastWrite
    // The state machine closes after this: a copy of it still being made finishes first.
    await this.snapshotInFlight
    await this.store.markCleanStop()
    await this.store.close()
  }

  /** Transport counters: HTTP requests sent, messages carried back in answers instead, and messages dropped (peer down, queue full). */
  transportStats(): { requests: number; replied: number; dropped: number } {
    return { requests: this.transport?.sentRequests ?? 0, replied: this.transport?.repliedMessages ?? 0, dropped: this.transport?.droppedCount() ?? 0 }
  }
}
