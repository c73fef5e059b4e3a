/** @module
 * Where a starting OM, datanode or S3 gateway gets its ServiceIdentity when security is on:
 * enrollment with the SCM (ServiceIdentity.obtain with security.bootstrapToken), or a source given in process (tests).
 */
import { O3Error } from '../errors.ts'
import { ServiceIdentity, type EnrollingRole } from './identity.ts'
import { generateKeyPair, issueCertificate, type ServiceRole } from './pki.ts'

/** Makes the identity of one service: its role, its id (a datanode's UUID, om1) and the hosts it serves on. */
export type IdentitySource = (role: ServiceRole, id: string, hosts: readonly string[]) => Promise<ServiceIdentity>

export interface StartIdentityOptions {
  /** security.enabled. */
  readonly enabled: number
  readonly role: EnrollingRole
  readonly id: string
  /** The host the service listens on (its certificate names it, and 127.0.0.1 and localhost). */
  readonly host: string
  /** The service's data folder: credentials are kept in <dir>/security. */
  readonly dir: string
  /** The SCM group's addresses (enrollment, renewal). */
  readonly scm: string
  /** security.bootstrapToken: needed on the first start only. */
  readonly bootstrapToken: string
  /** Instead of enrolling: a source in process (tests). */
  readonly source?: IdentitySource
}

/**
 * The identity a starting service serves and calls with: undefined when security is off
 * (`security.enabled` 0: plain HTTP, as before), else the source's or the enrolled one.
 */
export async function startIdentity(o: StartIdentityOptions): Promise<ServiceIdentity | undefined> {
  if (o.enabled !== 1) return undefined
  refuseSecureUnderDeno(o.role)
  const hosts = [...new Set([o.host, '127.0.0.1', 'localhost'])].filter((h) => h !== '0.0.0.0' && h !== '::')
  if (o.source !== undefined) return o.source(o.role, o.id, hosts)
  return ServiceIdentity.obtain({ role: o.role, id: o.id, dir: o.dir, hosts, scm: o.scm, bootstrapToken: o.bootstrapToken })
}

/**
 * Throws INVALID_ARGUMENT under Deno for a service starting with security on: Deno's HTTP
 * server cannot ask callers for certificates (mutual TLS). Said plainly at start, not as the
 * certificate check that would fail later.
 */
export function refuseSecureUnderDeno(role: string): void {
  if ('Deno' in globalThis) throw new O3Error('INVALID_ARGUMENT', `Cannot start the ${role} with security.enabled=1 under Deno: Deno's HTTP server cannot ask callers for certificates (mutual TLS); run a secure cluster on Node`)
}

/** Issues identities in process from a CA the caller holds (tests): a key pair and a certificate per call. */
export function issuingSource(ca: { cert: string; privateKey: string }, validityMs: number): IdentitySource {
  return async (role, id, hosts) => {
    const keys = await generateKeyPair()
    const nowMs = Date.now()
    const cert = await issueCertificate({ ca, publicKey: keys.publicKey, identity: { role, id }, hosts: [...new Set([...hosts, '127.0.0.1', 'localhost'])], nowMs, validityMs })
    return ServiceIdentity.fromCredentials(role, id, { key: keys.privateKey, cert, ca: ca.cert })
  }
}
