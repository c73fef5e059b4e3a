/** @module
 * Test helper: an S3 gateway of a mini cluster (mini-cluster.ts) and what the AWS SDK needs to
 * reach it (gatewayClient: an S3Client of a user); when the cluster is secure, the gateway has
 * an s3g identity and serves HTTPS.
 */
import { Agent as HttpsAgent } from 'node:https'
import { S3Client } from '@aws-sdk/client-s3'
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

/** An S3Client of `user` (its S3 secret fetched from the cluster's OM) reaching `gateway` of `cluster`, path-style. */
export async function gatewayClient(cluster: LocalCluster, gateway: S3Gateway, user = 'alice'): Promise<S3Client> {
  const secret = await cluster.client().getS3Secret(user)
  return new S3Client({
    endpoint: `${cluster.secure ? 'https' : 'http'}://127.0.0.1:${gateway.port}`, region: 'us-east-1', forcePathStyle: true,
    credentials: { accessKeyId: secret.awsAccessKey, secretAccessKey: secret.awsSecret }, ...gatewayClientOptions(cluster),
  })
}
