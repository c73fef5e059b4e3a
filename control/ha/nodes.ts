/** @module
 * The members of a replicated service from its settings (issue 11): `om.nodes` or
 * `scm.nodes` = `om1@host:port:raftPort,om2@...` (Ozone names its nodes the same way; the
 * Raft port follows the RPC port), and `om.id` / `scm.id` naming this node. Pure.
 */
import { O3Error } from '../../core/errors.ts'
import type { NodeId } from '../../core/raft/index.ts'

export interface GroupMember {
  /** As configured: om1, om2, ... */
  readonly name: string
  /**
   * The Raft id of a founding member: its position in the list, from 1 (every founder must
   * list the same order). A member added later takes the id the group gives it (members.ts).
   */
  readonly id: NodeId
  /** host:port of its RPC server. */
  readonly address: string
  /** host:port of its Raft server. */
  readonly raftAddress: string
}

const MEMBER = /^([A-Za-z][\w-]{0,31})@([\w.-]+):(\d{1,5}):(\d{1,5})$/

export function parseGroup(setting: string, spec: string): GroupMember[] {
  const parts = spec.split(',').map((p) => p.trim()).filter((p) => p.length > 0)
  const out: GroupMember[] = []
  for (const [i, p] of parts.entries()) {
    const m = MEMBER.exec(p)
    if (m === null || [m[3], m[4]].some((port) => Number(port) < 1 || Number(port) > 65535)) throw new O3Error('INVALID_ARGUMENT', `Cannot use setting ${setting}: member ${JSON.stringify(p)} is not name@host:port:raftPort`)
    out.push({ name: m[1], id: i + 1, address: `${m[2]}:${m[3]}`, raftAddress: `${m[2]}:${m[4]}` })
  }
  if (new Set(out.map((n) => n.name)).size !== out.length) throw new O3Error('INVALID_ARGUMENT', `Cannot use setting ${setting}: a member is listed twice`)
  return out
}

/** This node among `members`, by the name in `idSetting`. */
export function selfIn(members: readonly GroupMember[], idSetting: string, name: string): GroupMember {
  const self = members.find((n) => n.name === name)
  if (self === undefined) throw new O3Error('INVALID_ARGUMENT', `Cannot use setting ${idSetting}=${JSON.stringify(name)}: not one of ${members.map((n) => n.name).join(', ')}`)
  return self
}
