/** @module
 * `node dist/bench/copy-bytes.js`: how fast the one copy of payload bytes into a slab runs,
 * as the datanode and the client make it (socket pieces of about 64 KiB, at unaligned offsets,
 * into a 4 MiB chunk slab):
 * TypedArray set into a SharedArrayBuffer (what the datapath did), copyBytes into one (what it
 * does), and set into an ArrayBuffer (the memcpy baseline), in the same run, best of 5 rounds.
 */
import { copyBytes } from '../core/copy-bytes.ts'

const SLAB_BYTES = 4 * 1024 * 1024
/** A socket piece is seldom a round size: after the first, every copy lands at an odd offset. */
const PIECE_BYTES = 64 * 1024 - 17
const ROUND_MIB = 1024

function mibPerSecond(copy: (target: Uint8Array, offset: number, piece: Uint8Array) => void, target: Uint8Array): number {
  const piece = new Uint8Array(PIECE_BYTES).fill(7)
  let best = 0
  for (let round = 0; round < 5; round++) {
    const started = performance.now()
    for (let mib = 0; mib < ROUND_MIB; mib += SLAB_BYTES / (1024 * 1024)) {
      for (let at = 0; at + PIECE_BYTES <= SLAB_BYTES; at += PIECE_BYTES) copy(target, at, piece)
    }
    best = Math.max(best, ROUND_MIB / ((performance.now() - started) / 1000))
  }
  return best
}

const shared = new Uint8Array(new SharedArrayBuffer(SLAB_BYTES))
const plain = new Uint8Array(SLAB_BYTES)
const set = (t: Uint8Array, at: number, p: Uint8Array) => t.set(p, at)
const viaSet = mibPerSecond(set, shared)
const viaCopyBytes = mibPerSecond(copyBytes, shared)
const baseline = mibPerSecond(set, plain)
console.log(`${PIECE_BYTES}-byte pieces into a 4 MiB slab, best of 5 rounds of ${ROUND_MIB} MiB (Node ${process.version}):`)
console.log(`  set into a SharedArrayBuffer:       ${viaSet.toFixed(0).padStart(6)} MiB/s`)
console.log(`  copyBytes into a SharedArrayBuffer: ${viaCopyBytes.toFixed(0).padStart(6)} MiB/s = ${(viaCopyBytes / viaSet).toFixed(2)} x set`)
console.log(`  set into an ArrayBuffer (memcpy):   ${baseline.toFixed(0).padStart(6)} MiB/s; copyBytes = ${(viaCopyBytes / baseline).toFixed(2)} x of it`)
