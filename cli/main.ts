/** @module
 * The `o3` command: dispatches to local, scm, om, datanode, sh and admin. Errors print one
 * line and exit non-zero (2 for usage errors).
 */
import { O3Error } from '../core/errors.ts'
import { admin, ADMIN_USAGE } from './admin.ts'
import { UsageError } from './args.ts'
import { local, LOCAL_USAGE } from './local.ts'
import { runService } from './services.ts'
import { sh, SH_USAGE } from './sh.ts'

const USAGE = `usage: o3 <command> ...
  ${LOCAL_USAGE}
  o3 scm|om|datanode [--config FILE]     one service (settings from FILE and O3_* variables)
${SH_USAGE.replace(/^/gm, '  ')}
${ADMIN_USAGE.replace(/^/gm, '  ')}`

async function main(argv: string[]): Promise<void> {
  const [command, ...rest] = argv
  switch (command) {
    case 'local': return local(rest)
    case 'scm': case 'om': case 'datanode': return runService(command, rest)
    case 'sh': return sh(rest)
    case 'admin': return admin(rest)
    case undefined: case 'help': case '--help': case '-h':
      console.log(USAGE)
      return
    default:
      throw new UsageError(`unknown command ${JSON.stringify(command)}\n${USAGE}`)
  }
}

main(process.argv.slice(2)).then(
  () => { if (!['local', 'scm', 'om', 'datanode'].includes(process.argv[2] ?? '')) process.exit(0) },
  (err: unknown) => {
    if (err instanceof UsageError) { console.error(`o3: ${err.message}`); process.exit(2) }
    if (err instanceof O3Error) { console.error(`o3: ${err.message} (${err.code})`); process.exit(1) }
    const e = err as NodeJS.ErrnoException
    console.error(`o3: ${e?.code === 'ENOENT' ? `no such file: ${e.path}` : e?.message ?? String(err)}`)
    process.exit(1)
  },
)
