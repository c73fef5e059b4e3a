/** @module
 * Named limits of the replicated control-plane services (issue 11).
 */

/** How long a call's answer stays in the retry cache (Ratis: raft.server.retrycache.expirytime, 60 s; Ozone OM uses 600 s). */
export const RETRY_CACHE_EXPIRY_MS = 10 * 60 * 1000
/** Answers the retry cache holds at most, whatever their age. */
export const RETRY_CACHE_ENTRIES_MAX = 100_000
/** Entries a state digest hashes at most (control/ha/state-digest.ts: a synchronous scan, for tests and small states). */
export const STATE_DIGEST_ENTRIES_MAX = 1_000_000
