/** @module
 * Pipeline placement (Ozone's PipelinePlacementPolicy, simplified): RATIS/ONE on every healthy
 * node; RATIS/THREE on groups of three healthy nodes, each node in at most a limit of them,
 * least-used nodes first; and on demand around an exclude list. Pure: ids come in as a
 * function, nothing is stored here.
 */
import type { DatanodeId, Pipeline } from '../../core/wire.ts'

export interface PlacementInput {
  /** Healthy, in-service nodes, in a stable order. */
  healthy: DatanodeId[]
  open: Pipeline[]
  /** RATIS/THREE pipelines a node may belong to. */
  limit: number
}

/** Node sets of the pipelines to create so that every healthy node serves. */
export function planPipelines(input: PlacementInput): { replication: string; nodes: DatanodeId[] }[] {
  const plans: { replication: string; nodes: DatanodeId[] }[] = []
  const hasOne = new Set(input.open.filter((p) => p.replication === 'RATIS/ONE').map((p) => p.nodes[0].id))
  for (const id of input.healthy) if (!hasOne.has(id)) plans.push({ replication: 'RATIS/ONE', nodes: [id] })

  const threes = input.open.filter((p) => p.replication === 'RATIS/THREE').map((p) => p.nodes.map((n) => n.id))
  const count = new Map<DatanodeId, number>(input.healthy.map((id) => [id, 0]))
  for (const set of threes) for (const id of set) if (count.has(id)) count.set(id, count.get(id)! + 1)
  const existing = new Set(threes.map((s) => [...s].sort().join(',')))
  for (;;) {
    const candidates = input.healthy.filter((id) => count.get(id)! < input.limit)
      .sort((a, b) => count.get(a)! - count.get(b)! || (a < b ? -1 : 1))
    const nodes = pickNewSet(candidates, existing)
    if (nodes === undefined) break
    existing.add([...nodes].sort().join(','))
    for (const id of nodes) count.set(id, count.get(id)! + 1)
    plans.push({ replication: 'RATIS/THREE', nodes })
  }
  return plans
}

/** The first three candidates (in order of preference) forming a set no pipeline has yet. */
function pickNewSet(candidates: DatanodeId[], existing: Set<string>): DatanodeId[] | undefined {
  const n = candidates.length
  for (let a = 0; a < n; a++) for (let b = a + 1; b < n; b++) for (let c = b + 1; c < n; c++) {
    const set = [candidates[a], candidates[b], candidates[c]]
    if (!existing.has([...set].sort().join(','))) return set
  }
  return undefined
}

/** Nodes for one new pipeline that avoids `excluded`, or undefined when too few are left. */
export function planAround(healthy: DatanodeId[], excluded: Set<DatanodeId>, factor: number, open: Pipeline[]): DatanodeId[] | undefined {
  const load = new Map<DatanodeId, number>()
  for (const p of open) for (const n of p.nodes) load.set(n.id, (load.get(n.id) ?? 0) + 1)
  const usable = healthy.filter((id) => !excluded.has(id)).sort((a, b) => (load.get(a) ?? 0) - (load.get(b) ?? 0) || (a < b ? -1 : 1))
  return usable.length >= factor ? usable.slice(0, factor) : undefined
}
