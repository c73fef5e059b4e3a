/** @module
 * Where a service gets its ServiceIdentity when security is on: a source given by whoever
 * starts it (an in-process cluster holding the CA), else none (until enrollment is wired).
 */
import { O3Error } from '../errors.ts'
import { ServiceIdentity } from './identity.ts'
import { generateKeyPair, issueCertificate, type ServiceRole } from './pki.ts'

/** Makes the identity of one service: its role, its id (a datanode's UUID, om1, scm1) and the hosts it serves on. */
export type IdentitySource = (role: ServiceRole, id: string, hosts: readonly string[]) => Promise<ServiceIdentity>

/**
 * The identity a starting service serves and calls with: undefined when security is off
 * (`security.enabled` 0: plain HTTP, as before), else the source's.
 */
export async function startIdentity(o: { enabled: number; source: IdentitySource | undefined; role: ServiceRole; id: string; hosts: readonly string[]; what: string }): Promise<ServiceIdentity | undefined> {
  if (o.enabled !== 1) return undefined
  if (o.source === undefined) throw new O3Error('INVALID_ARGUMENT', `Cannot start ${o.what} with security.enabled=1: no identity source was given`)
  return o.source(o.role, o.id, o.hosts)
}

/**
 * Issues identities in process from a CA the caller holds (a LocalCluster, tests): each call
 * draws a key pair and a certificate valid for `validityMs`.
 */
export function issuingSource(ca: { cert: string; privateKey: string }, validityMs: number): IdentitySource {
  return async (role, id, hosts) => {
    const keys = await generateKeyPair()
    const nowMs = Date.now()
    const cert = await issueCertificate({ ca, publicKey: keys.publicKey, identity: { role, id }, hosts: [...new Set([...hosts, '127.0.0.1', 'localhost'])], nowMs, validityMs })
    return ServiceIdentity.fromCredentials(role, id, { key: keys.privateKey, cert, ca: ca.cert })
  }
}
