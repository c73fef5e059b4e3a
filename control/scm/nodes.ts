/** @module
 * The SCM's view of datanodes: registration, heartbeats, and health from heartbeat age
 * (HEALTHY -> STALE -> DEAD, Ozone's NodeStateManager). Pure: time comes in as `nowMs`.
 */
import type { DatanodeDetails, DatanodeId, NodeHealth } from '../../core/wire.ts'

export interface VolumeReport {
  dir: string
  capacityBytes: number
  usedBytes: number
  availableBytes: number
  /** What the datanode keeps free there (datanode.volume.minFreeBytes); 0 from a datanode that reports none. */
  reservedBytes: number
  /** Less than the reserve left: the volume takes no new containers. */
  full: boolean
}

/** A datanode as this SCM heard it; its operational state is replicated (tables.ts nodeStates), not here. */
export interface NodeRecord extends DatanodeDetails {
  registeredAtMs: number
  lastHeartbeatMs: number
  volumes: VolumeReport[]
}

export interface NodeThresholds {
  staleMs: number
  deadMs: number
}

export function nodeHealth(node: NodeRecord, nowMs: number, t: NodeThresholds): NodeHealth {
  const age = nowMs - node.lastHeartbeatMs
  if (age >= t.deadMs) return 'DEAD'
  if (age >= t.staleMs) return 'STALE'
  return 'HEALTHY'
}

export function nodeUsage(node: NodeRecord): { capacityBytes: number; usedBytes: number; availableBytes: number } {
  let capacityBytes = 0, usedBytes = 0, availableBytes = 0
  for (const v of node.volumes) {
    capacityBytes += v.capacityBytes
    usedBytes += v.usedBytes
    availableBytes += v.availableBytes
  }
  return { capacityBytes, usedBytes, availableBytes }
}

/**
 * Whether a node can take a new container: one of its volumes has `needBytes` free beyond
 * its reserve (Ozone's SCMCommonPlacementPolicy.hasEnoughSpace asks for a whole container;
 * here a block, since a datanode closes its containers once their volume reaches the
 * reserve). A node that reported no volumes is given the benefit.
 */
export function hasRoom(node: Pick<NodeRecord, 'volumes'>, needBytes: number): boolean {
  return node.volumes.length === 0 || node.volumes.some((v) => !v.full && v.availableBytes - v.reservedBytes >= needBytes)
}

export function isDatanodeId(value: unknown): value is DatanodeId {
  return typeof value === 'string' && /^[0-9a-f-]{8,64}$/i.test(value)
}
