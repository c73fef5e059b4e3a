/** @module
 * The datanode's cache of block files open for writing: one descriptor per block being
 * written, opened on its first chunk and reused by the next ones (the worker pool writes to
 * the descriptor; descriptors are process-wide), instead of an open and a close per chunk.
 * A file closes when its block is committed at its final length, when its container closes
 * or its block is deleted, after DATANODE_BLOCK_FILE_IDLE_MS unused, and, past `max` open
 * files, least recently used first; never while a write holds it.
 */
import { close, mkdir, open, constants } from 'node:fs'
import { dirname } from 'node:path'
import { promisify } from 'node:util'

const openAsync = promisify(open)
const closeAsync = promisify(close)
const mkdirAsync = promisify(mkdir)

interface Entry {
  containerId: number
  fd: Promise<number>
  /** Writes holding the descriptor; it closes only at 0. */
  users: number
  lastUsedMs: number
  /** Asked to close while in use: closes when the last user lets go. */
  closing: boolean
}

export interface HeldFile {
  fd: number
  release(): void
}

export class BlockFiles {
  private readonly files = new Map<string, Entry>()
  private sweeper: ReturnType<typeof setInterval> | undefined

  constructor(private readonly max: number, private readonly idleMs: number) {}

  /** Descriptors open now (for tests and metrics). */
  get size(): number { return this.files.size }

  /** The block file's descriptor, opened (and its folder made) if need be; release() after the write. */
  async hold(path: string, containerId: number): Promise<HeldFile> {
    if (this.sweeper === undefined) {
      this.sweeper = setInterval(() => this.sweep(), Math.max(1, Math.ceil(this.idleMs / 2)))
      this.sweeper.unref?.()
    }
    let e = this.files.get(path)
    if (e === undefined || e.closing) {
      if (e !== undefined) await this.closeNow(path, e)
      e = { containerId, fd: openForWrite(path), users: 0, lastUsedMs: performance.now(), closing: false }
      this.files.set(path, e)
      e.fd.catch(() => { if (this.files.get(path) === e) this.files.delete(path) })
    }
    // Most recently used last: Map keeps insertion order.
    this.files.delete(path)
    this.files.set(path, e)
    e.users++
    this.evict()
    let fd: number
    try { fd = await e.fd } catch (err) { e.users--; throw err }
    const entry = e
    let released = false
    return {
      fd,
      release: () => {
        if (released) return
        released = true
        entry.users--
        entry.lastUsedMs = performance.now()
        if (entry.users === 0 && entry.closing) void this.closeNow(path, entry)
      },
    }
  }

  /** Closes the block's file (now, or when its last write ends). */
  close(path: string): Promise<void> {
    const e = this.files.get(path)
    if (e === undefined) return Promise.resolve()
    return this.retire(path, e)
  }

  /**
   * A commit of the block: its file closes unless a write holds it (the client commits beside
   * its writes, so a block still being written stays open; its last commit finds it idle).
   */
  closeIfIdle(path: string): Promise<void> {
    const e = this.files.get(path)
    if (e === undefined || e.users > 0) return Promise.resolve()
    return this.closeNow(path, e)
  }

  /** Closes every file of the container. */
  async closeContainer(containerId: number): Promise<void> {
    await Promise.all([...this.files].filter(([, e]) => e.containerId === containerId).map(([path, e]) => this.retire(path, e)))
  }

  async closeAll(): Promise<void> {
    clearInterval(this.sweeper)
    this.sweeper = undefined
    await Promise.all([...this.files].map(([path, e]) => this.retire(path, e)))
  }

  private retire(path: string, e: Entry): Promise<void> {
    if (e.users > 0) { e.closing = true; return Promise.resolve() }
    return this.closeNow(path, e)
  }

  private async closeNow(path: string, e: Entry): Promise<void> {
    if (this.files.get(path) === e) this.files.delete(path)
    try { await closeAsync(await e.fd) } catch { /* never opened, or already gone: nothing to close */ }
  }

  private sweep(): void {
    const now = performance.now()
    for (const [path, e] of this.files) if (e.users === 0 && now - e.lastUsedMs >= this.idleMs) void this.closeNow(path, e)
  }

  /** Past the bound, the least recently used idle files go (busy ones stay and close later). */
  private evict(): void {
    for (const [path, e] of this.files) {
      if (this.files.size <= this.max) return
      if (e.users === 0) void this.closeNow(path, e)
      else e.closing = true
    }
  }
}

/** Opens the block file for writing, making its folder on the first chunk of its block. */
async function openForWrite(path: string): Promise<number> {
  const flags = constants.O_RDWR | constants.O_CREAT
  try {
    return await openAsync(path, flags, 0o644)
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err
    await mkdirAsync(dirname(path), { recursive: true })
    return await openAsync(path, flags, 0o644)
  }
}
