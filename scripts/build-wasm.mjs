// Builds the erasure codec (wasm/assembly, AssemblyScript) twice into wasm/build/, after
// generating wasm/assembly/unrolled.ts (scripts/gen-kernels.mjs): codec.wasm
// with SIMD, and codec-relaxed.wasm with relaxed SIMD too (its swizzle is one pshufb; see
// wasm/assembly/kernels.ts). Deno finds them from the sources there; the copies in
// dist/wasm/build/ serve the Node build (dist/wasm/loader.js loads `./build/` beside itself).
// Skips the compile when both .wasm files are newer than every source and script that
// makes them (`--force` compiles anyway); the two builds run side by side.
import { spawn } from 'node:child_process'
import { copyFileSync, existsSync, mkdirSync, readFileSync, readdirSync, statSync, writeFileSync } from 'node:fs'
import { unrolledKernelsSource } from './gen-kernels.mjs'

const root = new URL('..', import.meta.url)
const asc = new URL('node_modules/assemblyscript/bin/asc.js', root).pathname
const distDir = new URL('dist/wasm/build/', root)
const assemblyDir = new URL('wasm/assembly/', root)
mkdirSync(new URL('wasm/build/', root), { recursive: true })
mkdirSync(distDir, { recursive: true })

// Rewritten only when the generator's output changes, so that its time says when it did.
const unrolled = new URL('unrolled.ts', assemblyDir)
const source = unrolledKernelsSource()
if (!existsSync(unrolled) || readFileSync(unrolled, 'utf8') !== source) writeFileSync(unrolled, source)

// Shared memory so that growing it for more shards never detaches views handed out before;
// 65536 pages is wasm/limits.ts MEMORY_PAGES_MAX.
const common = [
  'wasm/assembly/index.ts', '--enable', 'simd', '--enable', 'threads', '--sharedMemory',
  '--maximumMemory', '65536', '--runtime', 'stub', '-O3', '--noAssert',
]
const builds = [['codec.wasm', []], ['codec-relaxed.wasm', ['--enable', 'relaxed-simd']]]

const inputs = [
  ...readdirSync(assemblyDir).map((f) => new URL(f, assemblyDir)),
  new URL('scripts/gen-kernels.mjs', root), new URL('scripts/build-wasm.mjs', root),
  new URL('node_modules/assemblyscript/package.json', root),
]
const newestInput = Math.max(...inputs.map((u) => statSync(u).mtimeMs))
const upToDate = !process.argv.includes('--force') && builds.every(([file]) => {
  const out = new URL(`wasm/build/${file}`, root)
  return existsSync(out) && statSync(out).mtimeMs > newestInput
})

function compile([file, extra]) {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [asc, ...common, ...extra, '-o', `wasm/build/${file}`], { stdio: 'inherit', cwd: root.pathname })
    child.on('error', reject)
    child.on('exit', (code) => (code === 0 ? resolve() : reject(new Error(`asc for ${file} exited with ${code}`))))
  })
}

try {
  if (!upToDate) await Promise.all(builds.map(compile))
  for (const [file] of builds) copyFileSync(new URL(`wasm/build/${file}`, root), new URL(file, distDir))
} catch (err) {
  console.error(err.message)
  process.exit(1)
}
