/** @module
 * A streaming digest of a request or copy body, computed on a digest lane's thread (never on
 * the main thread): pieces are queued, coalesced and fed to its DigestSession one task at a
 * time. update() waits while too many bytes are queued: that is the back-pressure.
 */
import { DigestSession, type DigestName } from '../workers/index.ts'

/** Bytes queued for hashing before update() makes the producer wait. */
const DIGEST_QUEUED_BYTES_MAX = 8 * 1024 * 1024

export class StreamDigest {
  private readonly session: DigestSession
  private queued: Uint8Array[] = []
  private queuedBytes = 0
  private running: Promise<void> | undefined
  private failure: unknown
  private drained: (() => void)[] = []

  constructor(names: DigestName[]) {
    this.session = new DigestSession(names)
  }

  /** Borrows `bytes` until hashed: the caller must not change them. */
  async update(bytes: Uint8Array): Promise<void> {
    if (this.failure !== undefined) throw this.failure
    if (bytes.length === 0) return
    this.queued.push(bytes)
    this.queuedBytes += bytes.length
    this.running ??= this.pump()
    if (this.queuedBytes > DIGEST_QUEUED_BYTES_MAX) await new Promise<void>((r) => this.drained.push(r))
  }

  /** Hashes what is queued and returns the digests. */
  async finish(): Promise<Partial<Record<DigestName, Buffer>>> {
    while (this.running !== undefined) await this.running
    if (this.failure !== undefined) {
      this.session.drop()
      throw this.failure
    }
    if (this.queued.length > 0) await this.session.update(concat(this.queued.splice(0)).buffer)
    return this.session.finish()
  }

  /** Gives the digest up (its body failed): its session ends without hashing what is left. */
  drop(): void {
    this.queued = []
    this.session.drop()
  }

  private async pump(): Promise<void> {
    try {
      while (this.queued.length > 0) {
        const data = concat(this.queued)
        this.queued = []
        this.queuedBytes = 0
        for (const wake of this.drained.splice(0)) wake()
        await this.session.update(data.buffer)
      }
    } catch (err) {
      this.failure = err
      for (const wake of this.drained.splice(0)) wake()
    } finally {
      this.running = undefined
    }
  }
}

/**
 * The parts copied into one new buffer that the session takes (transfers to its lane). The
 * copy replaces the structured clone a borrowed view would get, which copies the view's whole
 * backing buffer (a socket read's pool, say), not just the view.
 */
function concat(parts: Uint8Array[]): Uint8Array<ArrayBuffer> {
  let total = 0
  for (const p of parts) total += p.length
  const out = new Uint8Array(total)
  let at = 0
  for (const p of parts) { out.set(p, at); at += p.length }
  return out
}
