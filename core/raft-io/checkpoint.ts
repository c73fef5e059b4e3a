/** @module
 * A replicated service's state database as its Raft snapshot (issue 11, Ozone's OM DB
 * checkpoint): a consistent, compacted copy of the LMDB environment taken at an applied
 * index, served in CRC32C-checked ranges over HTTP, and fetched by a lagging follower one
 * range in memory at a time into a temporary file that replaces the target atomically.
 */
import { mkdirSync, readdirSync, renameSync, rmSync, statSync } from 'node:fs'
import { open as openFile, rename, rm } from 'node:fs/promises'
import { join } from 'node:path'
import { crc32c } from '@node-rs/crc32'
import { Hono } from 'hono'
import type { RootDatabase } from 'lmdb'
import { request, type Dispatcher } from 'undici'
import { assert } from '../assert.ts'
import { O3Error } from '../errors.ts'
import { readError, transportError } from '../rpc/client.ts'
import { errorResponse } from '../rpc/server.ts'
import { RAFT_CHECKPOINT_RANGE_BYTES, RAFT_CHECKPOINT_RANGE_TIMEOUT_MS, RAFT_CHECKPOINTS_KEPT } from './limits.ts'

/** One checkpoint: the state as of Raft index `index` (term `term`), `sizeBytes` long. */
export interface CheckpointInfo {
  readonly name: string
  readonly index: number
  readonly term: number
  readonly sizeBytes: number
}

/** A Raft position: an entry's index and term. */
type Position = { readonly index: number; readonly term: number }

const NAME = /^checkpoint-(\d+)-(\d+)\.mdb$/

function parseName(name: string): { index: number; term: number } | undefined {
  const m = NAME.exec(name)
  return m === null ? undefined : { index: Number(m[1]), term: Number(m[2]) }
}

/** fsync of a file (its bytes) or a folder (its entries). */
export async function syncPath(path: string): Promise<void> {
  const fh = await openFile(path, 'r')
  try {
    await fh.sync()
  } finally {
    await fh.close()
  }
}

/** The checkpoints of one node, in `dir`: taken from its state database, served to followers. */
export class CheckpointStore {
  constructor(private readonly dir: string) {
    mkdirSync(dir, { recursive: true })
    // A copy interrupted by a crash (or its lock file) is never served.
    for (const f of readdirSync(dir)) if (parseName(f) === undefined) rmSync(join(dir, f), { force: true })
  }

  private copies = 0

  /**
   * Copies `db` (LMDB's consistent copy, compacted, made on a thread of LMDB's own) and names
   * the copy for the Raft index and term it holds: `at` when the caller takes it where nothing
   * writes in between, or, while entries keep applying, what `at(copyPath)` reads from the
   * copy itself. Keeps the newest RAFT_CHECKPOINTS_KEPT.
   */
  async create(db: RootDatabase, at: Position | ((copyPath: string) => Position | Promise<Position>)): Promise<CheckpointInfo> {
    const partial = join(this.dir, `copy-${++this.copies}.partial.mdb`)
    rmSync(partial, { force: true })
    await db.backup(partial, true)
    await syncPath(partial)
    const held = typeof at === 'function' ? await at(partial) : at
    assert(Number.isSafeInteger(held.index) && held.index >= 0 && Number.isSafeInteger(held.term) && held.term >= 0, 'a checkpoint is at an index and term')
    const name = `checkpoint-${held.index}-${held.term}.mdb`
    renameSync(partial, join(this.dir, name))
    for (const old of this.list().slice(RAFT_CHECKPOINTS_KEPT)) rmSync(join(this.dir, old.name), { force: true })
    return this.info(name)!
  }

  /** Removes every checkpoint but `name` (all of them when undefined). */
  keepOnly(name: string | undefined): void {
    for (const c of this.list()) if (c.name !== name) rmSync(join(this.dir, c.name), { force: true })
  }

  /** Newest first. */
  list(): CheckpointInfo[] {
    const out: CheckpointInfo[] = []
    for (const name of readdirSync(this.dir)) {
      const at = parseName(name)
      if (at !== undefined) out.push({ name, ...at, sizeBytes: statSync(join(this.dir, name)).size })
    }
    return out.sort((a, b) => b.index - a.index)
  }

  info(name: string): CheckpointInfo | undefined {
    const at = parseName(name)
    if (at === undefined) return undefined
    try {
      return { name, ...at, sizeBytes: statSync(join(this.dir, name)).size }
    } catch {
      return undefined
    }
  }

  path(name: string): string {
    assert(parseName(name) !== undefined, 'a checkpoint name')
    return join(this.dir, name)
  }
}

/**
 * `GET /raft/checkpoint/:name?offset=N`: at most RAFT_CHECKPOINT_RANGE_BYTES from `offset`,
 * with the checkpoint's size and the range's CRC32C in headers. CHECKPOINT_NOT_FOUND once
 * the checkpoint was replaced by a newer one (the follower starts over with that one).
 */
export function checkpointApp(store: CheckpointStore): Hono {
  const app = new Hono()
  app.get('/raft/checkpoint/:name', async (c) => {
    try {
      const info = store.info(c.req.param('name'))
      if (info === undefined) throw new O3Error('CHECKPOINT_NOT_FOUND', `Cannot serve checkpoint ${c.req.param('name')}: not found`)
      const offset = Number(c.req.query('offset') ?? '0')
      if (!Number.isSafeInteger(offset) || offset < 0 || offset > info.sizeBytes) throw new O3Error('INVALID_ARGUMENT', `Cannot serve checkpoint ${info.name}: offset ${c.req.query('offset')} is not in [0, ${info.sizeBytes}]`)
      const length = Math.min(RAFT_CHECKPOINT_RANGE_BYTES, info.sizeBytes - offset)
      const bytes = Buffer.allocUnsafe(length)
      const fh = await openFile(store.path(info.name), 'r')
      try {
        let got = 0
        while (got < length) {
          const { bytesRead } = await fh.read(bytes, got, length - got, offset + got)
          if (bytesRead === 0) throw new O3Error('INTERNAL_ERROR', `Cannot serve checkpoint ${info.name}: it ended at ${offset + got} of ${info.sizeBytes}`)
          got += bytesRead
        }
      } finally {
        await fh.close()
      }
      return c.body(bytes, 200, {
        'content-type': 'application/octet-stream',
        'x-o3-checkpoint-size': String(info.sizeBytes),
        'x-o3-crc32c': String(crc32c(bytes)),
      })
    } catch (err) {
      return errorResponse(c, err)
    }
  })
  return app
}

/**
 * Fetches checkpoint `name` from the node at `baseUrl` into `target`: range by range into
 * one reused buffer (memory bounded by the range size whatever the database's size), each
 * range checked against its CRC32C, written to `target.partial`, synced, then renamed over
 * `target`. On any failure the partial file is removed and `target` is untouched. `dispatcher`:
 * the node's identity's pool when security is on (the leader's URL is https then).
 */
export async function fetchCheckpoint(baseUrl: string, name: string, target: string, dispatcher?: Dispatcher): Promise<CheckpointInfo> {
  const at = parseName(name)
  if (at === undefined) throw new O3Error('INVALID_ARGUMENT', `Cannot fetch checkpoint ${name}: not a checkpoint name`)
  const partial = `${target}.partial`
  const buffer = Buffer.allocUnsafe(RAFT_CHECKPOINT_RANGE_BYTES)
  const fh = await openFile(partial, 'w')
  let sizeBytes = -1
  try {
    for (let offset = 0; sizeBytes < 0 || offset < sizeBytes;) {
      // A leader that stops answering (partitioned, not refusing) fails the range in bounded time.
      const timeouts = { headersTimeout: RAFT_CHECKPOINT_RANGE_TIMEOUT_MS, bodyTimeout: RAFT_CHECKPOINT_RANGE_TIMEOUT_MS }
      const res = await request(`${baseUrl}/raft/checkpoint/${name}?offset=${offset}`, dispatcher === undefined ? timeouts : { dispatcher, ...timeouts }).catch((err: unknown) => { throw transportError(baseUrl, err) })
      if (res.statusCode !== 200) throw await readError(res, `Cannot fetch checkpoint ${name} at ${offset}`)
      const size = Number(res.headers['x-o3-checkpoint-size'])
      const crc = Number(res.headers['x-o3-crc32c'])
      if (sizeBytes < 0) sizeBytes = size
      if (size !== sizeBytes || !Number.isSafeInteger(size) || !Number.isSafeInteger(crc)) {
        await res.body.dump()
        throw new O3Error('UNAVAILABLE', `Cannot fetch checkpoint ${name}: its size changed or headers are missing at ${offset}`)
      }
      let got = 0
      for await (const piece of res.body as AsyncIterable<Buffer>) {
        if (got + piece.byteLength > buffer.byteLength) throw new O3Error('UNAVAILABLE', `Cannot fetch checkpoint ${name}: range at ${offset} is longer than ${buffer.byteLength} bytes`)
        piece.copy(buffer, got)
        got += piece.byteLength
      }
      const range = buffer.subarray(0, got)
      if (got === 0 && offset < sizeBytes) throw new O3Error('UNAVAILABLE', `Cannot fetch checkpoint ${name}: empty range at ${offset} of ${sizeBytes}`)
      if (crc32c(range) !== crc) throw new O3Error('CHECKSUM_MISMATCH', `Cannot fetch checkpoint ${name}: range at ${offset} fails its CRC32C`)
      await fh.write(range, 0, got, offset)
      offset += got
      if (sizeBytes === 0) break
    }
    await fh.sync()
  } catch (err) {
    await fh.close()
    await rm(partial, { force: true })
    throw err
  }
  await fh.close()
  await rename(partial, target)
  return { name, ...at, sizeBytes }
}
