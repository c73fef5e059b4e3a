/** @module
 * `npm run bench -- --profile`: where the time went. Marks when each figure starts on the
 * monotonic clock (CLOCK_MONOTONIC in microseconds: the clock of V8's profiles, so the
 * windows line up with the samples of every process), then reads the .cpuprofile files that
 * `--cpu-prof` made each child write on exit (one per thread, workers included) and sums the
 * self time of each process's main thread and of its worker threads per figure, by category
 * (GC, our modules by folder, node internals, packages such as lmdb) and by function.
 * Reads files; no other I/O.
 */
import { readdirSync, readFileSync, writeFileSync } from 'node:fs'
import { Session } from 'node:inspector'
import { basename, join } from 'node:path'

/** Microseconds on the monotonic clock, as V8's profiler stamps its samples. */
export function monotonicUs(): number {
  return Number(process.hrtime.bigint() / 1000n)
}

/** A figure's time window, [startUs, endUs). */
export interface FigureWindow { name: string; startUs: number; endUs: number }

/** The figures of a run, each from its mark to the next mark (or to end()). */
export class FigureWindows {
  readonly windows: FigureWindow[] = []

  mark(name: string): void {
    this.end()
    this.windows.push({ name, startUs: monotonicUs(), endUs: Number.POSITIVE_INFINITY })
  }

  end(): void {
    const last = this.windows.at(-1)
    if (last !== undefined && last.endUs === Number.POSITIVE_INFINITY) last.endUs = monotonicUs()
  }
}

/**
 * Profiles this process's main thread (the load generators and the native client) through
 * an inspector session, as --cpu-prof profiles the children; the returned function stops it
 * and writes the profile into `dir` under the name --cpu-prof would give it.
 */
export async function profileThisProcess(dir: string): Promise<() => Promise<void>> {
  const session = new Session()
  session.connect()
  const post = (method: string, params?: object) => new Promise<unknown>((resolve, reject) => {
    session.post(method, params ?? {}, (err, result) => err === null ? resolve(result) : reject(err))
  })
  await post('Profiler.enable')
  await post('Profiler.start')
  return async () => {
    const { profile } = await post('Profiler.stop') as { profile: unknown }
    session.disconnect()
    writeFileSync(join(dir, `CPU.0.0.${process.pid}.0.001.cpuprofile`), JSON.stringify(profile))
  }
}

interface CpuProfileNode { id: number; callFrame: { functionName: string; url: string; lineNumber: number } }
interface CpuProfile { nodes: CpuProfileNode[]; startTime: number; samples: number[]; timeDeltas: number[] }

/** One thread's samples: when each was taken, how long it stands for, and its node. */
interface ThreadSamples { pid: number; group: ThreadGroup; atUs: Float64Array; durationUs: Float64Array; category: string[]; label: string[] }

/** Busy time of a group of threads in one window, by category and by function. */
/** main: a process's main thread; datanodes: o3 local's datanode thread; workers: the rest (Piscina's). */
export type ThreadGroup = 'main' | 'datanodes' | 'workers'

export interface TimeSpent { process: string; threads: ThreadGroup; busyUs: number; byCategory: Record<string, number>; byFunction: Record<string, number> }

export interface FigureProfile { figure: string; seconds: number; spent: TimeSpent[] }

/** CPU.<date>.<time>.<pid>.<tid>.<seq>.cpuprofile, as node --cpu-prof names them. */
const PROFILE_NAME = /^CPU\.\d+\.\d+\.(\d+)\.(\d+)\.\d+\.cpuprofile$/

/** The category of a profile node: where its self time goes in the summary. */
export function categoryOf(frame: { functionName: string; url: string }): string {
  switch (frame.functionName) {
    case '(idle)': return 'idle'
    case '(garbage collector)': return 'GC'
    case '(program)': return 'V8/native'
    case '(root)': return 'idle'
  }
  const url = frame.url
  // A Piscina worker waiting for its next task blocks in Atomics.wait: idle, not work.
  if (frame.functionName === 'atomicsWaitLoop' && url.includes('/piscina/')) return 'idle'
  if (url === '') return 'V8/native'
  if (url.startsWith('wasm://')) return 'wasm'
  if (url.startsWith('node:')) return 'node'
  const modules = url.lastIndexOf('/node_modules/')
  if (modules >= 0) {
    const [scope, name] = url.slice(modules + '/node_modules/'.length).split('/')
    return scope.startsWith('@') ? `${scope}/${name}` : scope
  }
  const dist = url.lastIndexOf('/dist/')
  if (dist >= 0) {
    // Our modules by folder: dist/datapath/s3/x.js -> datapath/s3, dist/core/x.js -> core.
    const folders = url.slice(dist + '/dist/'.length).split('/').slice(0, -1)
    return folders.slice(0, 2).join('/') || 'other'
  }
  return 'other'
}

function readThread(file: string, pid: number, tid: number): ThreadSamples {
  const p = JSON.parse(readFileSync(file, 'utf8')) as CpuProfile
  const nodes = new Map(p.nodes.map((n) => [n.id, n]))
  const group: ThreadGroup = tid === 0 ? 'main' : p.nodes.some((n) => n.callFrame.url.endsWith('/cli/datanode-thread.js')) ? 'datanodes' : 'workers'
  const count = p.samples.length
  const atUs = new Float64Array(count)
  const durationUs = new Float64Array(count)
  const category: string[] = []
  const label: string[] = []
  let t = p.startTime
  for (let i = 0; i < count; i++) {
    t += p.timeDeltas[i]
    atUs[i] = t
    const frame = nodes.get(p.samples[i])!.callFrame
    category.push(categoryOf(frame))
    label.push(`${frame.functionName || '(anonymous)'}${frame.url === '' ? '' : ` ${basename(frame.url)}:${frame.lineNumber + 1}`}`)
  }
  // A sample stands for the time until the next one (as DevTools counts it).
  for (let i = 0; i + 1 < count; i++) durationUs[i] = atUs[i + 1] - atUs[i]
  return { pid, group, atUs, durationUs, category, label }
}

/**
 * Sums the profiles in `dir` over each figure's windows. `processNames` names the PIDs to report
 * (others are left out); threads are grouped as ThreadGroup says.
 */
export function summarizeProfiles(dir: string, windows: readonly FigureWindow[], processNames: ReadonlyMap<number, string>): FigureProfile[] {
  const threads: ThreadSamples[] = []
  for (const f of readdirSync(dir)) {
    const m = PROFILE_NAME.exec(f)
    if (m === null || !processNames.has(Number(m[1]))) continue
    threads.push(readThread(join(dir, f), Number(m[1]), Number(m[2])))
  }
  // A figure taken in rounds (bench/s3.ts: "..., round 2 of 4") is one figure: its windows summed.
  const byFigure = new Map<string, FigureWindow[]>()
  for (const w of windows) {
    const figure = w.name.replace(ROUND_SUFFIX, '')
    byFigure.set(figure, [...byFigure.get(figure) ?? [], w])
  }
  return [...byFigure].map(([figure, ws]) => {
    const groups = new Map<string, TimeSpent>()
    for (const th of threads) {
      const kind = th.group
      const key = `${th.pid}/${kind}`
      let g = groups.get(key)
      for (let i = 0; i < th.atUs.length; i++) {
        if (th.category[i] === 'idle' || !ws.some((w) => th.atUs[i] >= w.startUs && th.atUs[i] < w.endUs)) continue
        g ??= { process: processNames.get(th.pid)!, threads: kind, busyUs: 0, byCategory: {}, byFunction: {} }
        const d = th.durationUs[i]
        g.busyUs += d
        g.byCategory[th.category[i]] = (g.byCategory[th.category[i]] ?? 0) + d
        g.byFunction[th.label[i]] = (g.byFunction[th.label[i]] ?? 0) + d
      }
      if (g !== undefined) groups.set(key, g)
    }
    return { figure, seconds: ws.reduce((a, w) => a + (w.endUs - w.startUs), 0) / 1e6, spent: [...groups.values()] }
  })
}

/** How a step of a figure taken in rounds ends its name. */
const ROUND_SUFFIX = /, round \d+ of \d+$/

/** A few lines per figure: the busiest processes' busy share, top categories and functions. */
export function formatProfiles(figures: readonly FigureProfile[], options: { busyMin?: number; groupsMax?: number } = {}): string[] {
  const busyMin = options.busyMin ?? 0.1
  const groupsMax = options.groupsMax ?? 4
  const lines: string[] = []
  const pct = (us: number, windowUs: number) => `${Math.round((100 * us) / windowUs)}%`
  const top = (m: Record<string, number>, n: number, windowUs: number, atLeast: number) =>
    Object.entries(m).sort((a, b) => b[1] - a[1]).slice(0, n).filter(([, us]) => us / windowUs >= atLeast).map(([k, us]) => `${k} ${pct(us, windowUs)}`).join(', ')
  for (const f of figures) {
    const windowUs = f.seconds * 1e6
    const shown = f.spent.filter((s) => s.busyUs / windowUs >= busyMin).sort((a, b) => b.busyUs - a.busyUs).slice(0, groupsMax)
    if (shown.length === 0) continue
    lines.push(`  ${f.figure} (${f.seconds.toFixed(1)} s)`)
    for (const s of shown) {
      lines.push(`    ${`${s.process} ${s.threads}`.padEnd(22)} busy ${pct(s.busyUs, windowUs).padStart(4)}: ${top(s.byCategory, 5, windowUs, 0.02)}`)
      lines.push(`    ${''.padEnd(22)} top: ${top(s.byFunction, 3, windowUs, 0)}`)
    }
  }
  return lines
}
