// Runs every compiled uvu test file (dist/test/**/*.test.js) in its own process, a few at a
// time, and ends with the line CI reads: `N passed, N failed`. Every test/cluster suite runs a
// second time as `[secure] cluster/...` with O3_TEST_SECURE=1, where startMiniCluster starts a
// secure cluster (mutual TLS, block tokens, signed users: `o3 local --secure`);
// O3_TEST_SECURE_PASS=0 leaves that pass out.
// Usage: node scripts/test.mjs [filter...]   (a filter keeps files whose path contains it;
// `[secure]` keeps only the secure pass of what the others keep)
import { spawn } from 'node:child_process'
import { readdirSync, readFileSync, statSync } from 'node:fs'
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

const SECURE = '[secure] '
// Cluster suites not run in the secure pass, and why (none now: every suite calls through the
// cluster's administrator, mini-cluster.ts adminRpc/adminFetch/omRpc, LocalCluster.client(), or an
// identity of the role it plays). A suite named here is skipped in that pass with its reason.
const SECURE_PENDING = {}
/** Suites that start secure clusters themselves (cluster/secure*.test.js, cluster/attacks.test.js): a second pass would repeat them. */
const securedItself = (rel) => /^cluster\/(secure[^/]*|attacks)\.test\.js$/.test(rel)

const securePass = process.env.O3_TEST_SECURE_PASS !== '0'
const onlySecure = filters.includes(SECURE.trim())
const pathFilters = filters.filter((x) => x !== SECURE.trim())
// A job is a file run plainly, or a cluster file run again secure; filters match its path.
const jobs = walk(root).sort().flatMap((f) => {
  const rel = relative(root, f)
  const secure = securePass && rel.startsWith('cluster/') && !securedItself(rel) ? [{ file: f, name: SECURE + rel, env: { O3_TEST_SECURE: '1' }, pending: SECURE_PENDING[rel] }] : []
  return onlySecure ? secure : [{ file: f, name: rel }, ...secure]
}).filter((j) => pathFilters.length === 0 || pathFilters.some((x) => j.file.includes(x)))
let passed = 0
let failed = 0
let skipped = 0
const failures = []
/** Each failed file's reasons, printed again at the end. */
const reports = []

/**
 * Why a file failed: uvu's report of each failed test (from its FAIL line, suite name or not,
 * to the blank lines after its stack), errors printed outside a test (a crash, a failed hook),
 * and, when uvu printed no totals (a crash or a kill), the runner's notice and the output's
 * last lines too.
 */
function failureReport(out) {
  const lines = out.split('\n')
  const picked = []
  for (let i = 0; i < lines.length; i++) {
    if (/^\s+FAIL\s.*"/.test(lines[i])) {
      let j = i
      while (j < lines.length && !/^\s+Total:/.test(lines[j]) && !(j > i + 2 && lines[j].trim() === '' && lines[j - 1].trim() === '')) j++
      picked.push(...lines.slice(i, Math.min(j, i + 30)).filter((l) => l.trim() !== '' && !l.includes('/node_modules/')))
      i = j
    } else if (/^(\w*Error\b|Uncaught\b|\[test runner\])/.test(lines[i])) picked.push(lines[i])
  }
  if (!/^\s+Total:/m.test(out) || picked.length === 0) picked.push(...lines.filter((l) => l.trim() !== '').slice(-15))
  return picked.map((l) => '   ' + l).join('\n')
}

// Deno runs the same uvu suites from source: every deno.json task named `test:*` is one job.
const denoTasks = onlySecure ? [] : Object.keys(JSON.parse(readFileSync(new URL('../deno.json', import.meta.url), 'utf8')).tasks ?? {})
  .filter((t) => t.startsWith('test:') && (pathFilters.length === 0 || pathFilters.some((x) => t.includes(x))))
const deno = new URL('../node_modules/.bin/deno', import.meta.url).pathname

function runFile(job) {
  if (job.pending !== undefined) {
    console.log(`skip ${job.name}  (not yet secure: ${job.pending})`)
    return Promise.resolve()
  }
  const file = job.file
  const isDeno = file.startsWith('deno task ')
  const [cmd, args] = isDeno ? [deno, ['task', '-q', file.slice('deno task '.length)]] : [process.execPath, ['--enable-source-maps', file]]
  return new Promise((resolve) => {
    const started = Date.now()
    const child = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, FORCE_COLOR: '0', NO_COLOR: '1', ...job.env }, cwd: new URL('..', import.meta.url).pathname })
    let out = ''
    child.stdout.on('data', (d) => (out += d))
    child.stderr.on('data', (d) => (out += d))
    const timer = setTimeout(() => { out += `\n[test runner] killed after ${timeoutMs} ms\n`; child.kill('SIGKILL') }, timeoutMs)
    child.on('close', (code) => {
      clearTimeout(timer)
      const num = (label) => { const m = out.match(new RegExp(`${label}:\\s+(\\d+)`)); return m ? Number(m[1]) : undefined }
      const total = num('Total'), ok = num('Passed'), skip = num('Skipped') ?? 0
      // uvu's Total counts the tests it ran: skipped ones are not in it.
      let p = ok ?? 0, f = total !== undefined && ok !== undefined ? total - ok : 0
      if (code !== 0 && f === 0) f = 1 // crashed or failed outside a test
      passed += p; failed += f; skipped += skip
      const name = job.name
      const secs = ((Date.now() - started) / 1000).toFixed(1)
      console.log(`${f === 0 ? 'ok  ' : 'FAIL'} ${name}  (${p} passed, ${f} failed, ${secs}s)`)
      if (f !== 0) {
        failures.push(name)
        reports.push(`${name}:\n${failureReport(out)}`)
        console.log(out.split('\n').map((l) => '   | ' + l).join('\n'))
      }
      resolve()
    })
  })
}

const queue = [...jobs, ...denoTasks.map((t) => ({ file: `deno task ${t}`, name: `deno task ${t}` }))]
await Promise.all(Array.from({ length: Math.min(concurrency, queue.length) }, async () => {
  while (queue.length > 0) await runFile(queue.shift())
}))
// The reasons again at the end, where a log cut to its head and tail still shows them.
if (reports.length > 0) console.log(`why they failed:\n${reports.join('\n')}`)
if (failures.length > 0) console.log(`failed files: ${failures.join(', ')}`)
console.log(`${passed} passed, ${failed} failed${skipped ? `, ${skipped} skipped` : ''}`)
process.exit(failed === 0 && queue.length === 0 && passed > 0 ? 0 : 1)
