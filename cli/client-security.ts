/** @module
 * How the client commands (`o3 sh|s3|admin|freon`) prove who they are to a secure cluster,
 * from the client.* settings in O3_* environment variables (what `o3 local --secure` prints):
 * O3_CLIENT_ACCESSKEY and O3_CLIENT_SECRET sign every OM call; O3_CLIENT_CAFILE makes every
 * call HTTPS trusting that CA; O3_CLIENT_CERTFILE and O3_CLIENT_KEYFILE add a user certificate
 * (mutual TLS: administrators' SCM and datanode admin calls). With none set, calls are plain
 * and unsigned, as an insecure cluster takes them.
 */
import { readFileSync } from 'node:fs'
import { loadConfig, type O3Config } from '../core/config.ts'
import type { RpcClientOptions } from '../core/rpc/client.ts'
import { PLAIN_TRANSPORT, tlsTransport, type Transport } from '../core/rpc/transport.ts'
import { requestSigner, type UserCredentials } from '../core/security/request-signing.ts'
import { UsageError } from './args.ts'

export interface ClientSecurity {
  readonly credentials?: UserCredentials
  readonly transport: Transport
}

function readPem(setting: string, path: string): string {
  try {
    return readFileSync(path, 'utf8')
  } catch (err) {
    throw new UsageError(`Cannot read ${setting} ${path}: ${(err as Error).message}`)
  }
}

/** The credentials and transport the client.* settings describe; UsageError for a half-given pair or an unreadable file. */
export function clientSecurityOf(config: Pick<O3Config, 'client.accessKey' | 'client.secret' | 'client.caFile' | 'client.certFile' | 'client.keyFile'>): ClientSecurity {
  const accessKey = config['client.accessKey'], secret = config['client.secret']
  if ((accessKey === '') !== (secret === '')) throw new UsageError('Set both client.accessKey and client.secret (O3_CLIENT_ACCESSKEY, O3_CLIENT_SECRET), or neither')
  const credentials = accessKey === '' ? undefined : { accessKey, secret }
  const certFile = config['client.certFile'], keyFile = config['client.keyFile'], caFile = config['client.caFile']
  if ((certFile === '') !== (keyFile === '')) throw new UsageError('Set both client.certFile and client.keyFile (O3_CLIENT_CERTFILE, O3_CLIENT_KEYFILE), or neither')
  if (certFile !== '' && caFile === '') throw new UsageError('A client certificate (client.certFile) needs the cluster CA too: set client.caFile (O3_CLIENT_CAFILE)')
  if (caFile === '') return { credentials, transport: PLAIN_TRANSPORT }
  const tls = {
    ca: readPem('client.caFile', caFile),
    ...(certFile === '' ? {} : { cert: readPem('client.certFile', certFile), key: readPem('client.keyFile', keyFile) }),
  }
  return { credentials, transport: tlsTransport(() => tls) }
}

let fromEnv: ClientSecurity | undefined

/** clientSecurityOf the O3_* environment, read once per process. */
export function clientSecurity(env: Record<string, string | undefined> = process.env): ClientSecurity {
  fromEnv ??= clientSecurityOf(loadConfig({ env }))
  return fromEnv
}

/** RpcClient options for a direct call to `service` (group admin, a datanode's scan): OM calls signed, every call over the transport. */
export function rpcOptions(service: string, security: ClientSecurity = clientSecurity()): RpcClientOptions {
  return {
    transport: security.transport,
    signer: service === 'OM' && security.credentials !== undefined ? requestSigner(security.credentials) : undefined,
    // A command given one member of an HA group (o3 local's default address) reaches its leader.
    followsLeaders: true,
  }
}
