/** Goal: the Raft core keeps election safety, log matching, leader completeness, state
 * machine safety, linearizability, equal replicas, bounded leader step-down, liveness and
 * progress over 1,000 simulated seeds (3- and 5-node clusters alternating), and a seed
 * replays exactly. Method: the deterministic simulator of test/sim/simulator.ts;
 * `npm run sim -- --seeds N` runs more. */
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { replay, runSeeds } from './run.ts'

const SEEDS = 1000
const CHUNK = 100

for (let first = 1; first <= SEEDS; first += CHUNK) {
  test(`runSimulation() finds no violation in seeds ${first}..${first + CHUNK - 1}`, () => {
    const { seeds, failures } = runSeeds({ first, count: CHUNK })
    assert.is(seeds, CHUNK)
    assert.equal(failures.map((f) => `seed ${f.seed} (${f.nodes} nodes): ${f.violations.join('; ')}`), [])
  })
}

test('replay() of one seed gives the same trace twice', () => {
  const a = replay({ seed: 7 })
  const b = replay({ seed: 7 })
  assert.ok(a.trace.length > 100)
  assert.equal(a.trace, b.trace)
  assert.equal(a.violations, [])
})

test('runSimulation() drives real load: operations complete, entries commit, the progress phase measures a rate', () => {
  const r = replay({ seed: 4, nodes: 3 })
  assert.ok(r.ops > 10, `ops ${r.ops}`)
  assert.ok(r.commits > 10, `commits ${r.commits}`)
  assert.ok(r.progressRate > 0 && r.referenceRate > 0, `rates ${r.progressRate} ${r.referenceRate}`)
})

test.run()
