/**
 * Goal: a RATIS/THREE pipeline is a Raft group of three datanodes that survives what real
 * nodes do (issue 12), as Ozone's does:
 * - kill -9 of one follower under 8 writers of 4 KiB to 64 MiB keys: every write succeeds,
 *   on the same pipeline (a majority of two commits); every acknowledged key reads back byte
 *   for byte; the follower, restarted, catches up from the leader's log (chunk data
 *   included) until its replicas of the pipeline's containers are identical to the
 *   others': the same block records, block files with the same sha256, small packed blocks
 *   (kept in LMDB) with the same bytes;
 * - kill -9 of the pipeline's leader mid-write: the two others elect a new leader (a higher
 *   term), the writers find it and finish, and no acknowledged key is lost;
 * - kill -9 of two of three (once the leader survives, once a follower): a write to the
 *   pipeline fails with a typed error that says why (no pipeline / unavailable), within a
 *   bound rather than hanging (three datanodes make only one RATIS/THREE pipeline: there is
 *   no other to go to), the failed key does not appear, and every committed key still reads
 *   back byte for byte from the survivor.
 * Method: each test starts its own `o3 local --processes --datanodes 3 --ports free` (a child
 * process per service, PID files), kills datanodes with SIGKILL by PID file, restarts one
 * from DATA/conf, writes through the native client (bytes from one random pool, so every
 * key's expected bytes are known without a copy), reads through the OM's key record, learns
 * the leader from the members' `listPipelines` RPC (pipeline-cluster.ts leaderOf), and
 * compares replicas through each datanode's listBlock and readChunk and by hashing block files
 * in the datanode dirs. The SCM's stale interval is set past the length of a test
 * (a short outage, as Ozone's 5 min is for a restart), so what is tested is the Raft group,
 * not the SCM closing the pipeline. Each step is logged with its time; a failure names its
 * step and prints the service logs' tails; O3_TEST_KEEP=1 keeps the data dir of a failed test,
 * O3_TEST_ONLY=leader runs only the tests whose name holds "leader".
 */
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { O3Error } from '../../core/errors.ts'
import { KiB, MiB } from '../../core/limits.ts'
import { until } from '../helpers.ts'
import {
  describeError, PipelineCluster, planKeys, readBackAll, startWriters, within, type AckedKey, type PlannedKey,
} from './pipeline-cluster.ts'

/** O3_TEST_ONLY=leader runs only the tests whose name holds it (one scenario while debugging). */
const only = process.env.O3_TEST_ONLY
function scenario(name: string, body: () => Promise<void>): void {
  (only !== undefined && only !== '' && !name.includes(only) ? test.skip : test)(name, body)
}

const WRITERS = 8
const KEYS_PER_WRITER = 7
/** The load runs this far before the kill: keys acknowledged and bytes in them. */
const KILL_AFTER_KEYS = 8
const KILL_AFTER_BYTES = 24 * MiB
/** Bounds on the waits (hang detectors, not speed checks: the machine has 2 shared cores). */
const LOAD_START_MS = 60_000
const WRITERS_FINISH_MS = 120_000
const ELECTION_MS = 30_000
const CATCH_UP_MS = 60_000
/**
 * A write to a pipeline with one live member must fail by then: the client's 15 s of trying
 * the members, its block retries and the OM's allocateBlock retries, with room to spare.
 */
const WRITE_FAILS_WITHIN_MS = 75_000
/** Codes that say "this pipeline cannot take the write" (a timeout alone would be vague but typed). */
const CLEAR_CODES = ['NO_PIPELINE', 'UNAVAILABLE', 'PIPELINE_NOT_FOUND', 'NOT_LEADER', 'TIMEOUT']

async function ratisThreeBucket(c: PipelineCluster): Promise<void> {
  c.step('create /vol/bkt (RATIS/THREE)')
  await c.client.createVolume('vol')
  await c.client.createBucket('vol', 'bkt', { replication: 'RATIS/THREE' })
}

function summary(load: { acked: AckedKey[]; failed: { key: string; size: number; error: unknown }[] }): string {
  const mib = (b: number) => (b / MiB).toFixed(1)
  const first = load.failed[0]
  return `${load.acked.length} keys acknowledged (${mib(load.acked.reduce((s, k) => s + k.size, 0))} MiB), ${load.failed.length} failed` +
    (first === undefined ? '' : ` (first: ${first.key}, ${first.size} B: ${describeError(first.error)})`)
}

/** Blocks of acknowledged keys that are not on `pipelineId`. */
function offPipeline(acked: AckedKey[], pipelineId: string): string[] {
  return acked.flatMap((k) => k.info.locations.filter((l) => l.pipeline.id !== pipelineId).map((l) => `${k.key} block ${l.blockId.containerId}:${l.blockId.localId} on pipeline ${l.pipeline.id} (${l.pipeline.replication})`))
}

/** Starts the load and waits until it has acknowledged enough to kill into. */
async function loadUnderWay(c: PipelineCluster, prefix: string, seed: number) {
  const plans = planKeys(prefix, WRITERS, KEYS_PER_WRITER, seed)
  c.step(`start ${WRITERS} writers, ${(plans.flat().reduce((s, k) => s + k.size, 0) / MiB).toFixed(0)} MiB in ${plans.flat().length} keys of 4 KiB to 64 MiB`)
  const load = startWriters(c.client, 'vol', 'bkt', plans)
  await until(`the load to acknowledge ${KILL_AFTER_KEYS} keys and ${KILL_AFTER_BYTES / MiB} MiB`, () => load.failed.length > 0 || (load.acked.length >= KILL_AFTER_KEYS && load.ackedBytes() >= KILL_AFTER_BYTES), LOAD_START_MS, 20)
  assert.equal(load.failed.length, 0, `writes failed before any kill: ${summary(load)}`)
  c.step(`load under way: ${summary(load)}`)
  return load
}

scenario('kill -9 of a follower under 8 writers: writes go on on the same pipeline, acknowledged keys read back, the follower catches up to identical replicas', () => PipelineCluster.run('follower-kill', async (c) => {
  await ratisThreeBucket(c)
  const pipeline = await c.threePipeline()
  const before = await c.waitLeader(pipeline.id)
  const follower = before.followers[0]
  c.step(`pipeline ${pipeline.id}: leader ${before.leader.name} (term ${before.term}, from ${before.source}), followers ${before.followers.map((f) => f.name).join(' ')}`)

  const load = await loadUnderWay(c, 'f', 1)
  const killedAt = performance.now()
  c.kill(follower)
  await within('the writers after the follower kill', WRITERS_FINISH_MS, load.done)
  const inFlight = load.acked.filter((k) => k.startedAt < killedAt && k.endedAt > killedAt).length
  const after = load.acked.filter((k) => k.startedAt >= killedAt).length
  c.step(`writers done: ${summary(load)}; ${inFlight} in flight at the kill, ${after} written after it`)
  assert.equal(load.failed.map((f) => `${f.key}: ${describeError(f.error)}`), [], 'every write succeeds with one follower down')
  assert.ok(after >= KILL_AFTER_KEYS, `writes go on after the kill (${after} keys written after it)`)
  assert.equal(offPipeline(load.acked, pipeline.id), [], `every block is on pipeline ${pipeline.id}`)

  c.step(`read back all ${load.acked.length} acknowledged keys with ${follower.name} down`)
  assert.equal(await readBackAll(c.client, 'vol', 'bkt', load.acked), [], 'every acknowledged key reads back byte for byte')

  const leaderNow = await c.waitLeader(pipeline.id)
  c.step(`leader now ${leaderNow.leader.name} (term ${leaderNow.term}, applied ${leaderNow.applied ?? '?'})`)
  c.restart(follower)
  await until(`${follower.name} to answer again`, () => c.answers(follower), 30_000, 100)
  if (leaderNow.applied !== undefined) {
    const target = leaderNow.applied
    c.step(`wait for ${follower.name} to apply pipeline ${pipeline.id} through index ${target}`)
    await until(`${follower.name} to apply through ${target}`, async () => ((await c.appliedOf(follower, pipeline.id)) ?? -1) >= target, CATCH_UP_MS, 200)
    const report = (await c.reportsOf(follower))?.find((r) => r.pipelineId === pipeline.id)
    assert.ok(report !== undefined && report.diverged !== true, `${follower.name} caught up from the log, not past it (report ${JSON.stringify(report)})`)
  }
  const containers = await c.containersOf(pipeline.id)
  const mustHold = load.acked.flatMap((k) => k.info.locations.map((l) => ({ containerId: l.blockId.containerId, localId: l.blockId.localId, length: l.length })))
  c.step(`compare the replicas of containers ${containers.join(' ')} (${mustHold.length} acknowledged blocks) across ${c.datanodes.map((d) => d.name).join(' ')}`)
  assert.ok(containers.length > 0, `the SCM lists containers of pipeline ${pipeline.id}`)
  let diffs: string[] = []
  try {
    await until('the replicas to match on all three datanodes', async () => (diffs = await c.replicaDifferences(c.datanodes, containers, mustHold)).length === 0, CATCH_UP_MS, 500)
  } catch (err) {
    throw new Error(`${(err as Error).message}: ${diffs.length} differences, first ${diffs.slice(0, 10).join('; ')}`)
  }
  c.step('replicas identical on all three datanodes: block records, block files, packed blocks')
}))

scenario('kill -9 of the pipeline leader mid-write: a new leader is elected, the writers finish, nothing acknowledged is lost', () => PipelineCluster.run('leader-kill', async (c) => {
  await ratisThreeBucket(c)
  const pipeline = await c.threePipeline()
  const before = await c.waitLeader(pipeline.id)
  c.step(`pipeline ${pipeline.id}: leader ${before.leader.name} (term ${before.term}, from ${before.source})`)

  const load = await loadUnderWay(c, 'l', 2)
  const killedAt = performance.now()
  c.kill(before.leader)
  const next = await c.waitLeader(pipeline.id, { notId: before.leader.id, termAbove: before.term, timeoutMs: ELECTION_MS })
  c.step(`new leader ${next.leader.name} (term ${next.term}, from ${next.source}) after ${((performance.now() - killedAt) / 1000).toFixed(1)} s`)
  assert.is.not(next.leader.id, before.leader.id)
  if (next.source === 'datanode listPipelines') assert.ok(next.term > before.term, `the new leader's term ${next.term} is past ${before.term}`)

  await within('the writers after the leader kill', WRITERS_FINISH_MS, load.done)
  const inFlight = load.acked.filter((k) => k.startedAt < killedAt && k.endedAt > killedAt).length
  c.step(`writers done: ${summary(load)}; ${inFlight} in flight at the kill`)
  assert.equal(load.failed.map((f) => `${f.key}: ${describeError(f.error)}`), [], 'the writers finish: every write succeeds with the leader gone')
  assert.ok(load.acked.some((k) => k.startedAt >= killedAt), 'keys written after the kill')

  c.step(`read back all ${load.acked.length} acknowledged keys`)
  assert.equal(await readBackAll(c.client, 'vol', 'bkt', load.acked), [], 'nothing acknowledged is lost: every key reads back byte for byte')
}))

for (const stays of ['leader', 'follower'] as const) {
  scenario(`kill -9 of two of three (the ${stays} stays): writes to the pipeline fail with a clear error within a bound, committed keys read back from the survivor`, () => PipelineCluster.run(`two-of-three-${stays}`, async (c) => {
    await ratisThreeBucket(c)
    const pipeline = await c.threePipeline()
    const roles = await c.waitLeader(pipeline.id)
    // The keys to read afterwards, one of 64 MiB (eight blocks) among them.
    const committed: PlannedKey[] = planKeys('c', 1, 6, 3)[0]
    c.step(`write ${committed.length} keys (${(committed.reduce((s, k) => s + k.size, 0) / MiB).toFixed(1)} MiB)`)
    const load = startWriters(c.client, 'vol', 'bkt', [committed])
    await within('the committed keys', WRITERS_FINISH_MS, load.done)
    assert.equal(load.failed.map((f) => `${f.key}: ${describeError(f.error)}`), [], 'the keys to read back are written')

    // A leader that can no longer commit must not hold a writer forever; a follower left
    // alone cannot elect itself and must not take writes.
    const survivor = stays === 'leader' ? roles.leader : roles.followers[0]
    const killed = [roles.leader, ...roles.followers].filter((d) => d.id !== survivor.id)
    c.step(`pipeline ${pipeline.id}: ${survivor.name} (${stays}) stays, ${killed.map((d) => d.name).join(' and ')} go`)
    for (const d of killed) c.kill(d)

    const attempts = [{ key: 'after-small', size: 4 * KiB }, { key: 'after-large', size: 5 * MiB + 1 }]
    c.step(`write ${attempts.map((a) => `${a.key} (${a.size} B)`).join(' and ')} to the pipeline left with one member`)
    const startedAt = performance.now()
    const outcomes = await within('writes to a pipeline with one of three members', WRITE_FAILS_WITHIN_MS, Promise.all(attempts.map((a) =>
      c.client.putKey('vol', 'bkt', a.key, Buffer.alloc(a.size, 7)).then((info) => ({ a, info, error: undefined as unknown }), (error: unknown) => ({ a, info: undefined, error })))))
    for (const o of outcomes) {
      c.step(`${o.a.key}: ${o.info !== undefined ? `SUCCEEDED on pipelines ${o.info.locations.map((l) => `${l.pipeline.id} ${l.pipeline.replication}`).join(', ')}` : describeError(o.error)} after ${((performance.now() - startedAt) / 1000).toFixed(1)} s`)
      assert.ok(o.info === undefined, `${o.a.key}: a RATIS/THREE write with one of three datanodes must fail (there is no other RATIS/THREE pipeline)`)
      assert.instance(o.error, O3Error, `${o.a.key}: a typed error, not ${describeError(o.error)}`)
      const e = o.error as O3Error
      assert.ok(CLEAR_CODES.includes(e.code), `${o.a.key}: code ${e.code} says the pipeline cannot take the write (${CLEAR_CODES.join(', ')})`)
      assert.match(e.message, /pipeline|unavailable|majority|leader/i, `${o.a.key}: the message names the pipeline or its unavailability: ${e.message}`)
      assert.is(await c.client.headKey('vol', 'bkt', o.a.key).then(() => 'OK', (err: unknown) => (err as O3Error).code), 'KEY_NOT_FOUND', `${o.a.key}: a failed write leaves no key`)
    }

    c.step(`read back ${committed.length} committed keys from ${survivor.name} alone`)
    assert.equal(await within('the reads from the survivor', WRITERS_FINISH_MS, readBackAll(c.client, 'vol', 'bkt', committed)), [], 'every committed key reads back byte for byte')
  }))
}

test.run()
