/** @module
 * Argument parsing shared by the CLI commands (node:util parseArgs), the typed usage error,
 * and the addresses every client command takes (--om, --scm, defaulting to the local ports).
 */
import { parseArgs, type ParseArgsConfig } from 'node:util'

export class UsageError extends Error {
  override name = 'UsageError'
}

export const COMMON_OPTIONS = {
  om: { type: 'string', default: process.env.O3_OM_ADDRESS ?? '127.0.0.1:9862' },
  scm: { type: 'string', default: process.env.O3_SCM_ADDRESS ?? '127.0.0.1:9860' },
  json: { type: 'boolean', default: false },
  help: { type: 'boolean', short: 'h', default: false },
} as const

export function parse<T extends NonNullable<ParseArgsConfig['options']>>(argv: string[], options: T) {
  try {
    return parseArgs({ args: argv, options: { ...COMMON_OPTIONS, ...options }, allowPositionals: true, strict: true })
  } catch (err) {
    throw new UsageError((err as Error).message)
  }
}

/** Splits /volume/bucket/key (the key may hold slashes) into its parts. */
export function parsePath(path: string | undefined, want: 'volume' | 'bucket' | 'key'): { volume: string; bucket: string; key: string } {
  if (path === undefined) throw new UsageError(`missing path: expected /volume${want === 'volume' ? '' : '/bucket'}${want === 'key' ? '/key' : ''}`)
  const trimmed = path.replace(/^o3:\/\//, '').replace(/^\/+/, '')
  const first = trimmed.indexOf('/')
  const volume = first < 0 ? trimmed : trimmed.slice(0, first)
  const rest = first < 0 ? '' : trimmed.slice(first + 1)
  const second = rest.indexOf('/')
  const bucket = second < 0 ? rest : rest.slice(0, second)
  const key = second < 0 ? '' : rest.slice(second + 1)
  if (volume === '' || (want !== 'volume' && bucket === '') || (want === 'key' && key === '')) {
    throw new UsageError(`bad path ${JSON.stringify(path)}: expected /volume${want === 'volume' ? '' : '/bucket'}${want === 'key' ? '/key' : ''}`)
  }
  return { volume, bucket, key }
}
