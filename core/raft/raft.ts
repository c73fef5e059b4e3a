/** @module
 * The Raft protocol as a pure state machine (etcd raft.go): terms, elections with
 * pre-vote and check-quorum, log replication with flow control, commitment, snapshots,
 * one-at-a-time membership changes, leadership transfer and ReadIndex. Messages go out
 * through `msgs`, ReadIndex answers through `readStates`; RawNode packs them into Ready.
 * Pure: no I/O, no clock, no `Math.random` (jitter comes from `config.randomInt`).
 */
import { assert, unreachable } from '../assert.ts'
import { checkConfState, isVoter, members, quorum, type Config } from './config.ts'
import {
  RAFT_NODE_COUNT_MAX, RAFT_PROPOSAL_BYTES_MAX, RAFT_READ_INDEX_PENDING_COUNT_MAX, RAFT_UNCOMMITTED_ENTRIES_COUNT_MAX,
} from './limits.ts'
import { atLeastAsUpToDate, RaftLog } from './log.ts'
import { Progress } from './progress.ts'
import {
  NONE, type ConfChange, type ConfState, type Entry, type EntryType, type Message, type NodeId, type ReadState,
  type Restored, type Role,
} from './types.ts'

export type ProposeResult =
  | { readonly ok: true; readonly index: number; readonly term: number }
  | { readonly ok: false; readonly reason: 'notLeader' | 'transferring' | 'tooLarge' | 'busy' | 'confPending' | 'badConfChange'; readonly leader: NodeId }

type CampaignKind = 'preElection' | 'election' | 'transfer'

interface PendingRead {
  readonly index: number
  readonly from: NodeId
  readonly acks: Set<NodeId>
}

/** Omits `from` (always us) from messages built here. */
type Outgoing = Message extends infer M ? (M extends Message ? Omit<M, 'from' | 'term'> & { term?: number } : never) : never

const encoder = new TextEncoder()
const decoder = new TextDecoder()

export function encodeConfChange(cc: ConfChange): Uint8Array {
  return encoder.encode(JSON.stringify(cc))
}

export function decodeConfChange(data: Uint8Array): ConfChange {
  const cc = JSON.parse(decoder.decode(data)) as ConfChange
  assert(cc.type === 'addNode' || cc.type === 'addLearner' || cc.type === 'removeNode', 'conf change type is known')
  assert(Number.isSafeInteger(cc.nodeId) && cc.nodeId > 0, 'conf change node id is positive')
  return cc
}

export class Raft {
  readonly id: NodeId
  readonly config: Config
  term: number
  vote: NodeId
  lead: NodeId = NONE
  role: Role = 'follower'
  readonly log: RaftLog
  conf: ConfState
  prs = new Map<NodeId, Progress>()
  msgs: Message[] = []
  readStates: ReadState[] = []
  private votes = new Map<NodeId, boolean>()
  private electionElapsed = 0
  private heartbeatElapsed = 0
  private randomizedElectionTimeout = 0
  /** Leader: index of the last membership change proposed; no new one until it is applied. */
  private pendingConfIndex = 0
  leadTransferee: NodeId = NONE
  /** Leader: proposals were appended and not yet broadcast. */
  proposalsToSend = false
  private readonly pendingReads = new Map<string, PendingRead>()
  private readonly pendingReadOrder: string[] = []
  /** Leader: ReadIndex requests waiting for the first commit of its term (thesis §6.4 step 1). */
  private readsBeforeCommit: { context: string; from: NodeId }[] = []
  /**
   * After a crash on a disk whose fsync may lie (config.restartedAfterCrash), until enough
   * voters have answered: what they told us. This node may have lost a vote it cast, a term
   * it reached and entries it acknowledged; a quorum counting on them could elect a leader
   * without a committed entry. So it casts no vote, acknowledges nothing and does not
   * campaign until every majority that could have counted on it has answered: all voters
   * but quorum - 1 of the others (both others in a group of three). Then `voteFloor` keeps
   * it from voting in any term it may have voted in, or for a log behind what it may have
   * acknowledged. The floor may be an entry that is never committed, on a node that is gone;
   * then no election succeeds: it costs availability, never a wrong answer.
   */
  private recovery: Map<NodeId, { term: number; lastIndex: number; lastTerm: number; voters: readonly NodeId[] }> | undefined
  private recoveryElapsed = 0
  private voteFloor: { term: number; lastIndex: number; lastTerm: number } | undefined

  get recovering(): boolean {
    return this.recovery !== undefined
  }

  constructor(config: Config, restored: Restored) {
    this.id = config.id
    this.config = config
    checkConfState(restored.snapshot.meta.confState)
    this.log = new RaftLog(restored.snapshot, restored.entries, restored.hardState.commit)
    this.term = restored.hardState.term
    this.vote = restored.hardState.vote
    this.conf = restored.snapshot.meta.confState
    this.becomeFollower(this.term, NONE)
    // A group of one has nobody to ask: a lost write there is lost. Any other member asks,
    // learners too: the write that made it a voter may be among those lost.
    if (config.restartedAfterCrash && !(this.conf.voters.length === 1 && this.conf.voters[0] === this.id)) {
      this.recovery = new Map()
      this.askRecovery()
    }
  }

  // ---- roles ----

  private reset(term: number): void {
    if (term !== this.term) {
      assert(term > this.term, 'terms only grow')
      this.term = term
      this.vote = NONE
    }
    this.lead = NONE
    this.electionElapsed = 0
    this.heartbeatElapsed = 0
    this.randomizedElectionTimeout = this.config.electionTimeoutTicks + this.config.randomInt(this.config.electionTimeoutTicks)
    this.leadTransferee = NONE
    this.votes.clear()
    this.resetProgress()
    this.pendingConfIndex = 0
    this.pendingReads.clear()
    this.pendingReadOrder.length = 0
    this.readsBeforeCommit = []
  }

  private resetProgress(): void {
    this.prs.clear()
    for (const id of members(this.conf)) {
      const pr = new Progress(this.log.lastIndex() + 1, this.conf.learners.includes(id))
      if (id === this.id) pr.match = this.log.lastIndex()
      this.prs.set(id, pr)
    }
  }

  becomeFollower(term: number, lead: NodeId): void {
    this.reset(term)
    this.lead = lead
    this.role = 'follower'
  }

  private becomePreCandidate(): void {
    assert(this.role !== 'leader', 'a leader does not pre-campaign')
    this.votes.clear()
    this.lead = NONE
    this.role = 'preCandidate'
  }

  private becomeCandidate(): void {
    assert(this.role !== 'leader', 'a leader does not campaign')
    this.reset(this.term + 1)
    this.vote = this.id
    this.role = 'candidate'
  }

  private becomeLeader(): void {
    assert(this.role === 'candidate', 'only a candidate becomes leader')
    this.reset(this.term)
    this.lead = this.id
    this.role = 'leader'
    // No membership change until everything before this term is applied (etcd: the
    // single-server change bug Ongaro describes needs the leader to commit first).
    this.pendingConfIndex = this.log.lastIndex()
    this.appendEntries([{ type: 'normal', data: new Uint8Array(0) }])
  }

  promotable(): boolean {
    return isVoter(this.conf, this.id)
  }

  /** A voter campaigns once recovered from a crash and holding every entry it may have acknowledged. */
  private mayCampaign(): boolean {
    const floor = this.voteFloor
    return this.recovery === undefined && this.promotable() && (floor === undefined || atLeastAsUpToDate(this.log.lastIndex(), this.log.lastTerm(), floor.lastIndex, floor.lastTerm))
  }

  // ---- recovery after a crash ----

  /** Asks every node we know of (members, and voters the answers named) that has not answered. */
  private askRecovery(): void {
    const heard = this.recovery
    assert(heard !== undefined, 'asks only while recovering')
    this.recoveryElapsed = 0
    const known = new Set(members(this.conf))
    for (const h of heard.values()) for (const id of h.voters) known.add(id)
    for (const id of known) {
      if (id !== this.id && !heard.has(id)) this.send({ type: 'recover', to: id, incarnation: this.config.incarnation })
    }
  }

  /**
   * Whether every majority that may have counted on us has answered: in each membership we
   * know of (ours, possibly stale after the loss, and each answer's) that has us as a voter,
   * all voters but quorum - 1 of the others. At least one answer in any case.
   */
  private recoveryHeardEnough(heard: ReadonlyMap<NodeId, { voters: readonly NodeId[] }>): boolean {
    if (heard.size === 0) return false
    for (const voters of [this.conf.voters, ...[...heard.values()].map((h) => h.voters)]) {
      if (!voters.includes(this.id)) continue
      const answered = voters.filter((id) => id !== this.id && heard.has(id)).length
      if (answered < voters.length - quorum(voters) + 1) return false
    }
    return true
  }

  private handleRecover(m: Extract<Message, { type: 'recover' }>): void {
    // Answered in any role and term, without taking the asker's term: it is a question. The
    // asker may have acknowledged what we have on disk, not what we have yet to write.
    const stable = this.log.lastStable()
    this.send({ type: 'recoverResp', to: m.from, incarnation: m.incarnation, lastIndex: stable.index, lastTerm: stable.term, voters: this.conf.voters })
    const pr = this.role === 'leader' ? this.prs.get(m.from) : undefined
    if (pr !== undefined && m.incarnation > pr.incarnation) pr.restarted(m.incarnation, this.log.lastIndex() + 1)
  }

  private handleRecoverResp(m: Extract<Message, { type: 'recoverResp' }>): void {
    const heard = this.recovery
    if (heard === undefined || m.incarnation !== this.config.incarnation || m.from === this.id) return
    heard.set(m.from, { term: m.term, lastIndex: m.lastIndex, lastTerm: m.lastTerm, voters: m.voters })
    if (!this.recoveryHeardEnough(heard)) return
    let floor = { term: 0, lastIndex: 0, lastTerm: 0 }
    for (const h of heard.values()) {
      const ahead = !atLeastAsUpToDate(floor.lastIndex, floor.lastTerm, h.lastIndex, h.lastTerm)
      floor = { term: Math.max(floor.term, h.term), lastIndex: ahead ? h.lastIndex : floor.lastIndex, lastTerm: ahead ? h.lastTerm : floor.lastTerm }
    }
    this.recovery = undefined
    this.voteFloor = floor
    if (floor.term > this.term) this.becomeFollower(floor.term, NONE)
    this.electionElapsed = 0
  }

  // ---- time ----

  tick(): void {
    if (this.recovery !== undefined) {
      if (++this.recoveryElapsed >= this.config.electionTimeoutTicks) this.askRecovery()
      return
    }
    if (this.role === 'leader') this.tickHeartbeat()
    else this.tickElection()
  }

  private tickElection(): void {
    this.electionElapsed++
    if (this.mayCampaign() && this.electionElapsed >= this.randomizedElectionTimeout) {
      this.electionElapsed = 0
      this.hup(this.config.preVote ? 'preElection' : 'election')
    }
  }

  private tickHeartbeat(): void {
    this.heartbeatElapsed++
    this.electionElapsed++
    for (const pr of this.prs.values()) pr.quietTicks++
    for (const [id, pr] of this.prs) {
      if (id !== this.id && pr.state === 'snapshot' && ++pr.snapshotTicks > this.config.electionTimeoutTicks) pr.becomeProbe()
    }
    if (this.electionElapsed >= this.config.electionTimeoutTicks) {
      this.electionElapsed = 0
      if (this.config.checkQuorum) {
        if (!this.quorumActive()) {
          this.becomeFollower(this.term, NONE)
          return
        }
        for (const [id, pr] of this.prs) if (id !== this.id) pr.recentActive = false
      }
      // A transfer that did not finish within an election timeout is abandoned (etcd).
      this.leadTransferee = NONE
    }
    if (this.heartbeatElapsed >= this.config.heartbeatTimeoutTicks) {
      this.heartbeatElapsed = 0
      this.bcastHeartbeat('')
    }
  }

  private quorumActive(): boolean {
    let active = 0
    for (const id of this.conf.voters) {
      if (id === this.id || this.prs.get(id)?.recentActive) active++
    }
    return active >= quorum(this.conf.voters)
  }

  // ---- elections ----

  private hasUnappliedConfChanges(): boolean {
    if (this.log.committed <= this.log.applied) return false
    const lo = Math.max(this.log.applied + 1, this.log.firstIndex())
    return this.log.slice(lo, this.log.committed + 1).some((e) => e.type === 'confChange')
  }

  hup(kind: CampaignKind): void {
    if (this.role === 'leader') return
    if (!this.mayCampaign()) return
    if (this.hasUnappliedConfChanges()) return
    this.campaign(kind)
  }

  private campaign(kind: CampaignKind): void {
    let voteTerm: number
    if (kind === 'preElection') {
      this.becomePreCandidate()
      voteTerm = this.term + 1
    } else {
      this.becomeCandidate()
      voteTerm = this.term
    }
    if (this.poll(this.id, true) === 'won') {
      if (kind === 'preElection') this.campaign('election')
      else this.becomeLeader()
      return
    }
    for (const id of this.conf.voters) {
      if (id === this.id) continue
      this.send({
        type: 'vote', to: id, term: voteTerm, pre: kind === 'preElection', lastIndex: this.log.lastIndex(),
        lastTerm: this.log.lastTerm(), transfer: kind === 'transfer',
      })
    }
  }

  private poll(id: NodeId, granted: boolean): 'won' | 'lost' | 'pending' {
    if (!this.votes.has(id)) this.votes.set(id, granted)
    let yes = 0
    let no = 0
    for (const voter of this.conf.voters) {
      const v = this.votes.get(voter)
      if (v === true) yes++
      else if (v === false) no++
    }
    const q = quorum(this.conf.voters)
    if (yes >= q) return 'won'
    if (this.conf.voters.length - no < q) return 'lost'
    return 'pending'
  }

  // ---- messages in ----

  step(m: Message): void {
    assert(m.to === this.id, 'a message reaches its addressee')
    if (m.type === 'recover') return this.handleRecover(m)
    if (m.type === 'recoverResp') return this.handleRecoverResp(m)
    // Recovering from a crash: nothing counts on us until enough voters have answered.
    if (this.recovery !== undefined) return
    if (m.type === 'vote' && m.term > this.term && !isVoter(this.conf, m.from) && !this.log.isUpToDate(m.lastIndex, m.lastTerm)) {
      // A node removed from the group (thesis §4.2.3) does not learn of it: nobody writes to
      // it any more. Once told a newer term it steps down, then campaigns in its old
      // membership; its term must not depose our leader each election timeout. Its log
      // lacks its removal, so it is behind ours: we would refuse it anyway. A candidate we
      // do not know as a voter but whose log is ahead of ours may hold an addNode we have
      // not applied yet, and may need our vote: it is answered as usual. Learners apply the
      // rule too: a learner raised to the removed node's term would reject the leader's
      // appends with it and depose the leader just the same.
      return
    }
    if (m.term > this.term) {
      if (m.type === 'vote') {
        // Check-quorum lease (thesis §4.2.3): ignore a vote while we hear from a leader.
        const inLease = this.config.checkQuorum && this.lead !== NONE && this.electionElapsed < this.config.electionTimeoutTicks
        if (!m.transfer && inLease) return
      }
      const keepTerm = (m.type === 'vote' && m.pre) || (m.type === 'voteResp' && m.pre && !m.reject)
      if (!keepTerm) {
        const fromLeader = m.type === 'app' || m.type === 'heartbeat' || m.type === 'snap'
        this.becomeFollower(m.term, fromLeader ? m.from : NONE)
      }
    } else if (m.term < this.term) {
      if (m.type === 'app' || m.type === 'heartbeat' || m.type === 'readIndex') {
        // Tell a stale leader about our term, so that it steps down (Raft §5.1: a reply
        // carries the current term). etcd answers only with check-quorum or pre-vote on;
        // without them the simulator found a leader that was partitioned away and then
        // removed from the membership: the new leader no longer writes to it, nobody
        // answered its heartbeats, and it led its own stale term forever. A removed
        // follower forwarding reads to its old leader learns the term the same way, and
        // stops taking reads it can only lose.
        this.send({ type: 'appResp', to: m.from, index: 0, reject: false, hint: 0, incarnation: this.config.incarnation })
      } else if (m.type === 'vote') {
        // Raft §5.1: answer a stale candidate with our term. etcd answers only pre-votes;
        // the simulator found the livelock that leaves: without pre-vote, a member with a
        // stale membership kept raising the others' terms, while the one node able to win
        // campaigned at lower terms, was ignored, and never learned the current term.
        this.send({ type: 'voteResp', to: m.from, pre: m.pre, reject: true })
      }
      return
    }
    if (m.type === 'vote') {
      this.handleVote(m)
      return
    }
    switch (this.role) {
      case 'leader':
        this.stepLeader(m)
        break
      case 'candidate':
      case 'preCandidate':
        this.stepCandidate(m)
        break
      case 'follower':
        this.stepFollower(m)
        break
      default:
        unreachable(this.role, 'role')
    }
  }

  private handleVote(m: Extract<Message, { type: 'vote' }>): void {
    const canVote = this.vote === m.from || (this.vote === NONE && this.lead === NONE) || (m.pre && m.term > this.term)
    const floor = this.voteFloor
    const aboveFloor = floor === undefined || (m.term > floor.term && atLeastAsUpToDate(m.lastIndex, m.lastTerm, floor.lastIndex, floor.lastTerm))
    if (canVote && aboveFloor && this.log.isUpToDate(m.lastIndex, m.lastTerm)) {
      this.send({ type: 'voteResp', to: m.from, term: m.term, pre: m.pre, reject: false })
      if (!m.pre) {
        this.electionElapsed = 0
        this.vote = m.from
      }
    } else {
      this.send({ type: 'voteResp', to: m.from, pre: m.pre, reject: true })
      // Refused only because we voted for ourselves in this term, to a candidate whose log is
      // at least as good: let it go first next time. Without pre-vote the simulator found two
      // candidates whose elections always ended in the same order (seed 32966: the one that
      // could never win, its log behind a voter's, timed out first every round and took the
      // vote the other one needed). Timing only: safety does not depend on it.
      if (!m.pre && m.term === this.term && this.vote === this.id && this.role !== 'leader' && aboveFloor && this.log.isUpToDate(m.lastIndex, m.lastTerm)) {
        this.electionElapsed = 0
        this.randomizedElectionTimeout = 2 * this.config.electionTimeoutTicks + this.config.randomInt(this.config.electionTimeoutTicks)
      }
    }
  }

  private stepFollower(m: Message): void {
    switch (m.type) {
      case 'app':
      case 'heartbeat':
      case 'snap':
        this.electionElapsed = 0
        this.lead = m.from
        this.handleFromLeader(m)
        break
      case 'timeoutNow':
        this.hup('transfer')
        break
      case 'readIndexResp':
        this.readStates.push({ index: m.index, context: m.context })
        break
      case 'readIndex':
        // Reads go to the leader; a follower got one meant for an old leader: dropped, the asker retries.
        break
      case 'voteResp':
      case 'appResp':
      case 'heartbeatResp':
      case 'vote':
      case 'recover':
      case 'recoverResp':
        // Answers to a candidacy or a leadership we no longer have (votes were handled in step).
        break
      default:
        unreachable(m, 'message')
    }
  }

  private stepCandidate(m: Message): void {
    switch (m.type) {
      case 'app':
      case 'heartbeat':
      case 'snap':
        // A leader of our term exists: we lost this election.
        this.becomeFollower(m.term, m.from)
        this.handleFromLeader(m)
        break
      case 'voteResp': {
        if (m.pre !== (this.role === 'preCandidate')) break
        const result = this.poll(m.from, !m.reject)
        if (result === 'won') {
          if (this.role === 'preCandidate') this.campaign('election')
          else {
            this.becomeLeader()
            this.bcastAppend()
          }
        } else if (result === 'lost') {
          this.becomeFollower(this.term, NONE)
        }
        break
      }
      case 'timeoutNow':
        // Already campaigning.
        break
      case 'readIndex':
      case 'readIndexResp':
        // No leader to ask or to trust: the read is dropped and the asker retries.
        break
      case 'appResp':
      case 'heartbeatResp':
      case 'vote':
      case 'recover':
      case 'recoverResp':
        break
      default:
        unreachable(m, 'message')
    }
  }

  private stepLeader(m: Message): void {
    const pr = this.prs.get(m.from)
    switch (m.type) {
      case 'appResp':
        if (pr === undefined) break
        if (m.index > this.log.lastIndex()) {
          this.violation(`leader ${this.id} got appResp from ${m.from} at ${m.index}, past its last entry ${this.log.lastIndex()}`)
          break
        }
        // From before the follower's restart: what it acknowledged then may be lost.
        if (m.incarnation < pr.incarnation) break
        if (m.incarnation > pr.incarnation) pr.restarted(m.incarnation, this.log.lastIndex() + 1)
        pr.recentActive = true
        pr.quietTicks = 0
        if (m.reject) {
          if (pr.maybeDecrTo(m.index, m.hint)) {
            if (pr.state === 'replicate') pr.becomeProbe()
            this.maybeSendAppend(m.from, true)
          }
          break
        }
        {
          const wasPaused = pr.isPaused(this.config.inflightCountMax)
          if (!pr.maybeUpdate(m.index)) break
          if (pr.state === 'probe') pr.becomeReplicate()
          else if (pr.state === 'snapshot' && pr.match >= pr.pendingSnapshot) {
            pr.becomeProbe()
            pr.becomeReplicate()
          } else if (pr.state === 'replicate') pr.freeLE(m.index)
          if (this.maybeCommit()) this.bcastAppend()
          else if (wasPaused) this.maybeSendAppend(m.from, true) // it may have missed the commit index
          while (this.maybeSendAppend(m.from, false));
          if (m.from === this.leadTransferee && pr.match === this.log.lastIndex()) this.send({ type: 'timeoutNow', to: m.from })
        }
        break
      case 'heartbeatResp':
        if (pr === undefined) break
        pr.recentActive = true
        pr.quietTicks = 0
        pr.probeSent = false
        // Appends in a full window may all have been lost: free one slot per heartbeat so
        // replication resumes (etcd FreeFirstOne); a gap makes the follower reject and probe.
        if (pr.state === 'replicate' && pr.inflights.length >= this.config.inflightCountMax) pr.inflights.shift()
        // Resend even an empty append: if the last appends were lost, the follower answers
        // with a rejection that sends us back to probing (etcd sendAppend on heartbeat).
        if (pr.match < this.log.lastIndex()) this.maybeSendAppend(m.from, true)
        if (m.context !== '') this.ackRead(m.context, m.from)
        break
      case 'readIndex':
        this.handleReadIndex(m.context, m.from)
        break
      case 'app':
      case 'heartbeat':
      case 'snap':
        // Another leader in our own term would break election safety.
        this.violation(`leader ${this.id} got ${m.type} from ${m.from} in its own term ${this.term}`)
        break
      case 'voteResp':
      case 'timeoutNow':
      case 'readIndexResp':
      case 'vote':
      case 'recover':
      case 'recoverResp':
        break
      default:
        unreachable(m, 'message')
    }
  }

  /** A message no correct peer sends: dropped and told (config.dropped), or, with no one to tell, a failed assertion. */
  private violation(why: string): void {
    if (this.config.dropped === undefined) assert(false, why)
    this.config.dropped(why)
  }

  private handleFromLeader(m: Extract<Message, { type: 'app' | 'heartbeat' | 'snap' }>): void {
    switch (m.type) {
      case 'app':
        return this.handleAppend(m)
      case 'heartbeat':
        return this.handleHeartbeat(m)
      case 'snap':
        return this.handleSnapshot(m)
      default:
        unreachable(m, 'message from a leader')
    }
  }

  private handleAppend(m: Extract<Message, { type: 'app' }>): void {
    if (m.prevIndex < this.log.committed) {
      this.send({ type: 'appResp', to: m.from, index: this.log.committed, reject: false, hint: 0, incarnation: this.config.incarnation })
      return
    }
    const last = this.log.maybeAppend(m.prevIndex, m.prevTerm, m.commit, m.entries)
    if (last !== undefined) {
      this.send({ type: 'appResp', to: m.from, index: last, reject: false, hint: 0, incarnation: this.config.incarnation })
      return
    }
    // Skip our entries whose term exceeds prevTerm: none of them can match the leader's
    // log below prevIndex (etcd findConflictByTerm), so probing does not crawl back one by one.
    let hint = Math.min(m.prevIndex - 1, this.log.lastIndex())
    while (hint > this.log.committed && (this.log.term(hint) ?? 0) > m.prevTerm) hint--
    this.send({ type: 'appResp', to: m.from, index: m.prevIndex, reject: true, hint, incarnation: this.config.incarnation })
  }

  private handleHeartbeat(m: Extract<Message, { type: 'heartbeat' }>): void {
    // A leader sends at most what we hold (etcd: min(match, committed)).
    if (m.commit > this.log.lastIndex()) return this.violation(`${this.id} got heartbeat from ${m.from} committing ${m.commit}, past its last entry ${this.log.lastIndex()}`)
    this.log.commitTo(m.commit)
    this.send({ type: 'heartbeatResp', to: m.from, context: m.context })
  }

  private handleSnapshot(m: Extract<Message, { type: 'snap' }>): void {
    const meta = m.snapshot.meta
    if (meta.index <= this.log.committed) {
      this.send({ type: 'appResp', to: m.from, index: this.log.committed, reject: false, hint: 0, incarnation: this.config.incarnation })
      return
    }
    if (this.log.matchTerm(meta.index, meta.term)) {
      this.log.commitTo(meta.index)
      this.send({ type: 'appResp', to: m.from, index: this.log.committed, reject: false, hint: 0, incarnation: this.config.incarnation })
      return
    }
    checkConfState(meta.confState)
    this.log.restore(m.snapshot)
    this.conf = meta.confState
    this.resetProgress()
    this.send({ type: 'appResp', to: m.from, index: this.log.lastIndex(), reject: false, hint: 0, incarnation: this.config.incarnation })
  }

  // ---- replication (leader) ----

  private appendEntries(entries: readonly { type: EntryType; data: Uint8Array }[]): void {
    let index = this.log.lastIndex()
    const stamped: Entry[] = entries.map((e) => ({ term: this.term, index: ++index, type: e.type, data: e.data }))
    this.log.truncateAndAppend(stamped)
    this.prs.get(this.id)?.maybeUpdate(this.log.lastIndex())
    this.maybeCommit()
  }

  /** Raft §5.4.2: commit the quorum's match index, but only an entry of our own term. */
  private maybeCommit(): boolean {
    const matches = this.conf.voters.map((id) => this.prs.get(id)?.match ?? 0).sort((a, b) => b - a)
    const index = matches[quorum(this.conf.voters) - 1]
    if (index <= this.log.committed || this.log.term(index) !== this.term) return false
    this.log.commitTo(index)
    this.releaseReadsBeforeCommit()
    return true
  }

  private bcastAppend(): void {
    for (const id of this.prs.keys()) if (id !== this.id) this.maybeSendAppend(id, true)
  }

  /** Sends the next append (or the snapshot) to `to`; false when flow control holds it back. */
  private maybeSendAppend(to: NodeId, sendIfEmpty: boolean): boolean {
    const pr = this.prs.get(to)
    if (pr === undefined || pr.isPaused(this.config.inflightCountMax)) return false
    const prevIndex = pr.next - 1
    const prevTerm = this.log.term(prevIndex)
    if (prevTerm === undefined || pr.next < this.log.firstIndex()) {
      if (pr.next > this.log.lastIndex() + 1) return false
      const snapshot = this.log.snapshot
      this.send({ type: 'snap', to, snapshot })
      pr.becomeSnapshot(snapshot.meta.index)
      return true
    }
    const entries = this.log.slice(pr.next, this.log.lastIndex() + 1, this.config.appendEntriesCountMax, this.config.appendBytesMax)
    if (entries.length === 0 && !sendIfEmpty) return false
    this.send({ type: 'app', to, prevIndex, prevTerm, entries, commit: this.log.committed })
    pr.sentEntries(prevIndex + entries.length, entries.length)
    return true
  }

  private bcastHeartbeat(context: string): void {
    for (const [id, pr] of this.prs) {
      if (id === this.id) continue
      this.send({ type: 'heartbeat', to: id, commit: Math.min(pr.match, this.log.committed), context })
    }
  }

  // ---- proposals ----

  propose(type: EntryType, data: Uint8Array): ProposeResult {
    if (this.role !== 'leader') return { ok: false, reason: 'notLeader', leader: this.lead }
    if (this.leadTransferee !== NONE) return { ok: false, reason: 'transferring', leader: this.lead }
    if (data.byteLength > RAFT_PROPOSAL_BYTES_MAX) return { ok: false, reason: 'tooLarge', leader: this.lead }
    if (this.log.lastIndex() - this.log.committed >= RAFT_UNCOMMITTED_ENTRIES_COUNT_MAX) return { ok: false, reason: 'busy', leader: this.lead }
    if (type === 'confChange') {
      if (this.pendingConfIndex > this.log.applied) return { ok: false, reason: 'confPending', leader: this.lead }
      if (!this.confChangeValid(decodeConfChange(data))) return { ok: false, reason: 'badConfChange', leader: this.lead }
    }
    this.appendEntries([{ type, data }])
    if (type === 'confChange') this.pendingConfIndex = this.log.lastIndex()
    // Broadcast once per Ready, not once per proposal: proposals made between two Readies
    // travel in the same append messages (RawNode.ready calls flushProposals).
    this.proposalsToSend = true
    return { ok: true, index: this.log.lastIndex(), term: this.term }
  }

  /** Sends appends for proposals accepted since the last call. */
  flushProposals(): void {
    if (!this.proposalsToSend) return
    this.proposalsToSend = false
    if (this.role === 'leader') this.bcastAppend()
  }

  private confChangeValid(cc: ConfChange): boolean {
    const all = members(this.conf)
    switch (cc.type) {
      case 'addNode':
        return !this.conf.voters.includes(cc.nodeId) && (all.includes(cc.nodeId) || all.length < RAFT_NODE_COUNT_MAX)
      case 'addLearner':
        return !all.includes(cc.nodeId) && all.length < RAFT_NODE_COUNT_MAX
      case 'removeNode':
        return all.includes(cc.nodeId) && !(this.conf.voters.length === 1 && this.conf.voters[0] === cc.nodeId)
      default:
        return unreachable(cc.type, 'conf change type')
    }
  }

  /** Called as a committed membership change is applied (etcd applyConfChange). */
  applyConfChange(cc: ConfChange): void {
    const voters = this.conf.voters.filter((id) => id !== cc.nodeId)
    const learners = this.conf.learners.filter((id) => id !== cc.nodeId)
    if (cc.type === 'addNode') voters.push(cc.nodeId)
    else if (cc.type === 'addLearner') learners.push(cc.nodeId)
    this.conf = { voters, learners }
    checkConfState(this.conf)
    if (this.role !== 'leader') return
    for (const id of [...this.prs.keys()]) if (!members(this.conf).includes(id)) this.prs.delete(id)
    for (const id of members(this.conf)) {
      const pr = this.prs.get(id)
      if (pr === undefined) this.prs.set(id, new Progress(this.log.lastIndex() + 1, learners.includes(id)))
      else pr.isLearner = learners.includes(id)
    }
    if (!this.promotable()) {
      // A leader removed from the group steps down; the rest elect a new one.
      this.becomeFollower(this.term, NONE)
      return
    }
    if (this.leadTransferee !== NONE && !voters.includes(this.leadTransferee)) this.leadTransferee = NONE
    if (this.maybeCommit()) this.bcastAppend()
  }

  // ---- leadership transfer (thesis §3.10) ----

  transferLeadership(to: NodeId): boolean {
    if (this.role !== 'leader' || to === this.id || !isVoter(this.conf, to)) return false
    const pr = this.prs.get(to)
    assert(pr !== undefined, 'a voter has progress')
    this.leadTransferee = to
    this.electionElapsed = 0
    if (pr.match === this.log.lastIndex()) this.send({ type: 'timeoutNow', to })
    else this.maybeSendAppend(to, true)
    return true
  }

  // ---- ReadIndex (thesis §6.4) ----

  readIndex(context: string): boolean {
    assert(context !== '', 'a read context is not empty')
    if (this.role === 'leader') return this.handleReadIndex(context, this.id)
    if (this.lead === NONE) return false
    this.send({ type: 'readIndex', to: this.lead, context })
    return true
  }

  private handleReadIndex(context: string, from: NodeId): boolean {
    if (this.conf.voters.length === 1 && this.conf.voters[0] === this.id) {
      this.answerRead(this.log.committed, context, from)
      return true
    }
    if (this.pendingReads.size + this.readsBeforeCommit.length >= RAFT_READ_INDEX_PENDING_COUNT_MAX) return false
    // The network may deliver a follower's request twice: it is one read.
    if (this.pendingReads.has(context)) return true
    if (this.log.term(this.log.committed) !== this.term) {
      this.readsBeforeCommit.push({ context, from })
      return true
    }
    this.pendingReads.set(context, { index: this.log.committed, from, acks: new Set([this.id]) })
    this.pendingReadOrder.push(context)
    this.bcastHeartbeat(context)
    return true
  }

  private releaseReadsBeforeCommit(): void {
    const waiting = this.readsBeforeCommit
    this.readsBeforeCommit = []
    for (const r of waiting) this.handleReadIndex(r.context, r.from)
  }

  private ackRead(context: string, from: NodeId): void {
    const read = this.pendingReads.get(context)
    if (read === undefined) return
    read.acks.add(from)
    const acked = this.conf.voters.filter((id) => read.acks.has(id)).length
    if (acked < quorum(this.conf.voters)) return
    // A quorum heard us after this read arrived: it and every earlier read are answered.
    const upTo = this.pendingReadOrder.indexOf(context)
    for (const ctx of this.pendingReadOrder.splice(0, upTo + 1)) {
      const r = this.pendingReads.get(ctx)
      assert(r !== undefined, 'queued reads are pending')
      this.pendingReads.delete(ctx)
      this.answerRead(r.index, ctx, r.from)
    }
  }

  private answerRead(index: number, context: string, from: NodeId): void {
    if (from === this.id) this.readStates.push({ index, context })
    else this.send({ type: 'readIndexResp', to: from, index, context })
  }

  // ---- out ----

  private send(m: Outgoing): void {
    this.msgs.push({ ...m, from: this.id, term: m.term ?? this.term } as Message)
  }
}
