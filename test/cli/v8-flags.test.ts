/**
 * Goal: the V8 flags O3's servers are meant to run with (cli/v8-flags.ts) are the ones the
 * `o3` command really starts with, and npm start and the Deno start task pass the same.
 * Method: read bin/o3.js's shebang, package.json and deno.json; run bin/o3.js as a real
 * process (through its shebang) and read the process's own execArgv.
 */
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { execFile } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { SERVER_V8_FLAGS, SEMI_SPACE_MAX_MIB } from '../../cli/v8-flags.ts'

const root = fileURLToPath(new URL('../../../', import.meta.url))
const o3 = `${root}bin/o3.js`

test('SERVER_V8_FLAGS caps the semi-space at SEMI_SPACE_MAX_MIB', () => {
  assert.equal([...SERVER_V8_FLAGS], [`--max-semi-space-size=${SEMI_SPACE_MAX_MIB}`])
})

test('bin/o3.js shebang passes SERVER_V8_FLAGS to node', () => {
  const first = readFileSync(o3, 'utf8').split('\n')[0]
  assert.is(first, `#!/usr/bin/env -S node ${SERVER_V8_FLAGS.join(' ')}`)
})

test('npm start and the Deno start task pass SERVER_V8_FLAGS', () => {
  const pkg = JSON.parse(readFileSync(`${root}package.json`, 'utf8')) as { scripts: Record<string, string> }
  assert.is(pkg.scripts.start, `node ${SERVER_V8_FLAGS.join(' ')} bin/o3.js local`)
  const deno = JSON.parse(readFileSync(`${root}deno.json`, 'utf8')) as { tasks: Record<string, string> }
  for (const flag of SERVER_V8_FLAGS) assert.ok(deno.tasks.start.includes(`--v8-flags=${flag}`), deno.tasks.start)
})

test('bin/o3.js run through its shebang starts node with SERVER_V8_FLAGS', async () => {
  // `o3 --help` starts nothing; the --import in NODE_OPTIONS prints the execArgv node got from the shebang.
  const out = await new Promise<string>((resolve, reject) => {
    execFile(o3, ['--help'], { env: { ...process.env, NODE_OPTIONS: `--import=data:text/javascript,console.error('ARGV'+JSON.stringify(process.execArgv))` } }, (err, _stdout, stderr) => err ? reject(err) : resolve(stderr))
  })
  const line = out.split('\n').find((l) => l.startsWith('ARGV'))
  assert.ok(line !== undefined, out)
  const argv = JSON.parse(line.slice(4)) as string[]
  for (const flag of SERVER_V8_FLAGS) assert.ok(argv.includes(flag), line)
})

test.run()
