/** Goal: each planted bug of test/sim/mutants/mutants.json (issue 17's classes plus the bugs
 * met while building) is still caught: by the seed recorded as killing it, or, for a bug no
 * schedule was seen to reach, by the scripted test recorded for it. Method: build the
 * mutant copy of core/raft and run that one seed or that one testdata script.
 * `npm run sim:mutants` runs the full 2,000-seed hunt. */
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { readFileSync } from 'node:fs'
import { buildMutant, loadMutants } from './mutants/apply.ts'
import { runSimulation } from './simulator.ts'
import { nodesFor } from './run.ts'
import { firstMismatch } from '../core/raft/interaction.ts'
import * as raft from '../../core/raft/index.ts'

const testdata = new URL('../../../test/core/raft/testdata/', import.meta.url)

// The OM mutants (`om`) run OM seeds: test/sim/om.test.ts; the pipeline mutants, test/sim/pipeline.test.ts.
for (const mutant of loadMutants().filter((m) => m.om !== true && m.pipeline !== true)) {
  if (mutant.killedBySeed > 0) {
    test(`mutant ${mutant.name} is caught by seed ${mutant.killedBySeed}`, async () => {
      const { raft: planted, dispose } = await buildMutant(mutant)
      try {
        const faults = { storageFaults: mutant.lostFsync, lostFsync: mutant.lostFsync }
        const r = runSimulation({ seed: mutant.killedBySeed, nodes: nodesFor(mutant.killedBySeed), raft: planted, ...faults })
        assert.ok(r.violations.length > 0, `${mutant.name} survived seed ${mutant.killedBySeed}`)
      } finally {
        dispose()
      }
    })
  }
  const script = mutant.killedByScript
  if (script !== undefined) {
    test(`mutant ${mutant.name} is caught by script ${script}`, async () => {
      const text = readFileSync(new URL(script, testdata), 'utf8')
      assert.is(firstMismatch(text), undefined, `the real core passes ${script}`)
      const { raft: planted, dispose } = await buildMutant(mutant)
      try {
        assert.ok(firstMismatch(text, planted) !== undefined, `${mutant.name} passed ${script}`)
      } finally {
        dispose()
      }
    })
  }
  test(`mutant ${mutant.name} is caught by a seed or a script`, () => {
    assert.ok(mutant.killedBySeed > 0 || mutant.killedByScript !== undefined)
  })
}

test('the real core passes every seed that caught a mutant', () => {
  for (const m of loadMutants().filter((m) => m.killedBySeed > 0 && m.om !== true && m.pipeline !== true)) {
    const seed = m.killedBySeed
    const r = runSimulation({ seed, nodes: nodesFor(seed), raft, storageFaults: m.lostFsync, lostFsync: m.lostFsync })
    assert.equal(r.violations, [], `seed ${seed}${m.lostFsync ? ' with lost fsyncs' : ''}`)
  }
})

test('loadMutants() holds the planted bugs of the issues that asked for them', () => {
  const names = loadMutants().map((m) => m.name)
  for (const n of [
    'vote-without-log-check', 'commit-older-term', 'vote-not-persisted', 'no-truncate-conflicting-suffix', 'read-index-without-leadership-check',
    'commit-counts-stale-term-acks', 'read-index-releases-later-reads', 'check-quorum-off-by-one', 'match-index-moves-backwards',
    'follower-commit-past-last-new-entry', 'stale-append-acked-with-last-index', 'stale-leader-not-answered', 'proposals-wait-for-heartbeat',
    'no-recovery-after-crash', 'vote-floor-ignored', 'recovery-asks-one-peer', 'acks-from-before-restart-counted', 'restart-keeps-match',
  ]) {
    assert.ok(names.includes(n), n)
  }
})

test.run()
