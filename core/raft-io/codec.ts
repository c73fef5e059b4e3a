/** @module
 * The wire form of Raft messages: JSON with entry and snapshot bytes in base64, checked
 * field by field on the way in (ids and indexes must be safe integers). Owns no I/O.
 */
import { O3Error } from '../errors.ts'
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

function int(v: unknown, name: string): number {
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 0) throw bad(`${name} is not a non-negative safe integer`)
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

export function encodeMessage(m: Message): Json {
  switch (m.type) {
    case 'app':
      return { ...m, entries: m.entries.map((e) => ({ ...e, data: b64(e.data) })) }
    case 'snap':
      return { ...m, snapshot: { meta: m.snapshot.meta, data: b64(m.snapshot.data) } }
    default:
      return { ...m }
  }
}

function decodeEntry(v: unknown): Entry {
  const e = v as Json
  if (e.type !== 'normal' && e.type !== 'confChange') throw bad('entry type is unknown')
  return { term: int(e.term, 'entry term'), index: int(e.index, 'entry index'), type: e.type, data: unb64(e.data) }
}

function decodeSnapshot(v: unknown): Snapshot {
  const s = v as Json
  const meta = (s?.meta ?? {}) as Json
  const conf = (meta.confState ?? {}) as Json
  const confState: ConfState = { voters: ids(conf.voters, 'voters'), learners: ids(conf.learners, 'learners') }
  return { meta: { index: int(meta.index, 'snapshot index'), term: int(meta.term, 'snapshot term'), confState }, data: unb64(s.data) }
}

export function decodeMessage(v: unknown): Message {
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
      return { ...env, type: 'app', prevIndex: int(m.prevIndex, 'prevIndex'), prevTerm: int(m.prevTerm, 'prevTerm'), entries: m.entries.map(decodeEntry), commit: int(m.commit, 'commit') }
    case 'appResp':
      return { ...env, type: 'appResp', index: int(m.index, 'index'), reject: bool(m.reject, 'reject'), hint: int(m.hint, 'hint'), incarnation: int(m.incarnation, 'incarnation') }
    case 'heartbeat':
      return { ...env, type: 'heartbeat', commit: int(m.commit, 'commit'), context: str(m.context, 'context') }
    case 'heartbeatResp':
      return { ...env, type: 'heartbeatResp', context: str(m.context, 'context') }
    case 'snap':
      return { ...env, type: 'snap', snapshot: decodeSnapshot(m.snapshot) }
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
