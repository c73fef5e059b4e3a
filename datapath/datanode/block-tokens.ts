/** @module
 * The datanode's check of block tokens (Ozone's BlockTokenVerifier in the HddsDispatcher):
 * with security on, every chunk read and write, putBlock and getBlock needs a valid token for
 * its block and mode, signed with one of the SCM's secret keys (kept by a SecretKeyCache).
 * Other datanodes and the SCM, known by their certificate, are exempt: a pipeline leader's
 * forwards, EC reconstruction and container copies act for blocks the SCM asked them to move.
 * With security off it checks nothing.
 */
import type { Context } from 'hono'
import { O3Error } from '../../core/errors.ts'
import { readBlockToken, verifyBlockToken, type BlockTokenMode } from '../../core/security/block-token.ts'
import { serviceCaller, type Caller } from '../../core/security/caller.ts'
import { SecretKeyCache, secretKeyRefreshMs, type SecretKeysAnswer } from '../../core/security/secret-keys.ts'
import type { BlockId } from '../../core/wire.ts'

/** The header a client sends a block's token in on /chunk/write and /chunk/read. */
export const BLOCK_TOKEN_HEADER = 'x-o3-block-token'

export interface BlockTokenGuardOptions {
  enabled: boolean
  name: string
  rotateMs: number
  fetch: () => Promise<SecretKeysAnswer>
}

export class BlockTokenGuard {
  private readonly keys?: SecretKeyCache

  constructor(options: BlockTokenGuardOptions) {
    if (options.enabled) this.keys = new SecretKeyCache({ name: options.name, fetch: options.fetch, refreshMs: secretKeyRefreshMs(options.rotateMs) })
  }

  /** Fetches the keys in the background (a datanode may start before the SCM answers). */
  start(): void {
    void this.keys?.start()
  }

  stop(): void {
    this.keys?.stop()
  }

  /**
   * Throws BLOCK_TOKEN_VERIFICATION_FAILED ("Cannot <what>: why") unless security is off, the
   * caller is a datanode or SCM peer, or `token` opens `blockId` for `mode` now.
   */
  async check(caller: Caller, token: unknown, blockId: BlockId, mode: BlockTokenMode, what: string): Promise<void> {
    if (this.keys === undefined) return
    if (caller.kind === 'service' && (caller.role === 'datanode' || caller.role === 'scm')) return
    try {
      const claims = readBlockToken(token)
      await this.keys.learn(claims.keyId)
      verifyBlockToken(token, { blockId, mode, nowMs: Date.now(), secretOf: (id) => this.keys!.secretOf(id) })
    } catch (err) {
      if (err instanceof O3Error && err.code === 'BLOCK_TOKEN_VERIFICATION_FAILED') throw new O3Error(err.code, `Cannot ${what}: ${err.message}`)
      throw err
    }
  }

  /**
   * /chunk/write: the token from the header, or from the args a pipeline leader forwards (it
   * puts the client's token there, so a follower checks it too, also on plain HTTP where the
   * leader is not known by a certificate).
   */
  async checkChunkWrite(c: Context, args: { containerId: number; localId: number; token?: unknown }): Promise<void> {
    if (this.keys === undefined) return
    const token = c.req.header(BLOCK_TOKEN_HEADER) ?? args.token
    await this.check(serviceCaller(c), token, blockIdOf(args), 'write', `write chunk of block ${args.containerId}:${args.localId}`)
    if (typeof token === 'string') args.token = token
  }

  /** /chunk/read: the token from the header. */
  async checkChunkRead(c: Context, a: { containerId?: unknown; localId?: unknown }): Promise<void> {
    if (this.keys === undefined) return
    const blockId = blockIdOf(a)
    await this.check(serviceCaller(c), c.req.header(BLOCK_TOKEN_HEADER), blockId, 'read', `read chunk of block ${blockId.containerId}:${blockId.localId}`)
  }
}

/** The block a call names; ids the route itself checks afterwards are taken as they come (a bad one matches no token). */
function blockIdOf(a: { containerId?: unknown; localId?: unknown }): BlockId {
  return { containerId: a.containerId, localId: a.localId } as BlockId
}
