/** @module
 * Test helper: a LocalCluster on free ports in a temp dir, with short timeouts (Ozone's
 * MiniOzoneCluster / ClusterForTests). One cluster per test file.
 */
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { LocalCluster } from '../../cli/cluster.ts'
import type { O3Config } from '../../core/config.ts'

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

export function randomBytes(n: number, seed = n): Buffer {
  // A cheap deterministic generator: the same seed gives the same bytes in every run.
  const out = Buffer.allocUnsafe(n)
  let x = (seed * 2654435761) >>> 0 || 1
  for (let i = 0; i < n; i++) {
    x ^= x << 13; x >>>= 0; x ^= x >>> 17; x ^= x << 5; x >>>= 0
    out[i] = x & 0xff
  }
  return out
}
