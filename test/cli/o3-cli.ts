/** @module
 * What the CLI suites share: bin/o3.js run as a child process against one in-process mini
 * cluster on free ports (started in test.before, disposed in test.after), and a temp work dir.
 */
import * as assert from 'uvu/assert'
import { execFile, spawn, type ChildProcess } from 'node:child_process'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { startMiniCluster } from '../cluster/mini-cluster.ts'
import { openKeyCount } from '../helpers.ts'

const o3 = fileURLToPath(new URL('../../../bin/o3.js', import.meta.url))

export interface Run { code: number; stdout: string; stderr: string }

/** The cluster and the commands against it; the members are arrows, so they can be passed bare. */
export class CliCluster {
  readonly work: string
  private cluster!: Awaited<ReturnType<typeof startMiniCluster>>

  constructor(workPrefix: string, private readonly options: Parameters<typeof startMiniCluster>[0] = {}) {
    this.work = mkdtempSync(join(tmpdir(), workPrefix))
  }

  readonly start = async (): Promise<void> => {
    this.cluster = await startMiniCluster(this.options)
  }

  readonly stop = async (): Promise<void> => {
    await this.cluster.dispose()
    rmSync(this.work, { recursive: true, force: true })
  }

  /** `o3 ...args --om OM --scm SCM`: its exit code and output. */
  readonly run = (...args: string[]): Promise<Run> => new Promise((resolve) => {
    execFile(process.execPath, [o3, ...args, '--om', this.cluster.omAddress, '--scm', this.cluster.scmAddress], { encoding: 'utf8' }, (err, stdout, stderr) => {
      resolve({ code: err ? Number((err as { code?: number }).code ?? 1) : 0, stdout, stderr })
    })
  })

  /** `o3 ...args --om OM --scm SCM` started, not awaited (to signal it mid-run); its output piped. */
  readonly launch = (...args: string[]): ChildProcess =>
    spawn(process.execPath, [o3, ...args, '--om', this.cluster.omAddress, '--scm', this.cluster.scmAddress], { stdio: ['ignore', 'pipe', 'pipe'] })

  /** The OM's gauge of open keys (o3_om_open_keys): keys being written, or left open by a writer that never ended. */
  readonly openKeys = (): Promise<number> => openKeyCount(this.cluster.omAddress)

  /**
   * `run` on a terminal (util-linux `script` gives the command a pseudo-terminal, so that it
   * draws what it draws for a person, such as progress bars): its exit code and everything
   * it printed, stdout and stderr together.
   */
  readonly runTty = (...args: string[]): Promise<Run> => new Promise((resolve) => {
    const command = this.shellCommand(args)
    execFile('script', ['-qec', command, '/dev/null'], { encoding: 'utf8', env: { ...process.env, TERM: 'xterm' } }, (err, stdout, stderr) => {
      resolve({ code: err ? Number((err as { code?: number }).code ?? 1) : 0, stdout, stderr })
    })
  })

  /** `o3 ...args --om OM --scm SCM` as one shell word list. */
  private shellCommand(args: readonly string[]): string {
    const quote = (a: string) => `'${a.replace(/'/g, `'\\''`)}'`
    return [process.execPath, o3, ...args, '--om', this.cluster.omAddress, '--scm', this.cluster.scmAddress].map(quote).join(' ')
  }

  /** The cluster's native client (to set up what a command then works on). */
  readonly client = () => this.cluster.client()

  /**
   * `o3 ...args | tail` through sh, as a script pipes it (`tail` a shell command reading the
   * pipe, e.g. `(sleep 1; cat)`): o3's exit code (bash's pipefail) and what `tail` printed.
   */
  readonly runPiped = (tail: string, ...args: string[]): Promise<Run> => new Promise((resolve) => {
    const command = this.shellCommand(args)
    execFile('bash', ['-o', 'pipefail', '-c', `${command} | ${tail}`], { encoding: 'utf8', maxBuffer: 64 * 1024 * 1024 }, (err, stdout, stderr) => {
      resolve({ code: err ? Number((err as { code?: number }).code ?? 1) : 0, stdout, stderr })
    })
  })

  /** `run` with --json, which must succeed: its output parsed. */
  readonly json = async <T>(...args: string[]): Promise<T> => {
    const r = await this.run(...args, '--json')
    assert.is(r.code, 0, r.stderr)
    return JSON.parse(r.stdout) as T
  }
}
