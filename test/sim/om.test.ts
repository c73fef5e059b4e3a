/** Goal (issue 11): the OM's real requests, applied through the real retry cache over a real
 * LMDB database per node, stay linearizable per key and leave byte-equal replicas under
 * Raft with partitions, crashes and message loss; a seed replays exactly; and the OM
 * mutants of mutants.json (a clock read in apply, the retry cache bypassed) are caught by
 * their recorded seeds. Method: the simulator's OM mode (test/sim/om.ts, `npm run sim -- --om`). */
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { buildOmMutant, loadMutants } from './mutants/apply.ts'
import { OM_FAULT_TICKS, nodesFor, replayOm, runOmSeeds } from './run.ts'
import { runOmSimulation } from './simulator.ts'
import { realOm } from './om.ts'
import * as raft from '../../core/raft/index.ts'

const SEEDS = 24

test(`runOmSimulation() finds no violation in OM seeds 1..${SEEDS}`, async () => {
  const { seeds, failures } = await runOmSeeds({ first: 1, count: SEEDS })
  assert.is(seeds, SEEDS)
  assert.equal(failures.map((f) => `seed ${f.seed} (${f.nodes} nodes): ${f.violations.join('; ')}`), [])
})

test('replayOm() of one seed gives the same trace twice, and the clients did every kind of call', async () => {
  const a = await replayOm({ seed: 4 })
  const b = await replayOm({ seed: 4 })
  assert.ok(a.trace.length > 100)
  assert.equal(a.trace, b.trace)
  assert.equal(a.violations, [])
  for (const call of ['openKey', 'commitKey', 'deleteKey', 'renameKey', 'get', 'installs snapshot', 'crashes']) {
    assert.ok(a.trace.some((l) => l.includes(call)), call)
  }
  assert.ok(a.trace.some((l) => / get [abc] = \d+\.\d+ done/.test(l)), 'a read saw a committed value')
})

test('runOmSimulation() restores the real clock and ids afterwards', async () => {
  const before = Date.now()
  await runOmSimulation({ seed: 2, nodes: 3, raft, om: realOm, faultTicks: 50 })
  assert.ok(Date.now() >= before && Date.now() - before < 60_000)
  assert.not.equal((await import('node:crypto')).randomUUID(), '00000000-0000-4000-8000-000000000001')
})

for (const mutant of loadMutants().filter((m) => m.om === true)) {
  test(`OM mutant ${mutant.name} is caught by seed ${mutant.killedBySeed}`, async () => {
    assert.ok(mutant.killedBySeed > 0)
    const { om, dispose } = await buildOmMutant(mutant)
    try {
      const seed = mutant.killedBySeed
      const r = await runOmSimulation({ seed, nodes: nodesFor(seed), raft, om, faultTicks: OM_FAULT_TICKS })
      assert.ok(r.violations.length > 0, `${mutant.name} survived seed ${seed}`)
    } finally {
      dispose()
    }
  })
}

test('the real OM passes every seed that caught an OM mutant', async () => {
  for (const m of loadMutants().filter((m) => m.om === true)) {
    const r = await runOmSimulation({ seed: m.killedBySeed, nodes: nodesFor(m.killedBySeed), raft, om: realOm, faultTicks: OM_FAULT_TICKS })
    assert.equal(r.violations, [], `seed ${m.killedBySeed}`)
  }
})

test('loadMutants() holds the OM mutants issue 11 asked for', () => {
  const names = loadMutants().filter((m) => m.om === true).map((m) => m.name)
  assert.ok(names.includes('om-clock-read-in-apply'))
  assert.ok(names.includes('om-retry-cache-bypassed'))
})

test.run()
