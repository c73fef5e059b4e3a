/** @module
 * How the CLI speaks: tables for people (cli-table3), JSON for scripts, one-line errors, and
 * progress bars (cli-progress) for long transfers on a terminal.
 */
import Table from 'cli-table3'

export function printJson(value: unknown): void {
  process.stdout.write(JSON.stringify(value, null, 2) + '\n')
}

export function printTable(head: string[], rows: (string | number)[][]): void {
  const table = new Table({ head, style: { head: [], border: [] } })
  for (const r of rows) table.push(r.map(String))
  process.stdout.write(table.toString() + '\n')
}

export function printFields(fields: Record<string, unknown>): void {
  printTable(['field', 'value'], Object.entries(fields).map(([k, v]) => [k, typeof v === 'object' ? JSON.stringify(v) : String(v)]))
}

/** `n` bytes for people, in powers of 1024 up to PiB (the largest quota, 2^53 - 1 bytes, is 8.0 PiB). */
export function formatBytes(n: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB', 'PiB']
  let i = 0
  while (n >= 1024 && i < units.length - 1) { n /= 1024; i++ }
  return `${i === 0 ? n : n.toFixed(1)} ${units[i]}`
}

export function formatTime(ms: number): string {
  return ms > 0 ? new Date(ms).toISOString() : '-'
}

/** A progress bar on stderr when it is a terminal and the transfer is large; a no-op
 *  otherwise (and with `quiet`: --json). cli-progress loads only then, not with every command. */
export async function progressBar(totalBytes: number, label: string, quiet = false): Promise<{ update(bytes: number): void; stop(): void }> {
  if (quiet || !process.stderr.isTTY || totalBytes < 8 * 1024 * 1024) return { update() {}, stop() {} }
  const { default: cliProgress } = await import('cli-progress')
  const bar = new cliProgress.SingleBar({
    stream: process.stderr, format: `${label} [{bar}] {percentage}% | {done}/{size} | {speed}`, hideCursor: true,
  }, cliProgress.Presets.shades_classic)
  const started = Date.now()
  const fmt = (b: number) => formatBytes(b)
  bar.start(totalBytes, 0, { done: fmt(0), size: fmt(totalBytes), speed: '' })
  return {
    update(bytes) {
      const secs = Math.max(0.001, (Date.now() - started) / 1000)
      bar.update(bytes, { done: fmt(bytes), speed: `${formatBytes(bytes / secs)}/s` })
    },
    stop() { bar.stop() },
  }
}
