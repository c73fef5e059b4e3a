/** @module
 * The group's address book, replicated: each member's Raft id, name (om1), service and Raft
 * address in a table of the state database, written by a log entry before a member is added
 * or removed (etcd keeps its members' attributes in its store, Ratis's RaftPeer carries its
 * address in the configuration entry). A snapshot carries it to a new member and a restart
 * reads it back, so nobody needs the group in its settings but a node that joins; `om.nodes`
 * only seeds the founding members. Also this node's own identity file (`ha/member.json`).
 */
import { existsSync, readFileSync, renameSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import type { Database, RootDatabase } from 'lmdb'
import { O3Error } from '../../core/errors.ts'
import type { NodeId } from '../../core/raft/index.ts'
import type { ReplicatedRequest } from './replicated-service.ts'

/** One member of the group: who it is and where it listens. */
export interface MemberRecord {
  readonly id: NodeId
  /** As in `om.nodes`: om1, om2, ... */
  readonly name: string
  /** host:port of its RPC server. */
  readonly address: string
  /** host:port of its Raft server. */
  readonly raftAddress: string
  /** Removed from the group (its id is never used again); absent while it is, or is about to be, a member. */
  readonly removed?: boolean
}

/** The log entry's name (never a service request's: those have no dot). */
export const SET_MEMBERS_REQUEST = 'raft.setMembers'

export function openMembersTable(db: RootDatabase): Database<MemberRecord, number> {
  return db.openDB<MemberRecord, number>({ name: 'raftMembers' })
}

function checkRecord(r: MemberRecord): MemberRecord {
  const ok = Number.isSafeInteger(r.id) && r.id > 0 && typeof r.name === 'string' && typeof r.address === 'string' && typeof r.raftAddress === 'string'
  if (!ok) throw new O3Error('INVALID_ARGUMENT', `Cannot record member ${JSON.stringify(r)}: not {id, name, address, raftAddress}`)
  return { id: r.id, name: r.name, address: r.address, raftAddress: r.raftAddress, ...(r.removed === true ? { removed: true } : {}) }
}

/** Every member the replicated book records. */
export function recordedMembers(table: Database<MemberRecord, number>): MemberRecord[] {
  return [...table.getRange()].map(({ value }) => value)
}

/**
 * The entry that writes member records. The leader decides them all (GroupAdmin); apply
 * only refuses a record that would rename an id: ids are never reused, so a record once
 * written names the same node forever.
 */
export function setMembersRequest(table: () => Database<MemberRecord, number>, applied: (records: readonly MemberRecord[]) => void): ReplicatedRequest<{ records: MemberRecord[] }, { records: MemberRecord[] }, void> {
  return {
    name: SET_MEMBERS_REQUEST,
    prepare: (args) => ({ records: args.records.map(checkRecord) }),
    apply: (_db, payload) => {
      const t = table()
      for (const r of payload.records) {
        const old = t.get(r.id)
        if (old !== undefined && old.name !== r.name) throw new O3Error('INVALID_ARGUMENT', `Cannot record member ${r.name} as id ${r.id}: the id is ${old.name}'s`)
      }
      for (const r of payload.records) t.putSync(r.id, r)
      applied(payload.records)
    },
  }
}

/** What a node knows about itself across restarts; a joiner also keeps the group it learned when it joined. */
export interface Identity {
  readonly name: string
  readonly id: NodeId
  readonly members?: readonly MemberRecord[]
}

const IDENTITY_FILE = 'member.json'

export function readIdentity(dir: string): Identity | undefined {
  const path = join(dir, IDENTITY_FILE)
  if (!existsSync(path)) return undefined
  const v = JSON.parse(readFileSync(path, 'utf8')) as Identity
  if (typeof v.name !== 'string' || !Number.isSafeInteger(v.id) || v.id < 1) throw new O3Error('INVALID_ARGUMENT', `Cannot read ${path}: not {name, id}`)
  return v
}

/** Written once, atomically (a rename), before the node's Raft store exists. */
export function writeIdentity(dir: string, identity: Identity): void {
  const path = join(dir, IDENTITY_FILE)
  writeFileSync(`${path}.tmp`, JSON.stringify(identity))
  renameSync(`${path}.tmp`, path)
}
