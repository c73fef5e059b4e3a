/** @module
 * `npm run bench:raft [-- --seconds S --concurrency C --bytes B]`: committed proposals per
 * second and p50/p99 commit latency of a 3-node group over the real HTTP transport and
 * LMDB store, beside a single node (the price of consensus, as a ratio), with batching on
 * and off. Everything runs in this process on loopback; results go to bench/results/.
 * Figures are relative to the same run's baselines, never asserted.
 */
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { performance } from 'node:perf_hooks'
import { RaftHost, type StateMachine } from '../core/raft-io/index.ts'
import type { Entry, NodeId, Snapshot } from '../core/raft/index.ts'
import { percentile } from '../core/percentile.ts'
import { positiveOption, writeResults } from './results.ts'

interface Case {
  readonly nodes: 1 | 3
  readonly batching: boolean
}

interface CaseResult extends Case {
  readonly commits: number
  readonly seconds: number
  readonly commitsPerSecond: number
  readonly p50Ms: number
  readonly p99Ms: number
  readonly httpRequests: number
  /** Proposals that failed because leadership moved during the run. */
  readonly failed: number
}


const seconds = positiveOption('seconds', 4)
const concurrency = positiveOption('concurrency', 64)
const bytes = positiveOption('bytes', 128)

class Sink implements StateMachine {
  count = 0
  apply(_: Entry): unknown {
    return ++this.count
  }
  snapshot(): Uint8Array {
    return new TextEncoder().encode(String(this.count))
  }
  restore(s: Snapshot): void {
    this.count = Number(new TextDecoder().decode(s.data))
  }
}


async function runCase(c: Case): Promise<CaseResult> {
  const dir = mkdtempSync(join(tmpdir(), 'o3-bench-raft-'))
  const ids: NodeId[] = c.nodes === 1 ? [1] : [1, 2, 3]
  const hosts = await Promise.all(ids.map((id) => RaftHost.create({
    id, dir: join(dir, `n${id}`), voters: ids, stateMachine: new Sink(), batching: c.batching,
    // A 1 s election timeout: the unbatched cases are slow enough that a shorter one makes
    // followers campaign while their inbox is still full of the leader's heartbeats.
    tickMs: 20, electionTimeoutTicks: 50, heartbeatTimeoutTicks: 5, snapshotEveryEntries: 20_000,
  })))
  const peers = new Map(hosts.map((h) => [h.id, `http://127.0.0.1:${h.port}`]))
  for (const h of hosts) h.start(peers)
  const label = `${c.nodes} node${c.nodes === 1 ? '' : 's'}, batching ${c.batching ? 'on' : 'off'}`
  try {
    const findLeader = async (): Promise<RaftHost> => {
      for (;;) {
        const l = hosts.find((h) => h.status().role === 'leader')
        if (l !== undefined) return l
        await new Promise((r) => setTimeout(r, 10))
      }
    }
    let leader = await findLeader()
    const payload = new Uint8Array(bytes).fill(7)
    for (let i = 0; i < 50; i++) await leader.propose(payload) // warm up connections and the JIT
    let failed = 0
    const latencies: number[] = []
    const started = performance.now()
    const endAt = started + seconds * 1000
    let lastReport = started
    const worker = async () => {
      while (performance.now() < endAt) {
        const t0 = performance.now()
        try {
          await leader.propose(payload)
        } catch {
          // Leadership moved (NOT_LEADER) or the proposal was overwritten: count it, find the leader.
          failed++
          leader = await findLeader()
          continue
        }
        const t1 = performance.now()
        latencies.push(t1 - t0)
        if (t1 - lastReport >= 1000) {
          lastReport = t1
          process.stderr.write(`  ${label}: ${latencies.length} commits after ${((t1 - started) / 1000).toFixed(0)} s\n`)
        }
      }
    }
    await Promise.all(Array.from({ length: concurrency }, worker))
    const elapsed = (performance.now() - started) / 1000
    latencies.sort((a, b) => a - b)
    const httpRequests = hosts.reduce((n, h) => n + h.transportStats().requests, 0)
    return {
      ...c, commits: latencies.length, seconds: elapsed, commitsPerSecond: latencies.length / elapsed,
      p50Ms: latencies.length === 0 ? NaN : percentile(latencies, 0.5), p99Ms: latencies.length === 0 ? NaN : percentile(latencies, 0.99), httpRequests, failed,
    }
  } finally {
    await Promise.all(hosts.map((h) => h.stop()))
    rmSync(dir, { recursive: true, force: true })
  }
}

const cases: Case[] = [
  { nodes: 1, batching: true }, { nodes: 3, batching: true },
  { nodes: 1, batching: false }, { nodes: 3, batching: false },
]
console.log(`bench:raft: ${seconds} s per case, ${concurrency} proposals in flight, ${bytes}-byte proposals, HTTP on loopback, LMDB synced`)
const results: CaseResult[] = []
for (const c of cases) {
  process.stderr.write(`running ${c.nodes} node(s), batching ${c.batching ? 'on' : 'off'}...\n`)
  const r = await runCase(c)
  results.push(r)
  console.log(`${r.nodes} node${r.nodes === 1 ? ' ' : 's'} batching ${r.batching ? 'on ' : 'off'}: ${r.commitsPerSecond.toFixed(0).padStart(7)} commits/s  p50 ${r.p50Ms.toFixed(2).padStart(7)} ms  p99 ${r.p99Ms.toFixed(2).padStart(7)} ms  (${r.commits} commits, ${r.httpRequests} HTTP requests, ${r.failed} failed)`)
}
const find = (nodes: number, batching: boolean) => results.find((r) => r.nodes === nodes && r.batching === batching)!
const ratios = {
  consensusThroughputBatchingOn: find(3, true).commitsPerSecond / find(1, true).commitsPerSecond,
  consensusP50BatchingOn: find(3, true).p50Ms / find(1, true).p50Ms,
  consensusThroughputBatchingOff: find(3, false).commitsPerSecond / find(1, false).commitsPerSecond,
  consensusP50BatchingOff: find(3, false).p50Ms / find(1, false).p50Ms,
  batchingThroughput3Nodes: find(3, true).commitsPerSecond / find(3, false).commitsPerSecond,
  batchingThroughput1Node: find(1, true).commitsPerSecond / find(1, false).commitsPerSecond,
}
console.log(`ratios: 3 nodes / 1 node throughput ${ratios.consensusThroughputBatchingOn.toFixed(2)}x (batching on), ${ratios.consensusThroughputBatchingOff.toFixed(2)}x (off); p50 latency ${ratios.consensusP50BatchingOn.toFixed(2)}x (on), ${ratios.consensusP50BatchingOff.toFixed(2)}x (off)`)
console.log(`ratios: batching on / off throughput ${ratios.batchingThroughput3Nodes.toFixed(2)}x (3 nodes), ${ratios.batchingThroughput1Node.toFixed(2)}x (1 node)`)
const file = writeResults('raft-', { bench: 'raft', seconds, concurrency, bytes, node: process.version, results, ratios })
console.log(`bench:raft: results in ${file}`)
