/** @module
 * What every benchmark does at its edges: read a positive numeric `--option`, and write its
 * JSON record to <repo>/bench/results/ (ignored by git) under a timestamped name.
 */
import { mkdirSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'

/** The value after `--name` on the command line, or `fallback`; a positive number. */
export function positiveOption(name: string, fallback: number): number {
  const at = process.argv.indexOf(`--${name}`)
  const value = at < 0 ? fallback : Number(process.argv[at + 1])
  if (!Number.isFinite(value) || value <= 0) throw new RangeError(`Cannot run the benchmark: --${name} must be a positive number, got ${process.argv[at + 1]}`)
  return value
}

/** <repo>/bench/results: this file is dist/bench/results.js under Node, bench/results.ts under Deno. */
function resultsDir(): string {
  return fileURLToPath(new URL(import.meta.url.includes('/dist/') ? '../../bench/results/' : './results/', import.meta.url))
}

/** <repo>/bench/results/<name>. */
export function resultsPath(name: string): string {
  return join(resultsDir(), name)
}

/** Writes `record` as bench/results/<prefix><time>.json and returns the file's path. */
export function writeResults(prefix: string, record: unknown, at = new Date()): string {
  const dir = resultsDir()
  mkdirSync(dir, { recursive: true })
  const file = join(dir, `${prefix}${at.toISOString().replace(/[:.]/g, '-')}.json`)
  writeFileSync(file, JSON.stringify(record, null, 2) + '\n')
  return file
}
