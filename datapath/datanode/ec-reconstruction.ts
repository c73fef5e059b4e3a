/** @module
 * The EC reconstruction coordinator (Ozone's ECReconstructionCoordinator, run by its
 * ReconstructECContainersCommandHandler): a `reconstructECContainer` command names a closed
 * EC container, a node for each healthy replica index (sources) and a node for each lost one
 * (targets; this datanode is the first). The coordinator lists the sources' committed blocks,
 * makes an empty replica on every target, and rebuilds block after block, stripe after
 * stripe: the cells of k available indexes read (readChunk, checksums verified) into one
 * stripe of shared slabs, the lost cells decoded in place by the worker pool
 * (runEcReconstruct), checksummed there and written to their targets; then each block is
 * committed on every target with its group length, and every target is closed. One stripe in
 * memory at a time. A source that fails is dropped and another index read instead; when
 * fewer than k remain, or a target fails, the partial replicas are deleted and the command
 * fails (the SCM sends it again). Commands run a bounded number at once, queued in order.
 */
import { checksumsLengthBytes, initChecksums } from '../../core/checksum.ts'
import { replicaLengthBytes, stripeCellLengths, stripeCount, type EcScheme } from '../../core/ec-layout.ts'
import { O3Error } from '../../core/errors.ts'
import {
  BYTES_PER_CHECKSUM_DEFAULT, BYTES_PER_CHECKSUM_MIN, DATANODE_EC_RECONSTRUCTIONS_INFLIGHT_MAX, DATANODE_EC_RECONSTRUCTIONS_QUEUED_MAX,
  DATANODE_LIST_BLOCKS_MAX,
} from '../../core/limits.ts'
import { log } from '../../core/log.ts'
import type { ServiceMetrics } from '../../core/metrics.ts'
import { parseId, parseReplication, type ChecksumType, type ContainerId, type DatanodeDetails, type LocalId } from '../../core/wire.ts'
import { readChunk } from '../client/datanode-io.ts'
import { PLAIN_TRANSPORT, type Transport } from '../../core/rpc/transport.ts'
import { runChecksum, runEcReconstruct } from '../workers/index.ts'
import type { SlabRange } from '../workers/index.ts'
import type { ListedBlock } from './ec-replica.ts'
import { ContainerCommandQueue } from './command-queue.ts'
import { closeReplica, commitBlock, createReplica, deleteReplica, sourceBlocks, writeCell } from './ec-replica-io.ts'

/** A replica index and the datanode that holds it (a source) or is to hold it (a target). */
export interface EcReplicaRef {
  replicaIndex: number
  datanode: DatanodeDetails
}

export interface ReconstructCommand {
  containerId: ContainerId
  replication: string
  scheme: EcScheme
  sources: EcReplicaRef[]
  targets: EcReplicaRef[]
}

/** The widest checksum (BLAKE3) per window of the smallest size: room for any chunk's checksums. */
const CHECKSUM_BYTES_PER_WINDOW_MAX = 32

/** A reconstructECContainer command's fields from a heartbeat answer, checked. */
export function parseReconstructCommand(cmd: Record<string, unknown>): ReconstructCommand {
  const containerId = parseId<ContainerId>(cmd.containerId, 'containerId')
  const what = `Cannot reconstruct container ${containerId}`
  let r
  try { r = parseReplication(String(cmd.replication)) } catch { r = undefined }
  if (r?.type !== 'EC' || r.ec === undefined) throw new O3Error('INVALID_ARGUMENT', `${what}: ${JSON.stringify(cmd.replication)} is not an EC replication config`)
  const scheme = r.ec
  const width = scheme.data + scheme.parity
  const refs = (x: unknown, name: string): EcReplicaRef[] => {
    if (!Array.isArray(x) || x.length === 0 || x.length > width) throw new O3Error('INVALID_ARGUMENT', `${what}: ${name} must list 1 to ${width} replicas`)
    return x.map((e: { replicaIndex?: unknown; datanode?: { id?: unknown; address?: unknown } }) => {
      const i = e?.replicaIndex
      if (typeof i !== 'number' || !Number.isInteger(i) || i < 1 || i > width) throw new O3Error('INVALID_ARGUMENT', `${what}: ${name} name replica index ${JSON.stringify(i)}, not one of 1..${width}`)
      const d = e.datanode
      if (typeof d?.id !== 'string' || typeof d.address !== 'string' || !/^[\w.-]+:\d+$/.test(d.address)) throw new O3Error('INVALID_ARGUMENT', `${what}: ${name} must name datanodes with id and host:port address`)
      return { replicaIndex: i, datanode: { id: d.id, address: d.address } as DatanodeDetails }
    })
  }
  const sources = refs(cmd.sources, 'sources')
  const targets = refs(cmd.targets, 'targets')
  if (targets.length > scheme.parity) throw new O3Error('INVALID_ARGUMENT', `${what}: ${targets.length} targets, ${cmd.replication} rebuilds at most ${scheme.parity}`)
  if (new Set(targets.map((t) => t.replicaIndex)).size !== targets.length) throw new O3Error('INVALID_ARGUMENT', `${what}: two targets name one replica index`)
  if (new Set(targets.map((t) => t.datanode.id)).size !== targets.length) throw new O3Error('INVALID_ARGUMENT', `${what}: two targets name one datanode`)
  return { containerId, replication: String(cmd.replication), scheme, sources, targets }
}

/** An index being read: its node and the blocks it listed. */
export interface Reader {
  node: DatanodeDetails
  blocks: Map<number, ListedBlock>
}

export interface ReconstructResult {
  blocks: number
  /** Bytes written to the targets. */
  bytes: number
}

/**
 * Runs one command to the end: the targets hold CLOSED replicas of their indexes, or (it
 * throws) none made by this run. `signal` stops it between stripes.
 */
export async function reconstructContainer(cmd: ReconstructCommand, o: { signal: AbortSignal; name: string; transport?: Transport }): Promise<ReconstructResult> {
  const t = o.transport ?? PLAIN_TRANSPORT
  const { containerId: id, scheme: s } = cmd
  const what = `Cannot reconstruct container ${id}`
  await initChecksums()
  const readers = await listSources(cmd, o.name, t)
  if (readers.size < s.data) throw new O3Error('UNAVAILABLE', `${what}: ${readers.size} source indexes answered, ${cmd.replication} needs ${s.data}`)
  const localIds = [...new Set([...readers.values()].flatMap((r) => [...r.blocks.keys()]))].sort((x, y) => x - y)
  // Decided from every source's list before any read: a source dropped later must not make
  // a block look shorter than it is (its rebuild fails instead).
  const groups = new Map(localIds.map((localId) => [localId, groupOf(cmd, readers, localId)]))
  const created: EcReplicaRef[] = []
  try {
    for (const target of cmd.targets) {
      await createReplica(target.datanode, { containerId: id, replication: cmd.replication, replicaIndex: target.replicaIndex }, t)
      created.push(target)
    }
    const stripe = new StripeSlots(s)
    let bytes = 0
    for (const localId of localIds) {
      const group = groups.get(localId)!
      for (let n = 0; n < stripeCount(s, group.length); n++) {
        if (o.signal.aborted) throw new O3Error('UNAVAILABLE', `${what}: the datanode is stopping`)
        bytes += await rebuildStripe(cmd, readers, stripe, { localId: localId as LocalId, ...group, stripe: n, name: o.name, transport: t })
      }
      await Promise.all(cmd.targets.map((target) => commitBlock(target.datanode, {
        containerId: id, localId: localId as LocalId, length: replicaLengthBytes(s, group.length, target.replicaIndex), replicaIndex: target.replicaIndex, blockGroupLength: group.length, replication: cmd.replication,
      }, t)))
    }
    await Promise.all(cmd.targets.map((target) => closeReplica(target.datanode, id, t)))
    return { blocks: localIds.length, bytes }
  } catch (err) {
    // Nothing half-made stays behind: the SCM would count it as a replica of its index.
    await Promise.all(created.map((target) => deleteReplica(target.datanode, id, t).catch((e: unknown) => {
      log.warn(`${o.name}: cannot delete the partial replica ${target.replicaIndex} of container ${id} on ${target.datanode.address}: ${(e as Error).message}`)
    })))
    throw err
  }
}

/** The block lists of one node per source index (the first that answers with that index); targets' indexes are not read. */
async function listSources(cmd: ReconstructCommand, name: string, transport: Transport): Promise<Map<number, Reader>> {
  const targets = new Set(cmd.targets.map((t) => t.replicaIndex))
  const byIndex = new Map<number, DatanodeDetails[]>()
  for (const src of cmd.sources) {
    if (targets.has(src.replicaIndex)) continue
    byIndex.set(src.replicaIndex, [...(byIndex.get(src.replicaIndex) ?? []), src.datanode])
  }
  const readers = new Map<number, Reader>()
  await Promise.all([...byIndex].map(async ([index, nodes]) => {
    for (const node of nodes) {
      try {
        const listed = await sourceBlocks(node, cmd.containerId, DATANODE_LIST_BLOCKS_MAX, transport)
        if (listed.replicaIndex !== index) throw new O3Error('INVALID_ARGUMENT', `it holds replica index ${listed.replicaIndex}, not ${index}`)
        readers.set(index, { node, blocks: new Map(listed.blocks.map((b) => [b.localId, b])) })
        return
      } catch (err) {
        log.warn(`${name}: source ${node.address} of replica ${index} of container ${cmd.containerId} cannot be read: ${(err as Error).message}`)
      }
    }
  }))
  return readers
}

/** Index `i` (1-based) can serve a group of `length` through `reader`: it holds that much of the block. */
function holds(s: EcScheme, reader: Reader | undefined, localId: number, length: number, i: number): boolean {
  const need = replicaLengthBytes(s, length, i)
  return need === 0 || (reader?.blocks.get(localId)?.length ?? -1) >= need
}

/**
 * A block's group length: the largest group length a source reports for it that k indexes
 * hold in full (they all agree once the writer's putBlocks reached every replica), and the
 * checksums its chunks were written with.
 */
export function groupOf(cmd: ReconstructCommand, readers: Map<number, Reader>, localId: number): { length: number; checksumType: ChecksumType; bytesPerChecksum: number } {
  const s = cmd.scheme
  const listed = [...readers.values()].flatMap((r) => r.blocks.get(localId) ?? [])
  const lengths = [...new Set(listed.map((b) => b.blockGroupLength))].sort((x, y) => y - x)
  const targets = new Set(cmd.targets.map((t) => t.replicaIndex))
  const width = s.data + s.parity
  const length = lengths.find((l) => {
    let held = 0
    for (let i = 1; i <= width; i++) if (!targets.has(i) && holds(s, readers.get(i), localId, l, i)) held++
    return held >= s.data
  })
  if (length === undefined) throw new O3Error('UNAVAILABLE', `Cannot reconstruct block ${cmd.containerId}:${localId}: fewer than ${s.data} source indexes hold any of its group lengths (${lengths.join(', ')})`)
  const written = listed.find((b) => b.length > 0)
  return { length, checksumType: written?.checksumType ?? 'CRC32C', bytesPerChecksum: written?.bytesPerChecksum ?? BYTES_PER_CHECKSUM_DEFAULT }
}

/**
 * One stripe's k + m cells, each in a shared slab of its own laid out as [checksum room][cell]
 * [checksum room]: a cell read from a source lands at the slab's start (readChunk puts the
 * data first, its checksums behind); a rebuilt cell sits after the front room, so that its
 * checksums go right before it and the two leave as one body.
 */
class StripeSlots {
  readonly slabs: SharedArrayBuffer[]
  readonly roomBytes: number

  constructor(s: EcScheme) {
    this.roomBytes = Math.ceil(s.cellSizeBytes / BYTES_PER_CHECKSUM_MIN) * CHECKSUM_BYTES_PER_WINDOW_MAX
    this.slabs = Array.from({ length: s.data + s.parity }, () => new SharedArrayBuffer(this.roomBytes + s.cellSizeBytes + this.roomBytes))
  }

  /** Where cell `i` (0-based) is: read cells at the start, rebuilt ones after the room. */
  range(i: number, read: boolean, lengthBytes: number): SlabRange {
    return { slab: this.slabs[i]!, offset: read ? 0 : this.roomBytes, length: lengthBytes }
  }
}

interface StripeJob {
  localId: LocalId
  length: number
  checksumType: ChecksumType
  bytesPerChecksum: number
  stripe: number
  name: string
  transport: Transport
}

/** Rebuilds the targets' cells of one stripe and writes them; answers the bytes written. */
async function rebuildStripe(cmd: ReconstructCommand, readers: Map<number, Reader>, slots: StripeSlots, j: StripeJob): Promise<number> {
  const s = cmd.scheme
  const k = s.data, width = s.data + s.parity
  const lengths = stripeCellLengths(s, j.length, j.stripe)
  const cellBytes = lengths[0]!
  const offset = j.stripe * s.cellSizeBytes
  const needed = cmd.targets.filter((t) => lengths[t.replicaIndex - 1]! > 0)
  if (needed.length === 0) return 0
  const blockId = { containerId: cmd.containerId, localId: j.localId }
  let chosen: number[]
  for (;;) {
    // Empty cells (a short stripe's last data cells) are known zeros; then data cells, which
    // are what a healthy read takes too, then parity.
    const zero = [...Array(width).keys()].filter((i) => lengths[i] === 0)
    const readable = [...Array(width).keys()].filter((i) => lengths[i]! > 0 && !needed.some((t) => t.replicaIndex === i + 1)
      && (readers.get(i + 1)?.blocks.get(j.localId)?.length ?? -1) >= offset + lengths[i]!)
    chosen = [...zero, ...readable].slice(0, k)
    if (chosen.length < k) throw new O3Error('UNAVAILABLE', `Cannot reconstruct stripe ${j.stripe} of block ${cmd.containerId}:${j.localId}: ${chosen.length} of the ${k} cells it needs can be read`)
    const reads = await Promise.allSettled(chosen.map(async (i) => {
      const view = new Uint8Array(slots.slabs[i]!, 0, cellBytes)
      if (lengths[i] === 0) { view.fill(0); return }
      const n = lengths[i]!
      // Over HTTP: a source given up is replaced and its slab reused (ReadLimits.shortCircuit).
      const r = await readChunk(readers.get(i + 1)!.node, blockId, offset, n, { slab: slots.slabs[i]!, byteOffset: 0 }, undefined, j.transport, { shortCircuit: false })
      // Lands at the slab's start when it fits (it does, but for a window that starts before `offset`).
      if (r.data.buffer !== slots.slabs[i] || r.data.byteOffset !== 0 || r.dataOffset !== offset) view.set(r.data.subarray(offset - r.dataOffset, offset - r.dataOffset + n))
      view.fill(0, n)
    }))
    const failed = reads.flatMap((r, at) => r.status === 'rejected' ? [{ i: chosen[at]!, err: r.reason as Error }] : [])
    if (failed.length === 0) break
    for (const f of failed) {
      log.warn(`${j.name}: reading replica ${f.i + 1} of block ${cmd.containerId}:${j.localId} from ${readers.get(f.i + 1)?.node.address} failed, reading another index: ${f.err.message}`)
      readers.delete(f.i + 1)
    }
  }
  const missing = [...Array(width).keys()].filter((i) => !chosen.includes(i))
  await runEcReconstruct({ codec: s.codec, k, m: s.parity, shards: [...Array(width).keys()].map((i) => slots.range(i, chosen.includes(i), cellBytes)), missing })
  await Promise.all(needed.map(async (t) => {
    const i = t.replicaIndex - 1
    const n = lengths[i]!
    const csLength = checksumsLengthBytes(j.checksumType, n, j.bytesPerChecksum)
    const slab = slots.slabs[i]!
    if (csLength > 0) await runChecksum({ type: j.checksumType, bytesPerChecksum: j.bytesPerChecksum, data: { slab, offset: slots.roomBytes, length: n }, out: { slab, offset: slots.roomBytes - csLength, length: csLength } })
    await writeCell(t.datanode, {
      containerId: cmd.containerId, localId: j.localId, replication: cmd.replication, replicaIndex: t.replicaIndex, offset, length: n,
      checksumType: j.checksumType, bytesPerChecksum: j.bytesPerChecksum, body: new Uint8Array(slab, slots.roomBytes - csLength, csLength + n),
    }, j.transport)
  }))
  return needed.reduce((sum, t) => sum + lengths[t.replicaIndex - 1]!, 0)
}

type Counter = ReturnType<ServiceMetrics['counter']>

export interface ReconstructionOptions {
  metrics: ServiceMetrics
  /** How logs name the datanode. */
  name: () => string
  /** Called when a run completes (the datanode heartbeats soon, to report its replica). */
  done: (id: ContainerId) => void
  /** How the coordinator reaches sources and targets (the datanode's identity when security is on). */
  transport?: () => Transport
}

/** A datanode's reconstructECContainer commands: at most DATANODE_EC_RECONSTRUCTIONS_INFLIGHT_MAX at once, the rest queued. */
export class EcReconstructions {
  /** The commands queued and running; stop() aborts the running ones between stripes. */
  private readonly commands: ContainerCommandQueue<ReconstructCommand>
  private readonly succeeded: Counter
  private readonly failed: Counter
  private readonly bytes: Counter

  constructor(private readonly o: ReconstructionOptions) {
    this.succeeded = o.metrics.counter('ec_reconstructions_total', 'EC containers this datanode rebuilt lost replicas of (as coordinator)')
    this.failed = o.metrics.counter('ec_reconstruction_failures_total', 'reconstructECContainer commands that failed (their partial replicas deleted)')
    this.bytes = o.metrics.counter('ec_reconstruction_bytes_total', 'Bytes of rebuilt cells written to the targets')
    this.commands = new ContainerCommandQueue({ inflightMax: DATANODE_EC_RECONSTRUCTIONS_INFLIGHT_MAX, queuedMax: DATANODE_EC_RECONSTRUCTIONS_QUEUED_MAX, run: (cmd, signal) => this.run(cmd, signal) })
    o.metrics.gauge('ec_reconstructions_inflight', 'EC reconstructions running', () => this.commands.runningCount)
    o.metrics.gauge('ec_reconstructions_queued', 'EC reconstructions waiting', () => this.commands.queuedCount)
  }

  /** Queues a command; answers whether it was taken (not one for a container queued or running, room in the queue). */
  add(cmd: ReconstructCommand): boolean {
    const r = this.commands.add(cmd)
    if (r === 'full') log.warn(`${this.o.name()}: reconstruct container ${cmd.containerId} dropped: ${DATANODE_EC_RECONSTRUCTIONS_QUEUED_MAX} queued already`)
    return r === 'taken'
  }

  /** Resolves once nothing is queued or running. */
  idle(): Promise<void> {
    return this.commands.idle()
  }

  /** Drops the queue and stops the running ones between stripes (each deletes what it made), then waits for them. */
  stop(): Promise<void> {
    return this.commands.stop()
  }

  private async run(cmd: ReconstructCommand, signal: AbortSignal): Promise<void> {
    const name = this.o.name()
    const indexes = cmd.targets.map((t) => `${t.replicaIndex} on ${t.datanode.address}`).join(', ')
    const startedAtMs = Date.now()
    try {
      const r = await reconstructContainer(cmd, { signal, name, transport: this.o.transport?.() })
      this.succeeded.inc()
      this.bytes.inc(r.bytes)
      log.info(`${name}: rebuilt replica ${indexes} of container ${cmd.containerId} (${r.blocks} blocks, ${r.bytes} bytes, ${Date.now() - startedAtMs} ms)`)
      this.o.done(cmd.containerId)
    } catch (err) {
      this.failed.inc()
      log.warn(`${name}: cannot rebuild replica ${indexes} of container ${cmd.containerId}: ${(err as Error).message}`)
    }
  }
}
