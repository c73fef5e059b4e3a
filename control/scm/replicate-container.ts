/** @module
 * The admin's copy of a container to a chosen datanode (`o3 admin container replicate ID
 * --target DN`, SCM RPC replicateContainer; Ozone has no such command, its replication
 * manager alone decides): the replicateContainer command for the target, naming as sources
 * every other live replica that may be copied, those on HEALTHY datanodes first. Pure.
 */
import { O3Error } from '../../core/errors.ts'
import { isEcReplication, type ContainerId, type ContainerState, type DatanodeDetails, type DatanodeId, type NodeHealth } from '../../core/wire.ts'

export interface ReplicateInput {
  containerId: ContainerId
  /** The container's state in the SCM's table. */
  state: ContainerState
  /** Its replication: an EC container's replicas are distinct indexes, not copies of one another. */
  replication?: string
  /** The target as the admin named it: a datanode id or its host:port. */
  target: string
  nodes: (DatanodeDetails & { health: NodeHealth })[]
  /** The replicas as their datanodes last reported them. */
  replicas: { id: DatanodeId; state: ContainerState }[]
}

const COPYABLE: readonly ContainerState[] = ['CLOSED', 'QUASI_CLOSED']

export function replicateCommand(i: ReplicateInput): { target: DatanodeDetails; command: { type: 'replicateContainer'; containerId: ContainerId; sources: DatanodeDetails[] } } {
  const what = `Cannot replicate container ${i.containerId}`
  if (i.replication !== undefined && isEcReplication(i.replication)) {
    throw new O3Error('INVALID_ARGUMENT', `${what}: it is erasure-coded (${i.replication}); its replicas are distinct indexes, which the replication manager copies or reconstructs`)
  }
  if (!COPYABLE.includes(i.state)) throw new O3Error('INVALID_CONTAINER_STATE', `${what}: it is ${i.state}; only CLOSED and QUASI_CLOSED containers are copied`)
  const target = i.nodes.find((n) => n.id === i.target || n.address === i.target)
  if (target === undefined) throw new O3Error('NODE_NOT_FOUND', `${what}: no datanode ${i.target} is registered`)
  if (target.health !== 'HEALTHY') throw new O3Error('UNAVAILABLE', `${what}: target ${target.id} is ${target.health}`)
  if (i.replicas.some((r) => r.id === target.id)) throw new O3Error('CONTAINER_EXISTS', `${what}: ${target.id} holds a replica already`)
  const rank: Record<NodeHealth, number> = { HEALTHY: 0, STALE: 1, DEAD: 2 }
  const sources = i.replicas
    .filter((r) => COPYABLE.includes(r.state))
    .flatMap((r) => i.nodes.filter((n) => n.id === r.id && n.health !== 'DEAD'))
    .sort((a, b) => rank[a.health] - rank[b.health] || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0))
    .map((n) => ({ id: n.id, address: n.address }))
  if (sources.length === 0) throw new O3Error('UNAVAILABLE', `${what}: no live CLOSED or QUASI_CLOSED replica to copy from`)
  return { target: { id: target.id, address: target.address }, command: { type: 'replicateContainer', containerId: i.containerId, sources } }
}
