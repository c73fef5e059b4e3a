/** @module
 * Small-block packing, the datanode's design question: store a 4 KiB block (a) in a new file
 * of its own, (b) appended to one per-container pack file, or (c) inline in LMDB. Each store
 * also records the block's metadata in LMDB in an async transaction, as the datanode's
 * putBlock does, so (a) and (b) pay a file operation on top of the commit that (c) shares
 * with the metadata. File data is not fsynced (O3's default, like Ozone's); LMDB commits are.
 */
import { mkdirSync } from 'node:fs'
import { open as openFile, writeFile, type FileHandle } from 'node:fs/promises'
import { join } from 'node:path'
import { open as openLmdb, type RootDatabase } from 'lmdb'
import { measureOps, type OpsResult } from './measure.ts'

export const PACKING_METHODS = ['file per block', 'pack file', 'inline in LMDB'] as const
export type PackingMethod = typeof PACKING_METHODS[number]

export interface PackingResult {
  method: PackingMethod
  sequential: OpsResult
  concurrent: OpsResult
}

interface Store {
  put(localId: number, data: Uint8Array): Promise<void>
  close(): Promise<void>
}

/** Block metadata of about the size the datanode keeps (ids, length, one chunk, its checksums). */
function metadata(localId: number, length: number, location: number | undefined) {
  return { containerId: 1, localId, length, location, chunks: [{ offset: 0, length, checksums: 'x'.repeat(16) }], checksumType: 'XXH64', bytesPerChecksum: 16384, committedAtMs: Date.now() }
}

async function openStore(method: PackingMethod, dir: string): Promise<Store> {
  mkdirSync(dir, { recursive: true })
  const root: RootDatabase = openLmdb({ path: join(dir, 'db'), compression: false })
  const blocks = root.openDB<object, number>({ name: 'blocks' })
  const packed = root.openDB<Buffer, number>({ name: 'packedBlocks', encoding: 'binary' })
  const close = async () => { await root.close() }
  switch (method) {
    case 'file per block':
      mkdirSync(join(dir, 'chunks'), { recursive: true })
      return {
        async put(localId, data) {
          await writeFile(join(dir, 'chunks', `${localId}.block`), data)
          await root.transaction(() => { blocks.put(localId, metadata(localId, data.length, undefined)) })
        },
        close,
      }
    case 'pack file': {
      const pack: FileHandle = await openFile(join(dir, 'blocks.pack'), 'w')
      let end = 0
      return {
        async put(localId, data) {
          // Reserve the range before the write so that concurrent appends never overlap.
          const at = end
          end += data.length
          await pack.write(data, 0, data.length, at)
          await root.transaction(() => { blocks.put(localId, metadata(localId, data.length, at)) })
        },
        async close() { await pack.close(); await close() },
      }
    }
    case 'inline in LMDB':
      return {
        async put(localId, data) {
          await root.transaction(() => {
            blocks.put(localId, metadata(localId, data.length, undefined))
            packed.put(localId, Buffer.from(data.buffer, data.byteOffset, data.byteLength))
          })
        },
        close,
      }
  }
}

/**
 * For each method, stores `sequentialCount` blocks of `block` (borrowed) one after another,
 * then `concurrentCount` more from `concurrency` callers.
 */
export async function measurePacking(options: {
  dir: string; block: Uint8Array; sequentialCount: number; concurrentCount: number; concurrency: number; onStep?: (name: string) => void
}): Promise<PackingResult[]> {
  const out: PackingResult[] = []
  for (const method of PACKING_METHODS) {
    const store = await openStore(method, join(options.dir, method.replace(/ /g, '-')))
    try {
      options.onStep?.(`packing: ${method}, sequential`)
      const sequential = await measureOps({ count: options.sequentialCount, concurrency: 1, op: (i) => store.put(i, options.block) })
      options.onStep?.(`packing: ${method}, ${options.concurrency} concurrent`)
      const concurrent = await measureOps({ count: options.concurrentCount, concurrency: options.concurrency, op: (i) => store.put(options.sequentialCount + i, options.block) })
      out.push({ method, sequential, concurrent })
    } finally {
      await store.close()
    }
  }
  return out
}
