/** @module
 * `o3 admin datanode|pipeline|container|safemode ...`: the SCM's view, as Ozone's admin CLI;
 * `o3 admin om|scm ...` (the Raft groups) is group-admin.ts, `o3 admin cert ...` (the CA) cert.ts.
 */
import { clientSecurity, rpcOptions } from './client-security.ts'
import { O3Client } from '../datapath/client/index.ts'
import { MAINTENANCE_END_HOURS_MAX, SCANNER_ON_DEMAND_WAIT_MS_MAX } from '../core/limits.ts'
import { RpcClient } from '../core/rpc/client.ts'
import { CONTAINER_STATE_ORDER, isEcReplication, type Pipeline } from '../core/wire.ts'
import { certAdmin } from './cert.ts'
import { groupAdmin } from './group-admin.ts'
import { flag, option, SAFE_RANGE, stringOption, UsageError, type Invocation } from './args.ts'
import { formatBytes, formatTime, printFields, printJson, printTable } from './output.ts'

interface DatanodeRow { id: string; address: string; state: string; operationalState: string; maintenanceEndMs?: number | null; adminProgress?: string | null; lastHeartbeatMs: number; capacityBytes: number; usedBytes: number; availableBytes: number; full?: boolean; pipelines: number; containers: number }
/** One replica's on-demand scan (datapath/datanode/container-scanner.ts ScanResult), or why its datanode did not answer (result FAILED). */
interface ReplicaScan { datanodeId: string; address: string; replicaIndex?: number; result: string; state?: string; bytesScanned: number; blocksScanned: number; error?: string }
interface ContainerRow { id: number; state: string; replication: string; pipelineId: string; usedBytes: number; blockCount: number; replicas: { datanodeId: string; address: string; nodeState?: string; state: string; bcsid?: number; usedBytes: number; blockCount: number; replicaIndex?: number }[] }
interface ContainerReportRow { lifecycle: Record<string, number>; health: Record<string, number>; samples: Record<string, number[]>; inflight: { replicate: number; reconstruct?: number; delete: number; scan?: number } }

/** A pipeline's members by address, the leader (as the SCM last heard it, else the suggested one) starred. */
/** A pipeline's members: a RATIS one's with its leader starred; an EC one's (no Raft group, no
 *  leader) bare, in replica-index order (1..k+m). */
function members(p: Pipeline): string {
  if (isEcReplication(p.replication)) return p.nodes.map((n) => n.address).join(' ')
  const leader = p.leaderId ?? p.nodes[0]?.id
  return p.nodes.map((n) => (n.id === leader ? `${n.address}*` : n.address)).join(' ')
}

function containerId(arg: string): number {
  if (!/^\d+$/.test(arg)) throw new UsageError(`bad container ID ${JSON.stringify(arg)}: expected a whole number`)
  const id = Number(arg)
  // Digits past 2^53 - 1 are a whole number still, one no container has (ids are safe integers on the wire).
  if (!Number.isSafeInteger(id)) throw new UsageError(`bad container ID ${JSON.stringify(arg)}: out of range (${SAFE_RANGE})`)
  return id
}

/** An EC replica's index (1..k+m) for its row; a RATIS replica has none. */
function indexOf(r: ContainerRow['replicas'][number]): { replicaIndex?: number } {
  return r.replicaIndex === undefined || r.replicaIndex === 0 ? {} : { replicaIndex: r.replicaIndex }
}

/** Has the replica's datanode scan it now (throttled there as its background scans are); a datanode that fails to answer is a FAILED row. */
async function scanReplica(id: number, r: ContainerRow['replicas'][number]): Promise<ReplicaScan> {
  try {
    const s = await new RpcClient('Datanode', r.address, rpcOptions('Datanode')).call<Omit<ReplicaScan, 'datanodeId' | 'address'>>('scanContainer', { containerId: id }, { idempotent: true, timeoutMs: SCANNER_ON_DEMAND_WAIT_MS_MAX })
    return { datanodeId: r.datanodeId, address: r.address, ...indexOf(r), result: s.result, state: s.state, bytesScanned: s.bytesScanned, blocksScanned: s.blocksScanned, ...(s.error === undefined ? {} : { error: s.error }) }
  } catch (err) {
    return { datanodeId: r.datanodeId, address: r.address, ...indexOf(r), result: 'FAILED', bytesScanned: 0, blocksScanned: 0, error: (err as Error).message }
  }
}

/** Runs `o3 admin KIND VERB`; args.ts has checked its options and the number of its arguments. */
export async function admin(inv: Invocation): Promise<void> {
  const [, , kind, verb] = inv.path
  if (kind === 'om' || kind === 'scm') return groupAdmin(inv, kind, verb)
  if (kind === 'cert') return certAdmin(inv, verb)
  const { positionals } = inv
  const state = stringOption(inv, 'state')
  const client = new O3Client({ om: option(inv, 'om'), scm: option(inv, 'scm'), ...clientSecurity() })
  const out = (value: unknown, human: () => void) => (flag(inv, 'json') ? printJson(value) : human())
  switch (`${kind} ${verb}`) {
    case 'datanode list': {
      const ds = await client.admin<DatanodeRow[]>('listDatanodes')
      return out(ds, () => {
        printTable(['id', 'address', 'state', 'operational', 'last heartbeat', 'capacity', 'available', 'pipelines', 'containers'],
          ds.map((d) => [d.id, d.address, d.state, d.operationalState, formatTime(d.lastHeartbeatMs), formatBytes(d.capacityBytes), `${formatBytes(d.availableBytes)}${d.full === true ? ' (full)' : ''}`, d.pipelines, d.containers]))
        // What a decommission or maintenance waits for (or that it is done), and when maintenance ends.
        for (const d of ds) {
          const ends = d.maintenanceEndMs === undefined || d.maintenanceEndMs === null ? '' : `; maintenance ends ${formatTime(d.maintenanceEndMs)}`
          if ((d.adminProgress ?? '') !== '' || ends !== '') console.log(`${d.address} ${d.operationalState}: ${d.adminProgress ?? '-'}${ends}`)
        }
      })
    }
    case 'datanode decommission':
    case 'datanode maintenance':
    case 'datanode recommission': {
      const raw = stringOption(inv, 'end-hours')
      const endHours = raw === undefined ? undefined : Number(raw)
      if (raw !== undefined && (!/^\d+(\.\d+)?$/.test(raw) || !Number.isFinite(endHours))) throw new UsageError(`bad --end-hours ${JSON.stringify(raw)}: expected a number of hours, 0 for no end`)
      if (endHours !== undefined && endHours > MAINTENANCE_END_HOURS_MAX) throw new UsageError(`bad --end-hours ${raw}: at most ${MAINTENANCE_END_HOURS_MAX} (a year), 0 for no end`)
      const rs = await client.admin<{ id: string; address: string; from: string; state: string; endMs?: number }[]>('datanodeAdmin', { action: verb, datanodes: positionals, ...(endHours === undefined ? {} : { endHours }) })
      return out(rs, () => printTable(['id', 'address', 'was', 'operational', 'maintenance ends'], rs.map((r) => [r.id, r.address, r.from, r.state, r.endMs === undefined ? '-' : formatTime(r.endMs)])))
    }
    case 'pipeline list': {
      const ps = await client.admin<Pipeline[]>('listPipelines')
      return out(ps, () => printTable(['id', 'replication', 'state', 'members (* leader)', 'term'], ps.map((p) => [p.id, p.replication, p.state, members(p), p.term ?? '-'])))
    }
    case 'pipeline close': {
      const id = positionals[0]
      if (!/^[0-9a-f-]{8,64}$/i.test(id)) throw new UsageError(`bad pipeline ID ${JSON.stringify(id)}: expected one that o3 admin pipeline list shows`)
      const r = await client.admin<{ id: string; state: string; closing: number[] }>('closePipeline', { pipelineId: id })
      return out(r, () => console.log(`pipeline ${r.id} is ${r.state}${r.closing.length > 0 ? `; closing containers ${r.closing.join(', ')}` : ''}`))
    }
    case 'container list': {
      const wanted = state?.toUpperCase()
      if (wanted !== undefined && !(CONTAINER_STATE_ORDER as readonly string[]).includes(wanted)) throw new UsageError(`bad --state ${JSON.stringify(state)}: expected one of ${CONTAINER_STATE_ORDER.join(', ')}`)
      const cs = await client.admin<ContainerRow[]>('listContainers', wanted === undefined ? {} : { state: wanted })
      return out(cs, () => printTable(['id', 'state', 'replication', 'used', 'blocks', 'replicas'], cs.map((c) => [c.id, c.state, c.replication, formatBytes(c.usedBytes), c.blockCount, c.replicas.map((r) => `${r.address}:${r.state}${r.replicaIndex ? `#${r.replicaIndex}` : ''}`).join(' ')])))
    }
    case 'container info': {
      const id = containerId(positionals[0])
      const c = await client.admin<ContainerRow & { createdAtMs: number; health?: string[] }>('getContainer', { containerId: id })
      return out(c, () => {
        printFields({ id: c.id, state: c.state, health: (c.health ?? []).join(' ') || '-', replication: c.replication, pipeline: c.pipelineId, used: formatBytes(c.usedBytes), blocks: c.blockCount, created: formatTime(c.createdAtMs) })
        // An EC container's replicas are its indexes 1..k+m (issue 14): shown in index order.
        if (c.replication.startsWith('EC/')) {
          const rows = [...c.replicas].sort((x, y) => (x.replicaIndex ?? 0) - (y.replicaIndex ?? 0))
          printTable(['index', 'datanode', 'address', 'node', 'state', 'blocks', 'used'], rows.map((r) => [r.replicaIndex ?? '-', r.datanodeId, r.address, r.nodeState ?? '-', r.state, r.blockCount, formatBytes(r.usedBytes)]))
        } else printTable(['datanode', 'address', 'node', 'state', 'bcsid', 'blocks', 'used'], c.replicas.map((r) => [r.datanodeId, r.address, r.nodeState ?? '-', r.state, r.bcsid ?? '-', r.blockCount, formatBytes(r.usedBytes)]))
      })
    }
    case 'container report': {
      const r = await client.admin<ContainerReportRow>('containerReport')
      return out(r, () => {
        console.log('Container Summary Report')
        console.log('Container State Summary')
        printTable(['state', 'containers'], ['OPEN', 'CLOSING', 'QUASI_CLOSED', 'CLOSED'].map((s) => [s, r.lifecycle[s] ?? 0]))
        console.log('Container Health Summary')
        printTable(['health', 'containers', 'examples'], Object.entries(r.health).map(([s, n]) => [s, n, (r.samples[s] ?? []).slice(0, 10).join(' ')]))
        console.log(`Replication commands in flight: ${r.inflight.replicate} replicate, ${r.inflight.reconstruct ?? 0} reconstruct (EC), ${r.inflight.delete} delete, ${r.inflight.scan ?? 0} scan`)
      })
    }
    case 'container replicate': {
      const id = containerId(positionals[0])
      const target = stringOption(inv, 'target')
      if (target === undefined || target === '') throw new UsageError('o3 admin container replicate needs --target DN (a datanode id or host:port)')
      const r = await client.admin<{ containerId: number; target: { id: string; address: string }; sources: { id: string; address: string }[] }>('replicateContainer', { containerId: id, targetId: target })
      return out(r, () => console.log(`container ${r.containerId}: ${r.target.address} copies it from ${r.sources.map((s) => s.address).join(', then ')}`))
    }
    case 'container scan': {
      const id = containerId(positionals[0])
      const c = await client.admin<ContainerRow>('getContainer', { containerId: id })
      const replicas = [...c.replicas].sort((x, y) => (x.replicaIndex ?? 0) - (y.replicaIndex ?? 0))
      const scans = await Promise.all(replicas.map((r) => scanReplica(id, r)))
      return out(scans, () => {
        if (scans.length === 0) console.log(`container ${id} has no replica reported to the SCM`)
        else printTable(['index', 'datanode', 'address', 'result', 'state', 'scanned', 'blocks', 'first error'], scans.map((s) => [s.replicaIndex ?? '-', s.datanodeId, s.address, s.result, s.state ?? '-', formatBytes(s.bytesScanned), s.blocksScanned, s.error ?? '-']))
      })
    }
    case 'safemode status': {
      const s = await client.admin<{ inSafeMode: boolean; healthyDatanodes: number; requiredDatanodes: number }>('safemodeStatus')
      return out(s, () => console.log(s.inSafeMode ? `SCM is in safe mode (${s.healthyDatanodes}/${s.requiredDatanodes} datanodes)` : 'SCM is out of safe mode'))
    }
    default:
      throw new Error(`o3 admin ${kind} ${verb} is in the command table but has no handler`)
  }
}
