/** @module
 * Who may call each SCM route when security is on (the SCM's `authorize`): datanodes register
 * and heartbeat as themselves, the OM allocates, administrators and services operate.
 */
import { O3Error } from '../../core/errors.ts'
import { describeCaller, type RpcContext } from '../../core/security/caller.ts'
import { checkRule, type RouteRule } from '../../core/security/peer-access.ts'

const OPERATORS: RouteRule = { roles: ['scm', 'om', 'recon'], admins: true }

/** Every SCM RPC method's rule; a method not named here is refused to every caller (security on). */
export const SCM_ACCESS: Readonly<Record<string, RouteRule>> = {
  // A datanode as itself only: checked against the id in the call (checkSelf).
  register: { roles: ['datanode'] },
  heartbeat: { roles: ['datanode'] },
  allocateBlock: { roles: ['om'] },
  getContainerLocations: { roles: ['om'] },
  deleteBlocks: { roles: ['om'] },
  getSecretKeys: { roles: ['om', 'datanode'] },
  // Enrollment proves itself with a bootstrap token; the CA certificate is public.
  enroll: { anyone: true },
  getCaCertificate: { anyone: true },
  // The services that enroll (ca.ts ENROLLING_ROLES); an SCM renews its own in-process, never over RPC.
  renewCertificate: { roles: ['om', 'datanode', 's3g', 'recon'] },
  createBootstrapToken: { roles: ['scm'], admins: true },
  listCertificates: { roles: ['scm'], admins: true },
  forgetEnrollment: { roles: ['scm'], admins: true },
  reportCorruptReplica: { authenticated: true },
  getContainer: OPERATORS,
  listContainers: OPERATORS,
  listDatanodes: OPERATORS,
  listPipelines: OPERATORS,
  datanodeAdmin: OPERATORS,
  closePipeline: OPERATORS,
  closeContainer: OPERATORS,
  replicateContainer: OPERATORS,
  safemodeStatus: OPERATORS,
  containerReport: OPERATORS,
  replicationStatus: OPERATORS,
  roles: OPERATORS,
  transferLeadership: OPERATORS,
  groupMembers: OPERATORS,
  addMember: OPERATORS,
  removeMember: OPERATORS,
  stateDigest: OPERATORS,
}

/** The SCM's authorize: the route's rule, and for register/heartbeat that the certificate names the datanode in the call. */
export function authorizeScm(admins: ReadonlySet<string>): (method: string, args: Record<string, unknown>, ctx: RpcContext) => void {
  return (method, args, ctx) => {
    checkRule(SCM_ACCESS[method], ctx, admins, `call SCM.${method}`)
    if (method === 'register' || method === 'heartbeat') checkSelf(method, args.id, ctx)
  }
}

/** A datanode speaks for itself only: the id it registers or heartbeats as is its certificate's. */
function checkSelf(method: string, id: unknown, ctx: RpcContext): void {
  const c = ctx.caller
  if (c.kind === 'open') return
  if (c.kind === 'service' && c.role === 'datanode' && c.id === id) return
  throw new O3Error('PERMISSION_DENIED', `Cannot ${method} as datanode ${String(id)}: ${describeCaller(c)} may speak only for itself`)
}
