/** @module
 * Named limits of the replicated control-plane services (issue 11).
 */

/** How long a call's answer stays in the retry cache (Ratis: raft.server.retrycache.expirytime, 60 s; Ozone OM uses 600 s). */
export const RETRY_CACHE_EXPIRY_MS = 10 * 60 * 1000
/** Answers the retry cache holds at most, whatever their age. */
export const RETRY_CACHE_ENTRIES_MAX = 100_000
/** How long `transfer` waits for the target to lead (the core retries within an election timeout; we ask again). */
export const GROUP_TRANSFER_WAIT_MS = 10_000
/** A transfer is asked again only while its target has answered the leader within this many election timeouts. */
export const GROUP_TRANSFER_QUIET_TIMEOUTS = 3
/** How long `add` waits for a learner to catch up before it gives up (and leaves it a learner). */
export const GROUP_CATCHUP_WAIT_MS = 120_000
/** A learner this close to the leader's commit index is promoted (Ratis's staging catch-up gap). */
export const GROUP_CATCHUP_LAG_ENTRIES_MAX = 100
/** How long a membership change waits for an earlier one still being applied. */
export const GROUP_CONF_PENDING_WAIT_MS = 10_000
/** How long a joining node (`om.bootstrap=1`) waits for an operator's `o3 admin om add`. */
export const GROUP_JOIN_WAIT_MS = 10 * 60_000
/** Entries a state digest hashes at most (control/ha/state-digest.ts: a synchronous scan, for tests and small states). */
export const STATE_DIGEST_ENTRIES_MAX = 1_000_000
