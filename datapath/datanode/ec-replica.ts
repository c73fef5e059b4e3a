/** @module
 * What makes a container replica erasure-coded here (Ozone's KeyValueContainerData with a
 * replica index): its index 1..k+m, checked on every write and putBlock, and the list of its
 * committed blocks with their group lengths (for the reconstruction coordinator). EC replicas
 * live outside any Raft group: their chunks and putBlocks commit directly. Pure checks and
 * one LMDB read; the write path itself stays in datanode.ts.
 */
import { O3Error } from '../../core/errors.ts'
import { DATANODE_LIST_BLOCKS_MAX } from '../../core/limits.ts'
import { parseId, parseReplication, type ChecksumType, type ContainerId, type LocalId } from '../../core/wire.ts'
import type { ContainerData, Volume } from './datanode.ts'

/** Whether a replication config names an erasure-coded one (`EC/rs-3-2-1024k`). */
export function isEcReplication(replication: unknown): boolean {
  return typeof replication === 'string' && replication.startsWith('EC/')
}

/** An EC replica holds an index 1..k+m; a RATIS one 0 (or none, from before EC). */
export function isEcReplica(c: ContainerData): boolean {
  return (c.replicaIndex ?? 0) > 0
}

/**
 * The replica index an EC write names, checked against its replication config: an integer in
 * 1..k+m. Throws INVALID_ARGUMENT for a missing or out-of-range one, or a config that is not EC.
 */
export function ecReplicaIndex(replication: string, replicaIndex: unknown, action: string): number {
  let parsed
  try { parsed = parseReplication(replication) } catch { parsed = undefined }
  if (parsed?.type !== 'EC' || parsed.ec === undefined) throw new O3Error('INVALID_ARGUMENT', `Cannot ${action}: ${JSON.stringify(replication)} is not an EC replication config`)
  const width = parsed.ec.data + parsed.ec.parity
  if (typeof replicaIndex !== 'number' || !Number.isInteger(replicaIndex) || replicaIndex < 1 || replicaIndex > width) {
    throw new O3Error('INVALID_ARGUMENT', `Cannot ${action}: replicaIndex must be an integer in 1..${width} for ${replication}, not ${JSON.stringify(replicaIndex)}`)
  }
  return replicaIndex
}

/** Refuses a write or putBlock naming another replica index than the container's (Ozone's ContainerReplicaIndexMismatch). */
export function checkReplicaIndex(c: ContainerData, replicaIndex: number, action: string): void {
  const held = c.replicaIndex ?? 0
  if (held !== replicaIndex) throw new O3Error('INVALID_ARGUMENT', `Cannot ${action}: container ${c.id} here is replica index ${held}, the request names ${replicaIndex}`)
}

export interface ListedBlock {
  localId: number
  length: number
  blockGroupLength: number
  /** What its chunks were written with (a rebuilt replica is written alike). */
  checksumType: ChecksumType
  bytesPerChecksum: number
}

/**
 * listBlocks: the committed blocks of container `c` in local-id order, from `startLocalId`,
 * at most DATANODE_LIST_BLOCKS_MAX per call (a caller pages on from the last one plus 1 while
 * it gets a full page). A RATIS block's group length is its own length.
 */
export function listBlocks(c: ContainerData, v: Volume, a: { startLocalId?: unknown; count?: unknown }): { replicaIndex: number; blocks: ListedBlock[] } {
  const start = a.startLocalId === undefined ? 0 : parseId<LocalId>(a.startLocalId, 'startLocalId')
  const count = Math.min(DATANODE_LIST_BLOCKS_MAX, a.count === undefined ? DATANODE_LIST_BLOCKS_MAX : parseId<number>(a.count, 'count'))
  const id: ContainerId = c.id
  const blocks: ListedBlock[] = []
  for (const { value } of v.blocks.getRange({ start: [id, start], end: [id + 1, 0], limit: count })) {
    blocks.push({ localId: value.localId, length: value.length, blockGroupLength: value.blockGroupLength ?? value.length, checksumType: value.checksumType, bytesPerChecksum: value.bytesPerChecksum })
  }
  return { replicaIndex: c.replicaIndex ?? 0, blocks }
}
