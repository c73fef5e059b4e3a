/** @module
 * Named limits of the Raft core: every queue, batch and in-flight window it keeps has its
 * maximum here, checked against each other at load time (TigerBeetle's constants.zig).
 * Pure: no I/O, imports nothing but core/assert.ts. Lives beside the core rather than in
 * core/limits.ts so that the Raft folder is self-contained.
 */
import { assert } from '../assert.ts'

/** Voters plus learners in one group (etcd tests up to 7 voters; Ozone runs 3). */
export const RAFT_NODE_COUNT_MAX = 9
/** Append messages in flight per follower in replicate state (etcd MaxInflightMsgs). */
export const RAFT_INFLIGHT_COUNT_MAX = 256
/** Entries in one append message (etcd MaxSizePerMsg, counted in entries here). */
export const RAFT_APPEND_ENTRIES_COUNT_MAX = 1024
/** Bytes of entry data in one append message. */
export const RAFT_APPEND_BYTES_MAX = 4 * 1024 * 1024
/** Bytes of one proposal's data. */
export const RAFT_PROPOSAL_BYTES_MAX = 1024 * 1024
/** Uncommitted entries the leader accepts before it refuses proposals (etcd MaxUncommittedEntriesSize). */
export const RAFT_UNCOMMITTED_ENTRIES_COUNT_MAX = 8192
/** Committed entries handed out in one Ready (etcd MaxCommittedSizePerReady). */
export const RAFT_COMMITTED_ENTRIES_COUNT_MAX = 4096
/** ReadIndex requests waiting for their heartbeat quorum (or for the leader's first commit). */
export const RAFT_READ_INDEX_PENDING_COUNT_MAX = 4096
/** Election timeout bounds and default, in ticks. */
export const RAFT_ELECTION_TIMEOUT_TICKS_DEFAULT = 10
export const RAFT_ELECTION_TIMEOUT_TICKS_MIN = 2
export const RAFT_ELECTION_TIMEOUT_TICKS_MAX = 10_000

assert(RAFT_APPEND_ENTRIES_COUNT_MAX <= RAFT_UNCOMMITTED_ENTRIES_COUNT_MAX, 'an append batch fits the uncommitted window')
assert(RAFT_PROPOSAL_BYTES_MAX <= RAFT_APPEND_BYTES_MAX, 'one proposal fits one append message')
assert(RAFT_NODE_COUNT_MAX % 2 === 1, 'the node limit is odd, so a full group has a strict majority')
