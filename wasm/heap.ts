/** @module
 * A first-fit allocator over one codec's WebAssembly memory, above the module's static data.
 * It serves the codec's own tables and staging area and the shards callers allocate there.
 * The memory is shared, so growing it never detaches views taken before; the allocator
 * records every generation of `memory.buffer` so that the codec can recognise its shards.
 * Blocks are rounded to SHARD_ALIGN_BYTES; free blocks are coalesced.
 */
import { MEMORY_PAGES_MAX, PAGE_BYTES, SHARD_ALIGN_BYTES } from './limits.ts'

interface Block {
  ptr: number
  sizeBytes: number
}

/** n rounded up to SHARD_ALIGN_BYTES. */
export function alignUp(n: number): number {
  return Math.ceil(n / SHARD_ALIGN_BYTES) * SHARD_ALIGN_BYTES
}

export class Heap {
  readonly memory: WebAssembly.Memory
  /** The lowest address handed out: below it lie the module's tables and scratch. */
  readonly start: number
  /** Free blocks sorted by address, none adjacent to another. */
  readonly #free: Block[] = []
  /** Size of each allocated block, by address. */
  readonly #used = new Map<number, number>()
  /** Every ArrayBuffer `memory.buffer` has been, oldest first. */
  readonly #buffers = new Set<ArrayBufferLike>()

  constructor(memory: WebAssembly.Memory, heapBase: number) {
    this.memory = memory
    this.start = alignUp(heapBase)
    this.#buffers.add(memory.buffer)
    const end = memory.buffer.byteLength
    if (end > this.start) this.#free.push({ ptr: this.start, sizeBytes: end - this.start })
  }

  /** Whether `buffer` is (a generation of) this memory's buffer. */
  owns(buffer: ArrayBufferLike): boolean {
    return this.#buffers.has(buffer)
  }

  /** The current buffer; take views again after alloc(), which may grow it. */
  get buffer(): ArrayBufferLike {
    return this.memory.buffer
  }

  /** Returns the address of `sizeBytes` (> 0) free bytes, growing the memory if needed. */
  alloc(sizeBytes: number): number {
    const size = alignUp(Math.max(1, sizeBytes))
    let i = this.#free.findIndex((b) => b.sizeBytes >= size)
    if (i < 0) i = this.#grow(size)
    const block = this.#free[i]
    const ptr = block.ptr
    if (block.sizeBytes === size) this.#free.splice(i, 1)
    else {
      block.ptr += size
      block.sizeBytes -= size
    }
    this.#used.set(ptr, size)
    return ptr
  }

  /** Returns a block from alloc(); `ptr` must be the start of a live block. */
  free(ptr: number): void {
    const size = this.#used.get(ptr)
    if (size === undefined) throw new RangeError(`Cannot free ${ptr}: not the start of an allocated block`)
    this.#used.delete(ptr)
    let i = this.#free.findIndex((b) => b.ptr > ptr)
    if (i < 0) i = this.#free.length
    this.#free.splice(i, 0, { ptr, sizeBytes: size })
    this.#coalesce(i)
    if (i > 0) this.#coalesce(i - 1)
  }

  /** Merges free block i with block i + 1 when they touch. */
  #coalesce(i: number): void {
    const a = this.#free[i], b = this.#free[i + 1]
    if (a === undefined || b === undefined || a.ptr + a.sizeBytes !== b.ptr) return
    a.sizeBytes += b.sizeBytes
    this.#free.splice(i + 1, 1)
  }

  /** Grows the memory so that the last free block holds `size` bytes; returns its index. */
  #grow(size: number): number {
    const end = this.memory.buffer.byteLength
    const last = this.#free.at(-1)
    const tail = last !== undefined && last.ptr + last.sizeBytes === end ? last.sizeBytes : 0
    const pages = Math.ceil((size - tail) / PAGE_BYTES)
    if (end / PAGE_BYTES + pages > MEMORY_PAGES_MAX) {
      throw new RangeError(`Cannot allocate ${size} bytes: the codec's memory is limited to ${MEMORY_PAGES_MAX * PAGE_BYTES} bytes`)
    }
    this.memory.grow(pages)
    this.#buffers.add(this.memory.buffer)
    if (tail > 0) last!.sizeBytes += pages * PAGE_BYTES
    else this.#free.push({ ptr: end, sizeBytes: pages * PAGE_BYTES })
    return this.#free.length - 1
  }
}
