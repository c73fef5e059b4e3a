/** @module
 * Decommission and maintenance of datanodes (issue 13). The SCM leader hands operator
 * requests to DatanodeAdminMonitor.admin() and calls tick() on its health tick; the rules
 * (rules.ts) decide when a node may go offline; the state itself is the setNodeStates entry.
 */
export { DatanodeAdminMonitor, parseAdminRequest, type AdminAction, type AdminHost, type AdminResult } from './monitor.ts'
export { adminStep, offlineCheck, type AdminContainer, type AdminNode, type AdminReplica, type AdminStep, type OfflineCheck } from './rules.ts'
