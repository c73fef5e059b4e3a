/** @module
 * One pipeline's Raft group on this datanode (Ozone's XceiverServerRatis group with its
 * ContainerStateMachine): a RaftHost whose messages come through the datanode's own port,
 * whose entries are pipeline entries, applied one after another in log order by the replica
 * (the datanode), and whose writeChunk entries are acknowledged only once the replica holds
 * their bytes. Owns the member list (raft ids are positions in it) and the group's folder.
 */
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { assert } from '../../../core/assert.ts'
import { O3Error } from '../../../core/errors.ts'
import { log } from '../../../core/log.ts'
import type { Entry, Message, NodeId, Snapshot } from '../../../core/raft/index.ts'
import { RaftHost } from '../../../core/raft-io/index.ts'
import type { Transport } from '../../../core/rpc/transport.ts'
import { PIPELINE_CAMPAIGN_TRIES, PIPELINE_ELECTION_TIMEOUT_TICKS, PIPELINE_EVICT_APPLIED_BYTES_MIN, PIPELINE_SNAPSHOT_EVERY_ENTRIES, PIPELINE_TICK_MS } from '../../../core/limits.ts'
import type { DatanodeDetails, DatanodeId, PipelineId, PipelineReport } from '../../../core/wire.ts'
import { decodeEntry, encodeEntry, type PipelineEntry, type WriteChunkEntry } from './entries.ts'

/** What the group needs from the datanode that holds its replicas. */
export interface PipelineReplica {
  /** Applies one committed entry at `index`; runs strictly after the previous one settled. */
  applyEntry(pipelineId: PipelineId, entry: PipelineEntry, index: number): Promise<unknown>
  /**
   * Makes the chunk's bytes durable here (staged already, or fetched from `from()`, in order)
   * before the entry is appended; `from` is asked again before every round of tries (members'
   * addresses change when they restart on other ports).
   */
  holdChunk(pipelineId: PipelineId, entry: WriteChunkEntry, from: () => string[]): Promise<void>
  /** The replica's in-memory state of this pipeline (chunks recorded but not committed), as snapshot data. */
  snapshotOf(pipelineId: PipelineId): Uint8Array
  /** Restores what snapshotOf saved, at start. */
  restore(pipelineId: PipelineId, data: Uint8Array): void
  /** The group installed a leader's snapshot: this replica missed entries it cannot replay. */
  diverged(pipelineId: PipelineId): Promise<void>
}

export interface PipelineGroupOptions {
  pipelineId: PipelineId
  replication: string
  members: DatanodeDetails[]
  self: DatanodeId
  /** The group's folder (its Raft log and members file). */
  dir: string
  replica: PipelineReplica
  /** Campaign at once (the SCM's suggested leader of a new group). */
  campaign: boolean
  /** Sync the log on each write (db.sync 1), or let writes reach the OS only, as the chunk files do (db.sync 0). */
  sync: boolean
  /** Security on: the datanode's identity's transport (members' URLs are https; the route checks the peer is a datanode). */
  transport?: Transport
}

interface MembersFile { pipelineId: PipelineId; replication: string; members: DatanodeDetails[] }

export class PipelineGroup {
  readonly id: PipelineId
  readonly replication: string
  private members: DatanodeDetails[]
  private readonly self: DatanodeId
  private readonly dir: string
  private readonly replica: PipelineReplica
  private readonly scheme: string
  private host!: RaftHost
  /** Settles once every apply handed to the replica so far has settled. */
  private applying: Promise<unknown> = Promise.resolve()
  /** Indexes of the applies handed to the replica and not settled yet (the host counts an entry applied once handed over). */
  private readonly inflight = new Set<number>()
  private diverged_ = false
  private stopped = false

  private constructor(o: PipelineGroupOptions) {
    this.id = o.pipelineId
    this.replication = o.replication
    this.members = o.members
    this.self = o.self
    this.dir = o.dir
    this.replica = o.replica
    this.scheme = o.transport?.scheme ?? 'http'
    assert(this.raftId(o.self) !== undefined, 'a group holds its own node')
  }

  /** Opens (or creates) the group in `dir` and starts it. */
  static async open(o: PipelineGroupOptions): Promise<PipelineGroup> {
    mkdirSync(o.dir, { recursive: true })
    const file = join(o.dir, 'members.json')
    if (!existsSync(file)) writeFileSync(file, JSON.stringify({ pipelineId: o.pipelineId, replication: o.replication, members: o.members } satisfies MembersFile))
    const g = new PipelineGroup(o)
    g.diverged_ = existsSync(join(o.dir, 'diverged'))
    g.host = await RaftHost.create({
      id: g.raftId(o.self)!, name: `pipeline ${o.pipelineId} member ${g.raftId(o.self)!}`, dir: join(o.dir, 'log'), voters: o.members.map((_, i) => i + 1), listen: false,
      messagesPath: `/pipeline/${o.pipelineId}/raft/messages`,
      tickMs: PIPELINE_TICK_MS, electionTimeoutTicks: PIPELINE_ELECTION_TIMEOUT_TICKS, heartbeatTimeoutTicks: 2,
      snapshotEveryEntries: PIPELINE_SNAPSHOT_EVERY_ENTRIES, evictAppliedBytesMin: PIPELINE_EVICT_APPLIED_BYTES_MIN, sync: o.sync, transport: o.transport,
      stateMachine: {
        apply: (e) => g.apply(e),
        snapshot: async () => { await g.applying.catch(() => undefined); return g.replica.snapshotOf(g.id) },
        restore: (s, from) => g.restoreFrom(s, from),
        persistData: (entries, leader) => g.persistData(entries, leader),
      },
    })
    g.host.start(new Map(o.members.map((m, i) => [i + 1, `${g.scheme}://${m.address}`])))
    if (o.campaign || o.members.length === 1) g.campaignUntilLed()
    return g
  }

  /**
   * The suggested leader of a new group stands at once, and again while no one leads: the
   * other members may not have started their groups when it first asks for votes.
   */
  private campaignUntilLed(): void {
    let tries = 0
    const stand = () => {
      if (this.stopped || this.host.status().leader !== 0) return
      this.host.campaign()
      if (++tries < PIPELINE_CAMPAIGN_TRIES) setTimeout(stand, PIPELINE_TICK_MS * 3).unref?.()
    }
    stand()
  }

  /** The members file of a group folder, or undefined when it holds none. */
  static readMembers(dir: string): MembersFile | undefined {
    try { return JSON.parse(readFileSync(join(dir, 'members.json'), 'utf8')) as MembersFile } catch { return undefined }
  }

  private raftId(id: DatanodeId): NodeId | undefined {
    const i = this.members.findIndex((m) => m.id === id)
    return i < 0 ? undefined : i + 1
  }

  /** The datanode id of Raft member `raftId` (what its certificate names). */
  memberId(raftId: NodeId): DatanodeId | undefined {
    return this.member(raftId)?.id
  }

  private member(raftId: NodeId): DatanodeDetails | undefined {
    return this.members[raftId - 1]
  }

  /** Points members at new addresses (a datanode restarted on another port). */
  updateMembers(members: DatanodeDetails[]): void {
    for (const m of members) {
      const id = this.raftId(m.id)
      if (id === undefined) continue
      if (this.members[id - 1].address !== m.address) {
        this.members[id - 1] = { ...m }
        this.host.setPeer(id, `${this.scheme}://${m.address}`)
      }
    }
    writeFileSync(join(this.dir, 'members.json'), JSON.stringify({ pipelineId: this.id, replication: this.replication, members: this.members } satisfies MembersFile))
  }

  /** Hands the group a batch its route received; with `wantReplies`, the promise of the group's answers to the sender (RaftHost.deliver). */
  deliver(messages: Message[], wantReplies = false): void | Promise<Message[]> {
    return this.host.deliver(messages, wantReplies)
  }

  isLeader(): boolean {
    return this.host.isLeader()
  }

  get isDiverged(): boolean {
    return this.diverged_
  }

  /** The leader's datanode as this member knows it, or undefined. */
  leader(): DatanodeDetails | undefined {
    return this.member(this.host.status().leader)
  }

  /** The other members' addresses (where the leader forwards a chunk's bytes). */
  followerAddresses(): string[] {
    return this.members.filter((m) => m.id !== this.self).map((m) => m.address)
  }

  get memberCount(): number {
    return this.members.length
  }

  notLeader(action: string): O3Error {
    return new O3Error('NOT_LEADER', `Cannot ${action} on pipeline ${this.id}: this datanode does not lead it`, { leader: this.leader()?.address ?? '' })
  }

  /** Proposes an entry (leader only); resolves with the apply's answer and the entry's index once applied here. */
  async propose(entry: PipelineEntry, action: string): Promise<{ index: number; result: unknown }> {
    if (!this.host.isLeader()) throw this.notLeader(action)
    try {
      return await this.host.propose(encodeEntry(entry)) as { index: number; result: unknown }
    } catch (err) {
      if (err instanceof O3Error && err.code === 'NOT_LEADER') throw this.notLeader(action)
      throw err
    }
  }

  /** Whether every member's log holds `index` (leader only; a follower knows nothing of the others). */
  allCommitted(index: number): boolean {
    const progress = this.host.progress()
    return progress.length === this.members.length && progress.every((p) => p.match >= index)
  }

  /** Members whose log does not hold `index` yet, as the leader sees them. */
  lagging(index: number): DatanodeId[] {
    const progress = new Map(this.host.progress().map((p) => [p.id, p.match]))
    return this.members.filter((_, i) => (progress.get(i + 1) ?? 0) < index).map((m) => m.id)
  }

  report(): PipelineReport {
    const s = this.host.status()
    // A member whose Raft node stopped after a failure cannot go on with the group either.
    return { pipelineId: this.id, leaderId: this.member(s.leader)?.id ?? '', term: s.hardState.term, applied: this.appliedIndex(s.applied), diverged: this.diverged_ || this.host.failed }
  }

  /**
   * The index this replica's state shows: the host's applied index once every apply handed
   * over has settled (entries without an apply, a leader's empty one, count at once), else
   * the last settled one. A reader told `applied >= i` then finds entry i's effects here.
   */
  private appliedIndex(hostApplied: number): number {
    if (this.inflight.size === 0) return hostApplied
    let lowest = Infinity
    for (const i of this.inflight) lowest = Math.min(lowest, i)
    return Math.min(hostApplied, lowest - 1)
  }

  /** This member's Raft state, for the datanode's /prom. */
  raftStatus(): { term: number; leader: boolean; commit: number; applied: number } {
    const s = this.host.status()
    return { term: s.hardState.term, leader: this.isLeader(), commit: s.hardState.commit, applied: this.appliedIndex(s.applied) }
  }

  describe() {
    return { ...this.report(), replication: this.replication, members: this.members, leader: this.isLeader() }
  }

  private apply(e: Entry): Promise<{ index: number; result: unknown }> {
    // The replica issues each entry's writes in log order as it is handed over (LMDB runs
    // them in that order), without waiting for the one before to finish: a busy pipeline's
    // applies share commits. The proposer's answer waits for its own.
    const entry = decodeEntry(e.data)
    this.inflight.add(e.index)
    const next = (async () => ({ index: e.index, result: await this.replica.applyEntry(this.id, entry, e.index) }))()
    const settled = next.then(() => undefined, () => undefined)
    void settled.then(() => this.inflight.delete(e.index))
    // A refusal reaches the proposer, if any; on the other replicas it is the same refusal.
    next.catch((err: unknown) => log.debug(`pipeline ${this.id}: entry ${e.index} (${entry.op}) refused: ${(err as Error).message}`))
    const before = this.applying
    this.applying = Promise.all([before, settled])
    return next
  }

  private async persistData(entries: readonly Entry[], leader: NodeId): Promise<void> {
    // A diverged replica must not help commit anything more (its containers cannot hold it):
    // refusing stops its Raft node until the SCM closes the pipeline.
    if (this.diverged_) throw new O3Error('UNAVAILABLE', `Cannot append to pipeline ${this.id}: this replica diverged`)
    // Read again on every round of tries: members restarted on other ports get their new
    // addresses from the SCM (updateMembers) while a fetch is still trying the old ones.
    const sources = (): string[] => {
      const selfAddress = this.members[this.raftId(this.self)! - 1].address
      return [this.member(leader)?.address, ...this.members.map((m) => m.address)].filter((a, i, all): a is string => a !== undefined && a !== selfAddress && all.indexOf(a) === i)
    }
    const holds: Promise<void>[] = []
    for (const e of entries) {
      if (e.type !== 'normal' || e.data.byteLength === 0) continue
      let entry: PipelineEntry
      try { entry = decodeEntry(e.data) } catch { continue } // refused alike at apply
      if (entry.op === 'writeChunk') holds.push(this.replica.holdChunk(this.id, entry, sources))
    }
    await Promise.all(holds)
  }

  private async restoreFrom(s: Snapshot, from: string | undefined): Promise<void> {
    if (from === undefined) {
      this.replica.restore(this.id, s.data)
      return
    }
    // A leader's snapshot: entries this member never applied were compacted away, with the
    // chunks they recorded; its containers of this pipeline cannot match the others'.
    this.diverged_ = true
    writeFileSync(join(this.dir, 'diverged'), '')
    log.warn(`pipeline ${this.id}: installed the leader's snapshot at ${s.meta.index}: this replica diverged`)
    await this.replica.diverged(this.id)
  }

  async stop(): Promise<void> {
    if (this.stopped) return
    this.stopped = true
    await this.host.stop()
    await this.applying.catch(() => undefined)
  }

  /** Stops the group and removes its folder (the SCM closed the pipeline). */
  async destroy(): Promise<void> {
    await this.stop()
    rmSync(this.dir, { recursive: true, force: true })
  }
}
