/** @module
 * When a long-running command (`o3 local`, a service) must stop: on SIGTERM or SIGINT, when
 * the process that started it exits, or, for a service `o3 local --processes` started, when
 * `o3 local` goes (its IPC channel closes). Owns no
 * service: the command stops its own and then calls dispose().
 */
import { readFileSync } from 'node:fs'
import { processAlive } from '../core/dir-lock.ts'

/** How often the parent is checked. A parent's exit sends no signal to its children, and
 *  Node has no prctl(PR_SET_PDEATHSIG), so polling is the portable way. */
export const PARENT_POLL_MS = 500

/** Ancestors looked at, at most: a bound on the /proc walk. */
const ANCESTORS_MAX = 32

/** Linux: a process's state, parent and process group from /proc; undefined when gone. */
function procStat(pid: number | 'self'): { state: string; ppid: number; pgrp: number } | undefined {
  let stat: string
  try {
    stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
  } catch {
    return undefined
  }
  // "pid (comm) state ppid pgrp ...": comm may hold spaces and parentheses.
  const [state, ppid, pgrp] = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
  return { state, ppid: Number(ppid), pgrp: Number(pgrp) }
}

/**
 * The processes this one must not outlive: its parent and, on Linux, every further ancestor
 * in its own process group. `npx o3 local &` runs npm exec -> sh -c -> node, one job, one
 * group: kill -9 of npm leaves sh alive as node's parent, so the parent alone is not enough.
 * Ancestors outside the group (the shell the job was started from) are not watched: a job
 * run under nohup is meant to outlive them.
 */
function ancestorsToWatch(): number[] {
  const parent = process.ppid
  if (parent <= 1) return []
  const self = process.platform === 'linux' ? procStat('self') : undefined
  if (self === undefined) return [parent]
  const watched = [parent]
  for (let pid = parent; watched.length < ANCESTORS_MAX;) {
    const up = procStat(pid)?.ppid
    if (up === undefined || up <= 1 || procStat(up)?.pgrp !== self.pgrp) break
    watched.push(up)
    pid = up
  }
  return watched
}

function ancestorGone(pid: number): boolean {
  if (process.platform !== 'linux') return !processAlive(pid)
  const stat = procStat(pid)
  return stat === undefined || stat.state === 'Z'
}

export interface StopOptions {
  /** Stop when the process that started this one exits (npx, a shell script, a test). */
  watchParent: boolean
  /** Called on a second SIGINT/SIGTERM while stopping: the impatient Ctrl-C Ctrl-C. */
  onRepeat?: () => void
}

/** The first request to stop; `promise` resolves with its reason. */
export class StopRequest {
  reason: string | undefined
  readonly promise: Promise<string>
  private resolve!: (reason: string) => void
  private readonly cleanups: (() => void)[] = []

  constructor(private readonly options: StopOptions) {
    this.promise = new Promise((res) => { this.resolve = res })
    for (const signal of ['SIGINT', 'SIGTERM'] as const) {
      const on = () => this.request(signal)
      process.on(signal, on)
      this.cleanups.push(() => process.off(signal, on))
    }
    const ppid = process.ppid
    const ancestors = options.watchParent ? ancestorsToWatch() : []
    // Started by init (or a supervisor that re-parents to it) there is no parent to outlive.
    if (ancestors.length > 0) {
      const timer = setInterval(() => {
        // On POSIX an orphan gets a new parent (init or a subreaper); on Windows the old PID
        // just stops answering.
        if (process.ppid !== ppid) return this.request(`its parent (pid ${ppid}) exited`)
        const gone = ancestors.find(ancestorGone)
        if (gone !== undefined) this.request(`${gone === ppid ? 'its parent' : 'the process that started it'} (pid ${gone}) exited`)
      }, PARENT_POLL_MS)
      timer.unref()
      this.cleanups.push(() => clearInterval(timer))
    }
    // A child spawned with an IPC channel (o3 local --processes spawns its services so):
    // the channel closes when the parent exits, however it dies, kill -9 included.
    if (process.channel !== undefined) {
      const on = () => this.request('the process that started it closed its IPC channel')
      process.once('disconnect', on)
      this.cleanups.push(() => process.off('disconnect', on))
    }
  }

  get requested(): boolean {
    return this.reason !== undefined
  }

  request(reason: string): void {
    if (this.reason !== undefined) {
      if (reason === 'SIGINT' || reason === 'SIGTERM') this.options.onRepeat?.()
      return
    }
    this.reason = reason
    this.resolve(reason)
  }

  dispose(): void {
    for (const c of this.cleanups.splice(0)) c()
  }
}
