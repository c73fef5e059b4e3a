/**
 * Goal: the bench's server CPU per unit is read from the real process table and divided
 * right: per MiB moved for throughput figures, per operation (µs) for small ones, and a
 * figure without a measurement prints nothing rather than a made-up number.
 * Method: burn CPU in a child process for a known span and read it through cpuMs; feed
 * measureThroughput / measureOps a clock that advances by a known amount.
 */
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { spawn } from 'node:child_process'
import { once } from 'node:events'
import { cpuPerUnit, measureOps, measureThroughput } from '../../bench/measure.ts'
import { cpuMs } from '../../bench/proc-cpu.ts'
import { cpuRatio, formatOps, formatThroughput } from '../../bench/report.ts'

const linux = process.platform === 'linux'

test('cpuMs counts the CPU a busy child process used, and is NaN for a process that is gone', async () => {
  if (!linux) return
  const child = spawn(process.execPath, ['-e', 'const end = Date.now() + 400; while (Date.now() < end);'])
  await new Promise((r) => setTimeout(r, 250))
  const busy = cpuMs([child.pid!])
  assert.ok(busy > 0, `a spinning process used CPU (${busy} ms)`)
  await once(child, 'exit')
  assert.ok(Number.isNaN(cpuMs([child.pid!])), 'an exited process has no CPU to read')
})

test('measureThroughput takes the CPU of the timed runs only, per MiB', async () => {
  let clock = 0
  const r = await measureThroughput({ iterations: 2, bytes: 4 * 1024 * 1024, op: async () => { clock += 10 }, cpu: () => clock })
  // The warm-up's 10 ms is before the first reading: two runs of 10 ms over 8 MiB.
  assert.is(r.serverCpuMs, 20)
  assert.is(cpuPerUnit(r), 2.5)
  assert.match(formatThroughput(r), /server CPU 2\.50 ms\/MiB/)
})

test('measureOps gives µs per op; no clock, no CPU figure', async () => {
  let clock = 0
  const r = await measureOps({ count: 4, concurrency: 2, op: async () => { clock += 1 }, cpu: () => clock })
  assert.is(cpuPerUnit(r), 1000)
  assert.match(formatOps(r), /server CPU 1000 µs\/op/)
  const without = await measureOps({ count: 4, concurrency: 2, op: async () => {} })
  assert.is(cpuPerUnit(without), undefined)
  assert.not.match(formatOps(without), /CPU/)
  assert.is(cpuRatio(r, without), undefined)
  assert.is(cpuRatio(r, { ...r, serverCpuMs: 2 }), '2.00')
})

test.run()
