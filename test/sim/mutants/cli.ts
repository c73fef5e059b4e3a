/** @module
 * `npm run sim:mutants [-- --seeds N] [--only NAME]`: plants each bug of mutants.json in a
 * copy of core/raft, runs the simulator against it until a seed finds a violation, and
 * fails if any mutant survives N seeds (default 2,000) unless the testdata script recorded
 * for it (`killedByScript`, for bugs no schedule reaches) catches it. OM mutants (`om`) run
 * OM seeds (`--om`); pipeline mutants (`pipeline`), pipeline seeds (`--pipeline`). Ends with
 * `sim:mutants: K of M killed`.
 */
import { readFileSync } from 'node:fs'
import { firstMismatch } from '../../core/raft/interaction.ts'
import { runOmSeeds, runSeeds } from '../run.ts'
import type { SimResult } from '../simulator.ts'
import { runPipelineSeeds } from '../pipeline.ts'
import { buildMutant, buildOmMutant, buildPipelineMutant, loadMutants } from './apply.ts'

const argv = process.argv.slice(2)
const seedsAt = argv.indexOf('--seeds')
const seeds = seedsAt >= 0 ? Number(argv[seedsAt + 1]) : 2000
const onlyAt = argv.indexOf('--only')
const only = onlyAt >= 0 ? argv[onlyAt + 1] : undefined
if (!Number.isSafeInteger(seeds) || seeds < 1) throw new RangeError(`Cannot run mutants: --seeds ${seeds} is not a positive integer`)

const mutants = loadMutants().filter((m) => only === undefined || m.name === only)
let killed = 0
for (const mutant of mutants) {
  const started = Date.now()
  if (mutant.om === true) {
    const { om, dispose } = await buildOmMutant(mutant)
    try {
      const { seeds: ran, failures } = await runOmSeeds({ first: 1, count: seeds, om, stopAtFirst: true })
      report(mutant.name, mutant.why, failures[0], ran, started)
    } finally {
      dispose()
    }
    continue
  }
  if (mutant.pipeline === true) {
    const { pipeline, dispose } = await buildPipelineMutant(mutant)
    try {
      const { seeds: ran, failures } = runPipelineSeeds({ first: 1, count: seeds, modules: pipeline, stopAtFirst: true })
      report(mutant.name, mutant.why, failures[0], ran, started)
    } finally {
      dispose()
    }
    continue
  }
  const { raft, dispose } = await buildMutant(mutant)
  try {
    const { seeds: ran, failures } = runSeeds({ first: 1, count: seeds, raft, stopAtFirst: true, storageFaults: mutant.lostFsync, lostFsync: mutant.lostFsync })
    const secs = ((Date.now() - started) / 1000).toFixed(1)
    const f = failures[0]
    if (f !== undefined) {
      report(mutant.name, mutant.why, f, ran, started)
    } else if (mutant.killedByScript !== undefined && firstMismatch(readFileSync(new URL(`../../../../test/core/raft/testdata/${mutant.killedByScript}`, import.meta.url), 'utf8'), raft) !== undefined) {
      killed++
      console.log(`killed   ${mutant.name}: by script ${mutant.killedByScript} (survived ${ran} seeds, ${secs}s)`)
    } else {
      report(mutant.name, mutant.why, undefined, ran, started)
    }
  } finally {
    dispose()
  }
}

function report(name: string, why: string, f: SimResult | undefined, ran: number, started: number): void {
  const secs = ((Date.now() - started) / 1000).toFixed(1)
  if (f !== undefined) {
    killed++
    console.log(`killed   ${name}: seed ${f.seed} (${f.nodes} nodes) after ${ran} seeds, ${secs}s: ${f.violations[0]}`)
  } else console.log(`SURVIVED ${name}: ${ran} seeds, ${secs}s (${why})`)
}
console.log(`sim:mutants: ${killed} of ${mutants.length} killed`)
process.exit(killed === mutants.length ? 0 : 1)
