/** @module
 * How one service (or client) reaches the others: plain HTTP through the shared undici pool,
 * or HTTPS that trusts the cluster CA and, for a service, shows its own certificate (mutual
 * TLS). Each service owns one Transport; in-process clusters hold several, one per identity.
 */
import { checkServerIdentity, type PeerCertificate } from 'node:tls'
import { Agent, type Dispatcher } from 'undici'
import { identityOfSan, type ServiceRole } from '../security/service-identity.ts'
import { RPC_TIMEOUT_MS_DEFAULT } from '../limits.ts'

export interface Transport {
  readonly scheme: 'http' | 'https'
  /**
   * The pool to send through; may change when a certificate is renewed. Over TLS the server
   * must show a cluster certificate naming a service, and `expect`'s role when given: any
   * holder of some cluster certificate who binds a stopped service's port is not that service.
   */
  dispatcher(expect?: ServiceRole): Dispatcher
}

/** Keep-alive pool settings shared by plain and TLS transports. */
export const AGENT_OPTIONS = { keepAliveTimeout: 10_000, connections: 64, pipelining: 1, headersTimeout: RPC_TIMEOUT_MS_DEFAULT, bodyTimeout: RPC_TIMEOUT_MS_DEFAULT } as const

let sharedAgent: Agent | undefined

/** The process-wide plain-HTTP connection pool; datapath clients send chunk bodies through it too. */
export function httpAgent(): Agent {
  sharedAgent ??= new Agent(AGENT_OPTIONS)
  return sharedAgent
}

export const PLAIN_TRANSPORT: Transport = Object.freeze({ scheme: 'http' as const, dispatcher: () => httpAgent() })

/** `scheme://address/path` for a call through this transport. */
export function urlOf(t: Transport, address: string, path: string): string {
  return `${t.scheme}://${address}${path}`
}

/**
 * HTTPS trusting `tls.ca`, presenting `cert`/`key` when given. `current()` is asked on every
 * call, so that a renewed certificate is used from the next connection on (the old pool is
 * closed gracefully).
 */
export function tlsTransport(current: () => { ca: string; cert?: string; key?: string }): Transport {
  let made: { for: ReturnType<typeof current>; agents: Map<string, Agent> } | undefined
  return {
    scheme: 'https',
    dispatcher(expect?: ServiceRole) {
      const tls = current()
      if (made?.for !== tls) {
        const old = made?.agents
        made = { for: tls, agents: new Map() }
        for (const a of old?.values() ?? []) void a.close().catch(() => {})
      }
      const key = expect ?? ''
      let agent = made.agents.get(key)
      if (agent === undefined) {
        agent = new Agent({ ...AGENT_OPTIONS, connect: { ca: tls.ca, cert: tls.cert, key: tls.key, checkServerIdentity: (host, cert) => serverIdentityError(host, cert, expect) } })
        made.agents.set(key, agent)
      }
      return agent
    },
  }
}

/** The host name check, then the role: a server must name a service (`o3://role/id`), `expect` when given. */
function serverIdentityError(host: string, cert: PeerCertificate, expect: ServiceRole | undefined): Error | undefined {
  const hostError = checkServerIdentity(host, cert)
  if (hostError !== undefined) return hostError
  const id = identityOfSan(cert.subjectaltname)
  if (id === undefined || id.role === 'user') return new Error(`the server at ${host} shows no service certificate of this cluster`)
  if (expect !== undefined && id.role !== expect) return new Error(`the server at ${host} is ${id.role} ${id.id}, where ${expect} was expected`)
  return undefined
}

/** The role that serves a service's RPC (RpcClient's service name), if it is one of ours. */
export function roleOfService(service: string): ServiceRole | undefined {
  return ({ OM: 'om', SCM: 'scm', Datanode: 'datanode' } as Record<string, ServiceRole>)[service]
}
