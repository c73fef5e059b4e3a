/** @module
 * Datanodes serving in this process, by address, which this process's readers and writers
 * call without HTTP (HDFS's short-circuit local reads, and the same for writes): in `o3
 * local`'s default topology the S3 gateway and the datanodes share one process, and every
 * chunk went out through a socket and back in. A read: the datanode plans it as for
 * /chunk/read, and a worker reads the block file straight into the reader's buffer and
 * verifies it against the block's checksums (a small block packed in LMDB is copied in and
 * verified). A write: the datanode does /chunk/write's work on a body of the writer's own
 * views (copied once into its slab, as from a socket), and a pipeline leader forwards to a
 * follower in this process the same way. A datanode registers once it serves and leaves
 * before it stops; only a datanode without security registers (with it, calls stay on
 * HTTPS, where the caller's certificate and block token are checked). A local call is given
 * up as core/rpc/local-services.ts `abandonable` says.
 */
import { assert } from '../../core/assert.ts'
import { O3Error } from '../../core/errors.ts'
import type { RequestBody } from '../../core/http/body.ts'
import { LOCAL_BODY_PIECE_BYTES } from '../../core/limits.ts'
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

/** A chunk write as /chunk/write takes it: its arguments (the x-o3-args JSON), its length (checksums and data) and its body. */
export interface LocalChunkWrite {
  readonly args: string
  readonly lengthBytes: number
  readonly body: RequestBody
}

export interface LocalDatanode {
  /** The read, done; undefined when the (window-aligned) range is larger than `into`, or short-circuit reads are off there: read it over HTTP. Refusals throw as /chunk/read answers them. */
  readChunkInto(read: LocalChunkRead): Promise<LocalChunkAnswer | undefined>
  /** The write, done: what /chunk/write answers in `result`; undefined when short-circuit writes are off there (the body untouched): send it over HTTP. Refusals throw as /chunk/write answers them. */
  writeChunkFrom(write: LocalChunkWrite): Promise<unknown>
}

const datanodes = new Map<string, LocalDatanode>()

/** Lets this process's readers and writers reach the datanode at `address` directly; returns the call that stops it. */
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

/** A body of views its writer holds, for a local write; cut() it when the write is abandoned. */
export interface LocalBody extends RequestBody {
  /** Ends every read of the body: none touches the writer's views after (the writer may reuse them), a pending one fails. */
  cut(): void
}

/**
 * `pieces` (the writer's views, or a leader's feed of its slab) as a request body read once,
 * in views of at most LOCAL_BODY_PIECE_BYTES. The datanode copies each piece into its slab as
 * it gets it, synchronously; once cut (the writer gave up, or the datanode's idle timer
 * cancelled it) no piece is handed out again.
 */
export function localBody(pieces: Iterable<Uint8Array> | AsyncIterable<Uint8Array>): LocalBody {
  let iterated = false
  let cutWith: O3Error | undefined
  let wake: ((err: O3Error) => void) | undefined
  const cut = () => {
    cutWith ??= new O3Error('UNAVAILABLE', 'Cannot read body: the writer cut it')
    wake?.(cutWith)
  }
  return {
    cut,
    cancel: cut,
    [Symbol.asyncIterator](): AsyncIterator<Uint8Array> {
      assert(!iterated, 'a body is read once')
      iterated = true
      const inner = Symbol.asyncIterator in pieces ? pieces[Symbol.asyncIterator]() : pieces[Symbol.iterator]()
      // The rest of a piece longer than LOCAL_BODY_PIECE_BYTES, handed out next.
      let rest: Uint8Array | undefined
      const nextView = (piece: Uint8Array): IteratorResult<Uint8Array> => {
        rest = piece.length > LOCAL_BODY_PIECE_BYTES ? piece.subarray(LOCAL_BODY_PIECE_BYTES) : undefined
        return { done: false, value: piece.subarray(0, LOCAL_BODY_PIECE_BYTES) }
      }
      return {
        async next() {
          if (cutWith !== undefined) throw cutWith
          if (rest !== undefined) return nextView(rest)
          const cutNow = new Promise<never>((_, reject) => { wake = reject })
          cutNow.catch(() => {})
          try {
            const r = await Promise.race([inner.next(), cutNow])
            // Cut while the piece was on its way: it is the writer's again.
            if (cutWith !== undefined) throw cutWith
            return r.done === true ? r : nextView(r.value)
          } finally {
            wake = undefined
          }
        },
        async return() {
          await inner.return?.()
          return { done: true, value: undefined }
        },
      }
    },
  }
}
