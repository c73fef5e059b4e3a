/** @module
 * The Piscina worker entry: exports the tasks by name (run(task, { name })).
 */
export { checksum, writeChunk, readChunk } from './tasks.ts'
export { digest } from './digest.ts'
