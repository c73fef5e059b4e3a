/** @module
 * Types that cross between services: ids, replication configs, datanodes, pipelines, block
 * locations. Control plane and datapath meet only through these. Pure: no I/O.
 */
import { O3Error } from './errors.ts'

export type ContainerId = number & { readonly brand: 'ContainerId' }
export type LocalId = number & { readonly brand: 'LocalId' }
export type DatanodeId = string & { readonly brand: 'DatanodeId' }
export type PipelineId = string & { readonly brand: 'PipelineId' }

export interface BlockId {
  containerId: ContainerId
  localId: LocalId
}

export function blockIdString(b: BlockId): string {
  return `${b.containerId}:${b.localId}`
}

/** Checks a 64-bit id at the wire edge: JSON numbers beyond 2^53 would silently round. */
export function parseId<T extends number>(value: unknown, what: string): T {
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 0) {
    throw new O3Error('INVALID_ARGUMENT', `Cannot parse ${what}: ${JSON.stringify(value)} is not a non-negative safe integer`)
  }
  return value as T
}

export type ReplicationType = 'RATIS' | 'EC'
/** RATIS/ONE, RATIS/THREE, or EC/<codec>-<k>-<m>-<cell>k (issue 14). */
export interface ReplicationConfig {
  type: ReplicationType
  /** RATIS: 1 or 3 replicas. */
  factor: number
  /** EC only: codec, data and parity shards, cell size. */
  ec?: { codec: 'rs' | 'xor'; data: number; parity: number; cellSizeBytes: number }
}

/** Any case, as Ozone takes `RS-3-2-1024K`; formatReplication gives the canonical `EC/rs-3-2-1024k`. */
const EC_PATTERN = /^EC\/(rs|xor)-(\d+)-(\d+)-(\d+)k$/i
/** Replicas of an EC block group at most (the codec's shard limit, wasm/limits.ts SHARDS_MAX). */
export const EC_REPLICAS_MAX = 32
/** EC cell sizes: any multiple of 4k up to 4096k (Ozone's names use 1024k; small cells keep tests fast). */
const EC_CELL_KIB_MIN = 4
const EC_CELL_KIB_MAX = 4096

export function parseReplication(text: string): ReplicationConfig {
  const t = text.trim().toUpperCase()
  if (t === 'RATIS/ONE' || t === 'ONE') return { type: 'RATIS', factor: 1 }
  if (t === 'RATIS/THREE' || t === 'THREE') return { type: 'RATIS', factor: 3 }
  const m = EC_PATTERN.exec(text.trim())
  if (m) {
    const cellKiB = Number(m[4])
    if (cellKiB < EC_CELL_KIB_MIN || cellKiB > EC_CELL_KIB_MAX || cellKiB % EC_CELL_KIB_MIN !== 0) {
      throw new O3Error('INVALID_ARGUMENT', `Cannot parse replication ${text}: cell size must be a multiple of ${EC_CELL_KIB_MIN}k from ${EC_CELL_KIB_MIN}k to ${EC_CELL_KIB_MAX}k`)
    }
    const data = Number(m[2]), parity = Number(m[3])
    // What the codec can do (wasm/index.ts createCodec): 1 <= k, 1 <= m, k + m <= 32, XOR with one parity.
    if (data < 1 || parity < 1 || data + parity > EC_REPLICAS_MAX) throw new O3Error('INVALID_ARGUMENT', `Cannot parse replication ${text}: data and parity must be at least 1 and add up to at most ${EC_REPLICAS_MAX}`)
    const codec = m[1].toLowerCase() as 'rs' | 'xor'
    if (codec === 'xor' && parity !== 1) throw new O3Error('INVALID_ARGUMENT', `Cannot parse replication ${text}: xor has exactly one parity replica`)
    return { type: 'EC', factor: data + parity, ec: { codec, data, parity, cellSizeBytes: cellKiB * 1024 } }
  }
  throw new O3Error('INVALID_ARGUMENT', `Cannot parse replication ${text}: expected RATIS/ONE, RATIS/THREE or EC/<codec>-<k>-<m>-<cell>k`)
}

export function formatReplication(r: ReplicationConfig): string {
  if (r.type === 'EC' && r.ec) return `EC/${r.ec.codec}-${r.ec.data}-${r.ec.parity}-${r.ec.cellSizeBytes / 1024}k`
  return r.factor === 1 ? 'RATIS/ONE' : 'RATIS/THREE'
}

/** Is this replication string an erasure-coded one (`EC/...`)? */
export function isEcReplication(replication: string): boolean {
  return replication.startsWith('EC/')
}

export interface DatanodeDetails {
  id: DatanodeId
  /** host:port of the datanode's RPC listener. */
  address: string
}

export type NodeHealth = 'HEALTHY' | 'STALE' | 'DEAD'
export type NodeOperationalState = 'IN_SERVICE' | 'DECOMMISSIONING' | 'DECOMMISSIONED' | 'ENTERING_MAINTENANCE' | 'IN_MAINTENANCE'

/** ALLOCATED (the SCM created it, its Raft group is forming) -> OPEN (every member reported the group) -> CLOSED. */
export type PipelineState = 'ALLOCATED' | 'OPEN' | 'CLOSED'
export interface Pipeline {
  id: PipelineId
  replication: string
  state: PipelineState
  /** The members; the suggested leader first. Clients send writes to `leaderId`, else nodes[0]. */
  nodes: DatanodeDetails[]
  createdAtMs: number
  /** The group's leader as the SCM last heard it from the members, or the suggested leader before any report. */
  leaderId?: DatanodeId
  /** The Raft term of `leaderId`, once a member reported one. */
  term?: number
}

/**
 * What a datanode tells the SCM in each heartbeat about one pipeline (Raft group) it runs,
 * after Ozone's PipelineReport.
 */
export interface PipelineReport {
  pipelineId: PipelineId
  /** The group's leader as this member knows it; '' while none is known. */
  leaderId: DatanodeId | ''
  term: number
  /** This member's applied index in the group's log. */
  applied: number
  /**
   * This member fell behind past the leader's retained log (it installed a snapshot), or its
   * Raft node stopped after a failure (a log write on a full or broken disk), and cannot hold
   * the pipeline's containers consistently: the SCM closes the pipeline.
   */
  diverged: boolean
}

export type ContainerState = 'OPEN' | 'CLOSING' | 'QUASI_CLOSED' | 'CLOSED' | 'DELETING' | 'DELETED' | 'UNHEALTHY'

/** The states an SCM container record moves through, in order (replicas also report DELETING, DELETED, UNHEALTHY). */
export const CONTAINER_STATE_ORDER: readonly ContainerState[] = ['OPEN', 'CLOSING', 'QUASI_CLOSED', 'CLOSED']

export interface AllocatedBlock {
  blockId: BlockId
  pipeline: Pipeline
  /**
   * The block token (core/security/block-token.ts) the OM attaches when security is on: what
   * the datanodes ask for before they read or write the block. Never stored.
   */
  token?: string
}

/** A container as the SCM's getContainerLocations answers: its pipeline, and its replicas (EC: each with its index, 1..k+m). */
export interface ContainerLocation {
  state: ContainerState
  pipeline: Pipeline | null
  replicas: (DatanodeDetails & { state: ContainerState; replicaIndex: number })[]
}

/** What a writer excludes when it asks for another block after a failure (Ozone's ExcludeList). */
export interface ExcludeList {
  datanodes: DatanodeId[]
  containers: ContainerId[]
  pipelines: PipelineId[]
}

export function emptyExcludeList(): ExcludeList {
  return { datanodes: [], containers: [], pipelines: [] }
}

/** One block of a key: where it is and how many bytes of the key it holds. */
export interface KeyLocation {
  blockId: BlockId
  /** Byte offset of this block within the key. */
  offset: number
  length: number
  pipeline: Pipeline
  /** The block token (read) the OM attaches to a looked-up key when security is on. Never stored. */
  token?: string
}

export type ChecksumType = 'CRC32C' | 'XXH64' | 'BLAKE3' | 'NONE'
export const CHECKSUM_TYPES: readonly ChecksumType[] = ['CRC32C', 'XXH64', 'BLAKE3', 'NONE']

export function parseChecksumType(text: string): ChecksumType {
  const t = text.toUpperCase()
  if ((CHECKSUM_TYPES as readonly string[]).includes(t)) return t as ChecksumType
  throw new O3Error('INVALID_ARGUMENT', `Cannot parse checksum type ${text}: expected one of ${CHECKSUM_TYPES.join(', ')}`)
}
