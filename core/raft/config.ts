/** @module
 * The settings of one Raft node and their validation (etcd Config.validate), plus the
 * quorum arithmetic over a membership. Pure: no I/O, no clock, no `Math.random`: election
 * jitter comes from the `randomInt` source the caller passes in.
 */
import { assert } from '../assert.ts'
import {
  RAFT_APPEND_BYTES_MAX, RAFT_APPEND_ENTRIES_COUNT_MAX, RAFT_ELECTION_TIMEOUT_TICKS_DEFAULT, RAFT_ELECTION_TIMEOUT_TICKS_MAX,
  RAFT_ELECTION_TIMEOUT_TICKS_MIN, RAFT_INFLIGHT_COUNT_MAX,
} from './limits.ts'
import { NONE, type ConfState, type NodeId } from './types.ts'

export interface Config {
  readonly id: NodeId
  /** Ticks without a leader before a follower campaigns (randomized in [t, 2t)). */
  readonly electionTimeoutTicks: number
  /** Ticks between a leader's heartbeats; less than the election timeout. */
  readonly heartbeatTimeoutTicks: number
  /** Pre-vote (thesis §9.6): ask before bumping the term, so a rejoining node does not disrupt. */
  readonly preVote: boolean
  /** A leader steps down when it has not heard from a quorum for an election timeout. */
  readonly checkQuorum: boolean
  /** Append messages in flight per follower (flow control); 1 disables pipelining. */
  readonly inflightCountMax: number
  /** Entries per append message; 1 disables batching. */
  readonly appendEntriesCountMax: number
  readonly appendBytesMax: number
  /** The seeded source of election jitter: an integer in [0, maxExclusive). */
  readonly randomInt: (maxExclusive: number) => number
  /**
   * The host restarts this node after a crash on a disk whose fsync may lie (a volatile write
   * cache): writes reported durable may be lost, so the node takes no part in votes or
   * quorums until it has heard from enough voters (see Raft.recovery). Hosts that trust
   * fsync, as etcd and Ratis do, leave it off: the recovery can cost availability.
   */
  readonly restartedAfterCrash: boolean
  /** Grows with every start of this node (a boot counter or clock); tags its append answers. */
  readonly incarnation: number
  /**
   * A message no correct peer sends (another leader in our term, a commit past our log, an
   * acknowledgement past a leader's log; an append below the commit index is answered with
   * it, so none rewrites a committed entry): with this
   * set, the message is dropped and this is told why (a host on a network where anyone may
   * send, which logs it); unset, it is an assertion failure (the simulator and tests, where
   * only our own code sends, and such a message is a bug to catch).
   */
  readonly dropped?: (why: string) => void
}

export type ConfigOptions = Pick<Config, 'id' | 'randomInt'> & Partial<Omit<Config, 'id' | 'randomInt'>>

/** Fills defaults and checks every field; throws RangeError on a bad value. */
export function makeConfig(options: ConfigOptions): Config {
  const config: Config = {
    electionTimeoutTicks: RAFT_ELECTION_TIMEOUT_TICKS_DEFAULT,
    heartbeatTimeoutTicks: 1,
    preVote: true,
    checkQuorum: true,
    inflightCountMax: RAFT_INFLIGHT_COUNT_MAX,
    appendEntriesCountMax: RAFT_APPEND_ENTRIES_COUNT_MAX,
    appendBytesMax: RAFT_APPEND_BYTES_MAX,
    restartedAfterCrash: false,
    incarnation: 0,
    // An option left undefined keeps its default.
    ...(Object.fromEntries(Object.entries(options).filter(([, v]) => v !== undefined)) as ConfigOptions),
  }
  const positiveInt = (v: number, max: number, name: string) => {
    if (!Number.isSafeInteger(v) || v < 1 || v > max) throw new RangeError(`Cannot configure raft: ${name} ${v} is not in [1, ${max}]`)
  }
  positiveInt(config.id, Number.MAX_SAFE_INTEGER, 'id')
  positiveInt(config.electionTimeoutTicks, RAFT_ELECTION_TIMEOUT_TICKS_MAX, 'electionTimeoutTicks')
  if (config.electionTimeoutTicks < RAFT_ELECTION_TIMEOUT_TICKS_MIN) throw new RangeError(`Cannot configure raft: electionTimeoutTicks ${config.electionTimeoutTicks} is below ${RAFT_ELECTION_TIMEOUT_TICKS_MIN}`)
  positiveInt(config.heartbeatTimeoutTicks, config.electionTimeoutTicks - 1, 'heartbeatTimeoutTicks')
  positiveInt(config.inflightCountMax, RAFT_INFLIGHT_COUNT_MAX, 'inflightCountMax')
  positiveInt(config.appendEntriesCountMax, RAFT_APPEND_ENTRIES_COUNT_MAX, 'appendEntriesCountMax')
  positiveInt(config.appendBytesMax, RAFT_APPEND_BYTES_MAX, 'appendBytesMax')
  if (!Number.isSafeInteger(config.incarnation) || config.incarnation < 0) throw new RangeError(`Cannot configure raft: incarnation ${config.incarnation} is not a non-negative integer`)
  return config
}

/** Votes needed among `voters` (a strict majority). */
export function quorum(voters: readonly NodeId[]): number {
  return Math.floor(voters.length / 2) + 1
}

export function isVoter(conf: ConfState, id: NodeId): boolean {
  return conf.voters.includes(id)
}

export function members(conf: ConfState): NodeId[] {
  return [...conf.voters, ...conf.learners]
}

export function checkConfState(conf: ConfState): void {
  for (const id of members(conf)) assert(Number.isSafeInteger(id) && id !== NONE, 'member ids are positive integers')
  assert(new Set(members(conf)).size === conf.voters.length + conf.learners.length, 'a member is a voter or a learner, once')
}
