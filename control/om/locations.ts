/** @module
 * A key's block locations refreshed from the SCM's getContainerLocations (lookupKey): an open
 * container is read through its pipeline; a closed one from its replicas, corrupt ones last, and for EC
 * (issue 14) one node per replica index in index order (`nodes[i]` holds index i + 1): a
 * CLOSED replica first, in the SCM's order (getContainerLocations lists those on HEALTHY,
 * IN_SERVICE nodes first), the recorded member where none of an index is known (the reader
 * then reconstructs).
 * Pure.
 */
import { isEcReplication, type ContainerLocation, type DatanodeDetails, type Pipeline } from '../../core/wire.ts'

export function refreshPipeline(recorded: Pipeline, found: ContainerLocation | undefined): Pipeline {
  if (found === undefined) return recorded
  if (found.state === 'OPEN' && found.pipeline !== null) return found.pipeline
  const live = found.replicas.filter((r) => r.state !== 'UNHEALTHY')
  const fallback = found.pipeline?.nodes ?? recorded.nodes
  if (isEcReplication(recorded.replication)) {
    // Per index: a CLOSED replica first (a rebuild in progress leaves an OPEN, partial one),
    // in the SCM's order (healthy, in-service nodes first), then any live one, then a corrupt one.
    const nodes: DatanodeDetails[] = fallback.map((n, i) => {
      const of = (x: { replicaIndex: number }) => x.replicaIndex === i + 1
      const r = live.find((x) => of(x) && x.state === 'CLOSED') ?? live.find(of) ?? found.replicas.find(of)
      return r === undefined ? n : { id: r.id, address: r.address }
    })
    return { ...recorded, nodes }
  }
  // Corrupt replicas last, not left out: each block of one may be the only good copy left
  // reachable (a healthy holder down); the reader verifies every window and moves on.
  const corrupt = found.replicas.filter((r) => r.state === 'UNHEALTHY')
  const nodes = [...live, ...corrupt].map((r) => ({ id: r.id, address: r.address }))
  return { ...recorded, nodes: nodes.length > 0 ? nodes : fallback }
}
