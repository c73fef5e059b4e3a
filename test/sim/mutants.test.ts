/** Goal: each planted bug of test/sim/mutants/mutants.json (the five plus the bugs
 * met while building) is still caught by the seed recorded as killing it; a bug that a
 * seed found stays a test with that seed. Method: build the mutant copy of core/raft and
 * run that one seed. `npm run sim:mutants` runs the full 2,000-seed hunt. */
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { buildMutant, loadMutants } from './mutants/apply.ts'
import { runSimulation } from './simulator.ts'
import { nodesFor } from './run.ts'
import * as raft from '../../core/raft/index.ts'

for (const mutant of loadMutants()) {
  test(`mutant ${mutant.name} is caught by seed ${mutant.killedBySeed}`, async () => {
    const { raft: planted, dispose } = await buildMutant(mutant)
    try {
      const r = runSimulation({ seed: mutant.killedBySeed, nodes: nodesFor(mutant.killedBySeed), raft: planted })
      assert.ok(r.violations.length > 0, `${mutant.name} survived seed ${mutant.killedBySeed}`)
    } finally {
      dispose()
    }
  })
}

test('the real core passes every seed that caught a mutant', () => {
  for (const seed of new Set(loadMutants().map((m) => m.killedBySeed))) {
    const r = runSimulation({ seed, nodes: nodesFor(seed), raft })
    assert.equal(r.violations, [], `seed ${seed}`)
  }
})

test('loadMutants() holds the five planted bugs the issue names', () => {
  const names = loadMutants().map((m) => m.name)
  for (const n of ['vote-without-log-check', 'commit-older-term', 'vote-not-persisted', 'no-truncate-conflicting-suffix', 'read-index-without-leadership-check']) {
    assert.ok(names.includes(n), n)
  }
})

test.run()
