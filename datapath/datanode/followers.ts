/** @module
 * A pipeline leader's calls to its followers: a chunk forwarded while its body arrives, and
 * the errors a follower's failure turns into for the client. Waits for every call it starts.
 */
import { Readable } from 'node:stream'
import { request } from 'undici'
import { O3Error, type ErrorCodeName } from '../../core/errors.ts'
import { RPC_TIMEOUT_MS_DEFAULT } from '../../core/limits.ts'
import { readError, transportError } from '../../core/rpc/client.ts'
import { PLAIN_TRANSPORT, urlOf, type Transport } from '../../core/rpc/transport.ts'
import { abandonable } from '../../core/rpc/local-services.ts'
import { localBody, localDatanode } from '../client/local-datanodes.ts'

/**
 * Sends a chunk body to a follower's /chunk/write as its pieces come (`pieces` ends or
 * fails with the leader's own body; a failure cuts the request mid-body, so the follower
 * commits nothing); to a follower in this process, its short-circuit write. `args` go as they are: the caller empties their forward list. `transport`:
 * the leader's identity when security is on.
 */
export async function forwardChunk(address: string, args: object, pieces: AsyncIterable<Uint8Array>, lengthBytes: number, transport: Transport = PLAIN_TRANSPORT): Promise<void> {
  try {
    const follower = transport.scheme === 'http' ? localDatanode(address) : undefined
    if (follower !== undefined) {
      // A follower in this process (local-datanodes.ts) copies the pieces into its own slab;
      // given up on, the body is cut, so it reads no view of this slab after.
      const body = localBody(pieces)
      if (await abandonable(follower.writeChunkFrom({ args: JSON.stringify(args), lengthBytes, body }), {}, () => body.cut()) !== undefined) return
    }
    const res = await request(urlOf(transport, address, '/chunk/write'), {
      method: 'POST', dispatcher: transport.dispatcher('datanode'), body: Readable.from(pieces, { objectMode: false }),
      headers: { 'x-o3-args': JSON.stringify(args), 'content-type': 'application/octet-stream', 'content-length': String(lengthBytes) },
      headersTimeout: RPC_TIMEOUT_MS_DEFAULT, bodyTimeout: RPC_TIMEOUT_MS_DEFAULT,
    })
    if (res.statusCode !== 200) throw await readError(res, `forward to ${address}`)
    await res.body.dump()
  } catch (err) {
    throw followerError(address, err, 'forward chunk')
  }
}

/** Codes a follower's failure keeps on its way to the client; anything else is UNAVAILABLE. */
const FOLLOWER_CODES_KEPT: readonly ErrorCodeName[] = ['CHECKSUM_MISMATCH', 'CONTAINER_NOT_OPEN', 'CONTAINER_NOT_FOUND', 'CONTAINER_UNHEALTHY', 'DISK_FULL']

/**
 * The client must learn which follower failed, and why: a closed container there excludes
 * the container, anything else the follower and its pipeline.
 */
export function followerError(address: string, err: unknown, action: string): O3Error {
  const e = transportError(address, err)
  const code = FOLLOWER_CODES_KEPT.includes(e.code) ? e.code : 'UNAVAILABLE'
  return new O3Error(code, `Cannot ${action} on follower ${address}: ${e.message}`, { node: e.node ?? address })
}

/** Waits for all (so no work is left running unseen), then throws the first failure. */
export async function allSettledOrThrow(work: Promise<unknown>[]): Promise<void> {
  const failed = (await Promise.allSettled(work)).find((r) => r.status === 'rejected') as PromiseRejectedResult | undefined
  if (failed !== undefined) throw failed.reason
}
