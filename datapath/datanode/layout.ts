/** @module
 * Where a datanode keeps things on a data volume (Ozone's layout, FILE_PER_BLOCK):
 * <volume>/o3/<clusterId>/current/containerDir<N>/<containerId>/{chunks,metadata}/, and the
 * pipelines' Raft logs in <volume>/o3/<clusterId>/ratis/<pipelineId>/.
 * Every path is built from numbers and the cluster id only, never from user input. Pure.
 */
import { join } from 'node:path'
import { assert } from '../../core/assert.ts'
import type { ContainerId, LocalId } from '../../core/wire.ts'

function clusterRoot(volumeDir: string, clusterId: string): string {
  assert(/^CID-[0-9a-f-]+$/.test(clusterId), 'cluster id malformed')
  return join(volumeDir, 'o3', clusterId)
}

/** Ozone: N = (containerId >> 9) & 0xFF, in arithmetic safe beyond 32 bits. */
export function containerDir(volumeDir: string, clusterId: string, id: ContainerId): string {
  assert(Number.isSafeInteger(id) && id >= 0, 'container id not a safe integer')
  const n = Math.floor(id / 512) % 256
  return join(clusterRoot(volumeDir, clusterId), 'current', `containerDir${n}`, String(id))
}

/** The folder of a container's block files, each named `<localId>.block`. */
export function chunksDir(volumeDir: string, clusterId: string, id: ContainerId): string {
  return join(containerDir(volumeDir, clusterId, id), 'chunks')
}

export function blockFile(volumeDir: string, clusterId: string, id: ContainerId, localId: LocalId): string {
  assert(Number.isSafeInteger(localId) && localId >= 0, 'local id not a safe integer')
  return join(chunksDir(volumeDir, clusterId, id), `${localId}.block`)
}

export function containerFile(volumeDir: string, clusterId: string, id: ContainerId): string {
  return join(containerDir(volumeDir, clusterId, id), 'metadata', `${id}.container`)
}

/** Where container copies stage an import or a deletion (Ozone's <volume>/hdds/<clusterId>/tmp/container-copy); emptied at start. */
export function copyTmpDir(volumeDir: string, clusterId: string): string {
  return join(clusterRoot(volumeDir, clusterId), 'tmp', 'container-copy')
}

export function metadataDbPath(volumeDir: string, clusterId: string): string {
  return join(clusterRoot(volumeDir, clusterId), 'container.db')
}

/** The folder of the datanode's pipeline groups (Ozone keeps its Ratis logs beside the containers). */
export function pipelinesDir(volumeDir: string, clusterId: string): string {
  return join(clusterRoot(volumeDir, clusterId), 'ratis')
}

/** One pipeline group's folder: its Raft log and members. The id is checked, never trusted as a path. */
export function pipelineDir(volumeDir: string, clusterId: string, pipelineId: string): string {
  assert(/^[A-Za-z0-9-]{1,64}$/.test(pipelineId), 'pipeline id malformed')
  return join(pipelinesDir(volumeDir, clusterId), pipelineId)
}
