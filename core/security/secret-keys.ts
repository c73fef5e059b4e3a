/** @module
 * The SCM's secret keys as the OM and the datanodes hold them (Ozone's SecretKeyClient and
 * DefaultSecretKeyClient): the wire form of SCM.getSecretKeys, and SecretKeyCache, which
 * fetches them at start, refreshes them on a timer, and once more when a token names a key it
 * does not know yet (a rotation it has not seen). The fetch is given, so no RPC here.
 */
import { O3Error } from '../errors.ts'
import { log } from '../log.ts'
import type { SigningKey } from './block-token.ts'

/** One secret key of the SCM (Ozone's ManagedSecretKey). `secret` is base64 of 32 random bytes. */
export interface SecretKey {
  id: string
  createdAtMs: number
  /** After this no token signed with it verifies, and the SCM drops it. */
  expiresAtMs: number
  secret: string
}

/** What SCM.getSecretKeys answers: the keys not yet expired, and which one signs new tokens. */
export interface SecretKeysAnswer {
  current: string
  keys: SecretKey[]
}

/** A refresh for an unknown key id waits at least this long after the last one (a flood of forged ids costs one fetch). */
const UNKNOWN_KEY_REFRESH_GAP_MS = 1000

export interface SecretKeyCacheOptions {
  /** Who holds it, for logs: `OM om1`, `datanode <id>`. */
  name: string
  fetch: () => Promise<SecretKeysAnswer>
  refreshMs: number
}

export class SecretKeyCache {
  private keys = new Map<string, { expiresAtMs: number; secret: Uint8Array; createdAtMs: number }>()
  private currentId = ''
  private timer?: ReturnType<typeof setInterval>
  private inflight?: Promise<void>
  /** The refresh unknown key ids wait for (one for a burst of them). */
  private learning?: Promise<void>
  private lastRefreshMs = 0

  constructor(private readonly options: SecretKeyCacheOptions) {}

  /** Fetches the keys (a failure is logged; the timer tries again) and starts the refresh timer. */
  async start(): Promise<void> {
    await this.refresh().catch((err: unknown) => log.warn(`${this.options.name}: cannot fetch the SCM's secret keys yet: ${(err as Error).message}`))
    this.timer = setInterval(() => {
      this.refresh().catch((err: unknown) => log.warn(`${this.options.name}: cannot refresh the SCM's secret keys: ${(err as Error).message}`))
    }, this.options.refreshMs)
    this.timer.unref()
  }

  stop(): void {
    clearInterval(this.timer)
  }

  /** Fetches now (one fetch at a time: a second caller waits for the first). */
  refresh(): Promise<void> {
    this.inflight ??= (async () => {
      try {
        this.lastRefreshMs = Date.now()
        const answer = await this.options.fetch()
        const next = new Map<string, { expiresAtMs: number; secret: Uint8Array; createdAtMs: number }>()
        for (const k of answer.keys) next.set(k.id, { expiresAtMs: k.expiresAtMs, createdAtMs: k.createdAtMs, secret: Buffer.from(k.secret, 'base64') })
        if (!next.has(answer.current)) throw new O3Error('INTERNAL_ERROR', `Cannot take the SCM's secret keys: the current key ${answer.current} is not among them`)
        this.keys = next
        this.currentId = answer.current
      } finally {
        this.inflight = undefined
      }
    })()
    return this.inflight
  }

  /**
   * The key new tokens are signed with, and how long it lasts. UNAVAILABLE until the first
   * fetch succeeded; tries one now when none has.
   */
  async current(nowMs: number): Promise<SigningKey & { expiresAtMs: number }> {
    let k = this.keys.get(this.currentId)
    if (k === undefined || k.expiresAtMs <= nowMs) {
      await this.refresh().catch((err: unknown) => { throw new O3Error('UNAVAILABLE', `Cannot sign a block token: the SCM's secret keys are not known yet (${(err as Error).message})`) })
      k = this.keys.get(this.currentId)
    }
    if (k === undefined || k.expiresAtMs <= nowMs) throw new O3Error('UNAVAILABLE', 'Cannot sign a block token: the SCM has no unexpired secret key')
    return { id: this.currentId, secret: k.secret, expiresAtMs: k.expiresAtMs }
  }

  /** The secret of key `id` as last fetched (synchronous: for verifyBlockToken's secretOf). */
  secretOf(id: string): Uint8Array | undefined {
    return this.keys.get(id)?.secret
  }

  /**
   * Makes sure key `id` is known if the SCM has it: one refresh when it is not (a key the SCM
   * made since the last refresh). Refreshes for unknown ids start at most once per
   * UNKNOWN_KEY_REFRESH_GAP_MS (waiting out the gap), so a flood of made-up ids costs one
   * fetch a second, and a real new key is never refused for a refresh just before it.
   */
  async learn(id: string): Promise<void> {
    if (this.keys.has(id)) return
    this.learning ??= (async () => {
      try {
        const waitMs = this.lastRefreshMs + UNKNOWN_KEY_REFRESH_GAP_MS - Date.now()
        if (waitMs > 0 && this.inflight === undefined) await new Promise((r) => setTimeout(r, waitMs))
        await this.refresh().catch((err: unknown) => log.warn(`${this.options.name}: cannot refresh the SCM's secret keys for key ${id}: ${(err as Error).message}`))
      } finally {
        this.learning = undefined
      }
    })()
    await this.learning
  }
}

/** How often a holder refreshes: twice per rotation, at least every 10 minutes (new keys show up well before tokens use them). */
export function secretKeyRefreshMs(rotateMs: number): number {
  return Math.max(100, Math.min(600_000, Math.floor(rotateMs / 2)))
}
