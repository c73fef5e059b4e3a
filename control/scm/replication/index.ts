/** @module
 * The SCM's replication manager (issue 13). The leader's SCM builds a ReplicationManager over
 * its tables and reports (manager.ts) and starts it; each round then: classify every
 * container (classify.ts), plan commands within the in-flight limits (plan.ts), queue them for
 * the datanodes' heartbeats, and count them done when the reports show it. EC containers
 * (issue 14) go through ec-classify.ts and ec-plan.ts instead: their replicas are indexes.
 */
export { classify, HEALTH_STATES, type Classification, type ContainerView, type HealthState, type ReplicaView } from './classify.ts'
export { planReplication, type InflightOp, type NodeView, type Plan, type ReplicationAction } from './plan.ts'
export { classifyEc, type EcClassification, type EcContainerView, type EcReplicaView } from './ec-classify.ts'
export { planEcReplication, type EcAction, type EcEndpoint, type EcPlan } from './ec-plan.ts'
export {
  ReplicationManager, replicationFactor, type ContainerHealth, type ContainerReport, type ManagerPlan, type ReconstructECContainerCommand, type ReplicationCommand,
  type ReplicationHost, type ReportedReplica,
} from './manager.ts'
