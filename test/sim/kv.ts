/** @module
 * The replicated key-value store the simulator drives: puts go through the Raft log with
 * a client session (client id + sequence number, so that a retried put applies once);
 * gets are served by ReadIndex. Pure: no I/O.
 */
import { assert } from '../../core/assert.ts'

export interface PutCommand {
  readonly client: number
  readonly seq: number
  readonly key: string
  readonly value: string
}

const encoder = new TextEncoder()
const decoder = new TextDecoder()

export function encodePut(cmd: PutCommand): Uint8Array {
  return encoder.encode(JSON.stringify(cmd))
}

export function decodePut(data: Uint8Array): PutCommand {
  const cmd = JSON.parse(decoder.decode(data)) as PutCommand
  assert(Number.isSafeInteger(cmd.client) && Number.isSafeInteger(cmd.seq), 'a put names its client session')
  return cmd
}

export class KvStore {
  private data = new Map<string, string>()
  /** Highest sequence number applied per client (the session table). */
  private sessions = new Map<number, number>()
  applied = 0

  /** Applies a put at log index `index`; false when the session already saw it. */
  apply(index: number, cmd: PutCommand): boolean {
    assert(index > this.applied, 'entries apply in order')
    this.applied = index
    if ((this.sessions.get(cmd.client) ?? 0) >= cmd.seq) return false
    this.sessions.set(cmd.client, cmd.seq)
    this.data.set(cmd.key, cmd.value)
    return true
  }

  skip(index: number): void {
    assert(index > this.applied, 'entries apply in order')
    this.applied = index
  }

  seen(client: number, seq: number): boolean {
    return (this.sessions.get(client) ?? 0) >= seq
  }

  get(key: string): string {
    return this.data.get(key) ?? ''
  }

  snapshot(): Uint8Array {
    return encoder.encode(JSON.stringify({ data: [...this.data], sessions: [...this.sessions], applied: this.applied }))
  }

  static restore(bytes: Uint8Array, index: number): KvStore {
    const kv = new KvStore()
    if (bytes.byteLength > 0) {
      const s = JSON.parse(decoder.decode(bytes)) as { data: [string, string][]; sessions: [number, number][]; applied: number }
      kv.data = new Map(s.data)
      kv.sessions = new Map(s.sessions)
      assert(s.applied === index, 'a snapshot image matches its index')
    }
    kv.applied = index
    return kv
  }
}
