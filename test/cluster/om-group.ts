/** @module
 * What the in-process OM group tests share: an SCM and three datanodes on loopback ports with
 * LMDB in a temporary directory, OMs started from per-member configs, the leader by name, and
 * a digest of each OM's tables to compare the replicas.
 */
import { createHash } from 'node:crypto'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { loadConfig, type O3Config } from '../../core/config.ts'
import { OzoneManager } from '../../control/om/index.ts'
import { StorageContainerManager } from '../../control/scm/index.ts'
import { Datanode } from '../../datapath/datanode/index.ts'
import { until } from '../helpers.ts'

/** The OM's Raft handle, which the tests look into for the leader and the membership. */
export const haOf = (om: OzoneManager) => (om as unknown as { ha: { isLeader(): boolean; raft: { status(): { confState: { voters: number[]; learners: number[] } } } } }).ha

/** A digest of every table of an OM's state database, but the Raft bookkeeping. */
export function digest(om: OzoneManager): string {
  const t = (om as unknown as { t: Record<string, { getRange(): Iterable<{ key: unknown; value: unknown }> }> }).t
  const h = createHash('sha256')
  for (const [name, table] of Object.entries(t).sort(([a], [b]) => a.localeCompare(b))) {
    h.update(name)
    for (const { key, value } of table.getRange()) h.update(JSON.stringify([key instanceof Uint8Array ? Buffer.from(key).toString('hex') : key, value]))
  }
  return h.digest('hex')
}

/** One SCM, three datanodes and the OMs a test file starts (`omConfigs` by name), in one temp dir. */
export class OmGroup {
  readonly dir: string
  readonly base: O3Config
  readonly scm: StorageContainerManager
  readonly datanodes: Datanode[] = []
  /** The running OMs, by name. */
  readonly oms = new Map<string, OzoneManager>()
  readonly omConfigs = new Map<string, O3Config>()

  constructor(dirPrefix: string) {
    this.dir = mkdtempSync(join(tmpdir(), dirPrefix))
    this.base = loadConfig({ env: {}, overrides: { 'scm.dir': join(this.dir, 'scm'), 'scm.safemode.minDatanodes': 3, 'client.replication': 'RATIS/ONE', 'datanode.heartbeatIntervalMs': 200 } })
    this.scm = new StorageContainerManager({ config: this.base, port: 0 })
  }

  async startScmAndDatanodes(): Promise<void> {
    await this.scm.start()
    for (let i = 1; i <= 3; i++) {
      const dn = new Datanode({ config: { ...this.base, 'datanode.dirs': join(this.dir, `dn${i}`) }, port: 0, scmAddress: this.scm.address })
      await dn.start()
      this.datanodes.push(dn)
    }
  }

  /** Member `name`'s settings: its own dir and RPC port, the group `nodes` (om.nodes). */
  omConfig(name: string, nodes: string, rpcPort: number, extra: Partial<O3Config> = {}): O3Config {
    return { ...this.base, 'om.dir': join(this.dir, name), 'om.nodes': nodes, 'om.id': name, 'om.address': `127.0.0.1:${rpcPort}`, ...extra }
  }

  /** Starts OM `name` from its config; it joins `oms` once started. (Arrow fields, so that `.map(g.startOm)` works.) */
  readonly startOm = async (name: string): Promise<OzoneManager> => {
    const om = new OzoneManager({ config: this.omConfigs.get(name)!, scmAddress: this.scm.address })
    await om.start()
    this.oms.set(name, om)
    return om
  }

  readonly stopOm = async (name: string): Promise<void> => {
    await this.oms.get(name)!.stop()
    this.oms.delete(name)
  }

  readonly addressOf = (name: string): string => {
    return this.omConfigs.get(name)!['om.address']
  }

  readonly leaderName = (): Promise<string> => {
    return until('an OM leader', () => [...this.oms.entries()].find(([, om]) => haOf(om).isLeader())?.[0])
  }

  /** Waits until every running OM holds the same tables. */
  async converged(what: string, timeoutMs = 15_000): Promise<void> {
    await until(what, () => {
      const digests = [...this.oms.values()].map(digest)
      return digests.every((d) => d === digests[0]) || undefined
    }, timeoutMs)
  }

  async stop(): Promise<void> {
    for (const om of this.oms.values()) await om.stop()
    for (const dn of this.datanodes) await dn.stop()
    await this.scm.stop()
    rmSync(this.dir, { recursive: true, force: true })
  }
}
