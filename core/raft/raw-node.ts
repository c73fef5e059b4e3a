/** @module
 * RawNode: the host-facing handle on one Raft node (etcd rawnode.go). Inputs are
 * `tick`, `step`, `propose`, `proposeMembershipChange`, `readIndex`, `transferLeadership`;
 * output is `ready()`, acknowledged by `advance(ready)` once the host has persisted,
 * sent and applied it. Pure: no I/O, no clock, no `Math.random`.
 */
import { assert } from '../assert.ts'
import { makeConfig, type ConfigOptions } from './config.ts'
import { RAFT_COMMITTED_ENTRIES_COUNT_MAX } from './limits.ts'
import { decodeConfChange, encodeConfChange, Raft, type ProposeResult } from './raft.ts'
import type { ConfChange, ConfState, Entry, HardState, Message, NodeId, Ready, Restored, Role, Snapshot, SoftState } from './types.ts'

/** The leader's view of one member's replication (etcd's Progress). */
export interface MemberProgress {
  readonly id: NodeId
  readonly match: number
  readonly next: number
  readonly state: string
  /** Ticks since the member last answered the leader (0 for the leader itself). */
  readonly quietTicks: number
}

export interface Status {
  readonly id: NodeId
  readonly role: Role
  readonly leader: NodeId
  readonly hardState: HardState
  readonly applied: number
  readonly lastIndex: number
  readonly confState: ConfState
  readonly leadTransferee: NodeId
  /** Restarted after a crash on a distrusted disk, and not yet told enough by its peers to vote or acknowledge. */
  readonly recovering: boolean
}

export class RawNode {
  private readonly raft: Raft
  private prevSoft: SoftState
  private prevHard: HardState
  /** A Ready handed out and not yet advanced: no input may arrive in between. */
  private outstanding: Ready | undefined = undefined

  constructor(options: ConfigOptions, restored: Restored) {
    this.raft = new Raft(makeConfig(options), restored)
    this.prevSoft = this.softState()
    this.prevHard = restored.hardState
  }

  private input(): void {
    assert(this.outstanding === undefined, 'advance(ready) before new input')
  }

  tick(): void {
    this.input()
    this.raft.tick()
  }

  step(m: Message): void {
    this.input()
    this.raft.step(m)
  }

  /** Appends `data` to the log when this node leads; the result names the index it will commit at. */
  propose(data: Uint8Array): ProposeResult {
    this.input()
    return this.raft.propose('normal', data)
  }

  proposeMembershipChange(change: ConfChange): ProposeResult {
    this.input()
    return this.raft.propose('confChange', encodeConfChange(change))
  }

  /** Asks for a linearizable read point; the answer comes back as a ReadState with `context`. */
  readIndex(context: string): boolean {
    this.input()
    return this.raft.readIndex(context)
  }

  transferLeadership(to: NodeId): boolean {
    this.input()
    return this.raft.transferLeadership(to)
  }

  /** Starts an election now (tests and operators; a node campaigns by itself on timeout). */
  campaign(): void {
    this.input()
    this.raft.hup(this.raft.config.preVote ? 'preElection' : 'election')
  }

  private softState(): SoftState {
    return { leader: this.raft.lead, role: this.raft.role }
  }

  private hardState(): HardState {
    return { term: this.raft.term, vote: this.raft.vote, commit: this.raft.log.committed }
  }

  hasReady(): boolean {
    const hs = this.hardState()
    const ss = this.softState()
    const log = this.raft.log
    return this.raft.proposalsToSend || this.raft.msgs.length > 0 || this.raft.readStates.length > 0 || log.pendingSnapshot !== undefined ||
      log.unstableFrom <= log.lastIndex() || log.committed > log.applied ||
      hs.term !== this.prevHard.term || hs.vote !== this.prevHard.vote || hs.commit !== this.prevHard.commit ||
      ss.leader !== this.prevSoft.leader || ss.role !== this.prevSoft.role
  }

  ready(): Ready {
    this.input()
    this.raft.flushProposals()
    const log = this.raft.log
    const hs = this.hardState()
    const ss = this.softState()
    const hardChanged = hs.term !== this.prevHard.term || hs.vote !== this.prevHard.vote || hs.commit !== this.prevHard.commit
    const entries = log.unstableEntries()
    const snapshot = log.pendingSnapshot
    // A term or vote not yet on disk must not be seen by anyone: then nothing leaves early
    // (a leader of a one-voter group reaches its term and its first appends in one Ready).
    const termKept = hs.term === this.prevHard.term && hs.vote === this.prevHard.vote
    const early = termKept && ss.role === 'leader'
    const earlyMessages = early ? this.raft.msgs.filter((m) => m.type === 'app' || m.type === 'heartbeat' || m.type === 'snap') : []
    const ready: Ready = {
      softState: ss.leader !== this.prevSoft.leader || ss.role !== this.prevSoft.role ? ss : undefined,
      hardState: hardChanged ? hs : undefined,
      entries,
      snapshot,
      earlyMessages,
      messages: early ? this.raft.msgs.filter((m) => m.type !== 'app' && m.type !== 'heartbeat' && m.type !== 'snap') : this.raft.msgs,
      committedEntries: log.committedToApply(RAFT_COMMITTED_ENTRIES_COUNT_MAX),
      readStates: this.raft.readStates,
      // etcd MustSync: the vote and term must be on disk before any answer leaves.
      mustSync: entries.length > 0 || snapshot !== undefined || hs.term !== this.prevHard.term || hs.vote !== this.prevHard.vote,
    }
    this.raft.msgs = []
    this.raft.readStates = []
    this.outstanding = ready
    return ready
  }

  /** The host has persisted, sent and applied `ready`. */
  advance(ready: Ready): void {
    assert(this.outstanding === ready, 'advance() takes the last Ready')
    this.outstanding = undefined
    const log = this.raft.log
    if (ready.softState !== undefined) this.prevSoft = ready.softState
    if (ready.hardState !== undefined) this.prevHard = ready.hardState
    if (ready.snapshot !== undefined && log.pendingSnapshot === ready.snapshot) log.pendingSnapshot = undefined
    const last = ready.entries.at(-1)
    if (last !== undefined) log.stableTo(last.index, last.term)
    for (const e of ready.committedEntries) {
      log.appliedTo(e.index)
      if (e.type === 'confChange') this.raft.applyConfChange(decodeConfChange(e.data))
    }
  }

  /**
   * Records the host's snapshot of its state machine at the applied index (or at `index`, an
   * earlier applied one: a snapshot taken while entries kept applying; the host vouches that
   * no membership change applied after it), and drops the log before it.
   */
  compact(data: Uint8Array, index = this.raft.log.applied): Snapshot {
    this.input()
    const log = this.raft.log
    assert(index <= log.applied, 'a snapshot covers only applied entries')
    const term = log.term(index)
    assert(term !== undefined, 'the snapshot\'s entry is in the log')
    const snapshot: Snapshot = { meta: { index, term, confState: this.raft.conf }, data }
    log.compact(snapshot)
    return snapshot
  }

  /** Drops the data of persisted, applied entries of at least `minBytes` (RaftLog.evictData). */
  evictData(minBytes: number): void {
    this.raft.log.evictData(minBytes)
  }

  isLeader(): boolean {
    return this.raft.role === 'leader'
  }

  /** The current term (what status().hardState.term says, without building a status). */
  currentTerm(): number {
    return this.raft.term
  }

  /** Voters in the current membership. */
  voterCount(): number {
    return this.raft.conf.voters.length
  }

  status(): Status {
    const r = this.raft
    return {
      id: r.id, role: r.role, leader: r.lead, hardState: this.hardState(), applied: r.log.applied,
      lastIndex: r.log.lastIndex(), confState: r.conf, leadTransferee: r.leadTransferee, recovering: r.recovering,
    }
  }

  /** The leader's view of each member's replication (etcd Status.Progress); empty unless leading. */
  progress(): MemberProgress[] {
    if (this.raft.role !== 'leader') return []
    return [...this.raft.prs].map(([id, pr]) => ({ id, match: pr.match, next: pr.next, state: pr.state, quietTicks: id === this.raft.id ? 0 : pr.quietTicks }))
  }

  /** The entries from `lo` to the last index (for simulators checking log matching); borrowed. */
  entriesFrom(lo: number): readonly Entry[] {
    const log = this.raft.log
    return log.slice(Math.max(lo, log.firstIndex()), log.lastIndex() + 1)
  }

  firstIndex(): number {
    return this.raft.log.firstIndex()
  }

  term(index: number): number | undefined {
    return this.raft.log.term(index)
  }
}
