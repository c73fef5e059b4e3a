/** @module
 * A JSON header followed by raw byte fields: u32 (big-endian) length of the header, the header
 * (which names each field by its length), then the fields' bytes in order. The binary form of
 * Raft batches (core/raft-io/codec.ts) and of pipeline log entries: payload bytes are neither
 * base64'd nor parsed. Pure; malformed frames are INVALID_ARGUMENT naming `what`.
 */
import { O3Error } from './errors.ts'

/** `header` and then `fields`, after the bytes of `lead` (a format's version byte): one copy of each field. */
export function encodeJsonFrame(header: unknown, fields: readonly Uint8Array[], lead: readonly number[] = []): Uint8Array<ArrayBuffer> {
  const json = Buffer.from(JSON.stringify(header))
  let at = lead.length + 4 + json.length
  const out = Buffer.allocUnsafe(fields.reduce((n, f) => n + f.byteLength, at))
  out.set(lead, 0)
  out.writeUInt32BE(json.length, lead.length)
  json.copy(out, lead.length + 4)
  for (const f of fields) {
    out.set(f, at)
    at += f.byteLength
  }
  return out
}

/** A frame being read: its header, then each field in turn by the length the header gave. */
export interface JsonFrameReader {
  readonly header: unknown
  /** The next field, `length` bytes (checked: a whole number within the frame), as a view of the frame. */
  field(length: unknown): Uint8Array
  /** Throws unless every byte of the frame was read. */
  end(): void
}

/** Reads the frame that starts at `start` of `bytes` (after the bytes of a format's lead). */
export function readJsonFrame(bytes: Uint8Array, start: number, what: string): JsonFrameReader {
  const bad = (why: string) => new O3Error('INVALID_ARGUMENT', `Cannot decode ${what}: ${why}`)
  if (bytes.byteLength < start + 4) throw bad('shorter than its header length')
  const view = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength)
  const headerBytes = view.readUInt32BE(start)
  let at = start + 4 + headerBytes
  if (at > bytes.byteLength) throw bad('its header runs past its end')
  let header: unknown
  try { header = JSON.parse(view.toString('utf8', start + 4, at)) } catch { throw bad('its header is not JSON') }
  return {
    header,
    field(length) {
      if (typeof length !== 'number' || !Number.isSafeInteger(length) || length < 0 || at + length > bytes.byteLength) throw bad('a field runs past its end')
      const f = new Uint8Array(bytes.buffer, bytes.byteOffset + at, length)
      at += length
      return f
    },
    end() {
      if (at !== bytes.byteLength) throw bad(`${bytes.byteLength - at} bytes its header does not account for`)
    },
  }
}
