/** @module
 * The datanode's check of block tokens (Ozone's BlockTokenVerifier in the HddsDispatcher):
 * with security on, every chunk read and write, putBlock and getBlock needs a valid token for
 * its block and mode, signed with one of the SCM's secret keys (kept by a SecretKeyCache).
 * Other datanodes and the SCM, known by their certificate, are exempt: a pipeline leader's
 * forwards, EC reconstruction and container copies act for blocks the SCM asked them to move.
 * Installed as Datanode.blockTokenCheck (access.ts). With security off it checks nothing.
 */
import { O3Error } from '../../core/errors.ts'
import { readBlockToken, verifyBlockToken, type BlockTokenMode } from '../../core/security/block-token.ts'
import type { Caller } from '../../core/security/caller.ts'
import { SecretKeyCache, secretKeyRefreshMs, type SecretKeysAnswer } from '../../core/security/secret-keys.ts'
import type { BlockId } from '../../core/wire.ts'
import { isBlockPeer, type BlockTokenCheck } from './access.ts'

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
    if (isBlockPeer(caller)) return
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
   * The check Datanode.blockTokenCheck runs for a caller that is not a datanode or SCM peer
   * (access.ts checkBlockRoute exempts those): the block routes by their mode. watchForCommit
   * names a pipeline, not a block, and only waits on its log: admitted. listBlock names a
   * container: a token for any block of it.
   */
  asCheck(): BlockTokenCheck {
    return async (ctx, method, block, mode, token) => {
      if (method === 'watchForCommit' || block === undefined) return
      const m: BlockTokenMode = mode === 'WRITE' ? 'write' : 'read'
      if (method === 'listBlock') return this.checkContainer(ctx.caller, token, block.containerId, `list the blocks of container ${String(block.containerId)}`)
      const what = `${BLOCK_ACTIONS[method] ?? `call ${method} on`} block ${String(block.containerId)}:${String(block.localId)}`
      return this.check(ctx.caller, token, blockIdOf(block), m, what)
    }
  }

  /** A token (read) for any block of `containerId`. */
  private async checkContainer(caller: Caller, token: unknown, containerId: unknown, what: string): Promise<void> {
    if (this.keys === undefined) return
    if (isBlockPeer(caller)) return
    try {
      const claims = readBlockToken(token)
      await this.keys.learn(claims.keyId)
      verifyBlockToken(token, { mode: 'read', nowMs: Date.now(), secretOf: (id) => this.keys!.secretOf(id) })
      if (claims.blockId.containerId !== containerId) throw new O3Error('BLOCK_TOKEN_VERIFICATION_FAILED', `the block token is for a block of container ${claims.blockId.containerId}, not ${String(containerId)}`)
    } catch (err) {
      if (err instanceof O3Error && err.code === 'BLOCK_TOKEN_VERIFICATION_FAILED') throw new O3Error(err.code, `Cannot ${what}: ${err.message}`)
      throw err
    }
  }
}

/** What each block route does, for refusals ("Cannot write chunk of block 1:2: ..."). */
const BLOCK_ACTIONS: Readonly<Record<string, string>> = {
  writeChunk: 'write chunk of', readChunk: 'read chunk of', putBlock: 'commit', getBlock: 'get',
}

/** The block a call names; ids the route itself checks afterwards are taken as they come (a bad one matches no token). */
function blockIdOf(a: { containerId?: unknown; localId?: unknown }): BlockId {
  return { containerId: a.containerId, localId: a.localId } as BlockId
}
