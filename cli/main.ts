/** @module
 * The `o3` command: dispatches to local, scm, om, datanode, sh and admin. Errors print one
 * line and exit non-zero (2 for usage errors).
 */
import { O3Error } from '../core/errors.ts'
import { UsageError } from './args.ts'
import { USAGE } from './usage.ts'

// Each command loads only what it needs: `o3 sh` must not pay for LMDB and the services.
async function main(argv: string[]): Promise<void> {
  const [command, ...rest] = argv
  switch (command) {
    case 'local': return (await import('./local.ts')).local(rest)
    case 'scm': case 'om': case 'datanode': case 's3g': return (await import('./services.ts')).runService(command, rest)
    case 's3': return (await import('./s3.ts')).s3(rest)
    case 'sh': return (await import('./sh.ts')).sh(rest)
    case 'admin': return (await import('./admin.ts')).admin(rest)
    case undefined: case 'help': case '--help': case '-h':
      console.log(USAGE)
      return
    default:
      throw new UsageError(`unknown command ${JSON.stringify(command)}\n${USAGE}`)
  }
}

main(process.argv.slice(2)).then(
  () => { if (!['local', 'scm', 'om', 'datanode', 's3g'].includes(process.argv[2] ?? '')) process.exit(0) },
  (err: unknown) => {
    if (err instanceof UsageError) { console.error(`o3: ${err.message}`); process.exit(2) }
    if (err instanceof O3Error) { console.error(`o3: ${err.message} (${err.code})`); process.exit(1) }
    const e = err as NodeJS.ErrnoException
    console.error(`o3: ${e?.code === 'ENOENT' ? `no such file: ${e.path}` : e?.message ?? String(err)}`)
    process.exit(1)
  },
)
