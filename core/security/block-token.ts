/** @module
 * Block tokens (Ozone's OzoneBlockTokenIdentifier + BlockTokenVerifier): what the OM hands a
 * client with every block, and what a datanode checks before it reads or writes that block.
 * A token is base64url(JSON claims) "." base64url(HMAC-SHA256(secret key, first part)); the
 * claims name the block, the modes, the expiry, the owner and the SCM secret key's id.
 * Pure: no I/O, no clock (now comes in), no randomness; the keys come from the caller.
 */
import { createHmac, timingSafeEqual } from 'node:crypto'
import { O3Error } from '../errors.ts'
import type { BlockId } from '../wire.ts'

export type BlockTokenMode = 'read' | 'write'
export const BLOCK_TOKEN_MODES: readonly BlockTokenMode[] = ['read', 'write']

/** A token longer than this is refused unread (a header or an RPC argument). */
export const BLOCK_TOKEN_CHARS_MAX = 2048

export interface BlockTokenClaims {
  readonly blockId: BlockId
  readonly modes: readonly BlockTokenMode[]
  readonly expiresAtMs: number
  /** Who it was issued to (the user, or the service acting for one): for logs and audits. */
  readonly owner: string
  /** The SCM secret key it is signed with. */
  readonly keyId: string
}

/** A secret key as the signer and the verifier hold it. */
export interface SigningKey {
  readonly id: string
  readonly secret: Uint8Array
}

function mac(secret: Uint8Array, payload: string): Buffer {
  return createHmac('sha256', secret).update(payload).digest()
}

/** Signs `claims` with `key` (whose id must be claims.keyId). */
export function signBlockToken(claims: BlockTokenClaims, key: SigningKey): string {
  if (claims.keyId !== key.id) throw new RangeError(`Cannot sign a block token: claims name key ${claims.keyId}, the key is ${key.id}`)
  const payload = Buffer.from(JSON.stringify({
    blockId: { containerId: claims.blockId.containerId, localId: claims.blockId.localId },
    modes: [...claims.modes], expiresAtMs: claims.expiresAtMs, owner: claims.owner, keyId: claims.keyId,
  })).toString('base64url')
  return `${payload}.${mac(key.secret, payload).toString('base64url')}`
}

function refuse(why: string): O3Error {
  return new O3Error('BLOCK_TOKEN_VERIFICATION_FAILED', why)
}

const isId = (v: unknown): v is number => typeof v === 'number' && Number.isSafeInteger(v) && v >= 0

/**
 * The claims of a token, unverified (the verifier needs keyId to find the key); throws
 * BLOCK_TOKEN_VERIFICATION_FAILED when it is not a token at all.
 */
export function readBlockToken(token: unknown): BlockTokenClaims {
  if (typeof token !== 'string' || token.length === 0) throw refuse('no block token')
  if (token.length > BLOCK_TOKEN_CHARS_MAX) throw refuse(`the block token is longer than ${BLOCK_TOKEN_CHARS_MAX} characters`)
  const dot = token.indexOf('.')
  if (dot <= 0 || dot !== token.lastIndexOf('.')) throw refuse('the block token is malformed')
  let c: Record<string, unknown>
  try {
    c = JSON.parse(Buffer.from(token.slice(0, dot), 'base64url').toString('utf8')) as Record<string, unknown>
  } catch {
    throw refuse('the block token is malformed')
  }
  const b = c?.blockId as Record<string, unknown> | undefined
  if (typeof c !== 'object' || c === null || typeof b !== 'object' || b === null || !isId(b.containerId) || !isId(b.localId) ||
    !Array.isArray(c.modes) || !c.modes.every((m) => BLOCK_TOKEN_MODES.includes(m as BlockTokenMode)) ||
    !isId(c.expiresAtMs) || typeof c.owner !== 'string' || typeof c.keyId !== 'string') {
    throw refuse('the block token is malformed')
  }
  return {
    blockId: { containerId: b.containerId, localId: b.localId } as BlockId, modes: c.modes as BlockTokenMode[],
    expiresAtMs: c.expiresAtMs, owner: c.owner, keyId: c.keyId,
  }
}

export interface BlockTokenCheck {
  /** The block the call touches; omitted for a call bound to no one block (any block's token then serves). */
  readonly blockId?: BlockId
  readonly mode: BlockTokenMode
  readonly nowMs: number
  /** The secret of key `id`, or undefined when the verifier knows no such key (expired and dropped, or never made). */
  readonly secretOf: (id: string) => Uint8Array | undefined
}

/**
 * Checks `token` for a call and returns its claims; throws BLOCK_TOKEN_VERIFICATION_FAILED
 * saying why: none, malformed, unknown key, forged (signature), expired, another block, mode.
 * The signature is checked before anything the claims say is believed.
 */
export function verifyBlockToken(token: unknown, check: BlockTokenCheck): BlockTokenClaims {
  const claims = readBlockToken(token)
  const t = token as string
  const dot = t.indexOf('.')
  const secret = check.secretOf(claims.keyId)
  if (secret === undefined) throw refuse(`the block token is signed with secret key ${claims.keyId}, which this node does not know (expired or never issued)`)
  const given = Buffer.from(t.slice(dot + 1), 'base64url')
  const expected = mac(secret, t.slice(0, dot))
  if (given.length !== expected.length || !timingSafeEqual(given, expected)) throw refuse('the block token is forged: its signature does not match')
  const block = `${claims.blockId.containerId}:${claims.blockId.localId}`
  if (claims.expiresAtMs <= check.nowMs) throw refuse(`the block token for block ${block} expired ${check.nowMs - claims.expiresAtMs} ms ago`)
  if (check.blockId !== undefined && (check.blockId.containerId !== claims.blockId.containerId || check.blockId.localId !== claims.blockId.localId)) {
    throw refuse(`the block token is for block ${block}, not ${check.blockId.containerId}:${check.blockId.localId}`)
  }
  if (!claims.modes.includes(check.mode)) throw refuse(`the block token for block ${block} does not allow ${check.mode} (only ${claims.modes.join(', ') || 'nothing'})`)
  return claims
}
