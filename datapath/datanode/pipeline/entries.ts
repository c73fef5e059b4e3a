/** @module
 * The entries of a pipeline's Raft log (Ozone's ContainerCommandRequestProto in a Ratis log):
 * writeChunk carries a chunk's metadata and checksums, never its bytes (those travel beside
 * the entry as state machine data); putSmallFile carries a small whole block, bytes included,
 * as Ozone's PutSmallFile does; putBlock, closeContainer and deleteBlocks order the rest.
 * Pure: encode, decode and validate; no I/O.
 */
import { O3Error } from '../../../core/errors.ts'
import { encodeJsonFrame, readJsonFrame } from '../../../core/json-frame.ts'
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

/** The first byte of an entry in binary form (a JSON entry, as written before it, starts with '{'). */
const BINARY_ENTRY = 1

/**
 * An entry as log bytes: BINARY_ENTRY, then a JSON frame (core/json-frame.ts): the entry
 * without its checksums and data, their lengths instead, then the checksums and the data. A
 * small file's bytes are copied once, into the entry, and never base64'd.
 */
export function encodeEntry(e: PipelineEntry): Uint8Array {
  const wire: Record<string, unknown> = { ...e }
  if ('checksums' in e) wire.checksums = e.checksums.byteLength
  if ('data' in e) wire.data = e.data.byteLength
  const fields = [...('checksums' in e ? [e.checksums] : []), ...('data' in e ? [e.data] : [])]
  return encodeJsonFrame(wire, fields, [BINARY_ENTRY])
}

/**
 * Decodes and validates an entry; anything malformed is INVALID_ARGUMENT (refused alike on
 * every replica). Entries in the log since before the binary form (JSON, bytes in base64)
 * decode too. A binary entry's data is a view of `data`; its checksums are a copy (kept with
 * the block, they must not hold the whole message alive).
 */
export function decodeEntry(data: Uint8Array): PipelineEntry {
  if (data[0] === 0x7b) {
    let w: unknown
    try { w = JSON.parse(Buffer.from(data.buffer, data.byteOffset, data.byteLength).toString('utf8')) } catch { throw new O3Error('INVALID_ARGUMENT', 'Cannot decode pipeline entry: not JSON') }
    return fromWire(w, (v, what) => base64Bytes(v, what))
  }
  if (data[0] !== BINARY_ENTRY) throw new O3Error('INVALID_ARGUMENT', 'Cannot decode pipeline entry: neither JSON nor binary form')
  const frame = readJsonFrame(data, 1, 'pipeline entry')
  const entry = fromWire(frame.header, (v, what) => what === 'checksums' ? new Uint8Array(frame.field(v)) : frame.field(v))
  frame.end()
  return entry
}

function base64Bytes(v: unknown, what: string): Uint8Array {
  if (typeof v !== 'string') throw new O3Error('INVALID_ARGUMENT', `Cannot decode pipeline entry: ${what} is not base64`)
  return new Uint8Array(Buffer.from(v, 'base64'))
}

/** The entry a decoded header names, its checksums and data from `bytes` (checksums first). */
function fromWire(v: unknown, bytes: (v: unknown, what: 'checksums' | 'data') => Uint8Array): PipelineEntry {
  if (typeof v !== 'object' || v === null) throw new O3Error('INVALID_ARGUMENT', 'Cannot decode pipeline entry: not an object')
  const w = v as Record<string, unknown>
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
      const checksums = bytes(w.checksums, 'checksums')
      const d = bytes(w.data, 'data')
      if (d.length > SMALL_BLOCK_BYTES_MAX) throw new O3Error('ENTITY_TOO_LARGE', `Cannot decode putSmallFile of ${d.length} bytes`)
      return {
        op: 'putSmallFile', containerId, localId: parseId<LocalId>(w.localId, 'localId'), checksumType: parseChecksumType(String(w.checksumType)),
        bytesPerChecksum: parseId<number>(w.bytesPerChecksum, 'bytesPerChecksum'), checksums, replication: String(w.replication), data: d,
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
