/** @module
 * Every mutating SCM request (issue 11): prepare on the leader, apply on every replica.
 */
import type { ReplicatedRequest } from '../../ha/replicated-service.ts'
import type { ScmTables } from '../tables.ts'
import { addPipeline } from './add-pipeline.ts'
import { addBootstrapToken } from './bootstrap-tokens.ts'
import { closePipeline } from './close-pipeline.ts'
import { createContainer } from './create-container.ts'
import { ackDeletes, addDeleteHolder, addDeleteTxs } from './delete-blocks.ts'
import { forgetEnrollment } from './forget-enrollment.ts'
import { initCa } from './init-ca.ts'
import { initCluster } from './init-cluster.ts'
import { clearReplicaUnhealthy, markReplicaUnhealthy } from './mark-replica-unhealthy.ts'
import { openPipeline } from './open-pipeline.ts'
import { recordCertificate } from './record-certificate.ts'
import { reserveIds } from './reserve-ids.ts'
import { rotateSecretKey } from './secret-keys.ts'
import { setContainerState } from './set-container-state.ts'
import { setNodeStates } from './set-node-state.ts'

export function scmRequests(t: () => ScmTables): ReplicatedRequest<unknown, unknown, unknown>[] {
  return [
    initCluster(t), reserveIds(t), addPipeline(t), openPipeline(t), closePipeline(t), createContainer(t), setContainerState(t),
    markReplicaUnhealthy(t), clearReplicaUnhealthy(t), addDeleteTxs(t), ackDeletes(t), addDeleteHolder(t),
    setNodeStates(t), initCa(t), addBootstrapToken(t), recordCertificate(t), forgetEnrollment(t),
    rotateSecretKey(t),
  ] as ReplicatedRequest<unknown, unknown, unknown>[]
}
