// Runs every compiled uvu test file (dist/test/**/*.test.js) in its own process, a few at a
// time, and ends with the line CI reads: `N passed, N failed`.
// Usage: node scripts/test.mjs [filter...]   (a filter keeps files whose path contains it)
import { spawn } from 'node:child_process'
import { readdirSync, statSync } from 'node:fs'
import { join, relative } from 'node:path'
import { availableParallelism } from 'node:os'

const root = new URL('../dist/test', import.meta.url).pathname
const filters = process.argv.slice(2)
const concurrency = Number(process.env.O3_TEST_CONCURRENCY ?? Math.max(2, availableParallelism()))
const timeoutMs = Number(process.env.O3_TEST_TIMEOUT_MS ?? 600_000)

function walk(dir) {
  const out = []
  for (const name of readdirSync(dir)) {
    const path = join(dir, name)
    if (statSync(path).isDirectory()) out.push(...walk(path))
    else if (name.endsWith('.test.js')) out.push(path)
  }
  return out
}

const files = walk(root).filter((f) => filters.length === 0 || filters.some((x) => f.includes(x))).sort()
let passed = 0
let failed = 0
let skipped = 0
const failures = []

function runFile(file) {
  return new Promise((resolve) => {
    const started = Date.now()
    const child = spawn(process.execPath, ['--enable-source-maps', file], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, FORCE_COLOR: '0' } })
    let out = ''
    child.stdout.on('data', (d) => (out += d))
    child.stderr.on('data', (d) => (out += d))
    const timer = setTimeout(() => { out += `\n[test runner] killed after ${timeoutMs} ms\n`; child.kill('SIGKILL') }, timeoutMs)
    child.on('close', (code) => {
      clearTimeout(timer)
      const num = (label) => { const m = out.match(new RegExp(`${label}:\\s+(\\d+)`)); return m ? Number(m[1]) : undefined }
      const total = num('Total'), ok = num('Passed'), skip = num('Skipped') ?? 0
      let p = ok ?? 0, f = total !== undefined && ok !== undefined ? total - ok - skip : 0
      if (code !== 0 && f === 0) f = 1 // crashed or failed outside a test
      passed += p; failed += f; skipped += skip
      const name = relative(root, file)
      const secs = ((Date.now() - started) / 1000).toFixed(1)
      console.log(`${f === 0 ? 'ok  ' : 'FAIL'} ${name}  (${p} passed, ${f} failed, ${secs}s)`)
      if (f !== 0) { failures.push(name); console.log(out.split('\n').map((l) => '   | ' + l).join('\n')) }
      resolve()
    })
  })
}

const queue = [...files]
await Promise.all(Array.from({ length: Math.min(concurrency, queue.length) }, async () => {
  while (queue.length > 0) await runFile(queue.shift())
}))
if (failures.length > 0) console.log(`failed files: ${failures.join(', ')}`)
console.log(`${passed} passed, ${failed} failed${skipped ? `, ${skipped} skipped` : ''}`)
process.exit(failed === 0 && files.length > 0 ? 0 : 1)
