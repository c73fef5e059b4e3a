/** @module
 * The entries of a pipeline's Raft log (Ozone's ContainerCommandRequestProto in a Ratis log):
 * writeChunk carries a chunk's metadata and checksums, never its bytes (those travel beside
 * the entry as state machine data); putSmallFile carries a small whole block, bytes included,
 * as Ozone's PutSmallFile does; putBlock, closeContainer and deleteBlocks order the rest.
 * Pure: encode, decode and validate; no I/O.
 */
import { O3Error } from '../../../core/errors.ts'
import { CHUNK_SIZE_BYTES_MAX, SMALL_BLOCK_BYTES_MAX } from '../../../core/limits.ts'
import { parseChecksumType, parseId, type ChecksumType, type ContainerId, type LocalId } from '../../../core/wire.ts'

export interface WriteChunkEntry {
  op: 'writeChunk'
  containerId: ContainerId
  localId: LocalId
  offset: number
  length: number
  checksumType: ChecksumType
  bytesPerChecksum: number
  checksums: Uint8Array
  replication: string
  /** Commit the block at offset + length once the chunk is recorded (a one-chunk block). */
  commit: boolean
}

export interface PutSmallFileEntry {
  op: 'putSmallFile'
  containerId: ContainerId
  localId: LocalId
  checksumType: ChecksumType
  bytesPerChecksum: number
  checksums: Uint8Array
  replication: string
  data: Uint8Array
}

export interface PutBlockEntry { op: 'putBlock'; containerId: ContainerId; localId: LocalId; length: number }
export interface CloseContainerEntry { op: 'closeContainer'; containerId: ContainerId }
export interface DeleteBlocksEntry { op: 'deleteBlocks'; containerId: ContainerId; localIds: LocalId[]; txId: number }

export type PipelineEntry = WriteChunkEntry | PutSmallFileEntry | PutBlockEntry | CloseContainerEntry | DeleteBlocksEntry

const encoder = new TextEncoder()
const decoder = new TextDecoder()

export function encodeEntry(e: PipelineEntry): Uint8Array {
  const wire: Record<string, unknown> = { ...e }
  if ('checksums' in e) wire.checksums = Buffer.from(e.checksums.buffer, e.checksums.byteOffset, e.checksums.byteLength).toString('base64')
  if ('data' in e) wire.data = Buffer.from(e.data.buffer, e.data.byteOffset, e.data.byteLength).toString('base64')
  return encoder.encode(JSON.stringify(wire))
}

function bytes(v: unknown, what: string): Uint8Array {
  if (typeof v !== 'string') throw new O3Error('INVALID_ARGUMENT', `Cannot decode pipeline entry: ${what} is not base64`)
  return new Uint8Array(Buffer.from(v, 'base64'))
}

/** Decodes and validates an entry; anything malformed is INVALID_ARGUMENT (refused alike on every replica). */
export function decodeEntry(data: Uint8Array): PipelineEntry {
  let w: Record<string, unknown>
  try { w = JSON.parse(decoder.decode(data)) as Record<string, unknown> } catch { throw new O3Error('INVALID_ARGUMENT', 'Cannot decode pipeline entry: not JSON') }
  if (typeof w !== 'object' || w === null) throw new O3Error('INVALID_ARGUMENT', 'Cannot decode pipeline entry: not an object')
  const containerId = parseId<ContainerId>(w.containerId, 'containerId')
  switch (w.op) {
    case 'writeChunk': {
      const length = parseId<number>(w.length, 'length')
      if (length > CHUNK_SIZE_BYTES_MAX) throw new O3Error('ENTITY_TOO_LARGE', `Cannot decode writeChunk of ${length} bytes`)
      return {
        op: 'writeChunk', containerId, localId: parseId<LocalId>(w.localId, 'localId'), offset: parseId<number>(w.offset, 'offset'), length,
        checksumType: parseChecksumType(String(w.checksumType)), bytesPerChecksum: parseId<number>(w.bytesPerChecksum, 'bytesPerChecksum'),
        checksums: bytes(w.checksums, 'checksums'), replication: String(w.replication), commit: w.commit === true,
      }
    }
    case 'putSmallFile': {
      const d = bytes(w.data, 'data')
      if (d.length > SMALL_BLOCK_BYTES_MAX) throw new O3Error('ENTITY_TOO_LARGE', `Cannot decode putSmallFile of ${d.length} bytes`)
      return {
        op: 'putSmallFile', containerId, localId: parseId<LocalId>(w.localId, 'localId'), checksumType: parseChecksumType(String(w.checksumType)),
        bytesPerChecksum: parseId<number>(w.bytesPerChecksum, 'bytesPerChecksum'), checksums: bytes(w.checksums, 'checksums'), replication: String(w.replication), data: d,
      }
    }
    case 'putBlock':
      return { op: 'putBlock', containerId, localId: parseId<LocalId>(w.localId, 'localId'), length: parseId<number>(w.length, 'length') }
    case 'closeContainer':
      return { op: 'closeContainer', containerId }
    case 'deleteBlocks':
      if (!Array.isArray(w.localIds)) throw new O3Error('INVALID_ARGUMENT', 'Cannot decode deleteBlocks: localIds is not a list')
      return { op: 'deleteBlocks', containerId, localIds: w.localIds.map((l) => parseId<LocalId>(l, 'localId')), txId: parseId<number>(w.txId, 'txId') }
    default:
      throw new O3Error('INVALID_ARGUMENT', `Cannot decode pipeline entry: unknown op ${JSON.stringify(w.op)}`)
  }
}

/** Names one chunk write: the same bytes at the same place have the same key on every node. */
export function chunkKey(containerId: number, localId: number, offset: number, length: number): string {
  return `${containerId}:${localId}:${offset}:${length}`
}

export function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && Buffer.compare(a, b) === 0
}
