/** @module
 * Erasure coding in a worker (EC keys): encode a stripe's parity cells from its data cells,
 * or rebuild a stripe's lost cells from k others, with the WASM codec of wasm/. Cells are
 * ranges of shared slabs, coded in place; one codec per scheme per worker, made on first use.
 */
import { createCodec, type ErasureCodec } from '../../wasm/index.ts'
import type { SlabRange, TaskResult } from './tasks.ts'

export interface EcEncodeTask {
  codec: 'rs' | 'xor'
  k: number
  m: number
  /** k data cells, all of one length. */
  data: SlabRange[]
  /** m parity cells of that length, written here. */
  parity: SlabRange[]
}

export interface EcReconstructTask {
  codec: 'rs' | 'xor'
  k: number
  m: number
  /** k + m cells of one length, data first; those in `missing` are written. */
  shards: SlabRange[]
  /** 0-based indexes of the cells to rebuild (at most m). */
  missing: number[]
}

const codecs = new Map<string, Promise<ErasureCodec>>()

function codecFor(codec: 'rs' | 'xor', k: number, m: number): Promise<ErasureCodec> {
  const key = `${codec}-${k}-${m}`
  let c = codecs.get(key)
  if (c === undefined) {
    c = createCodec(codec, k, m)
    c.catch(() => codecs.delete(key))
    codecs.set(key, c)
  }
  return c
}

const view = (r: SlabRange) => new Uint8Array(r.slab, r.offset, r.length)

function failed(what: string, err: unknown): TaskResult {
  return { ok: false, code: 'INVALID_ARGUMENT', message: `Cannot ${what}: ${(err as Error).message}` }
}

export async function ecEncode(task: EcEncodeTask): Promise<TaskResult> {
  try {
    const codec = await codecFor(task.codec, task.k, task.m)
    codec.encode(task.data.map(view), task.parity.map(view))
    return { ok: true }
  } catch (err) {
    return failed(`encode ${task.codec}(${task.k},${task.m}) parity`, err)
  }
}

export async function ecReconstruct(task: EcReconstructTask): Promise<TaskResult> {
  try {
    const codec = await codecFor(task.codec, task.k, task.m)
    codec.reconstruct(task.shards.map(view), task.missing)
    return { ok: true }
  } catch (err) {
    return failed(`reconstruct cells ${task.missing.join(',')} of ${task.codec}(${task.k},${task.m})`, err)
  }
}
