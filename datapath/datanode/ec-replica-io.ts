/** @module
 * The reconstruction coordinator's calls to other datanodes' EC replicas (Ozone's
 * ECContainerOperationClient): list a source's committed blocks, make a target's empty
 * replica, write a rebuilt cell there (body = checksums || data, one view of a slab), commit
 * its blocks, close it, or delete it after a failed run. Chunk reads use the client's
 * readChunk (datapath/client/datanode-io.ts). Borrows every buffer it is given.
 */
import { request } from 'undici'
import { O3Error } from '../../core/errors.ts'
import { RPC_TIMEOUT_MS_DEFAULT } from '../../core/limits.ts'
import { readError, RpcClient, transportError } from '../../core/rpc/client.ts'
import { PLAIN_TRANSPORT, urlOf, type Transport } from '../../core/rpc/transport.ts'
import type { ChecksumType, ContainerId, DatanodeDetails, LocalId } from '../../core/wire.ts'
import type { ListedBlock } from './ec-replica.ts'


function rpc(node: DatanodeDetails, transport: Transport): RpcClient {
  return new RpcClient('Datanode', node.address, { transport })
}

/** Every committed block of container `id` on `node`, page by page. */
export async function sourceBlocks(node: DatanodeDetails, id: ContainerId, pageMax: number, transport: Transport = PLAIN_TRANSPORT): Promise<{ replicaIndex: number; blocks: ListedBlock[] }> {
  const blocks: ListedBlock[] = []
  let replicaIndex = 0
  for (let start = 0; ;) {
    const page = await rpc(node, transport).call<{ replicaIndex: number; blocks: ListedBlock[] }>('listBlocks', { containerId: id, startLocalId: start }, { idempotent: true })
    replicaIndex = page.replicaIndex
    blocks.push(...page.blocks)
    if (page.blocks.length < pageMax) return { replicaIndex, blocks }
    start = page.blocks[page.blocks.length - 1]!.localId + 1
  }
}

/** Makes an empty EC replica of container `id` on `node` (CONTAINER_EXISTS when it holds one). */
export async function createReplica(node: DatanodeDetails, a: { containerId: ContainerId; replication: string; replicaIndex: number }, transport: Transport = PLAIN_TRANSPORT): Promise<void> {
  await rpc(node, transport).call('createContainer', a)
}

export interface CellWrite {
  containerId: ContainerId
  localId: LocalId
  replication: string
  replicaIndex: number
  offset: number
  length: number
  checksumType: ChecksumType
  bytesPerChecksum: number
  /** The chunk's checksums then its data, back to back (borrowed until the write settles). */
  body: Uint8Array
}

/** Writes one rebuilt cell to a target's replica (a standalone EC /chunk/write). */
export async function writeCell(node: DatanodeDetails, w: CellWrite, transport: Transport = PLAIN_TRANSPORT): Promise<void> {
  const args = {
    containerId: w.containerId, localId: w.localId, offset: w.offset, length: w.length, checksumType: w.checksumType, bytesPerChecksum: w.bytesPerChecksum,
    replication: w.replication, pipelineId: '', replicaIndex: w.replicaIndex, forward: [],
  }
  let res
  try {
    res = await request(urlOf(transport, node.address, '/chunk/write'), {
      method: 'POST', dispatcher: transport.dispatcher('datanode'), body: w.body,
      headers: { 'x-o3-args': JSON.stringify(args), 'content-type': 'application/octet-stream', 'content-length': String(w.body.length) },
      headersTimeout: RPC_TIMEOUT_MS_DEFAULT, bodyTimeout: RPC_TIMEOUT_MS_DEFAULT,
    })
  } catch (err) {
    throw transportError(node.address, err)
  }
  if (res.statusCode !== 200) throw await readError(res, `writeChunk on ${node.address}`)
  await res.body.dump()
}

/** Commits a rebuilt block on a target with its replica length and the group's. */
export async function commitBlock(node: DatanodeDetails, a: { containerId: ContainerId; localId: LocalId; length: number; replicaIndex: number; blockGroupLength: number; replication: string }, transport: Transport = PLAIN_TRANSPORT): Promise<void> {
  await rpc(node, transport).call('putBlock', { ...a, pipelineId: '' })
}

export async function closeReplica(node: DatanodeDetails, id: ContainerId, transport: Transport = PLAIN_TRANSPORT): Promise<string> {
  const r = await rpc(node, transport).call<{ state: string }>('closeContainer', { containerId: id }, { idempotent: true })
  if (r.state !== 'CLOSED') throw new O3Error('INVALID_CONTAINER_STATE', `Cannot close rebuilt container ${id} on ${node.address}: it is ${r.state}`)
  // Reported now rather than at the next heartbeat: the SCM's replication manager waits for it.
  await rpc(node, transport).call('triggerHeartbeat', {}).catch(() => {})
  return r.state
}

/** Deletes a partial replica this coordinator made (force: it is still OPEN). */
export async function deleteReplica(node: DatanodeDetails, id: ContainerId, transport: Transport = PLAIN_TRANSPORT): Promise<void> {
  await rpc(node, transport).call('deleteContainer', { containerId: id, force: true }, { idempotent: true })
}
