/** @module
 * How one service (or client) reaches the others: plain HTTP through the shared undici pool,
 * or HTTPS that trusts the cluster CA and, for a service, shows its own certificate (mutual
 * TLS). Each service owns one Transport; in-process clusters hold several, one per identity.
 */
import { Agent, type Dispatcher } from 'undici'
import { RPC_TIMEOUT_MS_DEFAULT } from '../limits.ts'

export interface Transport {
  readonly scheme: 'http' | 'https'
  /** The pool to send through; may change when a certificate is renewed. */
  dispatcher(): Dispatcher
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
  let made: { for: ReturnType<typeof current>; agent: Agent } | undefined
  return {
    scheme: 'https',
    dispatcher() {
      const tls = current()
      if (made?.for !== tls) {
        const old = made?.agent
        made = { for: tls, agent: new Agent({ ...AGENT_OPTIONS, connect: { ca: tls.ca, cert: tls.cert, key: tls.key } }) }
        void old?.close().catch(() => {})
      }
      return made.agent
    },
  }
}
