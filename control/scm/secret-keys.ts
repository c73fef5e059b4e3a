/** @module
 * The SCM's block-token secret keys (Ozone's SecretKeyManager, hdds.secret.key.rotate.duration
 * and .expiry.duration): the leader makes the first key and a new one every
 * security.secretKey.rotateMs, through the replicated rotateSecretKey request; getSecretKeys
 * answers the OM and the datanodes with every unexpired key and the current one. Only with
 * security.enabled; the keys never leave the SCM but in that answer.
 */
import type { O3Config } from '../../core/config.ts'
import { O3Error } from '../../core/errors.ts'
import { log } from '../../core/log.ts'
import { requireRole, type RpcContext } from '../../core/security/caller.ts'
import type { SecretKeysAnswer } from '../../core/security/secret-keys.ts'
import type { ReplicatedService } from '../ha/replicated-service.ts'
import { currentSecretKey, liveSecretKeys } from './requests/secret-keys.ts'
import type { ScmTables } from './tables.ts'

/** How often the leader checks whether the current key is due (Ozone's hdds.secret.key.rotate.check.duration), at most. */
const ROTATE_CHECK_MS_MAX = 60_000

export class SecretKeyManager {
  private timer?: ReturnType<typeof setInterval>
  private rotating?: Promise<void>

  constructor(private readonly config: O3Config, private readonly ha: ReplicatedService, private readonly tables: () => ScmTables) {}

  get enabled(): boolean {
    return this.config['security.enabled'] === 1
  }

  /** Starts the leader's rotation check (every SCM runs it; only the leader acts). */
  start(): void {
    if (!this.enabled) return
    const everyMs = Math.max(10, Math.min(ROTATE_CHECK_MS_MAX, Math.floor(this.config['security.secretKey.rotateMs'] / 4)))
    this.timer = setInterval(() => {
      if (!this.ha.isLeader()) return
      this.rotateIfDue().catch((err: unknown) => log.warn(`SCM: cannot rotate the block-token secret key: ${(err as Error).message}`))
    }, everyMs)
    this.timer.unref()
  }

  stop(): void {
    clearInterval(this.timer)
  }

  /** Leader: submits a new key when there is none or the current one is rotateMs old (one submission at a time). */
  rotateIfDue(): Promise<void> {
    const nowMs = Date.now()
    const current = currentSecretKey(this.tables(), nowMs)
    if (current !== undefined && current.createdAtMs + this.config['security.secretKey.rotateMs'] > nowMs) return Promise.resolve()
    this.rotating ??= (async () => {
      try {
        const key = await this.ha.submit('rotateSecretKey', { expiryMs: this.config['security.secretKey.expiryMs'] }) as { id: string }
        log.info(`SCM: block-token secret key ${key.id} is current`)
      } finally {
        this.rotating = undefined
      }
    })()
    return this.rotating
  }

  /** SCM.getSecretKeys (leader): the OM signs with `current`, the datanodes verify with any of `keys`. */
  async getSecretKeys(ctx: RpcContext): Promise<SecretKeysAnswer> {
    requireRole(ctx, ['om', 'datanode'], 'get the block-token secret keys')
    if (!this.enabled) throw new O3Error('INVALID_ARGUMENT', 'Cannot get the block-token secret keys: security is off (security.enabled=0)')
    await this.rotateIfDue()
    const nowMs = Date.now()
    const current = currentSecretKey(this.tables(), nowMs)
    if (current === undefined) throw new O3Error('UNAVAILABLE', 'Cannot get the block-token secret keys: none made yet')
    return { current: current.id, keys: liveSecretKeys(this.tables(), nowMs) }
  }
}
