/** @module
 * The SCM's replication manager (issue 13). The leader's SCM builds a ReplicationManager over
 * its tables and reports (manager.ts) and starts it; each round then: classify every
 * container (classify.ts), plan commands within the in-flight limits (plan.ts), queue them for
 * the datanodes' heartbeats, and count them done when the reports show it.
 */
export { classify, HEALTH_STATES, type Classification, type ContainerView, type HealthState, type ReplicaView } from './classify.ts'
export { planReplication, type InflightOp, type NodeView, type Plan, type ReplicationAction } from './plan.ts'
export { ReplicationManager, replicationFactor, type ContainerReport, type ReplicationCommand, type ReplicationHost, type ReportedReplica } from './manager.ts'
