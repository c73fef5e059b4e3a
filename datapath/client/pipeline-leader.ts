/** @module
 * Where a pipeline's writes go: a client's cache of Raft group leaders (pipeline id -> leader
 * address, learned from NOT_LEADER hints and answered writes), and after a failed write the
 * decision which member to try next, or to give up (Ozone's XceiverClientRatis follows the
 * Raft leader likewise). No I/O and no clock: time comes in as `nowMs`.
 */
import { assert } from '../../core/assert.ts'
import { O3Error } from '../../core/errors.ts'
import { CLIENT_PIPELINE_LEADERS_MAX, PIPELINE_LEADER_WAIT_MS_MAX, RPC_GROUP_BACKOFF_MS_MAX } from '../../core/limits.ts'
import type { Pipeline, PipelineId } from '../../core/wire.ts'

/** The leader of each pipeline as a client last learned it; the oldest entry goes past the limit. */
export class LeaderCache {
  private readonly leaders = new Map<PipelineId, { address: string; term: number }>()

  constructor(private readonly sizeMax = CLIENT_PIPELINE_LEADERS_MAX) {
    assert(sizeMax > 0, 'leader cache size must be positive')
  }

  get size(): number {
    return this.leaders.size
  }

  /**
   * The address to send a pipeline's writes to first: the leader learned here, unless the
   * pipeline (as the SCM gave it) names a leader of a later term; else its `leaderId`'s
   * member; else nodes[0].
   */
  leaderOf(pipeline: Pipeline): string {
    assert(pipeline.nodes.length > 0, 'pipeline without members')
    const known = this.leaders.get(pipeline.id)
    if (known !== undefined && (pipeline.term === undefined || known.term >= pipeline.term)) return known.address
    return pipeline.nodes.find((n) => n.id === pipeline.leaderId)?.address ?? pipeline.nodes[0]!.address
  }

  /** The leader cached for a pipeline id, if any. */
  cached(pipelineId: PipelineId): string | undefined {
    return this.leaders.get(pipelineId)?.address
  }

  /** `address` took a write of `pipeline`, or a member named it the leader. */
  learned(pipeline: Pipeline, address: string): void {
    const known = this.leaders.get(pipeline.id)
    const term = Math.max(known?.term ?? 0, pipeline.term ?? 0)
    if (known?.address === address && known.term === term) return
    this.leaders.delete(pipeline.id)
    this.leaders.set(pipeline.id, { address, term })
    if (this.leaders.size > this.sizeMax) this.leaders.delete(this.leaders.keys().next().value!)
  }
}

/** One write's search for its pipeline's leader: where it went, since when. Owned by one write. */
export interface LeaderSearch {
  pipelineId: PipelineId
  /** The members' addresses, in the pipeline's order. */
  members: readonly string[]
  startedMs: number
  /** How long the search may go on; PIPELINE_LEADER_WAIT_MS_MAX for a write. */
  waitMsMax: number
  /** The address the last try went to. */
  current: string
  /** Addresses tried, each once, in the order first tried. */
  tried: string[]
  /** Tries that failed so far. */
  failures: number
  /** The last try followed a NOT_LEADER hint (two stale hints must not bounce the write at full speed). */
  followedHint: boolean
}

export function startSearch(pipeline: Pipeline, first: string, nowMs: number, waitMsMax = PIPELINE_LEADER_WAIT_MS_MAX): LeaderSearch {
  assert(waitMsMax >= 0, 'leader wait must not be negative')
  return { pipelineId: pipeline.id, members: pipeline.nodes.map((n) => n.address), startedMs: nowMs, waitMsMax, current: first, tried: [first], failures: 0, followedHint: false }
}

/** What a write does after a failed try: send again (after `delayMs`), or fail with `error`. */
export type NextTry = { address: string; delayMs: number } | { error: O3Error }

/**
 * A try answered NOT_LEADER, or did not reach the member (refused, reset: UNAVAILABLE), or
 * timed out: the write may have done nothing, or it may be done again without harm (the same
 * bytes at the same offset, the same putBlock length). Any other error is the write's own.
 */
export function isLeaderError(err: O3Error): boolean {
  return err.code === 'NOT_LEADER' || err.code === 'UNAVAILABLE' || err.code === 'TIMEOUT'
}

/**
 * Decides the next try after `err` at `search.current` (and records it in `search`):
 * - not a leader error: fail with it, as it is;
 * - a one-member pipeline's member not reached: fail at once;
 * - NOT_LEADER naming a leader: go there, at once the first time (a second hint in a row waits);
 * - else the leader a sibling write of the same pipeline learned meanwhile (`cached`), if
 *   it is another address, else the next member; the first round over the members goes at
 *   once, later rounds wait a little longer each time, as an election takes a few hundred ms;
 * - past `waitMsMax` since the search started: a member not tried yet still gets one try
 *   (one try at a leader that hung can take an RPC timeout, longer than the wait); with
 *   every member tried, fail UNAVAILABLE naming the pipeline and the members tried.
 */
export function nextTry(search: LeaderSearch, err: O3Error, nowMs: number, cached?: string): NextTry {
  if (!isLeaderError(err)) return { error: err }
  search.failures++
  // A group of one (RATIS/ONE) has no other member to elect: its member not reached (down,
  // hung) or unable (a failed Raft node) fails the write at once, and the writer moves the
  // block to another pipeline.
  if (search.members.length === 1 && err.code !== 'NOT_LEADER') {
    return { error: new O3Error(err.code, `Cannot write to pipeline ${search.pipelineId}: its one member ${search.members[0]} did not take the write (${err.message})`, { cause: err, node: err.node }) }
  }
  let address: string
  let delayMs = 0
  const hint = err.code === 'NOT_LEADER' && err.leader !== undefined && err.leader.length > 0 ? err.leader : undefined
  if (hint !== undefined) {
    address = hint
    if (search.followedHint) delayMs = backoffMs(search)
    search.followedHint = !search.followedHint
  } else {
    search.followedHint = false
    if (cached !== undefined && cached !== search.current) {
      address = cached
    } else {
      const at = search.members.indexOf(search.current)
      address = search.members[(at + 1) % search.members.length]!
      if (search.failures >= search.members.length) delayMs = backoffMs(search)
    }
  }
  if (nowMs + delayMs - search.startedMs >= search.waitMsMax) {
    const untried = search.members.find((m) => !search.tried.includes(m))
    if (untried !== undefined) {
      search.current = untried
      search.tried.push(untried)
      return { address: untried, delayMs: 0 }
    }
    return {
      error: new O3Error('UNAVAILABLE', `Cannot write to pipeline ${search.pipelineId}: no leader took it within ${search.waitMsMax} ms (tried ${search.tried.join(', ')} of members ${search.members.join(', ')}; last: ${err.message})`, { cause: err }),
    }
  }
  search.current = address
  if (!search.tried.includes(address)) search.tried.push(address)
  return { address, delayMs }
}

/** The pause before a try once a round over the members has failed: 25 ms doubling per round, to RPC_GROUP_BACKOFF_MS_MAX. */
function backoffMs(search: LeaderSearch): number {
  const round = Math.floor(search.failures / Math.max(1, search.members.length))
  return Math.min(RPC_GROUP_BACKOFF_MS_MAX, 25 * 2 ** Math.min(round, 4))
}
