/**
 * Goal: `npm run bench -- --profile` says where the time went per figure: each profile
 * sample lands in the right window, process and thread group, and in the right category
 * (GC, our folders, node internals, packages, a Piscina worker's wait counted as idle).
 * Method: write .cpuprofile files named as node --cpu-prof names them into a temp dir, with
 * samples at known times, and summarize them over two windows.
 */
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { categoryOf, formatProfiles, summarizeProfiles } from '../../bench/profile.ts'

test('categoryOf() names GC, idle, our folders, node internals and packages', () => {
  assert.is(categoryOf({ functionName: '(garbage collector)', url: '' }), 'GC')
  assert.is(categoryOf({ functionName: '(idle)', url: '' }), 'idle')
  assert.is(categoryOf({ functionName: 'atomicsWaitLoop', url: 'file:///r/node_modules/piscina/dist/worker.js' }), 'idle')
  assert.is(categoryOf({ functionName: 'postTask', url: 'file:///r/node_modules/piscina/dist/index.js' }), 'piscina')
  assert.is(categoryOf({ functionName: 'x', url: 'file:///r/node_modules/@hono/node-server/dist/index.js' }), '@hono/node-server')
  assert.is(categoryOf({ functionName: 'startWriting', url: 'file:///r/node_modules/lmdb/write.js' }), 'lmdb')
  assert.is(categoryOf({ functionName: 'take', url: 'file:///r/dist/datapath/datanode/body.js' }), 'datapath/datanode')
  assert.is(categoryOf({ functionName: 'assert', url: 'file:///r/dist/core/assert.js' }), 'core')
  assert.is(categoryOf({ functionName: 'emit', url: 'node:events' }), 'node')
  assert.is(categoryOf({ functionName: 'writev', url: '' }), 'V8/native')
  assert.is(categoryOf({ functionName: 'wasm-function[3]', url: 'wasm://wasm/15c6b3fa' }), 'wasm')
})

/** A profile whose samples are given as [node id, time in us] pairs, one node per frame. */
function profile(frames: { functionName: string; url: string }[], samples: [number, number][], startUs: number): string {
  const nodes = [{ id: 1, callFrame: { functionName: '(root)', url: '', lineNumber: -1 } }, ...frames.map((f, i) => ({ id: i + 2, callFrame: { ...f, lineNumber: 9 } }))]
  let t = startUs
  const timeDeltas = samples.map(([, at]) => { const d = at - t; t = at; return d })
  return JSON.stringify({ nodes, startTime: startUs, endTime: t, samples: samples.map(([id]) => id), timeDeltas })
}

test('summarizeProfiles() sums self time per window, process and thread group', () => {
  const dir = mkdtempSync(join(tmpdir(), 'o3-profile-'))
  try {
    const gc = { functionName: '(garbage collector)', url: '' }
    const route = { functionName: 'handle', url: 'file:///r/dist/datapath/s3/put.js' }
    const idle = { functionName: '(idle)', url: '' }
    // Main thread of pid 100: window A (1000-2000) has 400 us of GC, 200 of the route, the rest idle.
    writeFileSync(join(dir, 'CPU.20261202.100000.100.0.001.cpuprofile'), profile([gc, route, idle],
      [[2, 1000], [2, 1200], [3, 1400], [4, 1600], [4, 1800], [3, 2000], [4, 2100], [4, 2500]], 900))
    // A worker of pid 100 busy in window B only; pid 200 is not named, so left out.
    writeFileSync(join(dir, 'CPU.20261202.100000.100.1.002.cpuprofile'), profile([route], [[2, 2200], [2, 2400], [2, 2600]], 2100))
    writeFileSync(join(dir, 'CPU.20261202.100000.200.0.003.cpuprofile'), profile([route], [[2, 1100], [2, 1300]], 1000))
    const figures = summarizeProfiles(dir, [{ name: 'A', startUs: 1000, endUs: 2000 }, { name: 'B', startUs: 2000, endUs: 3000 }], new Map([[100, 's3g']]))
    assert.is(figures.length, 2)
    const a = figures[0].spent
    assert.is(a.length, 1)
    assert.is(a[0].process, 's3g')
    assert.is(a[0].threads, 'main')
    assert.equal(a[0].byCategory, { GC: 400, 'datapath/s3': 200 })
    assert.is(a[0].busyUs, 600)
    const b = figures[1].spent
    assert.equal(b.map((s) => s.threads).sort(), ['main', 'workers'])
    assert.is(b.find((s) => s.threads === 'workers')!.byCategory['datapath/s3'], 400)
    const lines = formatProfiles(figures, { busyMin: 0.1 })
    assert.ok(lines.some((l) => l.includes('s3g main') && l.includes('busy  60%') && l.includes('GC 40%')), lines.join('\n'))
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
})

test('summarizeProfiles() sums the rounds of a figure taken in turns as one figure', () => {
  const dir = mkdtempSync(join(tmpdir(), 'o3-profile-'))
  try {
    const route = { functionName: 'handle', url: 'file:///r/dist/datapath/s3/put.js' }
    writeFileSync(join(dir, 'CPU.20261202.100000.100.0.001.cpuprofile'), profile([route], [[2, 1100], [2, 1300], [2, 2100], [2, 3100], [2, 3300], [2, 3500]], 1000))
    const figures = summarizeProfiles(dir, [
      { name: 'S3 s3rver: PUT, round 1 of 2', startUs: 1000, endUs: 2000 },
      { name: 'S3 O3: PUT, round 1 of 2', startUs: 2000, endUs: 3000 },
      { name: 'S3 s3rver: PUT, round 2 of 2', startUs: 3000, endUs: 4000 },
    ], new Map([[100, 's3g']]))
    assert.equal(figures.map((f) => [f.figure, f.seconds]), [['S3 s3rver: PUT', 0.002], ['S3 O3: PUT', 0.001]])
    // A sample stands for the time until the next: 1100 (200 us), 1300 (800), 3100 (200), 3300
    // (200) and 3500 (the last, 0) are in s3rver's windows, 2100 (1000) in O3's.
    assert.is(figures[0].spent[0].busyUs, 1400)
    assert.is(figures[1].spent[0].busyUs, 1000)
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
})

test.run()
