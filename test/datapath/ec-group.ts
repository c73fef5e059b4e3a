/** @module
 * Test helper: an EC block group written to datanodes as an EC writer does (Ozone's
 * ECKeyOutputStream): per stripe, each cell as one chunk at its replica offset on the node of
 * its replica index, parity from the WASM codec (createCodec) over the data cells zero-padded
 * to the stripe's first cell; then putBlock on every replica with its length and the group's.
 * It also gives the bytes each replica must hold, to compare reads and rebuilt replicas with.
 */
import { request } from 'undici'
import { checksumsLengthBytes, computeChecksums, initChecksums } from '../../core/checksum.ts'
import { replicaLengthBytes, stripeCellLengths, stripeCount, type EcScheme } from '../../core/ec-layout.ts'
import { readError, RpcClient } from '../../core/rpc/client.ts'
import { parseReplication, type ChecksumType, type ContainerId, type DatanodeDetails, type LocalId } from '../../core/wire.ts'
import { readChunk } from '../../datapath/client/datanode-io.ts'
import { createCodec } from '../../wasm/index.ts'

export const EC_WINDOW_BYTES = 16 * 1024
export const EC_CHECKSUM: ChecksumType = 'CRC32C'

export function schemeOf(replication: string): EcScheme {
  const r = parseReplication(replication)
  if (r.ec === undefined) throw new Error(`${replication} is not EC`)
  return r.ec
}

/** The bytes each replica (index 1..k+m, at [index - 1]) holds of a group of `data`. */
export async function replicaBytes(s: EcScheme, data: Uint8Array): Promise<Uint8Array[]> {
  const codec = await createCodec(s.codec, s.data, s.parity)
  const c = s.cellSizeBytes
  const out = Array.from({ length: s.data + s.parity }, (_, i) => new Uint8Array(replicaLengthBytes(s, data.length, i + 1)))
  for (let stripe = 0; stripe < stripeCount(s, data.length); stripe++) {
    const lengths = stripeCellLengths(s, data.length, stripe)
    const cellBytes = lengths[0]!
    const cells = lengths.map(() => new Uint8Array(cellBytes))
    for (let j = 0; j < s.data; j++) {
      const from = stripe * s.data * c + j * c
      cells[j]!.set(data.subarray(from, from + lengths[j]!))
    }
    codec.encode(cells.slice(0, s.data), cells.slice(s.data))
    for (let i = 0; i < s.data + s.parity; i++) out[i]!.set(cells[i]!.subarray(0, lengths[i]!), stripe * c)
  }
  return out
}

export interface EcChunk {
  containerId: number
  localId: number
  offset: number
  data: Uint8Array
  replication: string
  replicaIndex?: number
  pipelineId: string
  commit?: boolean
  blockGroupLength?: number
}

/** A raw EC /chunk/write (checksums || data); resolves with the answer's result, rejects with the datanode's O3Error. */
export async function ecWriteChunk(address: string, ch: EcChunk): Promise<{ length: number; index?: number }> {
  await initChecksums()
  const csLength = checksumsLengthBytes(EC_CHECKSUM, ch.data.length, EC_WINDOW_BYTES)
  const body = new Uint8Array(csLength + ch.data.length)
  computeChecksums(EC_CHECKSUM, ch.data, EC_WINDOW_BYTES, body.subarray(0, csLength))
  body.set(ch.data, csLength)
  const args = {
    containerId: ch.containerId, localId: ch.localId, offset: ch.offset, length: ch.data.length, checksumType: EC_CHECKSUM, bytesPerChecksum: EC_WINDOW_BYTES,
    replication: ch.replication, pipelineId: ch.pipelineId, replicaIndex: ch.replicaIndex, commit: ch.commit, blockGroupLength: ch.blockGroupLength,
  }
  const res = await request(`http://${address}/chunk/write`, {
    method: 'POST', body, headers: { 'x-o3-args': JSON.stringify(args), 'content-type': 'application/octet-stream', 'content-length': String(body.length) },
  })
  if (res.statusCode !== 200) throw await readError(res, `writeChunk on ${address}`)
  return ((await res.body.json()) as { result: { length: number; index?: number } }).result
}

export interface EcBlock {
  containerId: number
  localId: number
  replication: string
  pipelineId: string
}

/** Writes a whole group of `data` to `nodes` (nodes[i] holds replica index i + 1), stripe by stripe, with a putBlock on every replica after each. */
export async function writeGroup(nodes: readonly DatanodeDetails[], b: EcBlock, data: Uint8Array): Promise<Uint8Array[]> {
  const s = schemeOf(b.replication)
  const replicas = await replicaBytes(s, data)
  const c = s.cellSizeBytes
  for (let stripe = 0; stripe < stripeCount(s, data.length); stripe++) {
    const lengths = stripeCellLengths(s, data.length, stripe)
    await Promise.all(lengths.map(async (n, i) => {
      if (n === 0) return
      await ecWriteChunk(nodes[i]!.address, { ...b, offset: stripe * c, data: replicas[i]!.subarray(stripe * c, stripe * c + n), replicaIndex: i + 1 })
    }))
    const groupSoFar = Math.min(data.length, (stripe + 1) * s.data * c)
    await Promise.all(nodes.map((node, i) => ecPutBlock(node.address, { ...b, replicaIndex: i + 1, length: replicaLengthBytes(s, groupSoFar, i + 1), blockGroupLength: groupSoFar })))
  }
  if (data.length === 0) await Promise.all(nodes.map((node, i) => ecPutBlock(node.address, { ...b, replicaIndex: i + 1, length: 0, blockGroupLength: 0 })))
  return replicas
}

export function ecPutBlock(address: string, a: EcBlock & { replicaIndex: number; length: number; blockGroupLength: number }): Promise<{ length: number; index: number; allCommitted: boolean }> {
  return new RpcClient('Datanode', address).call('putBlock', a)
}

/** Reads a whole replica of a block from one datanode (in reads of at most `pieceBytes`). */
export async function readReplica(node: DatanodeDetails, containerId: number, localId: number, length: number, pieceBytes = 1024 * 1024): Promise<Uint8Array> {
  const out = new Uint8Array(length)
  for (let at = 0; at < length; at += pieceBytes) {
    const n = Math.min(pieceBytes, length - at)
    const r = await readChunk(node, { containerId: containerId as ContainerId, localId: localId as LocalId }, at, n)
    out.set(r.data.subarray(at - r.dataOffset, at - r.dataOffset + n), at)
  }
  return out
}
