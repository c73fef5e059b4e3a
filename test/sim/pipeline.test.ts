/** Goal (issue 12): a datanode pipeline of three on the real Raft core, with the real entry
 * codec and putBlock commit rule, keeps every applied putBlock backed by exactly the chunks
 * it names (checksums and bytes as written), its members in agreement, replays harmless and
 * acknowledged blocks on a majority, under crashes, partitions, message loss and delay, lost
 * forwards and failed fetches; a seed replays exactly; and the pipeline mutants of
 * mutants.json are caught by their recorded seeds.
 * Method: the simulator's pipeline mode (test/sim/pipeline.ts, `npm run sim -- --pipeline`). */
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { buildPipelineMutant, loadMutants } from './mutants/apply.ts'
import { runPipelineSeeds, runPipelineSimulation } from './pipeline.ts'

const SEEDS = 10

test(`runPipelineSimulation() finds no violation in pipeline seeds 1..${SEEDS}`, () => {
  const { seeds, failures } = runPipelineSeeds({ first: 1, count: SEEDS })
  assert.is(seeds, SEEDS)
  assert.equal(failures.map((f) => `seed ${f.seed}: ${f.violations.join('; ')}`), [])
})

test('runPipelineSimulation() of one seed gives the same trace twice, and the seeds reach every path', () => {
  const a = runPipelineSimulation({ seed: 3, trace: true })
  const b = runPipelineSimulation({ seed: 3, trace: true })
  assert.ok(a.trace.length > 100)
  assert.equal(a.trace, b.trace)
  assert.equal(a.violations, [])
  assert.ok(a.commits > 10, 'clients had putBlocks acknowledged')
  const trace = [...a.trace, ...runPipelineSimulation({ seed: 2, trace: true }).trace]
  for (const path of [
    'fetches', 'lacks a chunk', '(replay)', 'installs snapshot', 'reports diverged', 'crashes', 'partition', 'scm deletes', 'scm closes container',
    'CHUNK_NOT_FOUND', 'CONTAINER_NOT_OPEN', 'skipped', 'commit for client', 'acknowledged',
  ]) {
    assert.ok(trace.some((l) => l.includes(path)), path)
  }
})

for (const mutant of loadMutants().filter((m) => m.pipeline === true)) {
  test(`pipeline mutant ${mutant.name} is caught by seed ${mutant.killedBySeed}`, async () => {
    assert.ok(mutant.killedBySeed > 0)
    const { pipeline, dispose } = await buildPipelineMutant(mutant)
    try {
      const r = runPipelineSimulation({ seed: mutant.killedBySeed, modules: pipeline })
      assert.ok(r.violations.length > 0, `${mutant.name} survived seed ${mutant.killedBySeed}`)
    } finally {
      dispose()
    }
  })
}

test('the real pipeline passes every seed that caught a pipeline mutant', () => {
  for (const m of loadMutants().filter((m) => m.pipeline === true)) {
    assert.equal(runPipelineSimulation({ seed: m.killedBySeed }).violations, [], `seed ${m.killedBySeed}`)
  }
})

test('loadMutants() holds the pipeline mutants issue 12 asked for', () => {
  const names = loadMutants().filter((m) => m.pipeline === true).map((m) => m.name)
  for (const n of ['pipeline-putblock-without-bcsid-check', 'pipeline-ack-before-bytes', 'pipeline-commit-past-gap']) assert.ok(names.includes(n), n)
})

test.run()
