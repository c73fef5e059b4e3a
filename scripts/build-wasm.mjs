// Builds the erasure codec (wasm/assembly, AssemblyScript) twice into wasm/build/, after
// generating wasm/assembly/unrolled.ts (scripts/gen-kernels.mjs): codec.wasm
// with SIMD, and codec-relaxed.wasm with relaxed SIMD too (its swizzle is one pshufb; see
// wasm/assembly/kernels.ts). Deno finds them from the sources there; the copies in
// dist/wasm/build/ serve the Node build (dist/wasm/loader.js loads `./build/` beside itself).
import { spawnSync } from 'node:child_process'
import { copyFileSync, mkdirSync, writeFileSync } from 'node:fs'
import { unrolledKernelsSource } from './gen-kernels.mjs'

const root = new URL('..', import.meta.url)
const asc = new URL('node_modules/assemblyscript/bin/asc.js', root).pathname
const distDir = new URL('dist/wasm/build/', root)
mkdirSync(new URL('wasm/build/', root), { recursive: true })
mkdirSync(distDir, { recursive: true })
writeFileSync(new URL('wasm/assembly/unrolled.ts', root), unrolledKernelsSource())
// Shared memory so that growing it for more shards never detaches views handed out before;
// 65536 pages is wasm/limits.ts MEMORY_PAGES_MAX.
const common = [
  'wasm/assembly/index.ts', '--enable', 'simd', '--enable', 'threads', '--sharedMemory',
  '--maximumMemory', '65536', '--runtime', 'stub', '-O3', '--noAssert',
]
for (const [file, extra] of [['codec.wasm', []], ['codec-relaxed.wasm', ['--enable', 'relaxed-simd']]]) {
  const r = spawnSync(process.execPath, [asc, ...common, ...extra, '-o', `wasm/build/${file}`], { stdio: 'inherit', cwd: root.pathname })
  if (r.status !== 0) process.exit(r.status ?? 1)
  copyFileSync(new URL(`wasm/build/${file}`, root), new URL(file, distDir))
}
