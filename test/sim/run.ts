/** @module
 * Runs the simulator over a range of seeds and reports violations; shared by the CLI, the
 * test suite and the mutant runner. A failing seed is re-run with tracing so that its
 * trace can be printed: the same seed always gives the same trace.
 */
import * as raft from '../../core/raft/index.ts'
import { realOm, type OmModules } from './om.ts'
import { runOmSimulation, runSimulation, type RaftModule, type SimResult } from './simulator.ts'

export interface SeedRange {
  readonly first: number
  readonly count: number
  /** Fixed cluster size, or alternate 3 and 5 by seed. */
  readonly nodes?: 3 | 5
  readonly raft?: RaftModule
  readonly faultTicks?: number
  /** The storage fault class (its own seeds). */
  readonly storageFaults?: boolean
  readonly lostFsync?: boolean
  /** Stop at the first violating seed (mutant hunting). */
  readonly stopAtFirst?: boolean
}

export function nodesFor(seed: number, nodes?: 3 | 5): 3 | 5 {
  return nodes ?? (seed % 2 === 0 ? 3 : 5)
}

/** `detected`: seeds whose storage faults were caught by an assertion or cost only availability. */
export function runSeeds(range: SeedRange, onFailure?: (r: SimResult) => void): { seeds: number; failures: SimResult[]; detected: number } {
  const failures: SimResult[] = []
  let seeds = 0
  let detected = 0
  for (let seed = range.first; seed < range.first + range.count; seed++) {
    seeds++
    const r = runSimulation({ seed, nodes: nodesFor(seed, range.nodes), raft: range.raft ?? raft, faultTicks: range.faultTicks, storageFaults: range.storageFaults, lostFsync: range.lostFsync })
    if (r.detected.length > 0) detected++
    if (r.violations.length > 0) {
      failures.push(r)
      onFailure?.(r)
      if (range.stopAtFirst) break
    }
  }
  return { seeds, failures, detected }
}

/** Replays one seed with its trace. */
export function replay(options: { seed: number; nodes?: 3 | 5; raft?: RaftModule; faultTicks?: number; storageFaults?: boolean; lostFsync?: boolean }): SimResult {
  return runSimulation({ seed: options.seed, nodes: nodesFor(options.seed, options.nodes), raft: options.raft ?? raft, faultTicks: options.faultTicks, storageFaults: options.storageFaults, lostFsync: options.lostFsync, trace: true })
}

/** OM seeds run this many ticks of faults by default (each entry applies in a real LMDB transaction per node). */
export const OM_FAULT_TICKS = 1000

export interface OmSeedRange {
  readonly first: number
  readonly count: number
  readonly nodes?: 3 | 5
  readonly om?: OmModules
  readonly faultTicks?: number
  readonly stopAtFirst?: boolean
}

/** As runSeeds, with the OM's requests over real LMDB as the state machine (`--om`). */
export async function runOmSeeds(range: OmSeedRange, onFailure?: (r: SimResult) => void): Promise<{ seeds: number; failures: SimResult[] }> {
  const failures: SimResult[] = []
  let seeds = 0
  for (let seed = range.first; seed < range.first + range.count; seed++) {
    seeds++
    const r = await runOmSimulation({ seed, nodes: nodesFor(seed, range.nodes), raft, om: range.om ?? realOm, faultTicks: range.faultTicks ?? OM_FAULT_TICKS })
    if (r.violations.length > 0) {
      failures.push(r)
      onFailure?.(r)
      if (range.stopAtFirst) break
    }
  }
  return { seeds, failures }
}

/** Replays one OM seed with its trace. */
export function replayOm(options: { seed: number; nodes?: 3 | 5; om?: OmModules; faultTicks?: number }): Promise<SimResult> {
  return runOmSimulation({ seed: options.seed, nodes: nodesFor(options.seed, options.nodes), raft, om: options.om ?? realOm, faultTicks: options.faultTicks ?? OM_FAULT_TICKS, trace: true })
}
