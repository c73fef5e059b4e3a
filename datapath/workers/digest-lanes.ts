/** @module
 * Digest lanes: the threads that hash bodies as they stream (S3 ETag MD5, a signed payload's
 * SHA-256, x-amz-checksum-*). A lane is a Piscina pool of one thread, and a body's session is
 * pinned to one lane from its first piece to its end, so that its hashers keep their state in
 * that thread (digest.ts): OpenSSL's MD5 and SHA-256 there hash 1.3 and 5 x faster here than
 * hash-wasm's, whose state could be saved and carried to any worker of the shared pool.
 * Lanes are made on demand, a new session going to the lane with the fewest open; under Node
 * at most as many as the pool has threads, and a lane with none open for WORKER_IDLE_MS closes
 * (its thread and heap go); under Deno one, which stays, as the pool's threads do (pool.ts).
 * A lane's thread loads only the digest task (digest-worker.ts).
 */
import { Piscina } from 'piscina'
import { O3Error } from '../../core/errors.ts'
import { WORKER_IDLE_MS } from '../../core/limits.ts'
import type { DigestResult, DigestTask } from './digest.ts'
import { Hashers, type DigestName } from './hashers.ts'
import { noteActivity } from './idle.ts'
import { workerFile, workerPool } from './pool.ts'
import type { SlabRange } from './tasks.ts'

interface Lane {
  pool: Piscina
  /** Sessions pinned here that have not ended. */
  open: number
  /** Closes the lane once it has stayed without a session (Node). */
  idle?: ReturnType<typeof setTimeout>
}

const lanes: Lane[] = []
let nextSession = 1
/** Tasks the lanes have run, since the process started. */
let tasksRun = 0
/** Under Deno 2.9 a worker that ends keeps its memory and thread (pool.ts): lanes stay. */
const lanesClose = !('Deno' in globalThis)

/**
 * Lanes a process makes at most: as many as the pool has threads under Node; one under Deno,
 * where a lane's thread stays for good (about 10 MiB at rest each, measured with bench/rss.ts).
 */
function lanesMax(): number {
  return lanesClose ? workerPool().maxThreads : 1
}

function pickLane(): Lane {
  let best: Lane | undefined
  for (const l of lanes) if (best === undefined || l.open < best.open) best = l
  if (best === undefined || (best.open > 0 && lanes.length < lanesMax())) {
    best = {
      pool: new Piscina({ filename: workerFile('digest-worker'), minThreads: 1, maxThreads: 1, idleTimeout: Infinity, atomics: lanesClose ? 'sync' : 'disabled' }),
      open: 0,
    }
    lanes.push(best)
  }
  if (best.idle !== undefined) clearTimeout(best.idle)
  best.idle = undefined
  best.open++
  return best
}

function release(lane: Lane): void {
  lane.open--
  if (lane.open > 0 || !lanesClose) return
  lane.idle = setTimeout(() => {
    const i = lanes.indexOf(lane)
    if (lane.open > 0 || i < 0) return
    lanes.splice(i, 1)
    void lane.pool.destroy()
  }, WORKER_IDLE_MS)
  lane.idle.unref()
}

async function run(lane: Lane, task: DigestTask): Promise<Partial<Record<DigestName, Uint8Array>> | undefined> {
  noteActivity()
  const transferList = task.data instanceof ArrayBuffer ? [task.data] : []
  const r = await lane.pool.run(task, { name: 'digest', transferList }) as DigestResult
  tasksRun++
  if (!r.ok) throw new O3Error(r.code, r.message)
  return r.digests
}

/** A session a caller dropped without ending it: forgotten on its lane once it is collected. */
const forgotten = new FinalizationRegistry<{ lane: Lane; session: number }>(({ lane, session }) => {
  run(lane, { session, end: 'drop' }).catch(() => {})
  release(lane)
})

/**
 * The digests of one body, fed in order on one lane. update() and finish() calls are queued
 * on the lane in the order made; the caller ends the session with finish() or drop().
 */
export class DigestSession {
  private readonly session = nextSession++
  private lane: Lane | undefined
  private ended = false

  constructor(readonly names: DigestName[]) {}

  /**
   * Hashes the next piece: an ArrayBuffer is transferred (detached here; it comes back, to
   * be dropped), a slab range is read in place and borrowed until this settles.
   */
  async update(data: ArrayBuffer | SlabRange): Promise<void> {
    if (this.ended) throw new O3Error('INTERNAL_ERROR', 'Cannot hash: the digest session has ended')
    const open = this.lane === undefined ? this.names : undefined
    if (this.lane === undefined) {
      this.lane = pickLane()
      forgotten.register(this, { lane: this.lane, session: this.session }, this)
    }
    await run(this.lane, { session: this.session, open, data })
  }

  /** The digests of every piece fed; ends the session. */
  async finish(): Promise<Partial<Record<DigestName, Buffer>>> {
    if (this.ended) throw new O3Error('INTERNAL_ERROR', 'Cannot finish a digest session that has ended')
    this.ended = true
    const lane = this.lane
    // Nothing fed: the digests of no bytes, with nothing to hash.
    if (lane === undefined) return (await Hashers.create(this.names)).digest()
    forgotten.unregister(this)
    try {
      const digests = await run(lane, { session: this.session, end: 'finish' })
      const out: Partial<Record<DigestName, Buffer>> = {}
      for (const [k, v] of Object.entries(digests ?? {})) out[k as DigestName] = Buffer.from(v.buffer, v.byteOffset, v.byteLength)
      return out
    } finally {
      release(lane)
    }
  }

  /** Ends the session without its digests (the body was given up). Never throws. */
  drop(): void {
    if (this.ended) return
    this.ended = true
    const lane = this.lane
    if (lane === undefined) return
    forgotten.unregister(this)
    run(lane, { session: this.session, end: 'drop' }).catch(() => {}).finally(() => release(lane))
  }
}

/** Lanes open now (tests, and what a process holds). */
export function digestLanes(): number {
  return lanes.length
}

/** Tasks the lanes have run since the process started (tests: was a body hashed off this thread?). */
export function digestLaneTasks(): number {
  return tasksRun
}

/** Closes every lane (a process that stops: closeWorkerPool). */
export async function closeDigestLanes(): Promise<void> {
  const all = lanes.splice(0)
  for (const l of all) if (l.idle !== undefined) clearTimeout(l.idle)
  await Promise.all(all.map((l) => l.pool.destroy()))
}
