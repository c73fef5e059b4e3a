/** @module
 * Test helper: an S3 gateway of a mini cluster (mini-cluster.ts) and what the AWS SDK needs to
 * reach it; when the cluster is secure, the gateway has an s3g identity and serves HTTPS.
 */
import { Agent as HttpsAgent } from 'node:https'
import { NodeHttpHandler } from '@smithy/node-http-handler'
import type { LocalCluster } from '../../cli/cluster.ts'
import { S3Gateway } from '../../datapath/s3/index.ts'

/**
 * A started S3Gateway of `cluster` on a free port: when the cluster is secure it calls the OM,
 * SCM and datanodes with an s3g certificate from the cluster CA and serves HTTPS with it, as
 * LocalCluster's own gateway does; plain HTTP otherwise.
 */
export async function startGateway(cluster: LocalCluster): Promise<S3Gateway> {
  const identity = cluster.secure ? await cluster.issueIdentity('s3g', 's3g-test') : undefined
  const gateway = new S3Gateway({ config: cluster.config, omAddress: cluster.omAddress, scmAddress: cluster.scmAddress, port: 0, transport: identity?.transport(), identity })
  await gateway.start()
  return gateway
}

/** The S3Client options that reach a gateway of `cluster`: its CA trusted when secure (HTTPS), nothing otherwise. */
export function gatewayClientOptions(cluster: LocalCluster): { requestHandler?: NodeHttpHandler } {
  const ca = cluster.caCert
  return ca === undefined ? {} : { requestHandler: new NodeHttpHandler({ httpsAgent: new HttpsAgent({ ca }) }) }
}
