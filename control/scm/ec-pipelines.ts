/** @module
 * EC pipeline choice and placement (Ozone's WritableECContainerProvider and ECPipelineProvider):
 * an allocation reuses an OPEN EC pipeline of its replication that avoids the writer's exclude
 * list, else a new one goes on k + m distinct usable datanodes, the least used first; fewer
 * usable than k + m is a clear NO_PIPELINE refusal. EC pipelines have no Raft group: they are
 * OPEN at once and their members get no createPipeline. Pure: no I/O, no clock.
 */
import { O3Error } from '../../core/errors.ts'
import type { ContainerId, DatanodeId, Pipeline, PipelineId, ReplicationConfig } from '../../core/wire.ts'

export interface EcChoiceInput {
  /** `EC/rs-3-2-1024k` as formatReplication writes it. */
  replication: string
  parsed: ReplicationConfig
  /** HEALTHY, IN_SERVICE datanodes with room for a new container. */
  usable: DatanodeId[]
  /** HEALTHY, IN_SERVICE datanodes without that room (named in a refusal). */
  full?: number
  /** Every pipeline not CLOSED (of any replication: they all load their members). */
  live: Pipeline[]
  exclude: { datanodes: Set<DatanodeId>; pipelines: Set<PipelineId>; containers: Set<ContainerId> }
  /** The OPEN container an allocation on this pipeline would use now, if any. */
  openContainerOf: (p: PipelineId) => ContainerId | undefined
}

export type EcChoice =
  | { reuse: Pipeline[] }
  | { create: DatanodeId[] }

/**
 * Open EC pipelines to allocate from, or the nodes (in replica-index order) of a new one.
 * A pipeline whose open container the writer excluded is passed over when a new pipeline
 * can be placed on other nodes (Ozone's provider skips it too); it is still used, with a new
 * container, when none can. Throws NO_PIPELINE when nothing fits.
 */
export function chooseEcPipeline(i: EcChoiceInput): EcChoice {
  const usable = new Set(i.usable)
  const fits = i.live.filter((p) => p.state === 'OPEN' && p.replication === i.replication && !i.exclude.pipelines.has(p.id)
    && p.nodes.every((n) => usable.has(n.id) && !i.exclude.datanodes.has(n.id)))
  const clean = fits.filter((p) => { const c = i.openContainerOf(p.id); return c === undefined || !i.exclude.containers.has(c) })
  if (clean.length > 0) return { reuse: clean }
  const nodes = placeEcPipeline(i.usable, i.exclude.datanodes, i.parsed.factor, i.live)
  // A new pipeline on the very nodes of a fitting one would only be a new container on them.
  const same = nodes === undefined ? [] : fits.filter((p) => sameNodes(p, nodes))
  if (nodes !== undefined && same.length === 0) return { create: nodes }
  if (fits.length > 0) return { reuse: same.length > 0 ? same : fits }
  throw ecRefusal(i.replication, i.parsed.factor, i.usable, i.exclude.datanodes, i.full ?? 0)
}

function sameNodes(p: Pipeline, nodes: readonly DatanodeId[]): boolean {
  const set = new Set(nodes)
  return p.nodes.length === set.size && p.nodes.every((n) => set.has(n.id))
}

/** k + m usable nodes not excluded, those in the fewest live pipelines first (ties by id), or undefined. */
export function placeEcPipeline(usable: readonly DatanodeId[], excluded: ReadonlySet<DatanodeId>, required: number, live: readonly Pipeline[]): DatanodeId[] | undefined {
  const load = new Map<DatanodeId, number>()
  for (const p of live) for (const n of p.nodes) load.set(n.id, (load.get(n.id) ?? 0) + 1)
  const candidates = [...new Set(usable)].filter((id) => !excluded.has(id))
    .sort((a, b) => (load.get(a) ?? 0) - (load.get(b) ?? 0) || (a < b ? -1 : a > b ? 1 : 0))
  return candidates.length >= required ? candidates.slice(0, required) : undefined
}

/** The refusal when fewer than k + m datanodes are usable: what is needed, what there is, how many of them were excluded, how many more are full. */
export function ecRefusal(replication: string, required: number, usable: readonly DatanodeId[], excluded: ReadonlySet<DatanodeId>, full = 0): O3Error {
  const excludedUsable = usable.filter((id) => excluded.has(id)).length
  const n = usable.length
  return new O3Error('NO_PIPELINE', `Cannot allocate an ${replication} block: it needs ${required} healthy in-service datanodes with room, ${n} ${n === 1 ? 'is' : 'are'}${excludedUsable > 0 ? ` (${excludedUsable} of them excluded)` : ''}${full > 0 ? `; ${full} more ${full === 1 ? 'is' : 'are'} full` : ''}`)
}
