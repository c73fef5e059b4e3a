/**
 * Goal: every `o3` command and subcommand answers -h and --help with its own usage and exit
 * code 0, starting nothing; every unknown flag, unknown command and missing or extra
 * argument is one line on stderr naming it and the --help to read, with exit code 2.
 * Method: run bin/o3.js as real processes. Every port a service or client would use is one
 * this test holds (connections to it are reset at once) and every data directory is in a
 * temp dir, so a command that wrongly starts or connects fails fast and touches nothing.
 */
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { execFile } from 'node:child_process'
import { existsSync, mkdtempSync, rmSync } from 'node:fs'
import { createServer, type Server } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { COMMANDS, isGroup, type Command } from '../../cli/usage.ts'

const o3 = fileURLToPath(new URL('../../../bin/o3.js', import.meta.url))
const work = mkdtempSync(join(tmpdir(), 'o3-cli-help-'))
let held: Server
let env: NodeJS.ProcessEnv

/** Every command path the issue names; the table must hold exactly these. */
const PATHS = [
  [], ['local'], ['scm'], ['om'], ['datanode'], ['s3g'],
  ['s3'], ['s3', 'getsecret'], ['s3', 'revokesecret'],
  ['sh'], ['sh', 'volume'], ['sh', 'bucket'], ['sh', 'key'],
  ...['create', 'info', 'list', 'delete', 'setquota', 'clrquota'].flatMap((v) => [['sh', 'volume', v], ['sh', 'bucket', v]]),
  ...['put', 'get', 'info', 'list', 'rename', 'delete'].map((v) => ['sh', 'key', v]),
  ...['addacl', 'removeacl', 'setacl', 'getacl'].flatMap((v) => [['sh', 'volume', v], ['sh', 'bucket', v], ['sh', 'key', v]]),
  ['admin'], ['admin', 'datanode'], ['admin', 'datanode', 'list'],
  ['admin', 'datanode', 'decommission'], ['admin', 'datanode', 'maintenance'], ['admin', 'datanode', 'recommission'], ['admin', 'pipeline'], ['admin', 'pipeline', 'list'], ['admin', 'pipeline', 'close'],
  ['admin', 'container'], ['admin', 'container', 'list'], ['admin', 'container', 'info'], ['admin', 'container', 'report'], ['admin', 'container', 'replicate'], ['admin', 'container', 'scan'], ['admin', 'safemode'], ['admin', 'safemode', 'status'], ['admin', 'cert'], ['admin', 'cert', 'token'], ['admin', 'cert', 'user'], ['admin', 'cert', 'list'], ['admin', 'cert', 'forget'],
  ['admin', 'scm'], ['admin', 'scm', 'roles'], ['admin', 'scm', 'transfer'],
  ['admin', 'om'], ['admin', 'om', 'roles'], ['admin', 'om', 'transfer'], ['admin', 'om', 'add'], ['admin', 'om', 'remove'],
  ['freon'], ['freon', 'ockg'], ['freon', 'ockr'], ['freon', 's3kg'],
]

function tablePaths(path: string[], c: Command): string[][] {
  return [path, ...(isGroup(c) ? Object.entries(c.commands).flatMap(([name, sub]) => tablePaths([...path, name], sub)) : [])]
}

interface Run { code: number | string; stdout: string; stderr: string }
function run(args: string[]): Promise<Run> {
  return new Promise((resolve) => {
    // A command that ignores --help would start a service or wait on the held port: the
    // timeout ends it and the test fails on its exit code.
    execFile(process.execPath, [o3, ...args], { encoding: 'utf8', env, timeout: 20_000, killSignal: 'SIGKILL' }, (err, stdout, stderr) => {
      resolve({ code: err ? ((err as { code?: number | string }).code ?? (err as { signal?: string }).signal ?? 1) : 0, stdout, stderr })
    })
  })
}

/** Runs all, a few at a time: the machine is small and each run is a Node start. */
async function runAll(argvs: string[][]): Promise<Run[]> {
  const out: Run[] = new Array(argvs.length)
  let next = 0
  await Promise.all(Array.from({ length: 4 }, async () => {
    while (next < argvs.length) {
      const i = next++
      out[i] = await run(argvs[i])
    }
  }))
  return out
}

test.before(async () => {
  held = createServer((socket) => socket.destroy())
  await new Promise<void>((res) => held.listen(0, '127.0.0.1', res))
  const port = String((held.address() as { port: number }).port)
  env = {
    ...process.env,
    O3_SCM_PORT: port, O3_OM_PORT: port, O3_DATANODE_PORT: port, O3_S3G_PORT: port, O3_S3G_ADMINPORT: port,
    O3_SCM_DIR: join(work, 'scm'), O3_OM_DIR: join(work, 'om'), O3_DATANODE_DIRS: join(work, 'dn'),
    O3_SCM_ADDRESS: `127.0.0.1:${port}`, O3_OM_ADDRESS: `127.0.0.1:${port}`,
  }
})
test.after(async () => {
  await new Promise((r) => held.close(r))
  rmSync(work, { recursive: true, force: true })
})

test('the command table holds every command the CLI documents', () => {
  assert.equal(tablePaths([], COMMANDS).map((p) => p.join(' ')).sort(), PATHS.map((p) => p.join(' ')).sort())
})

test('--help and -h: every command and subcommand prints its own usage and exits 0', async () => {
  const argvs = PATHS.flatMap((p) => [[...p, '--help'], [...p, '-h']])
  const runs = await runAll(argvs)
  const texts = new Map<string, string>()
  runs.forEach((r, i) => {
    const p = argvs[i].slice(0, -1)
    const name = ['o3', ...p].join(' ')
    assert.is(r.code, 0, `${argvs[i].join(' ')}: ${r.stderr}`)
    assert.is(r.stderr, '', argvs[i].join(' '))
    assert.ok(r.stdout.startsWith(`usage: ${name} `), `${argvs[i].join(' ')} printed: ${r.stdout.slice(0, 200)}`)
    assert.match(r.stdout, /-h, --help/)
    if (argvs[i].at(-1) === '-h') assert.is(r.stdout, texts.get(name), `-h and --help of ${name} agree`)
    else texts.set(name, r.stdout)
  })
  // Specific to its command: no two commands share a usage text.
  assert.is(new Set(texts.values()).size, PATHS.length)
  assert.match(texts.get('o3 sh key list')!, /--prefix P/)
  assert.not.match(texts.get('o3 sh key get')!, /--prefix/)
  assert.match(texts.get('o3 s3 getsecret')!, /--user NAME/)
  assert.match(texts.get('o3 admin container list')!, /--state S/)
  assert.match(texts.get('o3 local')!, /--processes/)
  assert.match(texts.get('o3 local')!, /DIR\/pids\/local\.pid/)
  assert.match(texts.get('o3 scm')!, /--config FILE/)
  assert.match(texts.get('o3 sh key')!, /rename \/volume\/bucket\/key NEWKEY/)
  assert.not.match(texts.get('o3 sh key')!, /volume create/)
  // Each group's transfer names a node of its own group.
  assert.match(texts.get('o3 admin om transfer')!, /--target NODE\s+the voter to lead \(its name, e\.g\. om2\)/)
  assert.match(texts.get('o3 admin scm transfer')!, /--target NODE\s+the voter to lead \(its name, e\.g\. scm2\)/)
})

test('--help wins wherever it is and whatever else is on the line; o3 help CMD is CMD --help', async () => {
  const runs = await runAll([
    ['sh', 'key', 'put', '/v/b/k', '--help'], ['sh', 'key', 'put', '--bogus', '-h'], ['s3', 'getsecret', '--user', 'x', '--help'],
    ['local', '--processes', '--help'], ['help', 'sh', 'key', 'put'], ['help'], [],
  ])
  for (const r of runs) assert.is(r.code, 0, r.stderr)
  assert.ok(runs[0].stdout.startsWith('usage: o3 sh key put /volume/bucket/key FILE'))
  assert.is(runs[1].stdout, runs[0].stdout)
  assert.ok(runs[2].stdout.startsWith('usage: o3 s3 getsecret'))
  assert.ok(runs[3].stdout.startsWith('usage: o3 local'))
  assert.is(runs[4].stdout, runs[0].stdout)
  assert.is(runs[5].stdout, runs[6].stdout)
  assert.ok(runs[6].stdout.startsWith('usage: o3 <command>'))
})

test('o3 local --help starts nothing: no data directory, no port, exit 0', async () => {
  for (const extra of [[], ['--processes']]) {
    const data = join(work, `never-${extra.length}`)
    // --ports fixed with every port set to the held one: any start fails at its first bind.
    const r = await run(['local', '--data', data, '--ports', 'fixed', ...extra, '--help'])
    assert.is(r.code, 0, r.stderr)
    assert.ok(r.stdout.startsWith('usage: o3 local'))
    assert.not.ok(existsSync(data), `${data} was created`)
  }
  for (const service of ['scm', 'om', 'datanode', 's3g']) {
    const r = await run([service, '-h'])
    assert.is(r.code, 0, `${service}: ${r.stderr}`)
  }
  assert.not.ok(existsSync(join(work, 'scm')) || existsSync(join(work, 'om')) || existsSync(join(work, 'dn')), 'a service started')
})

function assertUsageError(r: Run, what: string, pattern: RegExp, help: string): void {
  assert.is(r.code, 2, `${what}: exit ${r.code}, ${r.stderr}`)
  assert.is(r.stdout, '', what)
  const lines = r.stderr.trimEnd().split('\n')
  assert.is(lines.length, 1, `${what}: one line, got ${r.stderr}`)
  assert.match(lines[0], /^o3: /)
  assert.match(lines[0], pattern, what)
  assert.ok(lines[0].includes(`'${help} --help'`), `${what}: ${lines[0]} points to ${help} --help`)
}

test('an unknown flag on any command is an error naming it (exit 2), never ignored', async () => {
  const argvs = PATHS.filter((p) => p.length > 0).map((p) => [...p, '--no-such-flag'])
  const runs = await runAll(argvs)
  runs.forEach((r, i) => assertUsageError(r, argvs[i].join(' '), /unknown option --no-such-flag/, ['o3', ...argvs[i].slice(0, -1)].join(' ')))
  // Flags that exist, but on another command, and short ones.
  const cases: [string[], RegExp, string][] = [
    [['sh', 'volume', 'create', '/vol1', '--prefix', 'x'], /unknown option --prefix/, 'o3 sh volume create'],
    [['sh', 'key', 'get', '/v/b/k', 'file', '--replication', 'RATIS/ONE'], /unknown option --replication/, 'o3 sh key get'],
    [['local', '--om', '127.0.0.1:1'], /unknown option --om/, 'o3 local'],
    [['scm', '--json'], /unknown option --json/, 'o3 scm'],
    [['admin', 'safemode', 'status', '-x'], /unknown option -x/, 'o3 admin safemode status'],
    // A name with a dash typed without `--`: a group of short flags whose h is no --help.
    [['sh', 'key', 'rename', '/v/b/k', '-dash'], /unknown option -d/, 'o3 sh key rename'],
    [['sh', 'volume', 'create', '-h-vol'], /unknown option|unexpected argument/, 'o3 sh volume create'],
    // An h in a group of flags the command has (-f of freon): neither help nor ignored.
    [['freon', 'ockg', '-fh'], /unexpected argument "-fh".*-h asks for help on its own/, 'o3 freon ockg'],
    [['--bogus'], /unknown option --bogus/, 'o3'],
    [['sh', '--json', 'volume', 'list'], /unknown option --json/, 'o3 sh'],
    [['s3', 'getsecret', '--user'], /--user/, 'o3 s3 getsecret'],
    [['sh', 'volume', 'list', '--json=yes'], /--json/, 'o3 sh volume list'],
  ]
  const more = await runAll(cases.map(([a]) => a))
  more.forEach((r, i) => assertUsageError(r, cases[i][0].join(' '), cases[i][1], cases[i][2]))
})

test('unknown and missing commands, missing and extra arguments: exit 2 with one line', async () => {
  const cases: [string[], RegExp, string][] = [
    [['frobnicate'], /unknown command "frobnicate"/, 'o3'],
    [['sh'], /missing command for o3 sh: volume, bucket or key/, 'o3 sh'],
    [['sh', 'key'], /missing command for o3 sh key/, 'o3 sh key'],
    [['sh', 'key', 'frobnicate'], /unknown command "frobnicate"/, 'o3 sh key'],
    [['admin'], /missing command/, 'o3 admin'],
    [['admin', 'safemode'], /missing command for o3 admin safemode: status/, 'o3 admin safemode'],
    [['s3'], /missing command/, 'o3 s3'],
    [['s3', 'frobnicate'], /unknown command/, 'o3 s3'],
    [['sh', 'volume', 'create'], /missing \/volume/, 'o3 sh volume create'],
    [['sh', 'bucket', 'list'], /missing \/volume/, 'o3 sh bucket list'],
    [['sh', 'key', 'put', '/v/b/k'], /missing FILE/, 'o3 sh key put'],
    [['sh', 'key', 'get', '/v/b/k'], /missing FILE/, 'o3 sh key get'],
    [['sh', 'key', 'rename', '/v/b/k'], /missing NEWKEY/, 'o3 sh key rename'],
    [['admin', 'container', 'info'], /missing ID/, 'o3 admin container info'],
    [['sh', 'volume', 'list', 'extra'], /unexpected argument "extra"/, 'o3 sh volume list'],
    [['sh', 'volume', 'info', '/v', '/w'], /unexpected argument "\/w"/, 'o3 sh volume info'],
    [['sh', 'key', 'put', '/v/b/k', 'f', 'g'], /unexpected argument "g"/, 'o3 sh key put'],
    [['admin', 'datanode', 'list', 'all'], /unexpected argument "all"/, 'o3 admin datanode list'],
    [['s3', 'revokesecret', 'alice'], /unexpected argument "alice"/, 'o3 s3 revokesecret'],
    [['local', 'now'], /unexpected argument "now"/, 'o3 local'],
    [['datanode', 'extra'], /unexpected argument "extra"/, 'o3 datanode'],
    [['help', 'frobnicate'], /unknown command "frobnicate"/, 'o3'],
    // Checked values, before anything starts or connects.
    [['local', '--datanodes', '0', '--data', join(work, 'bad')], /--datanodes must be 1\.\.32/, 'o3 local'],
    [['local', '--ports', 'some', '--data', join(work, 'bad')], /--ports must be fixed or free/, 'o3 local'],
    [['local', '--processes', '--datanode-thread', '--data', join(work, 'bad')], /--processes and --datanode-thread do not go together/, 'o3 local'],
    [['sh', 'key', 'list', '/v/b', '--max', 'ten'], /--max must be a positive whole number/, 'o3 sh key list'],
    [['admin', 'container', 'info', 'x1'], /bad container ID "x1": expected a whole number/, 'o3 admin container info'],
    // A whole number too large for an id is out of range, not malformed.
    [['admin', 'container', 'info', '99999999999999999999'], /bad container ID "99999999999999999999": out of range \(at most 2\^53 - 1, 9007199254740991\)/, 'o3 admin container info'],
    [['admin', 'container', 'scan', '99999999999999999999'], /bad container ID "99999999999999999999": out of range/, 'o3 admin container scan'],
    [['admin', 'container', 'replicate', '99999999999999999999', '--target', 'dn1'], /bad container ID "99999999999999999999": out of range/, 'o3 admin container replicate'],
    [['sh', 'key', 'list', '/v/b', '--max', '99999999999999999999'], /--max 99999999999999999999 is out of range/, 'o3 sh key list'],
    [['sh', 'volume', 'setquota', '/v', '--namespace-quota', '99999999999999999999'], /invalid namespace quota "99999999999999999999": out of range/, 'o3 sh volume setquota'],
    [['admin', 'container', 'replicate', '7'], /needs --target DN/, 'o3 admin container replicate'],
    // A malformed address is no server to try (it was retried five times as one that is down).
    [['sh', 'volume', 'list', '--om', '127.0.0.1:99999'], /bad --om "127\.0\.0\.1:99999": "127\.0\.0\.1:99999" is not host:port/, 'o3 sh volume list'],
    [['admin', 'om', 'roles', '--om', 'badaddr'], /bad --om "badaddr"/, 'o3 admin om roles'],
    [['admin', 'datanode', 'list', '--scm', 'h1:9860,h2'], /"h2" is not host:port/, 'o3 admin datanode list'],
  ]
  const runs = await runAll(cases.map(([a]) => a))
  runs.forEach((r, i) => assertUsageError(r, cases[i][0].join(' ') || '(nothing)', cases[i][1], cases[i][2]))
  assert.not.ok(existsSync(join(work, 'bad')))
})

test.run()
