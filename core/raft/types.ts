/** @module
 * The data the Raft core exchanges with its host: log entries, hard state, snapshots,
 * membership, the wire messages (a discriminated union on `type`) and the Ready batch.
 * Pure types and tiny constructors: no I/O, no clock, no `Math.random`.
 */

/** A member of a Raft group; 0 means "none" (no leader, no vote). */
export type NodeId = number
export const NONE: NodeId = 0

export type EntryType = 'normal' | 'confChange'

/** One log entry. `data` is borrowed: the core never mutates it and hosts must not either. */
export interface Entry {
  readonly term: number
  readonly index: number
  readonly type: EntryType
  readonly data: Uint8Array
  /**
   * Set on an entry of the in-memory log whose data the host had dropped (RaftLog.evictData):
   * `data` is empty and this is its length. The host loads such an entry back from its disk
   * before it sends it; nothing else ever sees one.
   */
  readonly evictedBytes?: number
}

/** What must be durable before the node answers anyone (Raft §5.1: currentTerm, votedFor). */
export interface HardState {
  readonly term: number
  readonly vote: NodeId
  readonly commit: number
}

/** Group membership: voters count in quorums, learners only receive the log. */
export interface ConfState {
  readonly voters: readonly NodeId[]
  readonly learners: readonly NodeId[]
}

/** One server at a time (Ongaro's thesis §4.1): add a voter, add a learner, or remove. */
export interface ConfChange {
  readonly type: 'addNode' | 'addLearner' | 'removeNode'
  readonly nodeId: NodeId
}

export interface SnapshotMeta {
  readonly index: number
  readonly term: number
  readonly confState: ConfState
}

/** A state-machine image as of `meta.index`; `data` is opaque to the core. */
export interface Snapshot {
  readonly meta: SnapshotMeta
  readonly data: Uint8Array
}

interface Envelope {
  readonly from: NodeId
  readonly to: NodeId
  readonly term: number
}

/** The messages Raft nodes send each other. `pre` marks the pre-vote phase (thesis §9.6). */
export type Message =
  | (Envelope & { readonly type: 'vote'; readonly pre: boolean; readonly lastIndex: number; readonly lastTerm: number; readonly transfer: boolean })
  | (Envelope & { readonly type: 'voteResp'; readonly pre: boolean; readonly reject: boolean })
  | (Envelope & { readonly type: 'app'; readonly prevIndex: number; readonly prevTerm: number; readonly entries: readonly Entry[]; readonly commit: number })
  /** `incarnation`: the follower's since its last start, so a leader tells answers from before a restart. */
  | (Envelope & { readonly type: 'appResp'; readonly index: number; readonly reject: boolean; readonly hint: number; readonly incarnation: number })
  | (Envelope & { readonly type: 'heartbeat'; readonly commit: number; readonly context: string })
  | (Envelope & { readonly type: 'heartbeatResp'; readonly context: string })
  | (Envelope & { readonly type: 'snap'; readonly snapshot: Snapshot })
  | (Envelope & { readonly type: 'timeoutNow' })
  | (Envelope & { readonly type: 'readIndex'; readonly context: string })
  | (Envelope & { readonly type: 'readIndexResp'; readonly index: number; readonly context: string })
  /** A node restarted after a crash asks the voters for their term and last entry (see Raft.recovery). */
  | (Envelope & { readonly type: 'recover'; readonly incarnation: number })
  | (Envelope & { readonly type: 'recoverResp'; readonly incarnation: number; readonly lastIndex: number; readonly lastTerm: number; readonly voters: readonly NodeId[] })

export type MessageType = Message['type']

export type Role = 'follower' | 'preCandidate' | 'candidate' | 'leader'

/** Volatile state a host may want to show or route on; never persisted. */
export interface SoftState {
  readonly leader: NodeId
  readonly role: Role
}

/** A ReadIndex answer: once the host has applied `index`, a read tagged `context` is linearizable. */
export interface ReadState {
  readonly index: number
  readonly context: string
}

/**
 * One batch of work for the host, in etcd's order: send `earlyMessages` whenever you like;
 * persist `snapshot`, `entries` (which replace any stored entries from `entries[0].index`
 * on) and `hardState`, syncing when `mustSync`; only then send `messages`; then apply
 * `snapshot` and `committedEntries`, answer `readStates` once applied, and call
 * `advance(ready)`.
 */
export interface Ready {
  readonly softState: SoftState | undefined
  readonly hardState: HardState | undefined
  readonly entries: readonly Entry[]
  readonly snapshot: Snapshot | undefined
  /**
   * A leader's appends, heartbeats and snapshots, when this Ready changes neither term nor
   * vote: they depend on nothing it persists, so they may leave while the leader writes its
   * own log (etcd: "messages may be sent while entries from the same batch are being
   * persisted"). The leader counts its own entries in a quorum only from acknowledgements
   * stepped after `advance`, by which time the host has persisted them.
   */
  readonly earlyMessages: readonly Message[]
  /** Everything else: sent only once this Ready is persisted (and synced if `mustSync`). */
  readonly messages: readonly Message[]
  readonly committedEntries: readonly Entry[]
  readonly readStates: readonly ReadState[]
  readonly mustSync: boolean
}

/** What a host restores a node from: what its storage holds. */
export interface Restored {
  readonly hardState: HardState
  /** The latest snapshot; a new group starts from `{ meta: { index: 0, term: 0, confState }, data: empty }`. */
  readonly snapshot: Snapshot
  /** Entries after `snapshot.meta.index`, contiguous. */
  readonly entries: readonly Entry[]
}

export const EMPTY_HARD_STATE: HardState = { term: 0, vote: NONE, commit: 0 }

/**
 * The state each founding member of a new group starts from: the membership as a
 * committed snapshot at index 1, term 1 (etcd's Bootstrap writes it as committed entries
 * at term 1). Since no log starts before index 2, a member added later always receives a
 * snapshot, and with it the membership; had it received index 1.. as entries, it would
 * never learn the founders and could elect itself alone.
 */
export function bootstrap(confState: ConfState): Restored {
  return { hardState: { term: 1, vote: NONE, commit: 1 }, snapshot: { meta: { index: 1, term: 1, confState }, data: new Uint8Array(0) }, entries: [] }
}

/** The state of a node that will join an existing group: it knows nothing until the leader's snapshot. */
export function joiner(): Restored {
  return { hardState: EMPTY_HARD_STATE, snapshot: { meta: { index: 0, term: 0, confState: { voters: [], learners: [] } }, data: new Uint8Array(0) }, entries: [] }
}
