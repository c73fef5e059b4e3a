/** @module
 * `o3 admin cert token`: a bootstrap token from the SCM's CA, for an administrator (mutual TLS
 * with the user certificate of client-security.ts).
 * `o3 admin cert user NAME`: a user certificate with the SCM's admin token (on its host).
 * `o3 admin cert list|forget`: the enrolled services; letting one that lost its key enroll again.
 */
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { enrollUser, ENROLLING_ROLES } from '../core/security/identity.ts'
import { loadConfig } from '../core/config.ts'
import { O3Error } from '../core/errors.ts'
import { RpcClient } from '../core/rpc/client.ts'
import { flag, option, stringOption, UsageError, type Invocation } from './args.ts'
import { rpcOptions } from './client-security.ts'
import { formatTime, printJson, printTable } from './output.ts'

export async function certAdmin(inv: Invocation, verb: string): Promise<void> {
  try {
    await certCommand(inv, verb)
  } catch (err) {
    // An SCM without security has no certificate routes at all.
    if (err instanceof O3Error && err.code === 'INVALID_ARGUMENT' && /no such method on SCM/.test(err.message)) {
      throw new O3Error('INVALID_ARGUMENT', `Cannot run o3 admin cert ${verb}: security is off on this cluster (security.enabled=0; o3 local --secure starts a secure one)`)
    }
    throw err
  }
}

async function certCommand(inv: Invocation, verb: string): Promise<void> {
  if (verb === 'user') return userCertificate(inv)
  if (verb === 'list' || verb === 'forget') return enrolled(inv, verb)
  if (verb !== 'token') throw new Error(`o3 admin cert ${verb} is in the command table but has no handler`)
  const raw = stringOption(inv, 'ttl-hours') ?? '24'
  const hours = Number(raw)
  if (!/^\d+(\.\d+)?$/.test(raw) || !(hours > 0) || hours > 365 * 24) throw new UsageError(`bad --ttl-hours ${JSON.stringify(raw)}: expected a number of hours up to a year`, 'o3 admin cert token')
  const rpc = new RpcClient('SCM', option(inv, 'scm'), rpcOptions('SCM'))
  const made = await rpc.call<{ token: string; expiresAtMs: number; reusable: boolean }>('createBootstrapToken', { ttlMs: Math.round(hours * 3600_000), reusable: flag(inv, 'reusable') })
  if (flag(inv, 'json')) return printJson(made)
  console.log(made.token)
  console.error(`${made.reusable ? 'reusable' : 'one-time'} bootstrap token, valid until ${new Date(made.expiresAtMs).toISOString()}: set it as security.bootstrapToken (O3_SECURITY_BOOTSTRAPTOKEN) of the service to enroll`)
}

async function userCertificate(inv: Invocation): Promise<void> {
  const [user] = inv.positionals
  const tokenFile = stringOption(inv, 'token-file') ?? join(loadConfig()['scm.dir'], 'ca', 'admin-token')
  if (!existsSync(tokenFile)) throw new UsageError(`no admin token at ${tokenFile}: run this on the SCM's host, or give --token-file`, 'o3 admin cert user')
  const out = option(inv, 'out')
  const creds = await enrollUser({ user, scm: option(inv, 'scm'), adminToken: readFileSync(tokenFile, 'utf8').trim() })
  mkdirSync(out, { recursive: true })
  const files = { cert: join(out, `${user}.pem`), key: join(out, `${user}.key`), ca: join(out, 'ca.pem') }
  // mode applies only to a new file: an older key file (maybe world-readable) goes first, so
  // the new key is never in a file others may read, not even for a moment.
  rmSync(files.key, { force: true })
  writeFileSync(files.key, creds.key, { mode: 0o600, flag: 'wx' })
  writeFileSync(files.cert, creds.cert)
  writeFileSync(files.ca, creds.ca)
  if (flag(inv, 'json')) return printJson(files)
  console.log(`export O3_CLIENT_CAFILE=${files.ca} O3_CLIENT_CERTFILE=${files.cert} O3_CLIENT_KEYFILE=${files.key}`)
}

async function enrolled(inv: Invocation, verb: 'list' | 'forget'): Promise<void> {
  const [role, id] = inv.positionals
  // Checked here: the SCM would only find no such enrollment, which reads as if the role were right.
  if (verb === 'forget' && !(ENROLLING_ROLES as readonly string[]).includes(role)) {
    throw new UsageError(`unknown role ${JSON.stringify(role)}: ROLE is one of ${ENROLLING_ROLES.join(', ')} (the services that enroll)`, 'o3 admin cert forget')
  }
  const rpc = new RpcClient('SCM', option(inv, 'scm'), rpcOptions('SCM'))
  if (verb === 'forget') {
    const r = await rpc.call<{ forgotten: boolean }>('forgetEnrollment', { role, id })
    if (flag(inv, 'json')) return printJson(r)
    console.log(`${role} ${id} may enroll again (with a new bootstrap token and key)`)
    return
  }
  const rows = await rpc.call<{ role: string; id: string; issuedAtMs: number; expiresAtMs: number }[]>('listCertificates', {}, { idempotent: true })
  if (flag(inv, 'json')) return printJson(rows)
  printTable(['role', 'id', 'issued', 'expires'], rows.map((r) => [r.role, r.id, formatTime(r.issuedAtMs), formatTime(r.expiresAtMs)]))
}
