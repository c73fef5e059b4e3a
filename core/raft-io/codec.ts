/** @module
 * The wire form of Raft messages, checked field by field on the way in (ids and indexes
 * must be safe integers). Two forms of a batch: JSON with entry and snapshot bytes in base64
 * (what every node reads), and the binary batch (`RAFT_BATCH_BINARY_TYPE`, core/json-frame.ts):
 * the same JSON with each entry's and snapshot's bytes replaced by their length, then those
 * bytes in order, so no payload is base64'd, stringified or parsed. Owns no I/O.
 */
import { assert } from '../assert.ts'
import { O3Error } from '../errors.ts'
import { encodeJsonFrame, readJsonFrame } from '../json-frame.ts'
import type { ConfState, Entry, Message, Snapshot } from '../raft/index.ts'

type Json = Record<string, unknown>

const b64 = (data: Uint8Array): string => Buffer.from(data.buffer, data.byteOffset, data.byteLength).toString('base64')
const unb64 = (s: unknown): Uint8Array => {
  if (typeof s !== 'string') throw bad('data is not base64 text')
  return new Uint8Array(Buffer.from(s, 'base64'))
}

function bad(why: string): O3Error {
  return new O3Error('INVALID_ARGUMENT', `Cannot decode raft message: ${why}`)
}

/**
 * Above any term, index or id a peer reaches (2^48: a term a millisecond for 8,900 years), and
 * far enough below 2^53 that counting up from it stays exact: a term of 2^53 - 1 taken from a
 * forged message made its node's next term inexact, and every peer refused its messages.
 */
const WIRE_NUMBER_MAX = 2 ** 48

function int(v: unknown, name: string): number {
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 0 || v > WIRE_NUMBER_MAX) throw bad(`${name} is not an integer from 0 to 2^48`)
  return v
}

function bool(v: unknown, name: string): boolean {
  if (typeof v !== 'boolean') throw bad(`${name} is not a boolean`)
  return v
}

function str(v: unknown, name: string): string {
  if (typeof v !== 'string') throw bad(`${name} is not a string`)
  return v
}

function ids(v: unknown, name: string): number[] {
  if (!Array.isArray(v)) throw bad(`${name} is not a list`)
  return v.map((x) => int(x, name))
}

/** An entry about to leave the node: never one whose data was evicted (RaftHost loads those back first). */
function whole(e: Entry): Entry {
  assert(e.evictedBytes === undefined, `entry ${e.index} is sent with its data`)
  return e
}

export function encodeMessage(m: Message): Json {
  switch (m.type) {
    case 'app':
      return { ...m, entries: m.entries.map((e) => ({ ...e, data: b64(whole(e).data) })) }
    case 'snap':
      return { ...m, snapshot: { meta: m.snapshot.meta, data: b64(m.snapshot.data) } }
    default:
      return { ...m }
  }
}

/** Where a message's entry and snapshot bytes come from: base64 text in JSON, or the binary batch's tail. */
type Bytes = (v: unknown) => Uint8Array

function decodeEntry(v: unknown, bytes: Bytes): Entry {
  const e = v as Json
  if (e.type !== 'normal' && e.type !== 'confChange') throw bad('entry type is unknown')
  return { term: int(e.term, 'entry term'), index: int(e.index, 'entry index'), type: e.type, data: bytes(e.data) }
}

function decodeSnapshot(v: unknown, bytes: Bytes): Snapshot {
  const s = v as Json
  const meta = (s?.meta ?? {}) as Json
  const conf = (meta.confState ?? {}) as Json
  const confState: ConfState = { voters: ids(conf.voters, 'voters'), learners: ids(conf.learners, 'learners') }
  return { meta: { index: int(meta.index, 'snapshot index'), term: int(meta.term, 'snapshot term'), confState }, data: bytes(s.data) }
}

/** The content type of a binary batch. */
export const RAFT_BATCH_BINARY_TYPE = 'application/x-o3-raft-batch'

/**
 * A batch in binary form (core/json-frame.ts): the batch as JSON, each entry's and snapshot's
 * `data` its length, then those bytes in message and entry order. One copy of each payload.
 */
export function encodeBatch(messages: readonly Message[]): Uint8Array<ArrayBuffer> {
  const fields: Uint8Array[] = []
  const field = (data: Uint8Array): number => {
    fields.push(data)
    return data.byteLength
  }
  const header = messages.map((m) => {
    switch (m.type) {
      case 'app':
        return m.entries.length === 0 ? m : { ...m, entries: m.entries.map((e) => ({ ...e, data: field(whole(e).data) })) }
      case 'snap':
        return { ...m, snapshot: { meta: m.snapshot.meta, data: field(m.snapshot.data) } }
      default:
        return m
    }
  })
  return encodeJsonFrame({ messages: header }, fields)
}

/**
 * The messages of a binary batch, checked as decodeMessage checks JSON ones; lengths that do
 * not account for the body exactly are INVALID_ARGUMENT. Entry and snapshot bytes are views
 * of `body`, which the caller hands over (it is not reused).
 */
export function decodeBatch(body: Uint8Array, countMax: number): Message[] {
  const frame = readJsonFrame(body, 0, 'raft message batch')
  const list = (frame.header as Json | null)?.messages
  if (!Array.isArray(list) || list.length > countMax) throw bad('messages is not a list of allowed length')
  const messages = list.map((m) => decodeMessageWith(m, (v) => frame.field(v)))
  frame.end()
  return messages
}

/** A message of a JSON batch (entry and snapshot bytes in base64). */
export function decodeMessage(v: unknown): Message {
  return decodeMessageWith(v, unb64)
}

function decodeMessageWith(v: unknown, bytes: Bytes): Message {
  if (typeof v !== 'object' || v === null) throw bad('not an object')
  const m = v as Json
  const env = { from: int(m.from, 'from'), to: int(m.to, 'to'), term: int(m.term, 'term') }
  switch (m.type) {
    case 'vote':
      return { ...env, type: 'vote', pre: bool(m.pre, 'pre'), lastIndex: int(m.lastIndex, 'lastIndex'), lastTerm: int(m.lastTerm, 'lastTerm'), transfer: bool(m.transfer, 'transfer') }
    case 'voteResp':
      return { ...env, type: 'voteResp', pre: bool(m.pre, 'pre'), reject: bool(m.reject, 'reject') }
    case 'app':
      if (!Array.isArray(m.entries)) throw bad('entries is not a list')
      return { ...env, type: 'app', prevIndex: int(m.prevIndex, 'prevIndex'), prevTerm: int(m.prevTerm, 'prevTerm'), entries: m.entries.map((e) => decodeEntry(e, bytes)), commit: int(m.commit, 'commit') }
    case 'appResp':
      return { ...env, type: 'appResp', index: int(m.index, 'index'), reject: bool(m.reject, 'reject'), hint: int(m.hint, 'hint'), incarnation: int(m.incarnation, 'incarnation') }
    case 'heartbeat':
      return { ...env, type: 'heartbeat', commit: int(m.commit, 'commit'), context: str(m.context, 'context') }
    case 'heartbeatResp':
      return { ...env, type: 'heartbeatResp', context: str(m.context, 'context') }
    case 'snap':
      return { ...env, type: 'snap', snapshot: decodeSnapshot(m.snapshot, bytes) }
    case 'timeoutNow':
      return { ...env, type: 'timeoutNow' }
    case 'readIndex':
      return { ...env, type: 'readIndex', context: str(m.context, 'context') }
    case 'readIndexResp':
      return { ...env, type: 'readIndexResp', index: int(m.index, 'index'), context: str(m.context, 'context') }
    case 'recover':
      return { ...env, type: 'recover', incarnation: int(m.incarnation, 'incarnation') }
    case 'recoverResp':
      return { ...env, type: 'recoverResp', incarnation: int(m.incarnation, 'incarnation'), lastIndex: int(m.lastIndex, 'lastIndex'), lastTerm: int(m.lastTerm, 'lastTerm'), voters: ids(m.voters, 'voters') }
    default:
      throw bad(`type ${JSON.stringify(m.type)} is unknown`)
  }
}
