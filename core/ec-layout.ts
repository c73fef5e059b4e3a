/** @module
 * Where the bytes of an erasure-coded block group live (Ozone's ECBlockOutputStream layout):
 * cells round-robin over the k data replicas, one stripe at a time, parity cells on the m
 * parity replicas. Pure arithmetic shared by the writer, the reader and the reconstruction.
 */
import { assert } from './assert.ts'
import type { ReplicationConfig } from './wire.ts'

/** The erasure scheme of an EC replication config (`EC/rs-3-2-1024k`). */
export interface EcScheme {
  codec: 'rs' | 'xor'
  /** Data replicas (k). */
  data: number
  /** Parity replicas (m). */
  parity: number
  cellSizeBytes: number
}

/** The scheme of an EC config; throws on a RATIS one (an invariant: callers check the type). */
export function ecSchemeOf(r: ReplicationConfig): EcScheme {
  assert(r.type === 'EC' && r.ec !== undefined, 'an EC replication config has its scheme')
  return r.ec
}

/** Key bytes in one full stripe: k cells. */
export function stripeDataBytes(s: EcScheme): number {
  return s.data * s.cellSizeBytes
}

/** Key bytes a block group holds at most, when each replica holds up to `blockSizeBytes`
 *  (rounded down to whole cells). */
export function groupCapacityBytes(s: EcScheme, blockSizeBytes: number): number {
  const cellsPerReplica = Math.floor(blockSizeBytes / s.cellSizeBytes)
  assert(cellsPerReplica >= 1, 'a block holds at least one cell')
  return cellsPerReplica * stripeDataBytes(s)
}

/** Stripes of a group of `groupLength` key bytes, the last one possibly partial. */
export function stripeCount(s: EcScheme, groupLength: number): number {
  return Math.ceil(groupLength / stripeDataBytes(s))
}

/**
 * The length of each of the k + m cells of stripe `stripe` (indexed by replica index - 1):
 * data cells hold the key's bytes (a partial stripe's last cells are short or empty); every
 * parity cell is as long as the stripe's first cell, the parity of data cells zero-padded to
 * that length (Ozone's rule for the last, partial stripe).
 */
export function stripeCellLengths(s: EcScheme, groupLength: number, stripe: number): number[] {
  const start = stripe * stripeDataBytes(s)
  assert(stripe >= 0 && start < Math.max(groupLength, 1), `stripe ${stripe} inside a group of ${groupLength} bytes`)
  const out: number[] = []
  for (let j = 0; j < s.data; j++) out.push(clamp(groupLength - start - j * s.cellSizeBytes, 0, s.cellSizeBytes))
  for (let p = 0; p < s.parity; p++) out.push(out[0])
  return out
}

/** Bytes replica `replicaIndex` (1..k+m) holds of a group of `groupLength` key bytes. */
export function replicaLengthBytes(s: EcScheme, groupLength: number, replicaIndex: number): number {
  assert(replicaIndex >= 1 && replicaIndex <= s.data + s.parity, `replica index ${replicaIndex} in 1..${s.data + s.parity}`)
  const stripe = stripeDataBytes(s)
  const full = Math.floor(groupLength / stripe)
  const rest = groupLength - full * stripe
  const j = replicaIndex <= s.data ? replicaIndex - 1 : 0
  return full * s.cellSizeBytes + clamp(rest - j * s.cellSizeBytes, 0, s.cellSizeBytes)
}

/** One piece of a key range inside one data cell. */
export interface CellPiece {
  stripe: number
  /** Data replica holding it, 1..k. */
  replicaIndex: number
  /** Where the piece starts in that replica's block. */
  replicaOffset: number
  /** Where it starts in the group (key bytes). */
  groupOffset: number
  length: number
}

/** The data-cell pieces of `[offset, offset + length)` of a group, in key order. */
export function cellPieces(s: EcScheme, groupLength: number, offset: number, length: number): CellPiece[] {
  assert(offset >= 0 && length >= 0 && offset + length <= groupLength, `range ${offset}+${length} inside a group of ${groupLength} bytes`)
  const out: CellPiece[] = []
  const c = s.cellSizeBytes
  let at = offset
  const end = offset + length
  while (at < end) {
    const cell = Math.floor(at / c)
    const stripe = Math.floor(cell / s.data)
    const j = cell % s.data
    const within = at - cell * c
    const n = Math.min(c - within, end - at)
    out.push({ stripe, replicaIndex: j + 1, replicaOffset: stripe * c + within, groupOffset: at, length: n })
    at += n
  }
  return out
}

function clamp(x: number, lo: number, hi: number): number {
  return Math.min(hi, Math.max(lo, x))
}
