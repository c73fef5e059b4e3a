/** @module
 * Who may call each datanode route when security is on: block routes take a datanode or SCM
 * peer or a caller the block-token check admits; pipeline, copy and admin routes take peers.
 */
import type { Caller, RpcContext } from '../../core/security/caller.ts'
import { checkRule, type RouteRule } from '../../core/security/peer-access.ts'

/** What a block route does to its block: the mode a block token must grant. */
export type BlockMode = 'READ' | 'WRITE'

/** The block routes (RPC methods and raw /chunk routes) and the mode each needs. */
export const BLOCK_ROUTES: Readonly<Record<string, BlockMode>> = {
  writeChunk: 'WRITE', putBlock: 'WRITE', watchForCommit: 'WRITE', readChunk: 'READ', getBlock: 'READ', listBlock: 'READ',
}

/**
 * The seam block tokens fill (issue 16 part "tokens"): admits, or throws for, a caller that is
 * not a datanode or SCM peer on a block route, given the block (undefined for watchForCommit,
 * which names a pipeline), the mode and the token the call carries (header x-o3-block-token
 * on /chunk/*, arg `token` on the RPCs).
 */
export type BlockTokenCheck = (ctx: RpcContext, method: string, block: { containerId: unknown; localId: unknown } | undefined, mode: BlockMode, token: string | undefined) => void | Promise<void>

/**
 * Until block tokens are verified (part "tokens" replaces Datanode.blockTokenCheck): every
 * caller, as before security, since a user's client (signed OM calls, no certificate) has
 * nothing else to show a datanode. Only the block routes are open this way.
 */
export const untilBlockTokens: BlockTokenCheck = () => {}

const PEERS_AND_ADMINS: RouteRule = { roles: ['scm', 'datanode'], admins: true }
const DATANODES: RouteRule = { roles: ['datanode'] }

/** Every other route's rule; a method named nowhere is refused to every caller (security on). */
export const DATANODE_ACCESS: Readonly<Record<string, RouteRule>> = {
  createPipeline: PEERS_AND_ADMINS,
  closeContainer: PEERS_AND_ADMINS,
  createContainer: PEERS_AND_ADMINS,
  deleteContainer: PEERS_AND_ADMINS,
  triggerHeartbeat: PEERS_AND_ADMINS,
  scanContainer: PEERS_AND_ADMINS,
  checkBlock: PEERS_AND_ADMINS,
  listContainers: PEERS_AND_ADMINS,
  listPipelines: PEERS_AND_ADMINS,
  listBlocks: PEERS_AND_ADMINS,
  // Raw routes between the members of a pipeline and between replicas.
  raftMessages: DATANODES,
  chunkData: DATANODES,
  exportContainer: DATANODES,
}

/** Whether the caller is a datanode or SCM peer: they move blocks (forwarding, reconstruction, copies) without tokens. */
export function isBlockPeer(c: Caller): boolean {
  return c.kind === 'service' && (c.role === 'datanode' || c.role === 'scm')
}

/** A block route: a datanode or SCM peer passes (forwarding, reconstruction, copies); anyone else goes to `check`. */
export async function checkBlockRoute(ctx: RpcContext, method: string, block: { containerId: unknown; localId: unknown } | undefined, token: string | undefined, check: BlockTokenCheck): Promise<void> {
  const c = ctx.caller
  if (c.kind === 'open') return
  if (isBlockPeer(c)) return
  await check(ctx, method, block, BLOCK_ROUTES[method] ?? 'READ', token)
}

/** The datanode's authorize (RPC routes): block routes through checkBlockRoute, the rest by the table. */
export function authorizeDatanode(admins: ReadonlySet<string>, check: () => BlockTokenCheck): (method: string, args: Record<string, unknown>, ctx: RpcContext) => Promise<void> {
  return async (method, args, ctx) => {
    if (Object.hasOwn(BLOCK_ROUTES, method)) {
      // Block metadata (ids, lengths; no bytes) is an administrator's to list too, as listBlocks is.
      const c = ctx.caller
      if (method === 'listBlock' && c.kind === 'user' && admins.has(c.user)) return
      const block = args.containerId === undefined ? undefined : { containerId: args.containerId, localId: args.localId }
      return checkBlockRoute(ctx, method, block, typeof args.token === 'string' ? args.token : undefined, check())
    }
    checkRule(DATANODE_ACCESS[method], ctx, admins, `call Datanode.${method}`)
  }
}
