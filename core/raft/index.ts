/** @module
 * O3's Raft: a deterministic consensus core in the style of etcd-io/raft's RawNode.
 * Pure: this folder does no I/O, reads no clock and draws no randomness of its own;
 * storage and transport live in core/raft-io/.
 *
 * A caller (the host) drives one node like this:
 *
 * 1. Start: `new RawNode({ id, randomInt, ... }, restored)`, where `restored` is what its
 *    storage holds (hard state, latest snapshot, entries after it), `bootstrap(confState)`
 *    for a founding member of a new group, or `joiner()` for a node to be added later.
 * 2. Feed it: `tick()` on every clock tick (election and heartbeat timeouts are in ticks),
 *    `step(message)` for every message from a peer, `propose(data)`,
 *    `proposeMembershipChange(change)`, `readIndex(context)`, `transferLeadership(to)`.
 * 3. While `hasReady()`, take `ready()` and, in this order:
 *    a. send `earlyMessages` (a leader's appends: they need not wait for b.);
 *    b. persist `snapshot`, then `entries` (replacing stored entries from the first one's
 *       index on), then `hardState`; sync if `mustSync` (the vote and the log must be
 *       durable before any message that depends on them leaves);
 *    c. send `messages` (batched per peer if you like; they may be lost or reordered);
 *    d. apply `snapshot`, then `committedEntries` in order (entries with empty data are the
 *       leaders' no-ops; `confChange` entries are applied to membership by the core);
 *    e. answer reads whose `readStates` index is now applied;
 *    f. `advance(ready)`; no other input may come between `ready()` and `advance()`.
 * 4. Now and then, `compact(stateMachineImage)` to snapshot at the applied index and drop
 *    the log before it; persist the returned snapshot.
 */
export { RawNode, type MemberProgress, type Status } from './raw-node.ts'
export { makeConfig, quorum, type Config, type ConfigOptions } from './config.ts'
export { decodeConfChange, encodeConfChange, type ProposeResult } from './raft.ts'
export * from './types.ts'
export * from './limits.ts'
