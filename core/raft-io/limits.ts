/** @module
 * Named limits of the Raft I/O edge (transport queues and bodies, proposal waits). Kept
 * beside the edge, like core/raft/limits.ts beside the core.
 */
import { assert } from '../assert.ts'
import { RAFT_APPEND_BYTES_MAX } from '../raft/limits.ts'

/** Messages queued for one peer while a request to it is in flight; beyond, new ones are dropped (Raft tolerates loss). */
export const RAFT_TRANSPORT_QUEUE_COUNT_MAX = 4096
/** Messages in one HTTP request body. */
export const RAFT_TRANSPORT_BATCH_COUNT_MAX = 512
/** Bytes of one HTTP request body (an append of the largest size, base64, plus framing). */
export const RAFT_TRANSPORT_BODY_BYTES_MAX = 2 * RAFT_APPEND_BYTES_MAX + 1024 * 1024
/** Requests in flight to one peer when batching is off. */
export const RAFT_TRANSPORT_UNBATCHED_INFLIGHT_MAX = 64
/** Inputs (messages, proposals, ticks) waiting for the loop. */
export const RAFT_INBOX_COUNT_MAX = 65_536
/** Bytes of one range of a state-database checkpoint sent to a follower: what a fetch holds in memory. */
export const RAFT_CHECKPOINT_RANGE_BYTES = 4 * 1024 * 1024
/** Checkpoints a node keeps on disk (the newest; a follower may still be fetching the one before). */
export const RAFT_CHECKPOINTS_KEPT = 2
/** Applied entries between a node's snapshots when its options name none. */
export const RAFT_SNAPSHOT_EVERY_ENTRIES_DEFAULT = 10_000
/**
 * A leader keeps log entries that a member that answers still lacks for at most this many
 * snapshot intervals (snapshotEveryEntries) past its state's own snapshot; beyond, such a
 * member gets a snapshot. Bounds the log a slow member holds on disk and in memory.
 */
export const RAFT_LOG_HELD_FOR_MEMBERS_INTERVALS = 10
/** After a snapshot failed (a full or failing disk), how long before the next try. */
export const RAFT_SNAPSHOT_RETRY_MS = 1000
/** How long one range of a checkpoint may take to arrive (its headers, then its body) before the fetch tries again. */
export const RAFT_CHECKPOINT_RANGE_TIMEOUT_MS = 30_000
/** How long a proposal or read waits for its answer before TIMEOUT. */
export const RAFT_REQUEST_TIMEOUT_MS = 10_000

assert(RAFT_TRANSPORT_BATCH_COUNT_MAX <= RAFT_TRANSPORT_QUEUE_COUNT_MAX, 'a batch fits the queue')
assert(RAFT_TRANSPORT_BODY_BYTES_MAX > (RAFT_APPEND_BYTES_MAX * 4) / 3, 'a full append fits a body in base64')
