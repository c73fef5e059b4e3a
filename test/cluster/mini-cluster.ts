/** @module
 * Test helper: a LocalCluster on free ports in a temp dir, with short timeouts (Ozone's
 * MiniOzoneCluster / ClusterForTests). One cluster per test file. With O3_TEST_SECURE=1
 * (scripts/test.mjs's `[secure]` pass over test/cluster) it is a secure cluster, as `o3 local --secure`.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { LocalCluster, type LocalClusterOptions } from '../../cli/cluster.ts'
import type { O3Config } from '../../core/config.ts'
import { RpcClient } from '../../core/rpc/client.ts'
import { urlOf, type Transport } from '../../core/rpc/transport.ts'
/** Re-exported for the suites that start a cluster; it lives in test/helpers.ts. */
export { randomBytes } from '../helpers.ts'

/** This run's clusters are secure (O3_TEST_SECURE=1): what a suite that cannot run secure checks to skip, saying why. */
export const TEST_SECURE = process.env.O3_TEST_SECURE === '1'

/**
 * The `secure` option of a test cluster: LocalCluster's (mutual TLS, block tokens, an
 * administrator's client from cluster.client()) when this run is secure.
 */
export function secureOption(): Pick<LocalClusterOptions, 'secure'> {
  return TEST_SECURE ? { secure: true } : {}
}

export async function startMiniCluster(options: { datanodes?: number; overrides?: Partial<O3Config>; dataDir?: string } = {}): Promise<LocalCluster & { dispose(): Promise<void> }> {
  const dataDir = options.dataDir ?? mkdtempSync(join(tmpdir(), 'o3-test-'))
  const cluster = new LocalCluster({
    dataDir, datanodes: options.datanodes ?? 3, freePorts: true,
    overrides: { 'datanode.heartbeatIntervalMs': 200, 'scm.heartbeat.staleMs': 3000, 'scm.heartbeat.deadMs': 6000, ...options.overrides },
    ...secureOption(),
  })
  await cluster.start()
  return Object.assign(cluster, {
    async dispose() {
      await cluster.stop()
      if (options.dataDir === undefined) rmSync(dataDir, { recursive: true, force: true })
    },
  })
}

/**
 * How a suite calls a cluster's services itself (RpcClient, fetch of /prom): with the
 * administrator's certificate (mutual TLS) when the cluster is secure, plain HTTP otherwise.
 */
export function adminTransport(cluster: LocalCluster): Transport {
  return cluster.transport
}

/** An RpcClient of `service` at `address` (one or a group's, comma-separated) through adminTransport. */
export function adminRpc(cluster: LocalCluster, service: string, address: string): RpcClient {
  return new RpcClient(service, address, { transport: adminTransport(cluster) })
}

/**
 * An RpcClient of `service` at `address` calling as the OM does (the SCM's allocateBlock,
 * getContainerLocations): with an `om` certificate from the cluster CA when the cluster is
 * secure (those routes refuse the administrator), through adminTransport otherwise.
 */
export async function omRpc(cluster: LocalCluster, service: string, address: string): Promise<RpcClient> {
  if (!cluster.secure) return adminRpc(cluster, service, address)
  const om = await cluster.issueIdentity('om', 'om-test')
  return new RpcClient(service, address, { transport: om.transport() })
}

/** GET `path` (/prom, /health) of the service at `address` through adminTransport. */
export function adminFetch(cluster: LocalCluster, address: string, path: string): Promise<Response> {
  const t = adminTransport(cluster)
  return fetch(urlOf(t, address, path), { dispatcher: t.dispatcher() } as RequestInit)
}

/**
 * The environment a child `o3` command (o3 admin, o3 sh) runs with against the cluster: when
 * secure, the administrator's certificate, key and the CA in files under `dir` named by
 * O3_CLIENT_CERTFILE/KEYFILE/CAFILE, as `o3 local --secure` prints them; otherwise none.
 */
export function adminEnv(cluster: LocalCluster, dir: string): Record<string, string> {
  const admin = cluster.adminCredentials
  if (admin === undefined) return {}
  const files = { O3_CLIENT_CAFILE: join(dir, 'ca.pem'), O3_CLIENT_CERTFILE: join(dir, 'admin.pem'), O3_CLIENT_KEYFILE: join(dir, 'admin.key') }
  writeFileSync(files.O3_CLIENT_CAFILE, admin.ca)
  writeFileSync(files.O3_CLIENT_CERTFILE, admin.cert)
  writeFileSync(files.O3_CLIENT_KEYFILE, admin.key, { mode: 0o600 })
  return files
}
