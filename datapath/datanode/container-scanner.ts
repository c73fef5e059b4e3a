/** @module
 * The container scanner (Ozone's BackgroundContainerMetadataScanner, BackgroundContainerDataScanner
 * and OnDemandContainerScanner). In the background, pass after pass over the CLOSED and
 * QUASI_CLOSED replicas of this datanode: a metadata scan (the container file and its checksum;
 * every block record against its chunks, its BCSID and its block file or packed bytes), then a
 * data scan (every chunk read again and verified against its checksums in the worker pool),
 * throttled to datanode.scanner.bytesPerSec (scan-throttle.ts), each pass lasting
 * datanode.scanner.intervalMs at least. The same scan of one replica on demand (scanNow), and
 * of one block (checkBlock: a read or an export that found its bytes lacking, a reader's report).
 * It only reads replicas: one that fails goes to ScannerHost.markUnhealthy, once the failure
 * is known not to come from a block or container deleted under the scan.
 */
import { createHash } from 'node:crypto'
import { readFile, stat } from 'node:fs/promises'
import type { Counter } from 'prom-client'
import { checksumSizeBytes, checksumsLengthBytes } from '../../core/checksum.ts'
import { O3Error, toO3Error } from '../../core/errors.ts'
import { SCANNER_BLOCK_BATCH, SCANNER_ON_DEMAND_MAX, SCANNER_OWN_CHECKS_MAX } from '../../core/limits.ts'
import { log } from '../../core/log.ts'
import type { ServiceMetrics } from '../../core/metrics.ts'
import type { ContainerId, ContainerState, LocalId } from '../../core/wire.ts'
import { runReadChunk, runVerifyChunk } from '../workers/index.ts'
import { readErrorCode } from '../workers/read-errors.ts'
import type { BlockData, ContainerData } from './datanode.ts'
import { passDelayMs, startThrottle, throttleStep, type ThrottleState } from './scan-throttle.ts'

/** What the scanner reads and calls on its datanode. */
export interface ScannerHost {
  /** Ids of the replicas held now. */
  containerIds(): ContainerId[]
  /** The replica now; undefined once it is gone. */
  container(id: ContainerId): ContainerData | undefined
  /** Up to `limit` block records of the container with local ids above `after`, in order. */
  blocksAfter(c: ContainerData, after: number, limit: number): BlockData[]
  block(c: ContainerData, localId: LocalId): BlockData | undefined
  /** A packed block's bytes, copied (the scanner holds them across awaits). */
  packedBytes(c: ContainerData, localId: LocalId): Uint8Array | undefined
  blockFilePath(c: ContainerData, localId: LocalId): string
  containerFilePath(c: ContainerData): string
  /** Marks the replica UNHEALTHY for good (persisted) and tells the SCM soon. */
  markUnhealthy(c: ContainerData, reason: string): Promise<void>
}

export interface ScanResult {
  containerId: ContainerId
  /**
   * HEALTHY: every check passed. UNHEALTHY: a check failed, now or in an earlier scan (`error`
   * says which). SKIPPED: an OPEN or CLOSING replica, whose blocks are still being written:
   * only closed replicas are scanned, as in Ozone.
   */
  result: 'HEALTHY' | 'UNHEALTHY' | 'SKIPPED'
  state: ContainerState
  bytesScanned: number
  blocksScanned: number
  /** The first failure found. */
  error?: string
}

/** What checkBlock found. */
export interface BlockCheck {
  containerId: ContainerId
  localId: LocalId
  /**
   * HEALTHY: the record, the stored bytes and their checksums agree (or the block went away
   * under the check: a deletion, not a fault). CORRUPT: `error` says what failed.
   */
  result: 'HEALTHY' | 'CORRUPT'
  /** The replica's state after the check: a settled one found corrupt is UNHEALTHY now. */
  state: ContainerState
  bytesScanned: number
  error?: string
}

export interface ContainerScannerOptions {
  host: ScannerHost
  metrics: ServiceMetrics
  bytesPerSec: number
  intervalMs: number
  /** Who scans, for the log (the datanode's id is known once it started). */
  name: () => string
}

/** States whose replicas are settled: no block is written any more, so every record must match its bytes. */
function isSettled(state: ContainerState): boolean {
  return state === 'CLOSED' || state === 'QUASI_CLOSED' || state === 'UNHEALTHY'
}

/**
 * What is wrong with a block record on its own (undefined: nothing): its chunks must cover
 * [0, length) in order (blockChunks commits no other), each with the checksums its length
 * needs, and its BCSID may not pass its container's (Ozone's metadata scan checks the same).
 */
export function blockRecordError(b: BlockData, containerBcsid: number): string | undefined {
  const name = `${b.containerId}:${b.localId}`
  let covered = 0
  for (const ch of b.chunks) {
    if (ch.offset !== covered) return `Block ${name}: no chunk at offset ${covered}`
    const want = checksumsLengthBytes(b.checksumType, ch.length, b.bytesPerChecksum)
    if (ch.checksums.length !== want) return `Block ${name}: chunk at ${ch.offset} has ${ch.checksums.length} checksum bytes, its ${ch.length} bytes need ${want}`
    covered += ch.length
  }
  if (covered !== b.length) return `Block ${name}: chunks cover ${covered} of its ${b.length} bytes`
  if ((b.bcsid ?? 0) > containerBcsid) return `Block ${name}: BCSID ${b.bcsid} is past its container's ${containerBcsid}`
  return undefined
}

/**
 * What is wrong with a container file (undefined: nothing): unreadable, not JSON, a checksum
 * that does not match, another container's, or (given `replicaIndex`) another replica index
 * than the record's: an EC replica that forgot its index would serve the wrong cells.
 */
export async function containerFileError(path: string, id: ContainerId, replicaIndex?: number): Promise<string | undefined> {
  let text: string
  try {
    text = await readFile(path, 'utf8')
  } catch (err) {
    // Descriptors or memory short for now: the scan fails, the replica is not corrupt.
    if (readErrorCode((err as NodeJS.ErrnoException).code) === 'UNAVAILABLE') throw new O3Error('UNAVAILABLE', `Cannot check container file of ${id}: ${(err as Error).message}`)
    return `Container file of ${id} cannot be read: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`
  }
  let parsed: Record<string, unknown>
  try {
    parsed = JSON.parse(text) as Record<string, unknown>
  } catch {
    return `Container file of ${id} is not JSON`
  }
  // The checksum covers the other fields as written (datanode.ts writeContainerFile); JSON.parse keeps their order.
  const { checksum, ...body } = parsed
  if (createHash('sha256').update(JSON.stringify(body)).digest('hex') !== checksum) return `Container file of ${id}: checksum does not match`
  if (body.containerId !== id) return `Container file of ${id} names container ${String(body.containerId)}`
  if (replicaIndex !== undefined && (body.replicaIndex ?? 0) !== replicaIndex) return `Container file of ${id} says replica index ${String(body.replicaIndex)}, its record ${replicaIndex}`
  return undefined
}

/** A throttle with its clock and sleep: one for the background passes, one shared by on-demand scans. */
class Throttle {
  private state: ThrottleState
  constructor(private readonly bytesPerSec: number, private readonly sleep: (ms: number) => Promise<void>) {
    this.state = startThrottle(Date.now(), bytesPerSec)
  }

  async take(bytes: number): Promise<void> {
    const { state, waitMs } = throttleStep(this.state, bytes, Date.now(), this.bytesPerSec)
    this.state = state
    if (waitMs > 0) await this.sleep(waitMs)
  }
}

/** One scan's progress and its read buffer (moved to a worker and back for each chunk). */
interface Run {
  c: ContainerData
  throttle: Throttle
  result: ScanResult
  buffer?: ArrayBuffer
}

export class ContainerScanner {
  /** Full background passes done (tests wait on it). */
  passes = 0
  private stopped = false
  private loop?: Promise<void>
  private readonly wakers = new Set<() => void>()
  private readonly background: Throttle
  private readonly onDemandThrottle: Throttle
  private readonly onDemand = new Map<ContainerId, Promise<ScanResult>>()
  /**
   * Block checks running, by `container/local id`. Those asked for (the checkBlock RPC) share
   * SCANNER_ON_DEMAND_MAX with onDemand; the datanode's own (a read or an export that found
   * bytes lacking) have SCANNER_OWN_CHECKS_MAX of their own, so requests cannot crowd them out.
   */
  private readonly blockChecks = new Map<string, { check: Promise<BlockCheck>; own: boolean }>()
  private readonly bytesScanned: Counter
  private readonly containersScanned: Counter
  private readonly failures: Counter

  constructor(private readonly options: ContainerScannerOptions) {
    const sleep = (ms: number) => this.sleep(ms)
    this.background = new Throttle(options.bytesPerSec, sleep)
    this.onDemandThrottle = new Throttle(options.bytesPerSec, sleep)
    this.bytesScanned = options.metrics.counter('scanner_bytes_scanned_total', 'Chunk bytes the container scanner read and verified')
    this.containersScanned = options.metrics.counter('scanner_containers_scanned_total', 'Container replicas the scanner went through')
    this.failures = options.metrics.counter('scanner_failures_total', 'Container replicas the scanner found corrupt and marked UNHEALTHY')
  }

  start(): void {
    this.loop ??= this.run()
  }

  /** Stops the passes and waits for the scans running now to give up. */
  async stop(): Promise<void> {
    this.stopped = true
    for (const wake of this.wakers) wake()
    await this.loop
    await Promise.allSettled([...this.onDemand.values(), ...[...this.blockChecks.values()].map((b) => b.check)])
  }

  /** Scans one replica now (`o3 admin container scan`); a second call for it while it runs gets the same answer. */
  scanNow(id: ContainerId): Promise<ScanResult> {
    const running = this.onDemand.get(id)
    if (running !== undefined) return running
    if (this.onDemandRunning() >= SCANNER_ON_DEMAND_MAX) return Promise.reject(new O3Error('UNAVAILABLE', `Cannot scan container ${id}: ${SCANNER_ON_DEMAND_MAX} scans run on this datanode already`))
    const scan = this.scan(id, this.onDemandThrottle).finally(() => this.onDemand.delete(id))
    this.onDemand.set(id, scan)
    return scan
  }

  /**
   * Checks one block now, as a scan would (its record, its stored bytes, their checksums;
   * throttled with the on-demand scans): for a read or an export that found the block's bytes
   * lacking, and for a reader's report of a checksum mismatch (through the SCM), so that a
   * corrupt replica is known in seconds, not at the next pass (days), and a report is not taken
   * on trust. A settled replica found corrupt is marked UNHEALTHY, as by a scan; an OPEN or
   * CLOSING one is only answered for (its writes go on; the SCM marks it). A second call for
   * the block while one runs gets the same answer.
   */
  checkBlock(id: ContainerId, localId: LocalId, { own = false } = {}): Promise<BlockCheck> {
    const key = `${id}/${localId}`
    const running = this.blockChecks.get(key)
    if (running !== undefined) return running.check
    if (this.stopped) return Promise.reject(new O3Error('UNAVAILABLE', `Cannot check block ${id}:${localId}: the datanode stops`))
    const [runningNow, max] = own ? [this.blockChecksRunning(true), SCANNER_OWN_CHECKS_MAX] : [this.onDemandRunning(), SCANNER_ON_DEMAND_MAX]
    if (runningNow >= max) return Promise.reject(new O3Error('UNAVAILABLE', `Cannot check block ${id}:${localId}: ${max} ${own ? 'checks' : 'scans'} run on this datanode already`))
    const check = this.runBlockCheck(id, localId).finally(() => this.blockChecks.delete(key))
    this.blockChecks.set(key, { check, own })
    return check
  }

  /** Whole-replica scans and asked-for block checks running: what SCANNER_ON_DEMAND_MAX bounds. */
  private onDemandRunning(): number {
    return this.onDemand.size + this.blockChecksRunning(false)
  }

  private blockChecksRunning(own: boolean): number {
    let n = 0
    for (const b of this.blockChecks.values()) if (b.own === own) n++
    return n
  }

  private async runBlockCheck(id: ContainerId, localId: LocalId): Promise<BlockCheck> {
    const { host } = this.options
    const c = host.container(id)
    if (c === undefined) throw new O3Error('CONTAINER_NOT_FOUND', `Cannot check block ${id}:${localId}: its container is not on this datanode`)
    const b = host.block(c, localId)
    if (b === undefined) throw new O3Error('BLOCK_NOT_FOUND', `Cannot check block ${id}:${localId}: not on this datanode`)
    const settled = isSettled(c.state)
    const run: Run = { c, throttle: this.onDemandThrottle, result: { containerId: id, result: 'HEALTHY', state: c.state, bytesScanned: 0, blocksScanned: 0 } }
    let error: string | undefined
    try {
      // An unsettled replica's BCSID trails its blocks' until it closes: only a settled one's bounds them.
      error = blockRecordError(b, settled ? c.bcsid ?? 0 : Number.MAX_SAFE_INTEGER) ?? await this.storedBytesError(c, b) ?? await this.blockDataError(run, b)
    } finally {
      run.buffer = undefined
    }
    if (error !== undefined && !this.stillThere(run, b, { settled })) error = undefined
    const done = { containerId: id, localId, bytesScanned: run.result.bytesScanned }
    if (error === undefined) return { ...done, result: 'HEALTHY', state: c.state }
    if (settled && c.state !== 'UNHEALTHY') {
      log.warn(`${this.options.name()}: container ${id} is corrupt: ${error}; marking it UNHEALTHY`)
      await host.markUnhealthy(c, error)
      this.failures.inc()
    }
    return { ...done, result: 'CORRUPT', state: c.state, error }
  }

  private sleep(ms: number): Promise<void> {
    if (this.stopped) return Promise.resolve()
    return new Promise((resolve) => {
      const wake = () => { clearTimeout(timer); this.wakers.delete(wake); resolve() }
      const timer = setTimeout(wake, ms)
      this.wakers.add(wake)
    })
  }

  private async run(): Promise<void> {
    while (!this.stopped) {
      const startedAtMs = Date.now()
      for (const id of this.options.host.containerIds()) {
        if (this.stopped) return
        const c = this.options.host.container(id)
        if (c === undefined || (c.state !== 'CLOSED' && c.state !== 'QUASI_CLOSED')) continue
        try {
          await this.scan(id, this.background)
        } catch (err) {
          if (!this.stopped) log.warn(`${this.options.name()}: cannot scan container ${id}: ${(err as Error).message}`)
        }
      }
      if (this.stopped) return
      this.passes++
      await this.sleep(passDelayMs(startedAtMs, Date.now(), this.options.intervalMs))
    }
  }

  /** The metadata scan, then the data scan, of one replica; a failure marks it UNHEALTHY. */
  private async scan(id: ContainerId, throttle: Throttle): Promise<ScanResult> {
    const c = this.options.host.container(id)
    if (c === undefined) throw new O3Error('CONTAINER_NOT_FOUND', `Cannot scan container ${id}: not on this datanode`)
    const run: Run = { c, throttle, result: { containerId: id, result: 'HEALTHY', state: c.state, bytesScanned: 0, blocksScanned: 0 } }
    if (!isSettled(c.state)) return { ...run.result, result: 'SKIPPED' }
    const error = await this.metadataScan(run) ?? await this.dataScan(run)
    this.containersScanned.inc()
    if (error !== undefined) {
      if (c.state !== 'UNHEALTHY') {
        log.warn(`${this.options.name()}: container ${id} is corrupt: ${error}; marking it UNHEALTHY`)
        await this.options.host.markUnhealthy(c, error)
        this.failures.inc()
      }
      return { ...run.result, result: 'UNHEALTHY', state: c.state, error }
    }
    if (c.state === 'UNHEALTHY') return { ...run.result, result: 'UNHEALTHY', error: c.unhealthyReason ?? 'marked UNHEALTHY by an earlier scan' }
    return { ...run.result, state: c.state }
  }

  /**
   * Whether the replica is still the one scanned and (unless `settled` is false) settled, and
   * (with a block) the block still recorded: else a failure is a deletion seen half-way.
   */
  private stillThere(run: Run, b?: BlockData, { settled = true } = {}): boolean {
    const now = this.options.host.container(run.c.id)
    if (now !== run.c || (settled && !isSettled(now.state))) return false
    if (b === undefined) return true
    return this.options.host.block(run.c, b.localId)?.committedAtMs === b.committedAtMs
  }

  private checkRunning(run: Run): void {
    if (this.stopped) throw new O3Error('UNAVAILABLE', `Cannot finish scanning container ${run.c.id}: the datanode stops`)
    if (this.options.host.container(run.c.id) !== run.c) throw new O3Error('CONTAINER_NOT_FOUND', `Cannot finish scanning container ${run.c.id}: it was deleted`)
  }

  /** Each batch of block records, read in its own short LMDB read. */
  private *batches(run: Run): Generator<BlockData[]> {
    for (let after = -1; ;) {
      this.checkRunning(run)
      const batch = this.options.host.blocksAfter(run.c, after, SCANNER_BLOCK_BATCH)
      if (batch.length === 0) return
      yield batch
      after = batch[batch.length - 1].localId
    }
  }

  private async metadataScan(run: Run): Promise<string | undefined> {
    const { host } = this.options
    const fileError = await containerFileError(host.containerFilePath(run.c), run.c.id, run.c.replicaIndex ?? 0)
    if (fileError !== undefined && this.stillThere(run)) return fileError
    try {
      for (const batch of this.batches(run)) {
        for (const b of batch) {
          const error = blockRecordError(b, run.c.bcsid ?? 0) ?? await this.storedBytesError(run.c, b)
          if (error !== undefined && this.stillThere(run, b)) return error
        }
      }
    } catch (err) {
      // Records that cannot be decoded (a damaged metadata database) are corruption of this
      // replica, not a scan that failed: once only logged, the replica stayed CLOSED and its
      // reads answered 500 for good.
      if (err instanceof O3Error) throw err
      return `Block records of container ${run.c.id} cannot be read: ${(err as Error).message}`
    }
    return undefined
  }

  /** Whether a block's bytes are where its record says, as many as it says. */
  private async storedBytesError(c: ContainerData, b: BlockData): Promise<string | undefined> {
    const name = `${b.containerId}:${b.localId}`
    if (b.packed) {
      const bytes = this.options.host.packedBytes(c, b.localId)
      if (bytes === undefined) return `Packed block ${name} has no bytes`
      if (bytes.length < b.length) return `Packed block ${name} holds ${bytes.length} of ${b.length} bytes`
      return undefined
    }
    let size: number
    try {
      size = (await stat(this.options.host.blockFilePath(c, b.localId))).size
    } catch (err) {
      const code = readErrorCode((err as NodeJS.ErrnoException).code)
      // Descriptors or memory short for now: the scan fails, the replica is not corrupt.
      if (code === 'UNAVAILABLE') throw new O3Error(code, `Cannot check block file of ${name}: ${(err as Error).message}`)
      return `Block file of ${name} cannot be read: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`
    }
    if (size < b.length) return `Block file of ${name} holds ${size} of ${b.length} bytes`
    return undefined
  }

  private async dataScan(run: Run): Promise<string | undefined> {
    try {
      for (const batch of this.batches(run)) {
        for (const b of batch) {
          const error = await this.blockDataError(run, b)
          if (error !== undefined && this.stillThere(run, b)) return error
          run.result.blocksScanned++
        }
      }
      return undefined
    } finally {
      run.buffer = undefined
    }
  }

  /** Reads every chunk of a block and verifies it in the worker pool; the first failure, or undefined. */
  private async blockDataError(run: Run, b: BlockData): Promise<string | undefined> {
    const name = `${b.containerId}:${b.localId}`
    const packed = b.packed ? this.options.host.packedBytes(run.c, b.localId) : undefined
    if (b.packed && (packed === undefined || packed.length < b.length)) return `Packed block ${name} holds ${packed?.length ?? 0} of ${b.length} bytes`
    const verify = checksumSizeBytes(b.checksumType) > 0
    for (const ch of b.chunks) {
      this.checkRunning(run)
      const total = ch.length + (verify ? ch.checksums.length : 0)
      if (run.buffer === undefined || run.buffer.byteLength < total) run.buffer = new ArrayBuffer(total)
      try {
        if (packed !== undefined) {
          new Uint8Array(run.buffer, 0, ch.length).set(packed.subarray(ch.offset, ch.offset + ch.length))
        } else {
          const read = await runReadChunk({ path: this.options.host.blockFilePath(run.c, b.localId), fileOffset: ch.offset, length: ch.length, into: run.buffer })
          run.buffer = read.buffer as ArrayBuffer
          if (read.length < ch.length) return `Block file of ${name} holds ${ch.offset + read.length} of ${b.length} bytes`
        }
        if (verify) {
          new Uint8Array(run.buffer, ch.length, ch.checksums.length).set(ch.checksums)
          const r = await runVerifyChunk({ type: b.checksumType, bytesPerChecksum: b.bytesPerChecksum, body: run.buffer, dataLength: ch.length, checksumsLength: ch.checksums.length })
          run.buffer = r.body
          if (r.badWindow >= 0) return `Checksum mismatch in block ${name} at offset ${ch.offset + r.badWindow * b.bytesPerChecksum}`
        }
      } catch (err) {
        // The buffer went to a worker and did not come back.
        run.buffer = undefined
        const e = toO3Error(err)
        if (e.code === 'CHUNK_NOT_FOUND' || e.code === 'IO_ERROR') return `Cannot read chunk at ${ch.offset} of block ${name}: ${e.message}`
        throw e
      }
      run.result.bytesScanned += ch.length
      this.bytesScanned.inc(ch.length)
      await run.throttle.take(ch.length)
    }
    return undefined
  }
}
