/** @module
 * CPU time processes have used, from /proc (Linux; NaN elsewhere): what a figure cost its
 * server, which, unlike its wall time, hardly moves when other work shares the machine.
 */
import { readFileSync, readdirSync } from 'node:fs'

/** USER_HZ is 100 on Linux: /proc counts CPU time in ticks of 10 ms. */
const TICK_MS = 10

function statCpuMs(path: string): number {
  const stat = readFileSync(path, 'utf8')
  // Fields after the command name (which may hold spaces): utime and stime are the 12th and 13th.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
  return (Number(fields[11]) + Number(fields[12])) * TICK_MS
}

/** User + system CPU ms of every thread of the processes so far; NaN when a process cannot be read. */
export function cpuMs(pids: readonly number[]): number {
  let ms = 0
  for (const pid of pids) {
    try { ms += statCpuMs(`/proc/${pid}/stat`) } catch { return NaN }
  }
  return ms
}

/** CPU ms of a process's main thread and of all its other threads (V8's helpers, worker pools: all named "node" under Node, so not told apart). */
export function threadCpuMs(pid: number): Map<'main' | 'other threads', number> {
  const byThread = new Map<'main' | 'other threads', number>()
  for (const tid of readdirSync(`/proc/${pid}/task`)) {
    let ms: number
    try { ms = statCpuMs(`/proc/${pid}/task/${tid}/stat`) } catch { continue }
    const key = tid === String(pid) ? 'main' : 'other threads'
    byThread.set(key, (byThread.get(key) ?? 0) + ms)
  }
  return byThread
}
