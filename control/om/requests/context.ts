/** @module
 * What the OM's requests see: the tables (every replica) and, in prepare only, the settings
 * and the SCM's blocks (the leader's I/O).
 */
import type { O3Config } from '../../../core/config.ts'
import type { AllocatedBlock, ExcludeList } from '../../../core/wire.ts'
import type { OmTables } from '../tables.ts'

export interface OmRequestContext {
  readonly tables: () => OmTables
  readonly config: O3Config
  /** Leader only (prepare): blocks from the SCM, from the batch cache when nothing is excluded. */
  readonly blocksFor: (replication: string, count: number, exclude?: ExcludeList) => Promise<AllocatedBlock[]>
}
