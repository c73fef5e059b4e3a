/** @module
 * The one logger: lines to stderr with a level, quiet in tests unless O3_LOG says otherwise.
 * Levels: error, warn, info, debug (O3_LOG=debug shows all).
 */
const LEVELS = { error: 0, warn: 1, info: 2, debug: 3 } as const
type Level = keyof typeof LEVELS

function threshold(): number {
  const v = (globalThis.process?.env?.O3_LOG ?? 'info') as Level
  return LEVELS[v] ?? LEVELS.info
}

function write(level: Level, message: string, detail?: unknown): void {
  if (LEVELS[level] > threshold()) return
  const line = `${new Date().toISOString()} ${level.toUpperCase()} ${message}`
  console.error(detail === undefined ? line : `${line}\n${detail instanceof Error ? detail.stack : String(detail)}`)
}

export const log = {
  error: (m: string, d?: unknown) => write('error', m, d),
  warn: (m: string, d?: unknown) => write('warn', m, d),
  info: (m: string, d?: unknown) => write('info', m, d),
  debug: (m: string, d?: unknown) => write('debug', m, d),
}
