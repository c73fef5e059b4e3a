/** @module
 * Digests of a key's bytes as its writer stores them (the S3 ETag MD5, a signed payload's
 * SHA-256, x-amz-checksum-*): the writer feeds each chunk (a KeyWriter) or data cell (an
 * EcKeyWriter), in key order, as a range of its slab, which the thread of its digest lane
 * (a DigestSession) reads in place in a task of its own, beside the chunk's checksums: the
 * chunk goes to the datanodes meanwhile, its slab comes back once it is hashed, and the key
 * is committed once hashed() resolves.
 * So the payload is neither copied nor cloned to be hashed, never hashed on the main thread,
 * and its digest is not on the way of its writes. The writer calls end() after its last
 * chunk (or abandon() when it gives up); finish() waits for that and returns the digests.
 */
import { assert } from '../../core/assert.ts'
import { O3Error } from '../../core/errors.ts'
import { DigestSession, type DigestName, type SlabRange } from '../workers/index.ts'

export class KeyDigest {
  private readonly session: DigestSession
  /** The last chunk's task: chunks are hashed one after another, in key order. */
  private last: Promise<void> = Promise.resolve()
  private ended = false
  /** A chunk that could not be hashed: the digests would be wrong, so finish() fails. */
  private failure: unknown
  private readonly done: Promise<void>
  private settle!: (err?: unknown) => void

  constructor(readonly names: DigestName[]) {
    assert(names.length > 0, 'a key digest of no digest')
    this.session = new DigestSession(names)
    this.done = new Promise<void>((resolve, reject) => { this.settle = (err) => (err === undefined ? resolve() : reject(err)) })
    this.done.catch(() => {})
  }

  /** Hashes the chunk at `data` (a slab range, borrowed until this settles) after the chunks before it. */
  chunk(data: SlabRange): Promise<void> {
    assert(!this.ended, 'key digest fed after its end')
    const run = this.last.then(() => this.session.update(data))
    this.last = run.catch((err: unknown) => { this.failure ??= err })
    return run
  }

  /** Resolves once every chunk fed so far is hashed; rejects with the first that could not be. */
  async hashed(): Promise<void> {
    await this.last
    if (this.failure !== undefined) throw this.failure
  }

  /**
   * Resolves when the next chunk may be fed: the ones before it are hashed (a writer's digest
   * trails its writes by one chunk at most). Rejects when one of them could not be, or when the
   * digest ended meanwhile (its write was given up).
   */
  async ready(): Promise<void> {
    await this.hashed()
    if (this.ended) throw new O3Error('INTERNAL_ERROR', 'Cannot feed a key digest that has ended: its write was given up')
  }

  /** The writer's last chunk has been fed. */
  end(): void {
    this.ended = true
    this.settle()
  }

  /** The writer gave up: finish() fails. */
  abandon(): void {
    this.ended = true
    this.session.drop()
    this.settle(new O3Error('INTERNAL_ERROR', 'Cannot finish the digest of a key whose write was abandoned'))
  }

  /** The digests of every chunk fed, once the writer has ended. */
  async finish(): Promise<Partial<Record<DigestName, Buffer>>> {
    await this.done
    try {
      await this.hashed()
    } catch (err) {
      this.session.drop()
      throw err
    }
    return this.session.finish()
  }
}
