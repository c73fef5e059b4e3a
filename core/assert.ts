/** @module
 * Assertions on invariants (programmer errors): they throw AssertionError and are never caught
 * to carry on. Operating errors (not found, disk full) are O3Error in errors.ts instead.
 */

export class AssertionError extends Error {
  override name = 'AssertionError'
}

/** Throws when `condition` is false. One condition per call, so a failure names what broke. */
export function assert(condition: unknown, message = 'assertion failed'): asserts condition {
  if (!condition) throw new AssertionError(message)
}

/** For exhaustive switches over discriminated unions. */
export function unreachable(value: never, what = 'value'): never {
  throw new AssertionError(`Unexpected ${what}: ${JSON.stringify(value)}`)
}
