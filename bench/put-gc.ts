/** @module
 * `node dist/bench/put-gc.js [--server MAIN_JS] [--op put|get] [--bytes N] [--count N] [--replication R] [--trace]`:
 * the garbage collections of the server's main isolate per S3 operation. Starts `o3 local`
 * (3 datanodes, one event loop, the given build's dist/cli/main.js, so that one driver
 * measures two builds) with `--trace-gc --trace-gc-ignore-scavenger` and counts its
 * Mark-Compact lines; runs COUNT sequential PUTs (or GETs of keys put first) of BYTES from
 * this process; reports per-op latency percentiles, the server's CPU per op over all its
 * threads (/proc/PID/task/TID/stat: the main thread, and the rest) and the reasons V8 gave for
 * each major GC. The server gets no other flag unless asked (`--node-flag F`, repeatable; the
 * A/B of bench/README.md "GC on the PUT path" passes cli/v8-flags.ts's). `--trace` prints the
 * server's GC trace. Nothing is asserted; Linux only (/proc).
 */
import { spawn } from 'node:child_process'
import { randomFillSync } from 'node:crypto'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { once } from 'node:events'
import { percentile } from '../core/percentile.ts'
import { repoRoot, stopChild } from './child.ts'
import { threadCpuMs } from './proc-cpu.ts'
import { S3Load } from './s3-load.ts'

interface Args { server: string; op: 'put' | 'get'; bytes: number; count: number; replication: string; trace: boolean; nodeFlags: string[] }

function parseArgs(argv: string[]): Args {
  const a: Args = { server: join(repoRoot(), 'dist', 'cli', 'main.js'), op: 'put', bytes: 1024 * 1024, count: 100, replication: 'RATIS/THREE', trace: false, nodeFlags: [] }
  for (let i = 0; i < argv.length; i++) {
    const v = argv[i + 1]
    switch (argv[i]) {
      case '--server': a.server = v!; i++; break
      case '--op': if (v !== 'put' && v !== 'get') throw new TypeError('--op must be put or get'); a.op = v; i++; break
      case '--bytes': a.bytes = Number(v); i++; break
      case '--count': a.count = Number(v); i++; break
      case '--replication': a.replication = v!; i++; break
      case '--trace': a.trace = true; break
      case '--node-flag': a.nodeFlags.push(v!); i++; break
      default: throw new TypeError(`Unknown argument ${argv[i]}`)
    }
  }
  if (!Number.isSafeInteger(a.bytes) || a.bytes < 1) throw new RangeError('--bytes must be a positive integer')
  if (!Number.isSafeInteger(a.count) || a.count < 1) throw new RangeError('--count must be a positive integer')
  return a
}

async function main(): Promise<void> {
  const args = parseArgs(process.argv.slice(2))
  const dir = mkdtempSync(join(tmpdir(), 'o3-put-gc-'))
  // A later flag overrides an earlier one: --node-flag --no-trace-gc-ignore-scavenger shows the scavenges.
  const flags = ['--trace-gc', '--trace-gc-ignore-scavenger', ...args.nodeFlags]
  const child = spawn(process.execPath, [...flags, args.server, 'local', '--ports', 'free', '--fresh', '--json', '--datanodes', '3', '--data', join(dir, 'o3')], {
    stdio: ['pipe', 'pipe', 'inherit'],
    env: { ...process.env, O3_DATANODE_HEARTBEATINTERVALMS: '250', O3_CLIENT_REPLICATION: args.replication },
  })
  let out = ''
  let measuring = false
  const majors: string[] = []
  let workerMajors = 0
  // The main isolate collects first, at start-up, before the worker pool starts on demand:
  // its address tells its lines from the workers' ([pid:0xADDRESS]).
  let mainIsolate: string | undefined
  const ready = new Promise<{ s3: string; s3Key: { awsAccessKey: string; awsSecret: string } }>((resolve) => {
    child.stdout!.on('data', (piece: Buffer) => {
      out += piece.toString('utf8')
      let nl: number
      while ((nl = out.indexOf('\n')) >= 0) {
        const line = out.slice(0, nl)
        if (line.startsWith('{')) {
          const end = out.indexOf('\n}\n')
          if (end < 0) return
          resolve(JSON.parse(out.slice(0, end + 2)))
          out = out.slice(end + 3)
          continue
        }
        out = out.slice(nl + 1)
        if (args.trace) console.log(`  gc: ${line}`)
        const isolate = /^\[\d+:(0x[0-9a-f]+)\]/.exec(line)?.[1]
        if (isolate !== undefined) mainIsolate ??= isolate
        if (measuring && line.includes('Mark-Compact')) {
          if (isolate === mainIsolate) majors.push(line)
          else workerMajors++
        }
      }
    })
  })
  const exited = once(child, 'exit').then(([code]) => { throw new Error(`o3 local exited (${code}) before it was ready`) })
  try {
    const endpoints = await Promise.race([ready, exited])
    const load = new S3Load(endpoints.s3, { accessKeyId: endpoints.s3Key.awsAccessKey, secretAccessKey: endpoints.s3Key.awsSecret }, { connections: 1 })
    await load.createBucket('gcbench')
    const body = randomFillSync(new Uint8Array(args.bytes))
    const warm = Math.max(5, Math.min(50, Math.floor((64 * 1024 * 1024) / args.bytes)))
    for (let i = 0; i < warm; i++) await load.put('gcbench', `warm${i}`, body)
    if (args.op === 'get') for (let i = 0; i < args.count; i++) await load.put('gcbench', `k${i}`, body)
    await new Promise((r) => setTimeout(r, 500))
    const latencies: number[] = []
    measuring = true
    const cpuBefore = threadCpuMs(child.pid!)
    for (let i = 0; i < args.count; i++) {
      const t = performance.now()
      if (args.op === 'put') await load.put('gcbench', `k${i}`, body)
      else await load.get('gcbench', `k${i}`)
      latencies.push(performance.now() - t)
    }
    const cpuAfter = threadCpuMs(child.pid!)
    await new Promise((r) => setTimeout(r, 200))
    measuring = false
    await load.close()
    latencies.sort((x, y) => x - y)
    const cpu = [...cpuAfter].map(([k, v]) => `${k} ${((v - (cpuBefore.get(k) ?? 0)) / args.count).toFixed(2)}`)
    const total = [...cpuAfter].reduce((s, [k, v]) => s + v - (cpuBefore.get(k) ?? 0), 0) / args.count
    const reasons = new Map<string, number>()
    for (const m of majors) {
      const reason = m.replace(/^.*current mu = [^)]*\)\s*/, '')
      reasons.set(reason, (reasons.get(reason) ?? 0) + 1)
    }
    console.log(JSON.stringify({
      op: args.op, bytes: args.bytes, count: args.count, replication: args.replication, server: args.server,
      majorGcPer100: +(majors.length * 100 / args.count).toFixed(1),
      workerMajorGcPer100: +(workerMajors * 100 / args.count).toFixed(1),
      cpuMsPerOp: +total.toFixed(2), cpuMsPerOpByThread: cpu.join(', '),
      p50Ms: +percentile(latencies, 0.5).toFixed(2), p90Ms: +percentile(latencies, 0.9).toFixed(2),
      reasons: Object.fromEntries(reasons),
    }))
  } finally {
    child.stdout!.resume()
    await stopChild(child)
    rmSync(dir, { recursive: true, force: true })
  }
}

await main()
