/** @module
 * A Piscina task for test/wasm/codec.test.ts: encodes in a worker thread, which proves that
 * each worker compiles and instantiates the codec module on its own.
 */
import { createCodec } from '../../wasm/index.ts'

export interface EncodeTask {
  readonly k: number
  readonly m: number
  readonly data: Uint8Array[]
}

export default async function encodeInWorker(task: EncodeTask): Promise<Uint8Array[]> {
  const codec = await createCodec('rs', task.k, task.m)
  const parity = Array.from({ length: task.m }, () => new Uint8Array(task.data[0].length))
  codec.encode(task.data, parity)
  return parity
}
