/** @module
 * Child processes of the benchmark. Every server it measures (the bare server, the sink,
 * s3rver, O3) runs outside the load generator's process, so that no server shares an event
 * loop with the generator and the comparison stays fair. Spawns a runtime child (Node, or
 * Deno running the TypeScript source), optionally with `--cpu-prof` (Node), reads the JSON
 * document it prints once ready, and stops it with SIGTERM. Owns no server itself.
 */
import { spawn, type ChildProcess } from 'node:child_process'
import { once } from 'node:events'
import { fileURLToPath } from 'node:url'
import { join } from 'node:path'
import { SERVER_V8_FLAGS } from '../cli/v8-flags.ts'

/** How long a child may take to print that it is ready. */
export const CHILD_READY_TIMEOUT_MS = 120_000
/** How long a child may take to stop on SIGTERM before it is killed (a profile is written on exit). */
export const CHILD_STOP_GRACE_MS = 30_000

/** The repository's root: this file is dist/bench/child.js under Node, bench/child.ts under Deno. */
export function repoRoot(): string {
  return fileURLToPath(new URL(import.meta.url.includes('/dist/') ? '../../' : '../', import.meta.url))
}

const underDeno = 'Deno' in globalThis

/** The command that runs a module of this repository (`bench/x`, `cli/main`, no extension). */
export function moduleCommand(module: string, options: { profileDir?: string } = {}): { file: string; args: string[] } {
  const root = repoRoot()
  if (underDeno) return { file: process.execPath, args: ['run', '-A', join(root, `${module}.ts`)] }
  // --cpu-prof writes one .cpuprofile per thread (workers too) when it exits: CPU.<date>.<time>.<pid>.<tid>.<seq>.cpuprofile.
  const prof = options.profileDir === undefined ? [] : ['--cpu-prof', `--cpu-prof-dir=${options.profileDir}`]
  // O3 runs with the flags bin/o3.js gives it, as users run it.
  const v8 = module === 'cli/main' ? SERVER_V8_FLAGS : []
  return { file: process.execPath, args: [...v8, ...prof, join(root, 'dist', `${module}.js`)] }
}

export interface Child<T> {
  readonly process: ChildProcess
  readonly pid: number
  /** What the child printed once ready. */
  readonly ready: T
}

/**
 * Starts `command` with `args` and waits for the first whole JSON document on its stdout
 * (stderr is passed through). The child's stdin is a pipe it may watch: it closes when this
 * process exits, however it dies.
 */
export async function startChild<T>(command: { file: string; args: string[] }, args: string[], env: Record<string, string> = {}): Promise<Child<T>> {
  const child = spawn(command.file, [...command.args, ...args], { stdio: ['pipe', 'pipe', 'inherit'], env: { ...process.env, ...env } })
  try {
    const ready = await readReadyJson<T>(child, args[0] ?? command.args.at(-1) ?? command.file)
    // Later output (o3 local prints nothing more on stdout) is drained, never kept.
    child.stdout!.removeAllListeners('data')
    child.stdout!.resume()
    return { process: child, pid: child.pid!, ready }
  } catch (err) {
    child.kill('SIGKILL')
    throw err
  }
}

/** The first whole JSON document on a child's stdout (printJson indents it, so it may come in
 *  pieces); fails if the child exits first or prints none within CHILD_READY_TIMEOUT_MS. */
export async function readReadyJson<T>(child: ChildProcess, what: string): Promise<T> {
  let text = ''
  const parsed = new Promise<T>((resolve) => {
    child.stdout!.on('data', (piece: Buffer) => {
      text += piece.toString('utf8')
      try { resolve(JSON.parse(text) as T) } catch { /* not whole yet */ }
    })
  })
  let timer: ReturnType<typeof setTimeout> | undefined
  try {
    return await Promise.race([
      parsed,
      once(child, 'exit').then(([code, signal]) => { throw new Error(`Cannot start ${what}: it exited (${signal ?? code}) before it was ready`) }),
      new Promise<never>((_, reject) => { timer = setTimeout(() => reject(new Error(`Cannot start ${what}: not ready after ${CHILD_READY_TIMEOUT_MS} ms`)), CHILD_READY_TIMEOUT_MS) }),
    ])
  } finally {
    clearTimeout(timer)
  }
}

/** SIGTERM, then SIGKILL if the child has not exited after CHILD_STOP_GRACE_MS. */
export async function stopChild(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return
  const exited = once(child, 'exit')
  const timer = setTimeout(() => child.kill('SIGKILL'), CHILD_STOP_GRACE_MS)
  child.kill('SIGTERM')
  await exited
  clearTimeout(timer)
}
