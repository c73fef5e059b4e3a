/** @module
 * Runs a range of seeds over several worker threads (the soak: `npm run sim -- --seeds
 * 100000`): the main thread hands out chunks of seeds and collects failures. Each seed
 * runs exactly as it would alone, so a failing seed replays with `--seed S` on one thread.
 * Node-only (worker_threads); the test suite runs seeds on one thread through run.ts.
 */
import { isMainThread, parentPort, Worker, workerData } from 'node:worker_threads'
import { buildNamedMutant } from './mutants/apply.ts'
import { realOm, type OmModules } from './om.ts'
import { nodesFor, OM_FAULT_TICKS } from './run.ts'
import { runOmSimulation, runSimulation, type RaftModule, type SimResult } from './simulator.ts'
import { realPipeline, runPipelineSimulation } from './pipeline.ts'
import type { PipelineModules } from './pipeline-replica.ts'
import * as raft from '../../core/raft/index.ts'

export interface ParallelRange {
  readonly first: number
  readonly count: number
  readonly nodes?: 3 | 5
  readonly faultTicks?: number
  readonly storageFaults?: boolean
  readonly lostFsync?: boolean
  readonly mutant?: string
  /** OM seeds (`--om`): the OM's requests over real LMDB as the state machine. */
  readonly om?: boolean
  /** Pipeline seeds (`--pipeline`): a datanode pipeline's state machine (pipeline.ts). */
  readonly pipeline?: boolean
  readonly jobs: number
}

const CHUNK_SEEDS = 25

type FromWorker = { kind: 'ready' } | { kind: 'done'; failures: SimResult[]; detected: number }
type ToWorker = { kind: 'run'; first: number; count: number } | { kind: 'exit' }

export async function runSeedsParallel(range: ParallelRange, onFailure: (r: SimResult) => void): Promise<{ seeds: number; failures: SimResult[]; detected: number }> {
  const failures: SimResult[] = []
  let next = range.first
  const end = range.first + range.count
  let detected = 0
  await Promise.all(Array.from({ length: range.jobs }, () => new Promise<void>((resolve, reject) => {
    const worker = new Worker(new URL(import.meta.url), { workerData: range })
    const give = () => {
      if (next >= end) {
        worker.postMessage({ kind: 'exit' } satisfies ToWorker)
        return
      }
      const count = Math.min(CHUNK_SEEDS, end - next)
      worker.postMessage({ kind: 'run', first: next, count } satisfies ToWorker)
      next += count
    }
    worker.on('message', (m: FromWorker) => {
      if (m.kind === 'done') {
        detected += m.detected
        for (const f of m.failures) {
          failures.push(f)
          onFailure(f)
        }
      }
      give()
    })
    worker.on('error', reject)
    worker.on('exit', () => resolve())
  })))
  failures.sort((a, b) => a.seed - b.seed)
  return { seeds: range.count, failures, detected }
}

if (!isMainThread && parentPort !== null) {
  const range = workerData as ParallelRange
  const port = parentPort
  let core: RaftModule = raft
  let om: OmModules = realOm
  let pipeline: PipelineModules = realPipeline
  if (range.mutant !== undefined) {
    const built = await buildNamedMutant(range.mutant)
    core = built.raft ?? core
    om = built.om ?? om
    pipeline = built.pipeline ?? pipeline
  }
  port.on('message', async (m: ToWorker) => {
    if (m.kind === 'exit') {
      port.close()
      return
    }
    const failures: SimResult[] = []
    let detected = 0
    for (let seed = m.first; seed < m.first + m.count; seed++) {
      const nodes = nodesFor(seed, range.nodes)
      const r = range.pipeline === true
        ? runPipelineSimulation({ seed, modules: pipeline, faultTicks: range.faultTicks })
        : range.om === true
        ? await runOmSimulation({ seed, nodes, raft: core, om, faultTicks: range.faultTicks ?? OM_FAULT_TICKS })
        : runSimulation({ seed, nodes, raft: core, faultTicks: range.faultTicks, storageFaults: range.storageFaults, lostFsync: range.lostFsync })
      if (r.violations.length > 0) failures.push(r)
      if (r.detected.length > 0) detected++
    }
    port.postMessage({ kind: 'done', failures, detected } satisfies FromWorker)
  })
  port.postMessage({ kind: 'ready' } satisfies FromWorker)
}
