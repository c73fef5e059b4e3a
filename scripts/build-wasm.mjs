// Builds the erasure codec (wasm/assembly, AssemblyScript) into wasm/build/codec.wasm, where
// Deno finds it from the sources, and copies it to dist/wasm/build/, where the Node build
// (dist/wasm/index.js) finds it: each loads `./build/codec.wasm` beside itself.
import { spawnSync } from 'node:child_process'
import { copyFileSync, mkdirSync } from 'node:fs'

const root = new URL('..', import.meta.url)
const out = new URL('wasm/build/codec.wasm', root)
const asc = new URL('node_modules/assemblyscript/bin/asc.js', root).pathname
mkdirSync(new URL('.', out), { recursive: true })
// Shared memory so that growing it for more shards never detaches views handed out before.
const args = [
  'wasm/assembly/index.ts', '-o', 'wasm/build/codec.wasm',
  '--enable', 'simd', '--enable', 'threads', '--sharedMemory', '--maximumMemory', '65536',
  '--runtime', 'stub', '-O3', '--noAssert',
]
const r = spawnSync(process.execPath, [asc, ...args], { stdio: 'inherit', cwd: root.pathname })
if (r.status !== 0) process.exit(r.status ?? 1)
const distDir = new URL('dist/wasm/build/', root)
mkdirSync(distDir, { recursive: true })
copyFileSync(out, new URL('codec.wasm', distDir))
