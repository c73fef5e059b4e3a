/** @module
 * What a putBlock commits (Ozone's BlockManager.putBlock with its BCSID check): from the
 * block's committed chunks and those recorded since, the chunks covering [0, length), or why
 * not. Pure: the same inputs give the same answer on every replica.
 */
import { O3Error } from '../../../core/errors.ts'

export interface ChunkMeta {
  offset: number
  length: number
  checksums: Uint8Array
}

export interface CommittedBlock {
  length: number
  chunks: readonly ChunkMeta[]
  /** The log index of the putBlock that committed it (Ozone's block commit sequence id); 0 outside a pipeline. */
  bcsid: number
}

export type BlockCommit =
  | { readonly kind: 'commit'; readonly chunks: ChunkMeta[] }
  /** Replayed (the block already holds this index or a later one), or no longer than committed: nothing changes. */
  | { readonly kind: 'skip' }

/**
 * The chunks a putBlock of `length` at log `index` commits. Recorded chunks replace committed
 * ones at the same offset; a putBlock at or below the BCSID of its container (the highest
 * index of a putBlock the container committed, `containerBcsid`) or of its block is a replay
 * and changes nothing, and so does one that would shorten a committed block (a late retry).
 * Throws CHUNK_NOT_FOUND when the chunks leave a gap before `length`.
 *
 * The container's BCSID is what tells a replay of a block deleted since: the block's own is
 * gone with it, and without the container's a restart that replays the log from its last
 * snapshot would commit the deleted block again from the replayed writeChunks, naming chunks
 * whose files are gone (found by the pipeline simulator, seed 3). Ozone's
 * BlockManagerImpl.putBlock compares the container's BCSID for the same reason.
 */
export function blockChunks(committed: CommittedBlock | undefined, recorded: ReadonlyMap<number, ChunkMeta>, length: number, index: number, name: string, containerBcsid = 0): BlockCommit {
  if (index > 0 && index <= containerBcsid) return { kind: 'skip' }
  if (committed !== undefined && index > 0 && index <= committed.bcsid) return { kind: 'skip' }
  if (committed !== undefined && length < committed.length) return { kind: 'skip' }
  const byOffset = new Map<number, ChunkMeta>((committed?.chunks ?? []).map((ch) => [ch.offset, ch]))
  for (const [offset, ch] of recorded) byOffset.set(offset, ch)
  const ordered = [...byOffset.values()].sort((x, y) => x.offset - y.offset)
  let covered = 0
  const kept: ChunkMeta[] = []
  for (const ch of ordered) {
    if (covered >= length) break
    if (ch.offset !== covered) throw new O3Error('CHUNK_NOT_FOUND', `Cannot commit block ${name} of ${length} bytes: no chunk at offset ${covered}`)
    kept.push(ch)
    covered += ch.length
  }
  if (covered !== length) throw new O3Error('CHUNK_NOT_FOUND', `Cannot commit block ${name} of ${length} bytes: chunks cover ${covered}`)
  return { kind: 'commit', chunks: kept }
}
