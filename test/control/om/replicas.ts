/** @module
 * What the OM request suites share: a leader and a follower replica, each the OM's requests
 * over its own real LMDB database in a temp dir; prepare on the leader once, apply the same
 * payload on both (which must answer alike), and a digest of every table to compare them.
 */
import * as assert from 'uvu/assert'
import { createHash } from 'node:crypto'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { open, type RootDatabase } from 'lmdb'
import { loadConfig } from '../../../core/config.ts'
import { O3Error } from '../../../core/errors.ts'
import type { AllocatedBlock, ContainerId, LocalId, PipelineId } from '../../../core/wire.ts'
import type { ReplicatedRequest } from '../../../control/ha/replicated-service.ts'
import { omRequests } from '../../../control/om/requests/index.ts'
import { openOmTables, type OmTables } from '../../../control/om/tables.ts'

const config = loadConfig({ env: {} })

export interface Replica { db: RootDatabase; t: OmTables; requests: Map<string, ReplicatedRequest<unknown, unknown, unknown>> }

/** A digest of every table of a replica. */
export function digest(r: Replica): string {
  const h = createHash('sha256')
  for (const table of Object.values(r.t)) for (const { key, value } of table.getRange()) h.update(JSON.stringify([key, value]))
  return h.digest('hex')
}

/** The two replicas; the members are arrows, so they can be destructured. */
export class OmReplicas {
  readonly root: string
  readonly leader: Replica
  readonly follower: Replica
  /** The Raft index of the last entry applied. */
  index = 0
  private nextLocal = 1

  /**
   * `pipelineReplication`: the replication of the pipeline the SCM's part in prepare hands
   * out blocks on; by default the replication asked for.
   */
  constructor(dirPrefix: string, private readonly pipelineReplication?: string) {
    this.root = mkdtempSync(join(tmpdir(), dirPrefix))
    this.leader = this.replica('leader')
    this.follower = this.replica('follower')
  }

  /** The SCM's part in prepare: fresh block ids on one pipeline. */
  private readonly blocksFor = async (replication: string, count: number): Promise<AllocatedBlock[]> => Array.from({ length: count }, () => ({
    blockId: { containerId: 1 as ContainerId, localId: this.nextLocal++ as LocalId },
    pipeline: { id: 'p1' as PipelineId, replication: this.pipelineReplication ?? replication, state: 'OPEN', nodes: [{ id: 'dn-00000001' as never, address: '127.0.0.1:9901' }], createdAtMs: 1 },
  }))

  private replica(name: string): Replica {
    const db = open({ path: join(this.root, `${name}.mdb`) })
    const r: Replica = { db, t: openOmTables(db), requests: new Map() }
    for (const q of omRequests({ tables: () => r.t, config, blocksFor: this.blocksFor })) r.requests.set(q.name, q)
    return r
  }

  /** Prepares `args` on the leader; the payload to apply later (a Raft entry in flight). */
  readonly prepare = async (name: string, args: unknown): Promise<unknown> =>
    JSON.parse(JSON.stringify(await this.leader.requests.get(name)!.prepare(args, this.leader.db))) as unknown

  /** Applies a prepared entry on both replicas, which must answer alike (the same result, or the same error code and message). */
  readonly apply = (name: string, payload: unknown): unknown => {
    const at = { index: ++this.index, term: 1 }
    const outcome = (r: Replica) => {
      try {
        return { ok: r.db.transactionSync(() => r.requests.get(name)!.apply(r.db, payload, at)) }
      } catch (err) {
        assert.instance(err, O3Error)
        return { error: (err as O3Error).code, message: (err as O3Error).message }
      }
    }
    const a = outcome(this.leader)
    assert.equal(outcome(this.follower), a, `${name}: both replicas answer alike`)
    if ('error' in a) throw new O3Error(a.error as never, a.message!)
    return a.ok
  }

  /** Prepare on the leader, then apply the same entry on both replicas; both must agree. */
  readonly run = async (name: string, args: unknown): Promise<unknown> => this.apply(name, await this.prepare(name, args))

  readonly close = async (): Promise<void> => {
    await this.leader.db.close()
    await this.follower.db.close()
    rmSync(this.root, { recursive: true, force: true })
  }
}
