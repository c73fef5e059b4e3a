/** @module
 * `npm run sim -- --seeds N [--seed S] [--nodes 3|5] [--ticks T] [--storage] [--jobs J]`:
 * runs N seeds (from S, default 1) on J worker threads (default: one per core), or with
 * `--seed S` alone replays seed S and prints its trace on failure. `--storage` selects the
 * storage fault class (torn writes, writes reaching the disk out of order), whose seeds are
 * its own; `--lost-fsync` adds fsyncs that report success and lose the writes.
 * `--trace` prints the trace even when the seed passes; `--mutant NAME` runs against a planted bug from mutants/mutants.json instead.
 * `--om` runs OM seeds: each node's state machine is the OM's requests over a real LMDB database (om.ts).
 * `--pipeline` runs pipeline seeds: a datanode pipeline of three whose state machine is the
 * chunk store, pending chunks and container database of pipeline-replica.ts (pipeline.ts).
 * Ends with `sim: N seeds, V violations`; exits 1 on any violation.
 */
import { availableParallelism } from 'node:os'
import { runSeedsParallel } from './parallel.ts'
import { buildNamedMutant } from './mutants/apply.ts'
import { replay, replayOm } from './run.ts'
import { runPipelineSimulation } from './pipeline.ts'
import type { PipelineModules } from './pipeline-replica.ts'
import type { RaftModule, SimResult } from './simulator.ts'
import type { OmModules } from './om.ts'

function parse(argv: string[]): Map<string, string> {
  const out = new Map<string, string>()
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]
    if (!a.startsWith('--')) throw new TypeError(`Cannot parse argument ${a}: expected --name value`)
    const value = argv[i + 1]
    if (value === undefined || value.startsWith('--')) out.set(a.slice(2), '') // a flag such as --trace
    else {
      out.set(a.slice(2), value)
      i++
    }
  }
  return out
}

const args = parse(process.argv.slice(2))
const nodesArg = args.get('nodes')
if (nodesArg !== undefined && nodesArg !== '3' && nodesArg !== '5') throw new RangeError(`Cannot run sim: --nodes ${nodesArg} is not 3 or 5`)
const nodes = nodesArg === undefined ? undefined : (Number(nodesArg) as 3 | 5)
const ticks = args.has('ticks') ? Number(args.get('ticks')) : undefined
const seedArg = args.get('seed')
const seedsArg = args.get('seeds')
const lostFsync = args.has('lost-fsync')
const storageFaults = args.has('storage') || lostFsync
const jobs = Number(args.get('jobs') ?? availableParallelism())
if (!Number.isSafeInteger(jobs) || jobs < 1) throw new RangeError(`Cannot run sim: --jobs ${args.get('jobs')} is not a positive integer`)
let raft: RaftModule | undefined
let om: OmModules | undefined
let pipeline: PipelineModules | undefined
const omMode = args.has('om')
const pipelineMode = args.has('pipeline')
const mutantName = args.get('mutant')
if (mutantName !== undefined) ({ raft, om, pipeline } = await buildNamedMutant(mutantName, omMode, pipelineMode))
const replayOne = (seed: number, n?: 3 | 5): Promise<SimResult> | SimResult =>
  pipelineMode ? runPipelineSimulation({ seed, modules: pipeline, faultTicks: ticks, trace: true })
    : omMode ? replayOm({ seed, nodes: n, om, faultTicks: ticks }) : replay({ seed, nodes: n, raft, faultTicks: ticks, storageFaults, lostFsync })

if (seedArg !== undefined && seedsArg === undefined) {
  const r = await replayOne(Number(seedArg), nodes)
  if (r.violations.length > 0 || args.has('trace')) for (const line of r.trace) console.log(line)
  for (const v of r.violations) console.log(`seed ${r.seed} (${r.nodes} nodes): ${v}`)
  for (const v of r.detected) console.log(`seed ${r.seed} (${r.nodes} nodes): storage fault caught or cost only availability: ${v}`)
  console.log(`sim: 1 seeds, ${r.violations.length} violations`)
  process.exit(r.violations.length === 0 ? 0 : 1)
}

const count = Number(seedsArg ?? 100)
const first = Number(seedArg ?? 1)
if (!Number.isSafeInteger(count) || count < 1) throw new RangeError(`Cannot run sim: --seeds ${seedsArg} is not a positive integer`)
const started = Date.now()
const TRACE_TAIL_LINES = 40
let traced = false
let tracing: Promise<void> | undefined
const flags = `${pipelineMode ? ' --pipeline' : ''}${omMode ? ' --om' : ''}${storageFaults ? (lostFsync ? ' --lost-fsync' : ' --storage') : ''}${mutantName !== undefined ? ` --mutant ${mutantName}` : ''}${ticks !== undefined ? ` --ticks ${ticks}` : ''}`
const { seeds, failures, detected } = await runSeedsParallel({ first, count, nodes, faultTicks: ticks, storageFaults, lostFsync, mutant: mutantName, om: omMode, pipeline: pipelineMode, jobs }, (r) => {
  for (const v of r.violations) console.log(`seed ${r.seed} (${r.nodes} nodes): ${v}\n  replay: npm run sim -- --seed ${r.seed} --nodes ${r.nodes}${flags}`)
  if (traced) return
  // The first failing seed's trace ends here; the replay command prints all of it.
  traced = true
  tracing = (async () => {
    const trace = (await replayOne(r.seed, r.nodes as 3 | 5)).trace
    console.log(`  last ${TRACE_TAIL_LINES} of ${trace.length} trace lines:`)
    for (const line of trace.slice(-TRACE_TAIL_LINES)) console.log(`  | ${line}`)
  })()
})
await tracing
console.log(`(${seeds} seeds in ${((Date.now() - started) / 1000).toFixed(1)}s on ${jobs} threads${storageFaults ? `; storage faults caught or costing only availability in ${detected} seeds` : ''})`)
console.log(`sim: ${seeds} seeds, ${failures.length} violations`)
process.exit(failures.length === 0 ? 0 : 1)
