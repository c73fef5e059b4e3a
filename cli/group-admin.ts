/** @module
 * `o3 admin om|scm roles|transfer` and `o3 admin om add|remove`: a replicated service's Raft
 * group as the operator sees it. `roles` asks every member, not only the one reached.
 */
import { O3Error } from '../core/errors.ts'
import { RpcClient } from '../core/rpc/client.ts'
import type { NodeRole } from '../control/ha/replicated-service.ts'
import { GROUP_CATCHUP_WAIT_MS, GROUP_TRANSFER_WAIT_MS } from '../control/ha/limits.ts'
import { parseGroup } from '../control/ha/nodes.ts'
import { rpcOptions } from './client-security.ts'
import { flag, option, stringOption, UsageError, type Invocation } from './args.ts'
import { printJson, printTable } from './output.ts'

/** One member in `roles`: what it answered, or UNREACHABLE. */
export interface RoleRow {
  readonly name: string
  readonly id: number
  readonly address: string
  /** LEADER, FOLLOWER, CANDIDATE, LEARNER or UNREACHABLE. */
  readonly role: string
  readonly term: number | null
  readonly commit: number | null
  readonly applied: number | null
}

const ROLES_TIMEOUT_MS = 3000

async function roleOf(service: string, address: string): Promise<NodeRole | undefined> {
  try {
    // One try each: a member that does not answer is reported, not waited for.
    const [r] = await new RpcClient(service, address, rpcOptions(service)).call<NodeRole[]>('roles', {}, { timeoutMs: ROLES_TIMEOUT_MS })
    return r
  } catch {
    return undefined
  }
}

/**
 * Every member of the group: asks each address given, takes the membership from the
 * best-informed answer (the leader of the highest term, else the highest term), then asks
 * each member not asked yet. Throws UNAVAILABLE when nobody answers.
 */
export async function groupRoles(service: 'OM' | 'SCM', addresses: readonly string[]): Promise<RoleRow[]> {
  const answers = new Map<string, NodeRole | undefined>()
  const ask = async (list: readonly string[]) => {
    const fresh = [...new Set(list)].filter((a) => a !== '' && !answers.has(a))
    for (const a of fresh) answers.set(a, undefined)
    await Promise.all(fresh.map(async (a) => answers.set(a, await roleOf(service, a))))
  }
  await ask(addresses)
  const rank = (r: NodeRole) => r.term * 2 + (r.role === 'LEADER' ? 1 : 0)
  const best = [...answers.values()].filter((r) => r !== undefined).sort((a, b) => rank(b) - rank(a) || b.commit - a.commit)[0]
  if (best === undefined) throw new O3Error('UNAVAILABLE', `Cannot get the ${service} group's roles: none of ${addresses.join(', ')} answers`)
  await ask(best.group.map((m) => m.address))
  const byId = new Map<number, NodeRole>()
  for (const r of answers.values()) if (r !== undefined && (byId.get(r.id)?.term ?? -1) < r.term) byId.set(r.id, r)
  return best.group.map((m) => {
    const r = byId.get(m.id)
    if (r === undefined) return { name: m.name, id: m.id, address: m.address, role: 'UNREACHABLE', term: null, commit: null, applied: null }
    return { name: m.name, id: m.id, address: r.address ?? m.address, role: m.voter ? r.role : 'LEARNER', term: r.term, commit: r.commit, applied: r.applied }
  }).sort((a, b) => a.id - b.id)
}

function addresses(inv: Invocation, service: 'om' | 'scm'): string[] {
  return option(inv, service).split(',').map((a) => a.trim()).filter((a) => a.length > 0)
}

/** Runs `o3 admin om|scm VERB`. */
export async function groupAdmin(inv: Invocation, kind: 'om' | 'scm', verb: string): Promise<void> {
  const service = kind === 'om' ? 'OM' : 'SCM'
  const json = flag(inv, 'json')
  // A change goes to the leader: given one address, the client finds the rest of the group first.
  const rpc = async () => {
    const given = addresses(inv, kind)
    const rows = await groupRoles(service, given).catch(() => [])
    const leaderFirst = [...rows].sort((a, b) => Number(b.role === 'LEADER') - Number(a.role === 'LEADER')).map((r) => r.address)
    return new RpcClient(service, [...new Set([...leaderFirst, ...given])].filter((a) => a !== ''), rpcOptions(service))
  }
  switch (verb) {
    case 'roles': {
      const rows = await groupRoles(service, addresses(inv, kind))
      if (json) return printJson(rows)
      return printTable(['node', 'id', 'address', 'role', 'term', 'commit', 'applied'], rows.map((r) => [r.name, r.id, r.address, r.role, r.term ?? '-', r.commit ?? '-', r.applied ?? '-']))
    }
    case 'transfer': {
      const target = stringOption(inv, 'target')
      if (target === undefined || target === '') throw new UsageError(`o3 admin ${kind} transfer needs --target NODE (a voter's name, e.g. ${kind}2)`)
      const r = await (await rpc()).call<{ leader: string; term: number }>('transferLeadership', { target }, { timeoutMs: GROUP_TRANSFER_WAIT_MS + 10_000 })
      return json ? printJson(r) : console.log(`${r.leader} leads the ${service} group (term ${r.term})`)
    }
    case 'add': {
      const node = inv.positionals[0]
      try { parseGroup('NODE', node) } catch {
        throw new UsageError(`bad NODE ${JSON.stringify(node)}: expected name@host:port:raftPort (e.g. ${kind}4@host4:${kind === 'om' ? '9862:9872' : '9860:9894'})`)
      }
      const r = await (await rpc()).call<{ id: number; name: string }>('addMember', { node }, { timeoutMs: GROUP_CATCHUP_WAIT_MS + 30_000 })
      return json ? printJson(r) : console.log(`${r.name} is a voter of the ${service} group (id ${r.id})`)
    }
    case 'remove': {
      const r = await (await rpc()).call<{ id: number; name: string }>('removeMember', { name: inv.positionals[0] }, { timeoutMs: 60_000 })
      return json ? printJson(r) : console.log(`${r.name} is no longer a member of the ${service} group`)
    }
    default:
      throw new Error(`o3 admin ${kind} ${verb} is in the command table but has no handler`)
  }
}
