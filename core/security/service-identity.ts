/** @module
 * The identity a cluster certificate names (SAN `o3://<role>/<id>`): the roles, and reading it
 * from a SAN string as node:tls reports it. Apart from pki.ts so that clients checking a
 * peer's identity do not load the X.509 library, which only issuing and parsing need.
 */

/** Roles a certificate can name; a service checks its peer's role on every call. */
export const SERVICE_ROLES = ['scm', 'om', 'datanode', 's3g', 'recon', 'user'] as const
export type ServiceRole = (typeof SERVICE_ROLES)[number]

/** What a certificate says its holder is: role and id (a datanode's UUID, om1, an administrator's user name). */
export interface CertIdentity {
  readonly role: ServiceRole
  readonly id: string
}

/** The scheme of the SAN URI that names a certificate's identity. */
export const CERT_URI_PREFIX = 'o3://'

/** The identity in a SAN string as node:tls reports it (`URI:o3://datanode/abc, IP Address:...`). */
export function identityOfSan(san: string | undefined): CertIdentity | undefined {
  for (const part of (san ?? '').split(/,\s*/)) {
    if (!part.startsWith(`URI:${CERT_URI_PREFIX}`)) continue
    const [role, id] = part.slice(4 + CERT_URI_PREFIX.length).split('/')
    if ((SERVICE_ROLES as readonly string[]).includes(role ?? '') && id !== undefined && id.length > 0) return { role: role as ServiceRole, id: decodeURIComponent(id) }
  }
  return undefined
}
