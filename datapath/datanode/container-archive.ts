/** @module
 * The archive a container copy travels in: POSIX ustar, so `curl .../export | tar tv` shows
 * it (Ozone's TarContainerPacker also sends a tar). Encodes entry headers and padding, and
 * reads entries one after another from a byte stream, never holding more than the piece in
 * hand and what the caller asks for. Knows nothing of containers or files: pure bytes.
 */
import { assert } from '../../core/assert.ts'
import { O3Error } from '../../core/errors.ts'

export const TAR_BLOCK_BYTES = 512
/** ustar's size field: 11 octal digits. */
export const TAR_ENTRY_BYTES_MAX = 8 ** 11 - 1
/** Two zero blocks end a tar. */
export const TAR_END = new Uint8Array(2 * TAR_BLOCK_BYTES)

const encoder = new TextEncoder()
const decoder = new TextDecoder()

function putOctal(h: Uint8Array, at: number, width: number, value: number): void {
  const text = value.toString(8).padStart(width - 1, '0')
  assert(text.length === width - 1, 'tar octal field overflows')
  h.set(encoder.encode(text), at)
  h[at + width - 1] = 0
}

function headerChecksum(h: Uint8Array): number {
  let sum = 0
  for (let i = 0; i < TAR_BLOCK_BYTES; i++) sum += i >= 148 && i < 156 ? 0x20 : h[i]
  return sum
}

/** The 512-byte ustar header of a regular file `name` (ASCII, at most 100 bytes) of `sizeBytes`. */
export function tarHeader(name: string, sizeBytes: number, mtimeMs: number): Uint8Array {
  assert(/^[\x21-\x7e]{1,100}$/.test(name), 'tar entry name must be 1-100 printable ASCII characters')
  assert(Number.isSafeInteger(sizeBytes) && sizeBytes >= 0 && sizeBytes <= TAR_ENTRY_BYTES_MAX, 'tar entry size out of range')
  const h = new Uint8Array(TAR_BLOCK_BYTES)
  h.set(encoder.encode(name), 0)
  putOctal(h, 100, 8, 0o644)
  putOctal(h, 108, 8, 0)
  putOctal(h, 116, 8, 0)
  putOctal(h, 124, 12, sizeBytes)
  putOctal(h, 136, 12, Math.floor(mtimeMs / 1000))
  h[156] = 0x30 // '0': a regular file
  h.set(encoder.encode('ustar\x0000'), 257)
  const sum = headerChecksum(h).toString(8).padStart(6, '0')
  h.set(encoder.encode(`${sum}\x00 `), 148)
  return h
}

/** Zero bytes that round an entry of `sizeBytes` up to whole blocks. */
export function tarPadding(sizeBytes: number): Uint8Array {
  return new Uint8Array((TAR_BLOCK_BYTES - (sizeBytes % TAR_BLOCK_BYTES)) % TAR_BLOCK_BYTES)
}

export interface TarEntry {
  name: string
  sizeBytes: number
}

function malformed(why: string): O3Error {
  return new O3Error('INVALID_ARGUMENT', `Cannot read archive: ${why}`)
}

function field(h: Uint8Array, at: number, width: number): string {
  const bytes = h.subarray(at, at + width)
  const end = bytes.indexOf(0)
  return decoder.decode(end < 0 ? bytes : bytes.subarray(0, end))
}

/**
 * Reads a tar from `source` entry by entry: next() gives the next entry's header (undefined
 * at the end), then read()/readAll() take its bytes; what the caller leaves unread is skipped.
 * A stream cut short, a bad header checksum or anything but regular files is an INVALID_ARGUMENT.
 */
export class TarReader {
  private readonly pieces: AsyncIterator<Uint8Array>
  private piece: Uint8Array = new Uint8Array(0)
  private at = 0
  /** Bytes of the current entry not read yet, and its padding. */
  private left = 0
  private padding = 0
  private ended = false

  constructor(source: AsyncIterable<Uint8Array>) {
    this.pieces = source[Symbol.asyncIterator]()
  }

  /** The next entry, or undefined at the archive's end. */
  async next(): Promise<TarEntry | undefined> {
    assert(!this.ended, 'tar read past its end')
    await this.skip(this.left + this.padding)
    this.left = this.padding = 0
    const h = new Uint8Array(TAR_BLOCK_BYTES)
    await this.fill(h)
    if (h.every((b) => b === 0)) {
      this.ended = true
      return undefined
    }
    const stored = parseInt(field(h, 148, 8).trim(), 8)
    if (stored !== headerChecksum(h)) throw malformed('an entry header fails its checksum')
    if (h[156] !== 0x30 && h[156] !== 0) throw malformed(`entry type ${JSON.stringify(String.fromCharCode(h[156]))} is not a regular file`)
    const prefix = field(h, 345, 155)
    const name = prefix === '' ? field(h, 0, 100) : `${prefix}/${field(h, 0, 100)}`
    const sizeText = field(h, 124, 12).trim()
    if (!/^[0-7]{1,11}$/.test(sizeText)) throw malformed(`entry ${JSON.stringify(name)} has a malformed size`)
    const sizeBytes = parseInt(sizeText, 8)
    this.left = sizeBytes
    this.padding = tarPadding(sizeBytes).length
    return { name, sizeBytes }
  }

  /** Fills `into` with the next bytes of the current entry (no more than it has left). */
  async read(into: Uint8Array): Promise<void> {
    if (into.length > this.left) throw malformed(`an entry holds ${this.left} bytes more, not ${into.length}`)
    await this.fill(into)
    this.left -= into.length
  }

  /** The rest of the current entry, which must be at most `maxBytes`. */
  async readAll(maxBytes: number): Promise<Uint8Array> {
    if (this.left > maxBytes) throw malformed(`an entry of ${this.left} bytes is over the ${maxBytes} allowed`)
    const out = new Uint8Array(this.left)
    await this.read(out)
    return out
  }

  private async fill(into: Uint8Array): Promise<void> {
    let filled = 0
    while (filled < into.length) {
      if (this.at === this.piece.length) await this.nextPiece()
      const n = Math.min(into.length - filled, this.piece.length - this.at)
      into.set(this.piece.subarray(this.at, this.at + n), filled)
      this.at += n
      filled += n
    }
  }

  private async skip(bytes: number): Promise<void> {
    let left = bytes
    while (left > 0) {
      if (this.at === this.piece.length) await this.nextPiece()
      const n = Math.min(left, this.piece.length - this.at)
      this.at += n
      left -= n
    }
  }

  private async nextPiece(): Promise<void> {
    const r = await this.pieces.next()
    if (r.done === true) throw malformed('the stream ended in the middle of the archive')
    this.piece = r.value
    this.at = 0
  }
}
