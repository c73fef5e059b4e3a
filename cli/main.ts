/** @module
 * The `o3` command: finds the command in the table (args.ts, usage.ts), answers --help, and
 * only then loads the module that runs it. Errors print one line and exit non-zero (2 for
 * usage errors, with the command whose --help explains it).
 */
import { O3Error } from '../core/errors.ts'
import { resolveCommand, UsageError, type Invocation } from './args.ts'

// Each command loads only what it needs: `o3 sh` must not pay for LMDB and the services.
async function run(inv: Invocation): Promise<void> {
  try {
    switch (inv.command.module) {
      case 'local': return await (await import('./local.ts')).local(inv)
      case 'services': return await (await import('./services.ts')).runService(inv)
      case 's3': return await (await import('./s3.ts')).s3(inv)
      case 'sh': return await (await import('./sh.ts')).sh(inv)
      case 'admin': return await (await import('./admin.ts')).admin(inv)
      case 'freon/ockg': return await (await import('./freon/ockg.ts')).run(inv)
      case 'freon/ockr': return await (await import('./freon/ockr.ts')).run(inv)
      case 'freon/s3kg': return await (await import('./freon/s3kg.ts')).run(inv)
    }
  } catch (err) {
    // A command's own usage errors (a bad path, --datanodes 0) point to its help too.
    if (err instanceof UsageError) err.command ??= inv.path.join(' ')
    throw err
  }
}

// A reader that went away (`o3 ... | head`) ends the command quietly, as it does any Unix tool:
// an unhandled EPIPE printed a stack trace and exit 1.
process.stdout.on('error', (err: NodeJS.ErrnoException) => {
  if (err.code === 'EPIPE') process.exit(0)
  throw err
})

async function main(argv: string[]): Promise<void> {
  const r = resolveCommand(argv)
  if ('help' in r) {
    console.log(r.help)
    return
  }
  await run(r)
}

/**
 * Exits once what was written to stdout and stderr is out: to a pipe Node writes them
 * asynchronously, and process.exit() right after a large console.log cut the output at 64 KiB
 * (`o3 sh key list --json | jq` read half a document, and the command still exited 0).
 */
async function exitAfterOutput(code: number): Promise<never> {
  const drained = (stream: NodeJS.WriteStream) => new Promise<void>((resolve) => {
    if (stream.destroyed || !stream.writable) return resolve()
    stream.write('', () => resolve())
  })
  await Promise.all([drained(process.stdout), drained(process.stderr)])
  process.exit(code)
}

main(process.argv.slice(2)).then(
  // Every command returns only once it is done (a service or `o3 local` once stopped), so
  // nothing may keep the process alive past this point.
  () => exitAfterOutput(0),
  (err: unknown) => {
    if (err instanceof UsageError) {
      console.error(`o3: ${err.message}${err.command === undefined ? '' : `; see '${err.command} --help'`}`)
      return exitAfterOutput(2)
    }
    if (err instanceof O3Error) {
      // A message passed on from another node's error may already name its code.
      console.error(`o3: ${err.message.endsWith(`(${err.code})`) ? err.message : `${err.message} (${err.code})`}`)
      return exitAfterOutput(1)
    }
    const e = err as NodeJS.ErrnoException
    console.error(`o3: ${e?.code === 'ENOENT' ? `no such file: ${e.path}` : e?.message ?? String(err)}`)
    return exitAfterOutput(1)
  },
)
