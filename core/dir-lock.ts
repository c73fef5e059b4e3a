/** @module
 * One service per data directory (HDFS's in_use.lock): DIR/in_use.lock names the PID of the
 * process using DIR. A second process on the same directory is refused with a clear error
 * instead of sharing its LMDB and block files (and, for a datanode, its id: the SCM took the
 * newcomer's address for the running node's). A lock left by a process that died (kill -9) is
 * taken over. Within one process a directory is its own concern (tests restart services in place).
 * The directory is its owner's alone (0700, as Ozone's datanode and metadata directories): it
 * holds LMDB files with the CA's key, S3 secrets and block data, whatever the umask.
 */
import { chmodSync, linkSync, mkdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { O3Error } from './errors.ts'
import { log } from './log.ts'

export const DIR_LOCK_FILE = 'in_use.lock'

/** Whether a process runs (EPERM: it does, as someone else); on Linux a zombie does not. */
export function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0)
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM'
  }
  if (process.platform !== 'linux') return true
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) !== 'Z'
  } catch {
    return false
  }
}

function holderOf(path: string): number | undefined {
  try {
    const pid = Number(readFileSync(path, 'utf8').trim())
    return Number.isSafeInteger(pid) && pid > 0 ? pid : undefined
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined
    throw err
  }
}

/** Takes group's and others' rights off `dir` (one made before, or by a looser umask). */
function ownerOnly(dir: string): void {
  const mode = statSync(dir).mode & 0o7777
  if ((mode & 0o077) === 0) return
  try {
    chmodSync(dir, mode & ~0o077)
  } catch (err) {
    log.warn(`${dir} is readable by other users (mode ${mode.toString(8)}) and cannot be made private: ${(err as Error).message}`)
  }
}

export class DirLock {
  private constructor(readonly path: string) {}

  /**
   * Makes DIR if need be and takes its lock for this process (`what` names the service in the
   * error), or throws UNAVAILABLE while another live process holds it. The lock file appears
   * whole or not at all (written aside, then linked), so two starting processes cannot both take it.
   * `file` names the lock (`o3 local` holds DIR/pids/local.pid, which scripts read to stop it).
   */
  static acquire(dir: string, what: string, file = DIR_LOCK_FILE): DirLock {
    try {
      mkdirSync(dir, { recursive: true, mode: 0o700 })
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code
      if (code === 'EEXIST' || code === 'ENOTDIR') throw new O3Error('INVALID_ARGUMENT', `Cannot start ${what}: ${dir} is not a directory`)
      throw err
    }
    ownerOnly(dir)
    const path = join(dir, file)
    const aside = `${path}.${process.pid}`
    const inUse = (pid: number) => new O3Error('UNAVAILABLE', `Cannot start ${what}: process ${pid} uses ${dir} (${path}); stop it first, or delete the file if that process is something else`)
    writeFileSync(aside, `${process.pid}\n`)
    try {
      for (let attempt = 0; attempt < 3; attempt++) {
        try {
          linkSync(aside, path)
          return new DirLock(path)
        } catch (err) {
          if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err
        }
        const held = holderOf(path)
        if (held === process.pid) return new DirLock(path)
        if (held !== undefined && processAlive(held)) {
          throw inUse(held)
        }
        // Left by a process that is gone: moved aside (one rename wins), then checked: a lock
        // another starting process took over meanwhile (it read the same dead holder) goes back.
        const stale = `${path}.stale.${process.pid}`
        try {
          renameSync(path, stale)
        } catch (err) {
          if ((err as NodeJS.ErrnoException).code === 'ENOENT') continue
          throw err
        }
        const moved = holderOf(stale)
        if (moved !== undefined && moved !== held && processAlive(moved)) {
          try { linkSync(stale, path) } catch { /* a third took it: it holds the directory */ }
          rmSync(stale, { force: true })
          throw inUse(moved)
        }
        rmSync(stale, { force: true })
      }
      throw new O3Error('UNAVAILABLE', `Cannot start ${what}: cannot take ${path} (is another process starting on ${dir}?)`)
    } finally {
      rmSync(aside, { force: true })
    }
  }

  /** Gives the directory up, if the lock still names this process. */
  release(): void {
    if (holderOf(this.path) === process.pid) rmSync(this.path, { force: true })
  }
}
