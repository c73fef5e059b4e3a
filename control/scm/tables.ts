/** @module
 * The SCM's replicated state: the tables every SCM replica holds alike in its state
 * database (issue 11), written only by the apply functions in requests/. What each SCM
 * learns from datanodes itself (registrations, heartbeats, replica reports) is not here.
 */
import type { Database, RootDatabase } from 'lmdb'
import type { SecretKey } from '../../core/security/secret-keys.ts'
import type { ContainerId, ContainerState, DatanodeId, LocalId, NodeOperationalState, Pipeline, PipelineId } from '../../core/wire.ts'

/**
 * A pipeline as the SCM group agrees on it. Its `leaderId` is the leader suggested at
 * creation; the group's actual leader and term come from the members' reports, which each
 * SCM hears itself (not the log).
 */
export interface PipelineRecord extends Pipeline {
  /** When it was CLOSED (the leader's clock, decided before the entry): its groups go after scm.pipeline.destroyTimeoutMs. */
  closedAtMs?: number
}

/** A container as the SCM group agrees on it; its replicas come from datanode reports. */
export interface ContainerInfo {
  id: ContainerId
  state: ContainerState
  replication: string
  pipelineId: PipelineId
  createdAtMs: number
}

/**
 * Blocks of one container to delete (Ozone's DeletedBlocksTransaction), kept until every
 * datanode that may hold the container acknowledged it in a heartbeat.
 */
export interface DeleteTx { id: number; containerId: ContainerId; localIds: LocalId[]; pending: DatanodeId[] }

/**
 * A datanode taken out of service by an operator (Ozone's NodeStatus operational state and
 * its expiry): decommissioning, decommissioned, entering or in maintenance. A node with no
 * record is IN_SERVICE.
 */
export interface NodeAdminRecord {
  state: Exclude<NodeOperationalState, 'IN_SERVICE'>
  /** When it entered this state (the leader's clock, decided before the entry). */
  sinceMs: number
  /** Maintenance: when it ends and the node is IN_SERVICE again (none: until recommissioned). */
  endMs?: number
}

/** The cluster's root CA (issue 16): made once by the first leader, the same on every SCM. */
export interface CaRoot { cert: string; privateKey: string; createdAtMs: number }

/** A bootstrap token a service enrolls with; its secret is shown only to whoever made it. */
export interface BootstrapTokenRecord {
  secret: string
  createdAtMs: number
  /** 0: never expires (the first token, which `o3 local --secure` hands every service). */
  expiresAtMs: number
  /** A one-time token is spent by its first enrollment; a reusable one enrolls any number of identities. */
  reusable: boolean
  spent: boolean
  /** 'admin': enrolls user certificates only (the SCM's admin-token file, for the operator on the SCM's host); absent: services. */
  scope?: 'admin'
}

/** The certificate an identity (role, id) holds: one enrollment per identity, renewals replace it. */
export interface EnrolledRecord {
  role: string
  id: string
  publicKey: string
  cert: string
  issuedAtMs: number
  /** The enrollment's nonce (a renewal keeps it): an exact replay of the request is refused. */
  nonce: string
}

export interface ScmTables {
  /** clusterId, id ceilings (`ceiling.containerId`, `ceiling.localId`), `nextDeleteTxId`. */
  readonly meta: Database<unknown, string>
  readonly pipelines: Database<PipelineRecord, string>
  readonly containers: Database<ContainerInfo, number>
  readonly deletes: Database<DeleteTx, number>
  /** `${containerId}/${datanodeId}` of replicas found corrupt: out of reads until replaced. */
  readonly unhealthy: Database<true, string>
  /** Datanodes not IN_SERVICE, by id (issue 13). */
  readonly nodeStates: Database<NodeAdminRecord, string>
  /** Block-token secret keys by id (issue 16), made by requests/secret-keys.ts; expired ones are dropped. */
  readonly secretKeys: Database<SecretKey, string>
  /** The CA: `root` (CaRoot), `firstToken` and `adminToken` (token ids), `token/<id>` (BootstrapTokenRecord), `cert/<role>/<id>` (EnrolledRecord). */
  readonly ca: Database<unknown, string>
}

export function openScmTables(db: RootDatabase): ScmTables {
  return {
    meta: db.openDB({ name: 'meta' }),
    pipelines: db.openDB({ name: 'pipelineTable' }),
    containers: db.openDB({ name: 'containerTable', keyEncoding: 'uint32' }),
    deletes: db.openDB({ name: 'deletedBlocksTable' }),
    unhealthy: db.openDB({ name: 'unhealthyReplicas' }),
    nodeStates: db.openDB({ name: 'nodeOperationalStates' }),
    secretKeys: db.openDB({ name: 'secretKeys' }),
    ca: db.openDB({ name: 'ca' }),
  }
}
