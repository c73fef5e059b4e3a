/** @module
 * A worker task's result that Piscina transfers back instead of cloning: `buffer` goes back
 * to the caller. A cloned buffer is a copy, and under Deno the worker's garbage copies (and
 * buffers sent in and dropped there) are not counted by the worker's GC, so they pile up: 4 MiB
 * reads held the process at gigabytes. Whatever large buffer comes in must go back out this way.
 */
import { Piscina } from 'piscina'

export function movedBack<T extends object>(result: T, buffer: ArrayBuffer): T {
  return Piscina.move({ [Piscina.transferableSymbol]: buffer, [Piscina.valueSymbol]: result } as never) as T
}
