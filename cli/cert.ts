/** @module
 * `o3 admin cert token`: a bootstrap token from the SCM's CA, for an administrator (mutual TLS
 * with the user certificate named by client.certFile/keyFile, trusting client.caFile).
 */
import { readFileSync } from 'node:fs'
import { loadConfig } from '../core/config.ts'
import { RpcClient } from '../core/rpc/client.ts'
import { PLAIN_TRANSPORT, tlsTransport, type Transport } from '../core/rpc/transport.ts'
import { flag, option, stringOption, UsageError, type Invocation } from './args.ts'
import { printJson } from './output.ts'

/** How an administrator reaches the SCM: HTTPS with its certificate when O3_CLIENT_CAFILE is set, else plain HTTP. */
function adminTransport(): Transport {
  const config = loadConfig()
  if (config['client.caFile'] === '') return PLAIN_TRANSPORT
  const tls = {
    ca: readFileSync(config['client.caFile'], 'utf8'),
    ...(config['client.certFile'] === '' ? {} : { cert: readFileSync(config['client.certFile'], 'utf8'), key: readFileSync(config['client.keyFile'], 'utf8') }),
  }
  return tlsTransport(() => tls)
}

export async function certAdmin(inv: Invocation, verb: string): Promise<void> {
  if (verb !== 'token') throw new Error(`o3 admin cert ${verb} is in the command table but has no handler`)
  const raw = stringOption(inv, 'ttl-hours') ?? '24'
  const hours = Number(raw)
  if (!/^\d+(\.\d+)?$/.test(raw) || !(hours > 0) || hours > 365 * 24) throw new UsageError(`bad --ttl-hours ${JSON.stringify(raw)}: expected a number of hours up to a year`, 'o3 admin cert token')
  const rpc = new RpcClient('SCM', option(inv, 'scm'), { transport: adminTransport() })
  const made = await rpc.call<{ token: string; expiresAtMs: number; reusable: boolean }>('createBootstrapToken', { ttlMs: Math.round(hours * 3600_000), reusable: flag(inv, 'reusable') })
  if (flag(inv, 'json')) return printJson(made)
  console.log(made.token)
  console.error(`${made.reusable ? 'reusable' : 'one-time'} bootstrap token, valid until ${new Date(made.expiresAtMs).toISOString()}: set it as security.bootstrapToken (O3_SECURITY_BOOTSTRAPTOKEN) of the service to enroll`)
}
