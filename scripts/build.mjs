// Builds everything `npm install` and `npm test` need: the WASM codec (scripts/build-wasm.mjs,
// which skips an up-to-date codec), then the TypeScript emit to dist/ (which also
// type-checks, strict).
import { spawnSync } from 'node:child_process'

function run(cmd, args) {
  const r = spawnSync(cmd, args, { stdio: 'inherit' })
  if (r.status !== 0) process.exit(r.status ?? 1)
}

// `npm ci --dry-run` (or `npm install --dry-run`) installs nothing but still runs this as the
// prepare script: with no dependencies there is nothing to build from, and a dry run builds nothing.
if (process.env.npm_config_dry_run === 'true') {
  console.log('build: npm dry run, nothing built')
  process.exit(0)
}

run(process.execPath, [new URL('build-wasm.mjs', import.meta.url).pathname])
run(process.execPath, [new URL('../node_modules/typescript/bin/tsc', import.meta.url).pathname, '-p', '.'])
