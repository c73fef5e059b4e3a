/** @module
 * Datanodes serving in this process, by address, whose chunks a reader reads without HTTP
 * (HDFS's short-circuit local read): in `o3 local`'s default topology the S3 gateway and
 * the datanodes share one process, and every chunk a GET read went out through a socket
 * and back in. Here the datanode plans the read as for /chunk/read, and a worker reads the
 * block file straight into the reader's buffer and verifies it against the block's
 * checksums (a small block packed in LMDB is copied in and verified). A datanode registers once it serves and leaves before it stops; only a
 * datanode without security registers (with it, reads stay on HTTPS, where the caller's
 * certificate and block token are checked).
 */
import { assert } from '../../core/assert.ts'
import type { BlockId, ChecksumType } from '../../core/wire.ts'

/** A read of [offset, offset + length) of a block into `into` (a reader's shared buffer, from `byteOffset`). */
export interface LocalChunkRead {
  readonly blockId: BlockId
  readonly offset: number
  readonly length: number
  readonly into: { readonly slab: SharedArrayBuffer; readonly byteOffset: number }
}

/** What a short-circuit read filled: `dataLength` bytes of the block from `dataOffset` (window-aligned), verified. */
export interface LocalChunkAnswer {
  readonly dataOffset: number
  readonly dataLength: number
  readonly checksumType: ChecksumType
  readonly bytesPerChecksum: number
  /** The first checksum window that did not match, or -1. */
  readonly badWindow: number
}

export interface LocalDatanode {
  /** The read, done; undefined when the (window-aligned) range is larger than `into`: read it over HTTP. Refusals throw as /chunk/read answers them. */
  readChunkInto(read: LocalChunkRead): Promise<LocalChunkAnswer | undefined>
}

const datanodes = new Map<string, LocalDatanode>()

/** Lets this process's readers reach the datanode at `address` directly; returns the call that stops it. */
export function serveLocally(address: string, datanode: LocalDatanode): () => void {
  assert(!datanodes.has(address), `one datanode serves locally at ${address}`)
  datanodes.set(address, datanode)
  return () => {
    if (datanodes.get(address) === datanode) datanodes.delete(address)
  }
}

/** The datanode at `address` if it serves in this process. */
export function localDatanode(address: string): LocalDatanode | undefined {
  return datanodes.get(address)
}
