/** @module
 * The OM's side of block tokens (Ozone's OzoneBlockTokenSecretManager in the OM): with
 * security on, every block the OM hands out gets a token signed with the SCM's current secret
 * key: read and write for a block being written (openKey, allocateBlock, an S3 open), read for
 * a looked-up key's blocks. Applied to answers at the RPC edge, after the Raft apply, so apply
 * stays pure and a retried call gets a fresh token; a token is never stored.
 */
import type { BlockTokenMode } from '../../core/security/block-token.ts'
import { signBlockToken } from '../../core/security/block-token.ts'
import type { RpcContext } from '../../core/security/caller.ts'
import type { SecretKeyCache } from '../../core/security/secret-keys.ts'
import type { KeyInfo, LookupPart, OpenKeyResult, S3AuthResult } from '../../core/om-wire.ts'
import type { BlockId } from '../../core/wire.ts'

const WRITE: readonly BlockTokenMode[] = ['read', 'write']
const READ: readonly BlockTokenMode[] = ['read']

/** Who a token is issued to: the user a gateway acts for, the user, the service; empty with security off. */
export function tokenOwner(ctx: RpcContext): string {
  if (ctx.onBehalfOf !== undefined) return ctx.onBehalfOf
  const c = ctx.caller
  return c.kind === 'user' ? c.user : c.kind === 'service' ? `${c.role}/${c.id}` : ''
}

export class BlockTokenIssuer {
  /** `keys` undefined: security is off, answers go out as they are. */
  constructor(private readonly keys: SecretKeyCache | undefined, private readonly expiryMs: number) {}

  private async sign<T extends { blockId: BlockId }>(blocks: readonly T[], owner: string, modes: readonly BlockTokenMode[]): Promise<T[]> {
    if (this.keys === undefined || blocks.length === 0) return [...blocks]
    const nowMs = Date.now()
    const key = await this.keys.current(nowMs)
    // A token never outlives its key: the datanodes drop the key at its expiry.
    const expiresAtMs = Math.min(nowMs + this.expiryMs, key.expiresAtMs)
    return blocks.map((b) => ({ ...b, token: signBlockToken({ blockId: b.blockId, modes, expiresAtMs, owner, keyId: key.id }, key) }))
  }

  async block<T extends { blockId: BlockId }>(b: T, ctx: RpcContext): Promise<T> {
    return (await this.sign([b], tokenOwner(ctx), WRITE))[0]!
  }

  async opened(r: OpenKeyResult, owner: string): Promise<OpenKeyResult> {
    return { ...r, blocks: await this.sign(r.blocks, owner, WRITE) }
  }

  async key(k: KeyInfo, owner: string): Promise<KeyInfo> {
    return { ...k, locations: await this.sign(k.locations, owner, READ) }
  }

  /** s3Authenticate's answer: the key and required key readable, the opened key writable, by the request's user. */
  async s3(r: S3AuthResult, ctx: RpcContext): Promise<S3AuthResult> {
    if (this.keys === undefined) return r
    const owner = r.user ?? tokenOwner(ctx)
    const part = async <T>(p: LookupPart<T> | undefined, f: (v: T) => Promise<T>): Promise<LookupPart<T> | undefined> =>
      p === undefined || !p.ok ? p : { ok: true, value: await f(p.value) }
    return {
      ...r,
      key: await part(r.key, (k) => this.key(k, owner)),
      required: await part(r.required, (k) => this.key(k, owner)),
      opened: await part(r.opened, (o) => this.opened(o, owner)),
    }
  }
}
