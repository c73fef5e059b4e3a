/** @module
 * Operating a replicated service's Raft group (`o3 admin om|scm roles|transfer|add|remove`):
 * each node's role, leadership transfer, and one-server-at-a-time membership changes with
 * the members' addresses replicated (members.ts). Adding follows etcd's learner flow: the
 * book entry, then the node as a learner (it receives a snapshot and the log, counts in no
 * quorum), then, once it has caught up, a voter. RPC handlers for the OM and the SCM.
 */
import { O3Error } from '../../core/errors.ts'
import type { ConfChange, NodeId } from '../../core/raft/index.ts'
import { GROUP_CATCHUP_LAG_ENTRIES_MAX, GROUP_CATCHUP_WAIT_MS, GROUP_CONF_PENDING_WAIT_MS, GROUP_TRANSFER_QUIET_TIMEOUTS, GROUP_TRANSFER_WAIT_MS } from './limits.ts'
import { SET_MEMBERS_REQUEST, type MemberRecord } from './members.ts'
import { parseGroup } from './nodes.ts'
import type { ReplicatedService } from './replicated-service.ts'

const NAME = /^[A-Za-z][\w-]{0,31}$/

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms))
}

export class GroupAdmin {
  /**
   * `service`: OM or SCM (messages); `prefix`: om or scm (settings, commands); `self`: this
   * node's service and Raft address (a group of one has them in no setting).
   */
  constructor(
    private readonly ha: ReplicatedService,
    private readonly service: string,
    private readonly prefix: string,
    private readonly self: () => { address: string; raftAddress: string },
  ) {}

  /**
   * The RPC handlers every member serves; with `membership`, adding and removing members
   * too (the OM: its clients follow NOT_LEADER hints; the SCM's datanodes know their SCMs
   * from their settings only, so the SCM does not offer it).
   */
  handlers(membership: boolean): Record<string, (a: Record<string, unknown>) => unknown> {
    const base = {
      roles: () => [{ ...this.ha.role(), address: this.self().address }],
      transferLeadership: (a: Record<string, unknown>) => this.transfer(a.target),
    }
    if (!membership) return base
    return {
      ...base,
      groupMembers: () => ({ members: this.groupMembers() }),
      addMember: (a: Record<string, unknown>) => this.add(a.node),
      removeMember: (a: Record<string, unknown>) => this.remove(a.name),
    }
  }

  /** What a joining node asks any member: everyone it may have to talk to, newest ids last. */
  groupMembers(): MemberRecord[] {
    return this.records().filter((m) => m.raftAddress !== '').sort((a, b) => a.id - b.id)
  }

  /** The book, with this node's own addresses filled in where no setting gave them (a group of one). */
  private records(): MemberRecord[] {
    return this.ha.knownMembers().map((m) => (m.id === this.ha.id && m.raftAddress === '' ? { ...m, ...this.self() } : m))
  }

  private current(): { voters: readonly NodeId[]; learners: readonly NodeId[]; all: NodeId[] } {
    const { voters, learners } = this.ha.raft.status().confState
    return { voters, learners, all: [...voters, ...learners] }
  }

  /** The current member called `name` (the newest id, should a removed one have had the name too). */
  private member(name: string, among: readonly NodeId[]): MemberRecord | undefined {
    return this.records().filter((m) => m.name === name && among.includes(m.id)).sort((a, b) => b.id - a.id)[0]
  }

  private names(ids: readonly NodeId[]): string {
    const records = this.records()
    return ids.map((id) => records.find((m) => m.id === id)?.name ?? `n${id}`).join(', ')
  }

  private checkName(what: string, name: unknown): string {
    if (typeof name !== 'string' || !NAME.test(name)) throw new O3Error('INVALID_ARGUMENT', `Cannot ${what}: ${JSON.stringify(name)} is not a node name like ${this.prefix}2`)
    return name
  }

  /** Hands leadership to `target` (thesis §3.10) and waits until it leads, or fails after a bound (within a few election timeouts when it stopped answering). */
  async transfer(target: unknown): Promise<{ leader: string; term: number }> {
    const name = this.checkName('transfer leadership', target)
    this.ha.requireLeader(`transfer leadership to ${name}`)
    const { voters } = this.current()
    const to = this.member(name, voters)
    if (to === undefined) throw new O3Error('INVALID_ARGUMENT', `Cannot transfer leadership to ${name}: not a voter of the ${this.service} group (voters: ${this.names(voters)})`)
    const deadline = Date.now() + GROUP_TRANSFER_WAIT_MS
    let askedAt = 0
    for (;;) {
      const s = this.ha.raft.status()
      if (s.leader === to.id) return { leader: name, term: s.hardState.term }
      // The core drops a transfer that did not finish in an election timeout: ask again, but
      // only a target that still answers the leader. While a transfer is pending the leader
      // takes no writes: asking a stopped node again and again stalled every write for the
      // whole wait. (A busy machine delays answers by ticks: the bound is a few timeouts.)
      if (s.role === 'leader' && s.leadTransferee === 0 && Date.now() - askedAt >= 100) {
        const quiet = this.ha.raft.progress().find((p) => p.id === to.id)?.quietTicks ?? 0
        if (askedAt > 0 && quiet > GROUP_TRANSFER_QUIET_TIMEOUTS * this.ha.raft.electionTimeoutTicks) {
          throw new O3Error('UNAVAILABLE', `Cannot transfer leadership to ${name}: it has not answered the leader for ${quiet} ticks (${GROUP_TRANSFER_QUIET_TIMEOUTS} election timeouts: stopped or cut off?)`)
        }
        this.ha.raft.transferLeadership(to.id)
        askedAt = Date.now()
      }
      if (Date.now() > deadline) {
        const now = s.leader === 0 ? 'none' : this.names([s.leader])
        throw new O3Error('TIMEOUT', `Cannot transfer leadership to ${name}: it did not take over within ${GROUP_TRANSFER_WAIT_MS} ms (leader now: ${now})`)
      }
      await sleep(20)
    }
  }

  /**
   * Adds `node` (`name@host:port:raftPort`): records it, makes it a learner, waits until it
   * has caught up, makes it a voter. Run again after a failure, it resumes where it stopped.
   */
  async add(spec: unknown): Promise<{ id: NodeId; name: string; voter: true }> {
    if (typeof spec !== 'string') throw new O3Error('INVALID_ARGUMENT', `Cannot add a member: expected name@host:port:raftPort, not ${JSON.stringify(spec)}`)
    const parsed = parseGroup('node', spec)
    if (parsed.length !== 1) throw new O3Error('INVALID_ARGUMENT', `Cannot add ${JSON.stringify(spec)}: one member at a time`)
    const node = parsed[0]
    const what = `add ${node.name} to the ${this.service} group`
    this.ha.requireLeader(what)
    const { voters, all } = this.current()
    const existing = this.member(node.name, all)
    if (existing !== undefined && voters.includes(existing.id)) throw new O3Error('INVALID_ARGUMENT', `Cannot ${what}: it is a voter already`)
    if (existing !== undefined && (existing.address !== node.address || existing.raftAddress !== node.raftAddress)) {
      throw new O3Error('INVALID_ARGUMENT', `Cannot ${what}: it is a learner at ${existing.address} (raft ${existing.raftAddress}) already; remove it first to move it`)
    }
    const records = this.records()
    for (const m of records) {
      if (!all.includes(m.id) || m.name === node.name) continue
      if (m.address === node.address || m.raftAddress === node.raftAddress) throw new O3Error('INVALID_ARGUMENT', `Cannot ${what}: ${m.name} has address ${m.address} (raft ${m.raftAddress})`)
    }
    let id = existing?.id
    if (id === undefined) {
      // An add that stopped between its book entry and the learner resumes with the id the
      // new node may have taken already. Otherwise a new id: ids are never reused, so a
      // removed member's old messages do not count for a new one.
      const pending = this.ha.recordedMembers()
        .filter((m) => m.name === node.name && m.removed !== true && !all.includes(m.id) && m.address === node.address && m.raftAddress === node.raftAddress)
        .sort((a, b) => b.id - a.id)[0]
      id = pending?.id ?? Math.max(0, ...records.map((m) => m.id), ...all) + 1
      await this.recordGroup(what, pending ?? { id, name: node.name, address: node.address, raftAddress: node.raftAddress })
      await this.changeMembership(what, { type: 'addLearner', nodeId: id })
    }
    await this.caughtUp(what, id, node.name)
    await this.changeMembership(what, { type: 'addNode', nodeId: id })
    return { id, name: node.name, voter: true }
  }

  /** Removes member `name`; the leader removing itself steps down once the change is applied. */
  async remove(target: unknown): Promise<{ id: NodeId; name: string; removed: true }> {
    const name = this.checkName('remove a member', target)
    const what = `remove ${name} from the ${this.service} group`
    this.ha.requireLeader(what)
    const { voters, all } = this.current()
    const m = this.member(name, all)
    if (m === undefined) throw new O3Error('INVALID_ARGUMENT', `Cannot ${what}: not a member (members: ${this.names(all)})`)
    if (voters.length === 1 && voters[0] === m.id) throw new O3Error('INVALID_ARGUMENT', `Cannot ${what}: it is the last voter; a group needs one`)
    // Marked first: once removed, a leader removing itself can write nothing more.
    await this.recordGroup(what, { ...m, removed: true })
    await this.changeMembership(what, { type: 'removeNode', nodeId: m.id })
    return { id: m.id, name, removed: true }
  }

  /**
   * Makes the replicated book hold every current member (and `extra`): the founders are
   * known from their settings only until the first change writes them down; from then on
   * a restarted node, a new one and a snapshot all carry the whole group.
   */
  private async recordGroup(what: string, extra?: MemberRecord): Promise<void> {
    const recorded = new Map(this.ha.recordedMembers().map((m) => [m.id, m]))
    const records = this.records()
    const missing: MemberRecord[] = []
    for (const id of this.current().all) {
      if (id === extra?.id) continue
      const m = records.find((r) => r.id === id)
      if (m === undefined || m.raftAddress === '') throw new O3Error('INVALID_ARGUMENT', `Cannot ${what}: member ${id}'s address is unknown (set ${this.prefix}.nodes on every member)`)
      const had = recorded.get(id)
      if (had === undefined || had.address !== m.address || had.raftAddress !== m.raftAddress) missing.push(m)
    }
    const had = extra === undefined ? undefined : recorded.get(extra.id)
    if (extra !== undefined && (had === undefined || had.removed !== extra.removed || had.address !== extra.address || had.raftAddress !== extra.raftAddress)) missing.push(extra)
    if (missing.length > 0) await this.ha.submit(SET_MEMBERS_REQUEST, { records: missing })
  }

  /** Proposes `change` and waits until it is applied here; waits out an earlier change still pending. */
  private async changeMembership(what: string, change: ConfChange): Promise<void> {
    const deadline = Date.now() + GROUP_CONF_PENDING_WAIT_MS
    for (;;) {
      this.ha.requireLeader(what)
      try {
        await this.ha.raft.changeMembership(change)
        return
      } catch (err) {
        if (!(err instanceof O3Error)) throw err
        if (err.code === 'NOT_LEADER') this.ha.requireLeader(what)
        if (err.code !== 'UNAVAILABLE' || Date.now() > deadline) throw new O3Error(err.code, `Cannot ${what}: ${err.message}`)
      }
      await sleep(50)
    }
  }

  /** Waits until the leader has replicated to learner `id` all but a few entries of its log. */
  private async caughtUp(what: string, id: NodeId, name: string): Promise<void> {
    const deadline = Date.now() + GROUP_CATCHUP_WAIT_MS
    for (;;) {
      this.ha.requireLeader(what)
      const match = this.ha.raft.progress().find((p) => p.id === id)?.match ?? 0
      const commit = this.ha.raft.status().hardState.commit
      if (match > 0 && commit - match <= GROUP_CATCHUP_LAG_ENTRIES_MAX) return
      if (Date.now() > deadline) {
        throw new O3Error('TIMEOUT', `Cannot ${what}: it did not catch up within ${GROUP_CATCHUP_WAIT_MS} ms (it holds entry ${match} of ${commit}). ` +
          `It stays a learner: start it with ${this.prefix}.bootstrap=1 and its ${this.prefix}.nodes listing the group, then run add again; or remove it`)
      }
      await sleep(50)
    }
  }
}
