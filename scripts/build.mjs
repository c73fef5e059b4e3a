// Builds everything `npm install` and `npm test` need: the WASM codec (when its build
// script exists), then the TypeScript emit to dist/ (which also type-checks, strict).
import { spawnSync } from 'node:child_process'
import { readFileSync } from 'node:fs'

function run(cmd, args) {
  const r = spawnSync(cmd, args, { stdio: 'inherit' })
  if (r.status !== 0) process.exit(r.status ?? 1)
}

const pkg = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8'))
if (pkg.scripts?.['build:wasm']) run('npm', ['run', '--silent', 'build:wasm'])
run(process.execPath, [new URL('../node_modules/typescript/bin/tsc', import.meta.url).pathname, '-p', '.'])
