/** @module
 * The I/O around core/raft: an LMDB log and hard-state store, an HTTP transport that
 * batches messages per peer, and RaftHost, the loop that persists before it sends.
 * Steps for a caller: `RaftHost.create({ id, dir, voters, stateMachine })` on each node,
 * then `host.start(peerUrls)` once every URL is known; `propose(data)` on the leader
 * (NOT_LEADER names the leader otherwise), `readBarrier()` before a linearizable read,
 * and `stop()`.
 */
export { RaftHost, type AppliedOutcome, type RaftHostOptions, type RaftSecurity, type StateMachine } from './raft-host.ts'
export { RaftLmdbStore } from './lmdb-store.ts'
export { HttpTransport, raftApp, receiveRaftBatch, type TransportOptions } from './http-transport.ts'
export { decodeMessage, encodeMessage } from './codec.ts'
export { CheckpointStore, checkpointApp, fetchCheckpoint, type CheckpointInfo } from './checkpoint.ts'
