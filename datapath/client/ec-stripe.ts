/** @module
 * The cells of one EC stripe in pooled slabs, for EcKeyWriter: k data cells the caller's bytes
 * are copied into once, m parity cells the codec writes in place, each with room for its
 * checksums right before it (checksums || data go to a datanode as one view). Several cells
 * share a slab; slabs are taken as the cells need them and given back by release().
 * Does no I/O of its own and computes nothing: the writer runs the codec and checksums.
 */
import { assert } from '../../core/assert.ts'
import { O3Error } from '../../core/errors.ts'
import { CLIENT_SLAB_WAIT_MS_MAX } from '../../core/limits.ts'
import type { SlabPool, SlabRange } from '../workers/index.ts'
import { copyBytes } from '../../core/copy-bytes.ts'

/** How a stripe's cells sit in slabs: each cell in a slot of its checksum room then its bytes. */
export interface CellSlots {
  cellSizeBytes: number
  /** Room for one full cell's checksums, before its bytes. */
  checksumRoomBytes: number
  slotBytes: number
  slotsPerSlab: number
  /** k: the cells filled from the key's bytes. */
  dataCells: number
  /** k + m. */
  cells: number
}

/** The slots of `cells` cells in slabs of `slabBytes`; slotsPerSlab is 0 when a cell does not fit in one. */
export function cellSlots(o: { slabBytes: number; cellSizeBytes: number; checksumRoomBytes: number; dataCells: number; cells: number }): CellSlots {
  assert(o.cellSizeBytes > 0, 'cells hold bytes')
  assert(o.checksumRoomBytes >= 0, 'checksum room is not negative')
  assert(o.dataCells >= 1 && o.dataCells < o.cells, 'a stripe has data and parity cells')
  const slotBytes = o.checksumRoomBytes + o.cellSizeBytes
  return { cellSizeBytes: o.cellSizeBytes, checksumRoomBytes: o.checksumRoomBytes, slotBytes, slotsPerSlab: Math.floor(o.slabBytes / slotBytes), dataCells: o.dataCells, cells: o.cells }
}

/** Slabs one stripe takes at most. */
export function slabsPerStripe(s: CellSlots): number {
  assert(s.slotsPerSlab >= 1, 'a cell fits in a slab')
  return Math.ceil(s.cells / s.slotsPerSlab)
}

export class Stripe {
  /** Key bytes copied in so far (data cells in order). */
  filled = 0
  /** Each cell's checksums once computed (a view before its bytes), by cell index. */
  readonly checksums: (Uint8Array | undefined)[] = []
  private readonly held: (SharedArrayBuffer | undefined)[] = []
  private taking = false
  private released = false
  /** The key's digest reading the data cells (all settled): release() gives the slabs back after it. */
  hashed?: Promise<unknown>

  constructor(readonly slots: CellSlots, private readonly pool: SlabPool) {
    assert(slots.slotsPerSlab >= 1, 'a cell fits in a slab')
    assert(pool.slabBytes >= slots.slotsPerSlab * slots.slotBytes, 'slots fit in the pool\'s slabs')
  }

  /** Key bytes a full stripe holds (k cells). */
  get dataBytes(): number {
    return this.slots.dataCells * this.slots.cellSizeBytes
  }

  /** Slabs held now. */
  get slabCount(): number {
    return this.held.filter((s) => s !== undefined).length
  }

  /**
   * Copies bytes in at the fill point, up to the stripe's end, taking slabs as cells need
   * them (waiting up to CLIENT_SLAB_WAIT_MS_MAX); returns how many it took. Borrows `bytes`
   * only during the call.
   */
  async fill(bytes: Uint8Array): Promise<number> {
    const c = this.slots.cellSizeBytes
    let at = 0
    while (at < bytes.length && this.filled < this.dataBytes) {
      const j = Math.floor(this.filled / c)
      const within = this.filled - j * c
      const n = Math.min(c - within, bytes.length - at)
      const slab = await this.take(j)
      copyBytes(new Uint8Array(slab, this.dataOffset(j) + within, n), 0, bytes.subarray(at, at + n))
      at += n
      this.filled += n
    }
    return at
  }

  /** Takes the slab of every cell not yet in one (the parity cells, a short stripe's empty data cells). */
  async takeAll(): Promise<void> {
    for (let i = 0; i < this.slots.cells; i++) await this.take(i)
  }

  /** Cell `i`'s first `length` bytes, as a range of its slab (taken). */
  range(i: number, length: number): SlabRange & { slab: SharedArrayBuffer } {
    assert(length >= 0 && length <= this.slots.cellSizeBytes, 'a range inside its cell')
    const slab = this.slabOf(i)
    assert(slab !== undefined, 'cell in a slab taken')
    return { slab, offset: this.dataOffset(i), length }
  }

  /** Cell `i`'s first `length` bytes. */
  bytes(i: number, length: number): Uint8Array {
    const r = this.range(i, length)
    return new Uint8Array(r.slab, r.offset, r.length)
  }

  /** Cell `i`'s checksums and first `length` bytes as one view (its checksums computed). */
  joined(i: number, length: number): Uint8Array {
    const cs = this.checksums[i]
    assert(cs !== undefined, 'cell checksummed')
    const r = this.range(i, length)
    assert(cs.buffer === r.slab && cs.byteOffset + cs.length === r.offset, 'checksums right before their cell')
    return new Uint8Array(r.slab, cs.byteOffset, cs.length + length)
  }

  /** Zeroes cell `i` from `from` to `to` (a short stripe's data cells, padded for the codec). */
  zero(i: number, from: number, to: number): void {
    assert(from <= to, 'a range to zero')
    this.bytes(i, to).fill(0, from, to)
  }

  /** A copy of the bytes filled so far, in key order (for a writer that parks). */
  copyOut(): Uint8Array {
    const out = new Uint8Array(this.filled)
    const c = this.slots.cellSizeBytes
    for (let at = 0; at < this.filled; at += c) out.set(this.bytes(at / c, Math.min(c, this.filled - at)), at)
    return out
  }

  /**
   * Gives every slab back (once `hashed` settles); the stripe is not used again. A slab being
   * taken now (a writer aborted while it waits for one) goes back when it comes, and its
   * fill() fails.
   */
  release(): void {
    if (this.released) return
    this.released = true
    this.pool.releaseAfter(this.hashed, this.held.filter((x): x is SharedArrayBuffer => x !== undefined))
    this.held.length = 0
  }

  private dataOffset(i: number): number {
    assert(i >= 0 && i < this.slots.cells, 'a cell of the stripe')
    return (i % this.slots.slotsPerSlab) * this.slots.slotBytes + this.slots.checksumRoomBytes
  }

  private slabOf(i: number): SharedArrayBuffer | undefined {
    return this.held[Math.floor(i / this.slots.slotsPerSlab)]
  }

  private async take(i: number): Promise<SharedArrayBuffer> {
    assert(!this.released, 'stripe used after release')
    const at = Math.floor(i / this.slots.slotsPerSlab)
    const had = this.held[at]
    if (had !== undefined) return had
    assert(!this.taking, 'one slab taken at a time')
    this.taking = true
    try {
      const slab = await this.pool.acquire(CLIENT_SLAB_WAIT_MS_MAX)
      if (this.released) {
        this.pool.release(slab)
        throw new O3Error('INTERNAL_ERROR', 'Cannot fill an EC stripe: its writer gave it up meanwhile')
      }
      this.held[at] = slab
      return slab
    } finally {
      this.taking = false
    }
  }
}
