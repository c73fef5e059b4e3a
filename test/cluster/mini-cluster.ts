/** @module
 * Test helper: a LocalCluster on free ports in a temp dir, with short timeouts (Ozone's
 * MiniOzoneCluster / ClusterForTests). One cluster per test file.
 */
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { LocalCluster } from '../../cli/cluster.ts'
import type { O3Config } from '../../core/config.ts'
/** Re-exported for the suites that start a cluster; it lives in test/helpers.ts. */
export { randomBytes } from '../helpers.ts'

export async function startMiniCluster(options: { datanodes?: number; overrides?: Partial<O3Config>; dataDir?: string } = {}): Promise<LocalCluster & { dispose(): Promise<void> }> {
  const dataDir = options.dataDir ?? mkdtempSync(join(tmpdir(), 'o3-test-'))
  const cluster = new LocalCluster({
    dataDir, datanodes: options.datanodes ?? 3, freePorts: true,
    overrides: { 'datanode.heartbeatIntervalMs': 200, 'scm.heartbeat.staleMs': 3000, 'scm.heartbeat.deadMs': 6000, ...options.overrides },
  })
  await cluster.start()
  return Object.assign(cluster, {
    async dispose() {
      await cluster.stop()
      if (options.dataDir === undefined) rmSync(dataDir, { recursive: true, force: true })
    },
  })
}
