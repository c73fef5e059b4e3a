/** @module
 * Container copy between datanodes (Ozone's container replication, pull model): export of a
 * CLOSED or QUASI_CLOSED replica as one tar stream, import of such a stream into a new
 * replica, and deletion of a replica. It owns the copy's crash safety: an import lands in a
 * temp folder, every chunk verified against its checksums in the worker pool, then is renamed
 * into place and its rows written in one LMDB transaction; a deletion moves the folder out
 * first. Whatever a crash leaves in the temp folder the next start rolls back (an import) or
 * finishes (a deletion): sweepCopyLeftovers. It decides nothing about which copies to make.
 *
 * The archive, in this order (container-archive.ts):
 *   container.json                the container's row: state, bcsid, replication, pipeline, counts, replica index
 *   metadata/<id>.container       the container file, as on the source
 *   metadata/blocks-<n>.json      a batch of block rows (chunks with their checksums, base64)
 *   metadata/packed-<n>.bin       the bytes of that batch's packed blocks, in row order (if any)
 *   chunks/<localId>.block        each file-backed block of that batch: its committed bytes
 *   ... further batches ...
 *   manifest.json                 every entry before it: name, length, CRC32C
 */
import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, statSync, truncateSync, writeFileSync } from 'node:fs'
import { open } from 'node:fs/promises'
import { dirname, join } from 'node:path'
import { createHash, randomUUID } from 'node:crypto'
import { crc32c } from '@node-rs/crc32'
import { request } from 'undici'
import { assert } from '../../core/assert.ts'
import { checksumsLengthBytes } from '../../core/checksum.ts'
import { O3Error } from '../../core/errors.ts'
import {
  CHUNK_SIZE_BYTES_MAX, CONTAINER_COPY_BATCH_BYTES_MAX, CONTAINER_COPY_BATCH_ROWS_MAX, CONTAINER_COPY_METADATA_ENTRY_BYTES_MAX,
  CONTAINER_COPY_READ_BYTES, CONTAINER_FILE_BYTES_MAX, DATANODE_SLAB_WAIT_MS_MAX, RPC_TIMEOUT_MS_DEFAULT,
} from '../../core/limits.ts'
import { log } from '../../core/log.ts'
import { readError, transportError } from '../../core/rpc/client.ts'
import { PLAIN_TRANSPORT, urlOf, type Transport } from '../../core/rpc/transport.ts'
import { EC_REPLICAS_MAX, parseChecksumType, type ContainerId, type ContainerState, type DatanodeDetails, type LocalId } from '../../core/wire.ts'
import { runVerifyChunk, runWriteChunk, type SizedSlabPools } from '../workers/index.ts'
import { TAR_END, TarReader, tarHeader, tarPadding } from './container-archive.ts'
import type { BlockData, ContainerData, Volume } from './datanode.ts'
import { isEcReplica } from './ec-replica.ts'
import { blockFile, containerDir, containerFile, copyTmpDir } from './layout.ts'
import type { VolumeSpace } from './volume-space.ts'
import { readErrorCode } from '../workers/read-errors.ts'

/** What a copy needs of its datanode: the volumes, the replicas held, receive slabs. */
export interface CopyHost {
  /** How logs name the datanode. */
  name(): string
  clusterId(): string
  readonly volumes: readonly Volume[]
  /** Their free space against the reserve: a copy goes to the roomiest and must leave the reserve. */
  readonly space: VolumeSpace
  readonly containers: Map<ContainerId, ContainerData>
  readonly slabs: SizedSlabPools
  /** Forgets what the datanode keeps of a container in memory besides its row (pending chunks, open files). */
  forget(id: ContainerId): Promise<void>
  /** Whether this datanode keeps the Raft log of pipeline `pipelineId` (a replay of it may name its containers again). */
  hasPipelineLog(pipelineId: string): boolean
  /** An export found a block's bytes missing or short: the block is checked now (ContainerScanner.checkBlock), not at the next scan. */
  blockLacking(c: ContainerData, localId: LocalId): void
  /** How imports reach other datanodes (the datanode's identity when security is on). */
  transport?(): Transport
}

interface ManifestFile { name: string; length: number; crc32c: number }
interface ZeroFilled { localId: number; heldBytes: number }
interface Manifest {
  version: 1
  containerId: number
  files: ManifestFile[]
  /**
   * Blocks an as-is export filled with zeros where their bytes were missing, with how many
   * leading bytes it did hold: corrupt whatever their checksums say, and kept as short in the
   * copy (the zeros are not data; a NONE checksum would serve them as such).
   */
  zeroFilled?: ZeroFilled[]
}

/** A block row as the archive carries it. */
interface RowJson {
  localId: number
  length: number
  checksumType: string
  bytesPerChecksum: number
  packed: boolean
  committedAtMs: number
  bcsid?: number
  /** EC blocks: the key bytes of the block group. */
  blockGroupLength?: number
  chunks: { offset: number; length: number; checksums: string }[]
}

interface ContainerJson {
  containerId: number
  state: ContainerState
  replication: string
  pipelineId: string
  createdAtMs: number
  bcsid: number
  blockCount: number
  usedBytes: number
  /** EC: the replica index 1..k+m the copy keeps (absent in archives from before EC: 0). */
  replicaIndex?: number
}

const COPYABLE: readonly ContainerState[] = ['CLOSED', 'QUASI_CLOSED']
/** A corrupt replica is copied only as is (ImportOptions.asIs), when no healthy one is left. */
const COPYABLE_AS_IS: readonly ContainerState[] = [...COPYABLE, 'UNHEALTHY']

export interface ImportOptions {
  /**
   * The sources are corrupt replicas, the only ones left (the SCM's replicateContainer
   * asIs): blocks that fail their checksums are kept as they are, and the copy is UNHEALTHY
   * then (or when its source was); readers verify each block and go to another copy.
   */
  asIs?: boolean
  /**
   * As is, but not an archive whose source filled lost bytes with zeros (CHUNK_NOT_FOUND):
   * another source may still hold them. Tried on every source before any such archive is taken.
   */
  refuseZeroFilled?: boolean
}
/**
 * A plain import refused: a block of the archive fails its own checksums, so its source holds
 * it corrupt (the manifest's CRC32C vouches for the wire). ContainerReplication has the
 * source check that block (the source's datanode marks its replica if so).
 */
export class CorruptSourceBlock extends O3Error {
  constructor(readonly localId: LocalId, message: string) {
    super('CHECKSUM_MISMATCH', message)
  }
}

const encoder = new TextEncoder()
const decoder = new TextDecoder()

export class ContainerCopies {
  /** Containers being imported now: a second import of one is refused, like one already held. */
  private readonly importing = new Set<ContainerId>()

  constructor(private readonly host: CopyHost) {}

  // --- export ---------------------------------------------------------------------------

  /**
   * The archive of container `id` as a stream (pulled: a file piece is read when the last one
   * has gone). `asIs` (for a copy made as is): a block whose bytes are missing or short goes
   * with zeros in their place, listed in the manifest; otherwise such a block fails the export.
   */
  exportStream(id: ContainerId, options: { asIs?: boolean } = {}): ReadableStream<Uint8Array> {
    const c = this.host.containers.get(id)
    if (c === undefined) throw new O3Error('CONTAINER_NOT_FOUND', `Cannot export container ${id}: not on this datanode`)
    if (!COPYABLE_AS_IS.includes(c.state)) throw new O3Error('INVALID_CONTAINER_STATE', `Cannot export container ${id}: it is ${c.state}, only a CLOSED, QUASI_CLOSED or UNHEALTHY one is copied`)
    const pieces = this.exportPieces(c, options.asIs === true)
    return new ReadableStream<Uint8Array>({
      pull: async (controller) => {
        try {
          const r = await pieces.next()
          if (r.done === true) controller.close()
          else controller.enqueue(r.value)
        } catch (err) {
          log.warn(`${this.host.name()}: export of container ${id} failed: ${(err as Error).message}`)
          controller.error(err)
        }
      },
      cancel: async () => { await pieces.return(undefined) },
    }, { highWaterMark: 0 })
  }

  private async *exportPieces(c: ContainerData, asIs: boolean): AsyncGenerator<Uint8Array> {
    const v = this.volume(c)
    const clusterId = this.host.clusterId()
    const files: ManifestFile[] = []
    const zeroFilled: ZeroFilled[] = []
    const nowMs = Date.now()
    function* whole(name: string, bytes: Uint8Array): Generator<Uint8Array> {
      files.push({ name, length: bytes.length, crc32c: crc32c(bytes as Buffer) })
      yield tarHeader(name, bytes.length, nowMs)
      yield bytes
      yield tarPadding(bytes.length)
    }
    const row: ContainerJson = {
      containerId: c.id, state: c.state, replication: c.replication, pipelineId: c.pipelineId, createdAtMs: c.createdAtMs,
      bcsid: c.bcsid ?? 0, blockCount: c.blockCount, usedBytes: c.usedBytes, replicaIndex: c.replicaIndex ?? 0,
    }
    yield* whole('container.json', encoder.encode(JSON.stringify(row)))
    yield* whole(`metadata/${c.id}.container`, readFileSync(containerFile(v.dir, clusterId, c.id)))
    let after = -1
    for (let n = 0; ; n++) {
      // A batch is read whole from LMDB before any of it is sent: no read transaction stays open across sends.
      const rows: BlockData[] = []
      const packed: Buffer[] = []
      let bytes = 0
      for (const { value } of v.blocks.getRange({ start: [c.id, after + 1], end: [c.id + 1, 0], limit: CONTAINER_COPY_BATCH_ROWS_MAX })) {
        rows.push(value)
        after = value.localId
        bytes += 256 + value.chunks.reduce((s, ch) => s + ch.checksums.length * 2, 0)
        if (value.packed) {
          // Missing or of another length (a corrupt replica): as is, its row's length goes, zeros where bytes lack.
          let data = v.packed.getBinary([c.id, value.localId])
          if (data === undefined || data.length !== value.length) {
            const holds = `packed block ${value.localId} holds ${data?.length ?? 0} of its ${value.length} bytes`
            this.host.blockLacking(c, value.localId as LocalId)
            if (!asIs) throw new O3Error('CHUNK_NOT_FOUND', `Cannot export container ${c.id}: ${holds}`)
            log.warn(`${this.host.name()}: export of container ${c.id} as is: ${holds}, sent as ${value.length}`)
            zeroFilled.push({ localId: value.localId, heldBytes: 0 })
            const fitted = Buffer.alloc(value.length)
            data?.copy(fitted, 0, 0, value.length)
            data = fitted
          }
          packed.push(data)
          bytes += data.length
        }
        if (bytes >= CONTAINER_COPY_BATCH_BYTES_MAX) break
      }
      if (rows.length === 0) break
      yield* whole(`metadata/blocks-${n}.json`, encoder.encode(JSON.stringify(rows.map(rowJson))))
      if (packed.length > 0) yield* whole(`metadata/packed-${n}.bin`, Buffer.concat(packed))
      for (const b of rows) {
        if (b.packed) continue
        let heldBytes: number
        try {
          heldBytes = yield* this.blockPieces(blockFile(v.dir, clusterId, c.id, b.localId as LocalId), `chunks/${b.localId}.block`, b.length, nowMs, files, asIs)
        } catch (err) {
          // Ours (a file short of its bytes) or the file system's (no file, EIO; not a process short of descriptors).
          const lacking = err instanceof O3Error ? err.code === 'IO_ERROR' : readErrorCode((err as NodeJS.ErrnoException).code) !== 'UNAVAILABLE'
          if (lacking) this.host.blockLacking(c, b.localId as LocalId)
          throw err
        }
        if (heldBytes < b.length) {
          this.host.blockLacking(c, b.localId as LocalId)
          zeroFilled.push({ localId: b.localId, heldBytes })
        }
      }
    }
    const manifest: Manifest = { version: 1, containerId: c.id, files, ...(zeroFilled.length > 0 ? { zeroFilled } : {}) }
    const text = encoder.encode(JSON.stringify(manifest))
    yield tarHeader('manifest.json', text.length, nowMs)
    yield text
    yield tarPadding(text.length)
    yield TAR_END
  }

  /**
   * A block file's committed bytes (the first `length`), read a piece at a time; answers how
   * many the file held (zeros stood in for the rest). What the file lacks (missing, or cut short by a disk
   * fault) fails the export, or with `asIs` goes as zeros, as Ozone copies what a corrupt
   * replica holds: the manifest lists the block, and the copy counts it corrupt.
   */
  private async *blockPieces(path: string, name: string, length: number, nowMs: number, files: ManifestFile[], asIs: boolean): AsyncGenerator<Uint8Array, number> {
    const fh = await open(path, 'r').catch((err: NodeJS.ErrnoException) => { if (err.code === 'ENOENT' && asIs) return undefined; throw err })
    try {
      yield tarHeader(name, length, nowMs)
      let crc = 0
      /** Where the file's bytes end (the first read that finds none). */
      let held = fh === undefined ? 0 : length
      for (let at = 0; at < length;) {
        const want = Math.min(CONTAINER_COPY_READ_BYTES, length - at)
        let got = Buffer.alloc(0)
        if (fh !== undefined && at < held) {
          got = Buffer.allocUnsafe(want)
          const { bytesRead } = await fh.read(got, 0, want, at)
          if (bytesRead === 0 && !asIs) throw new O3Error('IO_ERROR', `Cannot export ${name}: the file holds ${at} of its ${length} committed bytes`)
          if (bytesRead === 0) held = at
          got = got.subarray(0, bytesRead)
        }
        if (got.length === 0) got = Buffer.alloc(want)
        crc = crc32c(got, crc)
        at += got.length
        yield got
      }
      if (held < length) log.warn(`${this.host.name()}: export of ${path} as is: the file holds ${held} of its ${length} committed bytes, the rest sent as zeros`)
      files.push({ name, length, crc32c: crc })
      yield tarPadding(length)
      return Math.min(held, length)
    } finally {
      await fh?.close()
    }
  }

  // --- import ---------------------------------------------------------------------------

  /** Downloads container `id` from `source` (GET /container/:id/export) and imports it. */
  async importFrom(source: DatanodeDetails, id: ContainerId, signal?: AbortSignal, options: ImportOptions = {}): Promise<ContainerData> {
    this.refuseHeld(id)
    let res
    try {
      const t = this.host.transport?.() ?? PLAIN_TRANSPORT
      res = await request(urlOf(t, source.address, `/container/${id}/export`), {
        method: 'GET', query: options.asIs === true ? { asIs: '1' } : undefined, dispatcher: t.dispatcher('datanode'), headersTimeout: RPC_TIMEOUT_MS_DEFAULT, bodyTimeout: RPC_TIMEOUT_MS_DEFAULT, signal,
      })
    } catch (err) {
      throw transportError(source.address, err)
    }
    if (res.statusCode !== 200) throw await readError(res, `export of container ${id} from ${source.address}`)
    try {
      return await this.importContainer(id, res.body, { ...options, from: source.address })
    } finally {
      res.body.destroy()
    }
  }

  /**
   * Imports container `id` from an archive stream: nothing of it is visible (or left, on any
   * failure) until every entry checked out; then the folder is renamed into place and the rows
   * written in one transaction. Refuses a container held or being imported here.
   */
  async importContainer(id: ContainerId, source: AsyncIterable<Uint8Array>, options: ImportOptions & { from?: string } = {}): Promise<ContainerData> {
    this.refuseHeld(id)
    this.importing.add(id)
    const clusterId = this.host.clusterId()
    const { index, spareBytes } = this.host.space.roomiest()
    const v = this.host.volumes[index]
    const tmp = join(copyTmpDir(v.dir, clusterId), `import-${id}-${randomUUID().slice(0, 8)}`)
    const staged = join(tmp, 'container')
    const target = containerDir(v.dir, clusterId, id)
    let renamed = false
    try {
      mkdirSync(join(staged, 'chunks'), { recursive: true })
      mkdirSync(join(staged, 'metadata'), { recursive: true })
      mkdirSync(join(tmp, 'rows'), { recursive: true })
      const got = await this.receive(id, source, { v, spareBytes }, tmp, staged, options)
      // The last check before the replica appears: nothing else may have made it meanwhile.
      this.refuseHeld(id, false)
      const c: ContainerData = {
        id, state: got.row.state, replication: got.row.replication, pipelineId: got.row.pipelineId, createdAtMs: got.row.createdAtMs,
        blockCount: got.blockCount, usedBytes: got.usedBytes, volume: index, bcsid: got.row.bcsid, replicaIndex: got.row.replicaIndex ?? 0,
      }
      if (got.row.state === 'UNHEALTHY' || got.corrupt.length > 0) {
        const from = options.from === undefined ? '' : ` from ${options.from}`
        c.state = 'UNHEALTHY'
        c.unhealthyReason = got.corrupt.length === 0 ? `copied as is${from}, an UNHEALTHY replica`
          : `copied as is${from}: ${got.corrupt.length} blocks fail their checksums (first ${got.corrupt[0]})`
        // Its container file says so before it appears: the row and the file agree, as every later copy checks.
        writeFileSync(join(staged, 'metadata', `${id}.container`), containerFileText(c))
      }
      mkdirSync(dirname(target), { recursive: true })
      // Not held here, so a folder by its name is a leftover (a replica deleted or never recorded).
      rmSync(target, { recursive: true, force: true })
      renameSync(staged, target)
      renamed = true
      await v.db.transaction(() => {
        for (let n = 0; n < got.batches; n++) {
          const rows = parseRows(readFileSync(join(tmp, 'rows', `blocks-${n}.json`)), id)
          const packedFile = join(tmp, 'rows', `packed-${n}.bin`)
          const packed = existsSync(packedFile) ? readFileSync(packedFile) : undefined
          let at = 0
          for (const b of rows) {
            v.blocks.put([id, b.localId], b)
            if (b.packed) {
              assert(packed !== undefined, 'packed rows without packed bytes')
              if (!got.unstored.has(b.localId)) v.packed.put([id, b.localId], packed.subarray(at, at + b.length))
              at += b.length
            }
          }
        }
        v.containers.put(id, c)
      })
      this.host.containers.set(id, c)
      log.info(`${this.host.name()}: imported container ${id} (${c.state}, bcsid ${c.bcsid}, ${c.blockCount} blocks, ${c.usedBytes} bytes)`)
      return c
    } catch (err) {
      if (renamed && !this.host.containers.has(id)) rmSync(target, { recursive: true, force: true })
      throw err
    } finally {
      rmSync(tmp, { recursive: true, force: true })
      this.importing.delete(id)
    }
  }

  private refuseHeld(id: ContainerId, orImporting = true): void {
    if (this.host.containers.has(id)) throw new O3Error('CONTAINER_EXISTS', `Cannot import container ${id}: this datanode holds a replica already`)
    if (orImporting && this.importing.has(id)) throw new O3Error('CONTAINER_EXISTS', `Cannot import container ${id}: this datanode is importing it already`)
  }

  /** Reads and checks every entry into the temp folder; answers what the rows need. */
  private async receive(id: ContainerId, source: AsyncIterable<Uint8Array>, room: { v: Volume; spareBytes: number }, tmp: string, staged: string, options: ImportOptions) {
    const asIs = options.asIs === true
    const reader = new TarReader(source)
    const seen: ManifestFile[] = []
    const what = `Cannot import container ${id}`
    const bad = (why: string) => new O3Error('INVALID_ARGUMENT', `${what}: ${why}`)
    /** The next entry; the archive must not end before its manifest. */
    const entry = async () => {
      const e = await reader.next()
      if (e === undefined) throw bad('the archive ended before its manifest')
      return e
    }
    const small = async (name: string, sizeBytes: number, max: number) => {
      const bytes = await reader.readAll(max)
      seen.push({ name, length: sizeBytes, crc32c: crc32c(bytes as Buffer) })
      return bytes
    }
    let e = await entry()
    if (e.name !== 'container.json') throw bad(`the archive starts with ${JSON.stringify(e.name)}, not container.json`)
    const row = parseContainerJson(await small(e.name, e.sizeBytes, CONTAINER_FILE_BYTES_MAX), id, asIs)
    /** Blocks kept as they are though they fail their checksums (asIs only). */
    const corrupt: number[] = []
    const tolerate = async (localId: number, check: Promise<unknown>) => {
      try {
        await check
      } catch (err) {
        if (!asIs || !(err instanceof O3Error) || err.code !== 'CHECKSUM_MISMATCH') throw err
        corrupt.push(localId)
      }
    }
    if (room.spareBytes < row.usedBytes) throw new O3Error('DISK_FULL', `${what}: it holds ${row.usedBytes} bytes, volume ${room.v.dir} has ${Math.max(0, room.spareBytes)} free beyond its reserve (datanode.volume.minFreeBytes)`)
    e = await entry()
    if (e.name !== `metadata/${id}.container`) throw bad(`expected its container file, found ${JSON.stringify(e.name)}`)
    const file = await small(e.name, e.sizeBytes, CONTAINER_FILE_BYTES_MAX)
    checkContainerFile(file, id, row.state, row.replicaIndex ?? 0)
    writeFileSync(join(staged, 'metadata', `${id}.container`), file)
    let batches = 0, blockCount = 0, usedBytes = 0, lastLocalId = -1
    e = await entry()
    while (e.name !== 'manifest.json') {
      if (e.name !== `metadata/blocks-${batches}.json`) throw bad(`expected metadata/blocks-${batches}.json or the manifest, found ${JSON.stringify(e.name)}`)
      const rowsBytes = await small(e.name, e.sizeBytes, CONTAINER_COPY_METADATA_ENTRY_BYTES_MAX)
      const rows = parseRows(rowsBytes, id)
      writeFileSync(join(tmp, 'rows', `blocks-${batches}.json`), rowsBytes)
      blockCount += rows.length
      for (const b of rows) {
        // In key order, as LMDB gives them, each once: the counts are exact and no row overwrites another.
        if (b.localId <= lastLocalId) throw bad(`block ${b.localId} comes after block ${lastLocalId}`)
        lastLocalId = b.localId
        usedBytes += b.length
      }
      const packedRows = rows.filter((b) => b.packed)
      const files = new Map(rows.filter((b) => !b.packed).map((b) => [`chunks/${b.localId}.block`, b]))
      e = await entry()
      if (packedRows.length > 0) {
        const name = `metadata/packed-${batches}.bin`
        const total = packedRows.reduce((s, b) => s + b.length, 0)
        if (e.name !== name || e.sizeBytes !== total) throw bad(`expected ${name} of ${total} bytes, found ${JSON.stringify(e.name)} of ${e.sizeBytes}`)
        const packed = await small(e.name, e.sizeBytes, CONTAINER_COPY_METADATA_ENTRY_BYTES_MAX)
        let at = 0
        for (const b of packedRows) {
          await tolerate(b.localId, verifyPacked(b, packed.subarray(at, at + b.length), what))
          at += b.length
        }
        writeFileSync(join(tmp, 'rows', `packed-${batches}.bin`), packed)
        e = await entry()
      }
      while (files.size > 0) {
        const b = files.get(e.name)
        if (b === undefined) throw bad(`expected a block file of batch ${batches}, found ${JSON.stringify(e.name)}`)
        if (e.sizeBytes !== b.length) throw bad(`${e.name} holds ${e.sizeBytes} bytes, its row says ${b.length}`)
        files.delete(e.name)
        seen.push({ name: e.name, length: e.sizeBytes, crc32c: await this.receiveBlock(reader, b, join(staged, 'chunks', `${b.localId}.block`), what, asIs ? corrupt : undefined) })
        e = await entry()
      }
      batches++
    }
    const manifest = parseManifest(await reader.readAll(CONTAINER_COPY_METADATA_ENTRY_BYTES_MAX), id)
    // Blocks the source filled with zeros are corrupt whatever their checksums say (a NONE one says nothing).
    const zeroFilled = manifest.zeroFilled ?? []
    if (zeroFilled.length > 0 && asIs && options.refuseZeroFilled === true) {
      throw new O3Error('CHUNK_NOT_FOUND', `${what}: its source lacks bytes of ${zeroFilled.length} blocks (sent as zeros)`)
    }
    for (const { localId } of zeroFilled) {
      if (!asIs) throw bad(`block ${localId} was sent with zeros for missing bytes; only a copy made as is takes it`)
      if (!corrupt.includes(localId)) corrupt.push(localId)
    }
    if (await reader.next() !== undefined) throw bad('entries follow the manifest')
    if (manifest.files.length !== seen.length) throw bad(`the manifest lists ${manifest.files.length} entries, the archive holds ${seen.length}`)
    manifest.files.forEach((f, i) => {
      const s = seen[i]
      if (f.name !== s.name || f.length !== s.length) throw bad(`the manifest lists ${f.name} (${f.length} bytes) where the archive holds ${s.name} (${s.length} bytes)`)
      if (f.crc32c !== s.crc32c) throw new O3Error('CHECKSUM_MISMATCH', `${what}: ${s.name} fails the manifest's CRC32C`)
    })
    // The zeros are no data: a zero-filled block stays as short as its source held it (none:
    // no file, no packed bytes), so reads of it fail as on the source and go to another copy.
    const unstored = new Set<number>()
    for (const { localId, heldBytes } of zeroFilled) {
      const file = join(staged, 'chunks', `${localId}.block`)
      if (!existsSync(file)) unstored.add(localId)
      else if (heldBytes === 0) rmSync(file)
      else truncateSync(file, Math.min(heldBytes, statSync(file).size))
    }
    return { row, batches, blockCount, usedBytes, corrupt, unstored }
  }

  /**
   * One block file, chunk by chunk: each chunk's bytes into a receive slab behind its
   * checksums, then verified and written at its offset by the worker pool (the write path's
   * own task). Answers the file's CRC32C for the manifest.
   */
  private async receiveBlock(reader: TarReader, b: BlockData, path: string, what: string, corrupt?: number[]): Promise<number> {
    let crc = 0
    for (const ch of b.chunks) {
      const csLength = ch.checksums.length
      const slab = await this.host.slabs.acquire(csLength + ch.length, DATANODE_SLAB_WAIT_MS_MAX)
      try {
        new Uint8Array(slab, 0, csLength).set(ch.checksums)
        const data = new Uint8Array(slab, csLength, ch.length)
        await reader.read(data)
        crc = crc32c(data as Buffer, crc)
        await runWriteChunk({
          path, fileOffset: ch.offset, type: b.checksumType, bytesPerChecksum: b.bytesPerChecksum,
          data: { slab, offset: csLength, length: ch.length }, checksums: { slab, offset: 0, length: csLength },
        }).catch(async (err: unknown) => {
          if (!(err instanceof O3Error) || err.code !== 'CHECKSUM_MISMATCH') throw err
          if (corrupt === undefined) throw new CorruptSourceBlock(b.localId as LocalId, `${what}: block ${b.localId} fails its checksums: ${err.message}`)
          // Copied as is: the bytes go where they belong, unverified (the worker wrote nothing).
          if (corrupt.at(-1) !== b.localId) corrupt.push(b.localId)
          const fh = await open(path, existsSync(path) ? 'r+' : 'w')
          try {
            const { bytesWritten } = await fh.write(data, 0, data.length, ch.offset)
            if (bytesWritten !== data.length) throw new O3Error('IO_ERROR', `${what}: block ${b.localId}: ${bytesWritten} of ${data.length} bytes written`)
          } finally { await fh.close() }
        })
      } finally {
        this.host.slabs.release(slab)
      }
    }
    return crc
  }

  // --- delete ---------------------------------------------------------------------------

  /**
   * Deletes this datanode's replica of container `id` (files, rows, container file); without
   * `force` never an OPEN or CLOSING one. The folder moves into the temp folder first, so a
   * crash before the rows are gone leaves a deletion the next start finishes. Answers whether
   * there was a replica.
   */
  async deleteContainer(id: ContainerId, force: boolean): Promise<boolean> {
    const c = this.host.containers.get(id)
    if (c === undefined) return false
    if (!force && (c.state === 'OPEN' || c.state === 'CLOSING')) {
      throw new O3Error('INVALID_CONTAINER_STATE', `Cannot delete container ${id}: it is ${c.state} (only with force)`)
    }
    const v = this.volume(c)
    const clusterId = this.host.clusterId()
    // Recorded before the replica leaves memory: a log entry naming it in between must find
    // the record, not make the container again, empty and OPEN.
    if (keepsDeletionRecord(c, this.host.hasPipelineLog)) await v.deletedContainers.put(id, c.pipelineId)
    this.host.containers.delete(id)
    await this.host.forget(id)
    const trash = join(copyTmpDir(v.dir, clusterId), `delete-${id}-${randomUUID().slice(0, 8)}`)
    mkdirSync(dirname(trash), { recursive: true })
    const dir = containerDir(v.dir, clusterId, id)
    if (existsSync(dir)) renameSync(dir, trash)
    await v.db.transaction(() => removeRows(v, id))
    rmSync(trash, { recursive: true, force: true })
    log.info(`${this.host.name()}: deleted container ${id} (was ${c.state}${force ? ', forced' : ''})`)
    return true
  }

  private volume(c: ContainerData): Volume {
    const v = this.host.volumes[c.volume]
    assert(v !== undefined, `container ${c.id} on unknown volume ${c.volume}`)
    return v
  }
}

/**
 * At a datanode's start, before it serves: the temp folder of each volume is emptied. An
 * import found there was not committed unless its rows are in this volume's LMDB: its
 * folder, if already renamed into place, goes too. A deletion found there is finished: its
 * rows go.
 */
export async function sweepCopyLeftovers(volumes: readonly Volume[], clusterId: string, name: string, hasPipelineLog: (pipelineId: string) => boolean): Promise<void> {
  for (const v of volumes) {
    const tmp = copyTmpDir(v.dir, clusterId)
    let entries: string[]
    try { entries = readdirSync(tmp) } catch { continue }
    for (const e of entries) {
      const m = /^(import|delete)-(\d+)-/.exec(e)
      const id = m === null ? undefined : Number(m[2]) as ContainerId
      if (m !== null && id !== undefined && Number.isSafeInteger(id)) {
        const recorded = v.containers.get(id) !== undefined
        if (m[1] === 'import' && !recorded) rmSync(containerDir(v.dir, clusterId, id), { recursive: true, force: true })
        if (m[1] === 'delete' && recorded) {
          await v.db.transaction(() => {
            const row = v.containers.get(id)!
            if (keepsDeletionRecord(row, hasPipelineLog)) v.deletedContainers.put(id, row.pipelineId)
            removeRows(v, id)
          })
        }
        log.info(`${name}: ${m[1] === 'import' ? (recorded ? 'removed the temp folder of the import' : 'rolled back the interrupted import') : 'finished the interrupted deletion'} of container ${id}`)
      }
      rmSync(join(tmp, e), { recursive: true, force: true })
    }
  }
}

/**
 * A RATIS replica written through a pipeline whose log this datanode keeps is recorded deleted
 * (Volume.deletedContainers): a replay of the log may name it again. An imported copy's
 * pipeline is another datanode's: no record (one would stay until the next start, which drops
 * records of logs not kept here).
 */
function keepsDeletionRecord(c: ContainerData, hasPipelineLog: (pipelineId: string) => boolean): boolean {
  return !isEcReplica(c) && c.pipelineId !== '' && hasPipelineLog(c.pipelineId)
}

/** Inside a write transaction: every row of container `id` on `v` (its deletion record is the caller's). */
function removeRows(v: Volume, id: ContainerId): void {
  const range = { start: [id, 0] as [number, number], end: [id + 1, 0] as [number, number] }
  for (const key of v.blocks.getKeys(range)) v.blocks.remove(key)
  for (const key of v.packed.getKeys(range)) v.packed.remove(key)
  for (const key of v.deleted.getKeys(range)) v.deleted.remove(key)
  v.containers.remove(id)
}


function rowJson(b: BlockData): RowJson {
  return {
    localId: b.localId, length: b.length, checksumType: b.checksumType, bytesPerChecksum: b.bytesPerChecksum, packed: b.packed,
    committedAtMs: b.committedAtMs, bcsid: b.bcsid, ...(b.blockGroupLength !== undefined ? { blockGroupLength: b.blockGroupLength } : {}),
    chunks: b.chunks.map((ch) => ({ offset: ch.offset, length: ch.length, checksums: Buffer.from(ch.checksums.buffer, ch.checksums.byteOffset, ch.checksums.byteLength).toString('base64') })),
  }
}

function parseJson(bytes: Uint8Array, what: string): unknown {
  try { return JSON.parse(decoder.decode(bytes)) } catch { throw new O3Error('INVALID_ARGUMENT', `Cannot import ${what}: not JSON`) }
}

const isCount = (x: unknown): x is number => typeof x === 'number' && Number.isSafeInteger(x) && x >= 0

/** Block rows from a batch entry, each checked: its chunks cover [0, length) in order with checksums of the right size. */
function parseRows(bytes: Uint8Array, id: ContainerId): BlockData[] {
  const what = `container ${id}`
  const raw = parseJson(bytes, `the block rows of ${what}`)
  const bad = (why: string) => new O3Error('INVALID_ARGUMENT', `Cannot import ${what}: ${why}`)
  if (!Array.isArray(raw) || raw.length === 0 || raw.length > CONTAINER_COPY_BATCH_ROWS_MAX) throw bad(`a batch of block rows must hold 1 to ${CONTAINER_COPY_BATCH_ROWS_MAX}`)
  return raw.map((r: Partial<RowJson>): BlockData => {
    if (!isCount(r.localId) || !isCount(r.length) || !isCount(r.bytesPerChecksum) || r.bytesPerChecksum < 1 || typeof r.packed !== 'boolean' || !Array.isArray(r.chunks)) throw bad('a block row is malformed')
    let type
    try { type = parseChecksumType(String(r.checksumType)) } catch { throw bad(`block ${r.localId} has checksum type ${JSON.stringify(r.checksumType)}`) }
    let covered = 0
    const chunks = r.chunks.map((ch) => {
      if (!isCount(ch?.offset) || !isCount(ch.length) || typeof ch.checksums !== 'string') throw bad(`a chunk of block ${r.localId} is malformed`)
      if (ch.offset !== covered || ch.length > CHUNK_SIZE_BYTES_MAX) throw bad(`block ${r.localId} has a chunk of ${ch.length} bytes at ${ch.offset}, not at ${covered}`)
      covered += ch.length
      const checksums = new Uint8Array(Buffer.from(ch.checksums, 'base64'))
      if (checksums.length !== checksumsLengthBytes(type, ch.length, r.bytesPerChecksum!)) throw bad(`block ${r.localId} has ${checksums.length} checksum bytes for a chunk of ${ch.length}`)
      return { offset: ch.offset, length: ch.length, checksums }
    })
    if (covered !== r.length) throw bad(`the chunks of block ${r.localId} cover ${covered} of its ${r.length} bytes`)
    if (r.packed && chunks.length !== 1) throw bad(`packed block ${r.localId} has ${chunks.length} chunks`)
    return {
      containerId: id, localId: r.localId as LocalId, length: r.length, checksumType: type, bytesPerChecksum: r.bytesPerChecksum, chunks, packed: r.packed,
      committedAtMs: isCount(r.committedAtMs) ? r.committedAtMs : 0, ...(isCount(r.bcsid) ? { bcsid: r.bcsid } : {}),
      ...(isCount(r.blockGroupLength) ? { blockGroupLength: r.blockGroupLength } : {}),
    }
  })
}

function parseContainerJson(bytes: Uint8Array, id: ContainerId, asIs: boolean): ContainerJson {
  const r = parseJson(bytes, `container ${id}`) as Partial<ContainerJson>
  const bad = (why: string) => new O3Error('INVALID_ARGUMENT', `Cannot import container ${id}: ${why}`)
  if (r.containerId !== id) throw bad(`the archive is of container ${JSON.stringify(r.containerId)}`)
  if (!(asIs ? COPYABLE_AS_IS : COPYABLE).includes(r.state as ContainerState)) throw new O3Error('INVALID_CONTAINER_STATE', `Cannot import container ${id}: the archive's replica is ${JSON.stringify(r.state)}`)
  if (typeof r.replication !== 'string' || typeof r.pipelineId !== 'string' || !isCount(r.createdAtMs) || !isCount(r.bcsid) || !isCount(r.usedBytes) || !isCount(r.blockCount)) throw bad('its row is malformed')
  if (r.replicaIndex !== undefined && (!isCount(r.replicaIndex) || r.replicaIndex > EC_REPLICAS_MAX)) throw bad(`its replica index ${JSON.stringify(r.replicaIndex)} is not in 0..${EC_REPLICAS_MAX}`)
  return r as ContainerJson
}

/** A replica's container file (Ozone's .container): what it is, sealed with its own SHA-256. */
export function containerFileText(c: ContainerData): string {
  const body = { containerId: c.id, state: c.state, replication: c.replication, pipelineId: c.pipelineId, replicaIndex: c.replicaIndex ?? 0, layout: 'FILE_PER_BLOCK', schemaVersion: 3, createdAtMs: c.createdAtMs }
  return JSON.stringify({ ...body, checksum: createHash('sha256').update(JSON.stringify(body)).digest('hex') }, null, 2)
}

/** The container file as the source wrote it: its own SHA-256 seal, its id, state and replica index. */
function checkContainerFile(bytes: Uint8Array, id: ContainerId, state: ContainerState, replicaIndex: number): void {
  const { checksum, ...body } = parseJson(bytes, `the container file of container ${id}`) as { containerId?: unknown; state?: unknown; replicaIndex?: unknown; checksum?: unknown }
  if (checksum !== createHash('sha256').update(JSON.stringify(body)).digest('hex')) throw new O3Error('CHECKSUM_MISMATCH', `Cannot import container ${id}: its container file fails its own checksum`)
  if (body.containerId !== id || body.state !== state) throw new O3Error('INVALID_ARGUMENT', `Cannot import container ${id}: its container file names container ${JSON.stringify(body.containerId)} ${JSON.stringify(body.state)}, its row ${id} ${state}`)
  if ((body.replicaIndex ?? 0) !== replicaIndex) throw new O3Error('INVALID_ARGUMENT', `Cannot import container ${id}: its container file says replica index ${JSON.stringify(body.replicaIndex)}, its row ${replicaIndex}`)
}

function parseManifest(bytes: Uint8Array, id: ContainerId): Manifest {
  const m = parseJson(bytes, `the manifest of container ${id}`) as Partial<Manifest>
  if (m.version !== 1 || m.containerId !== id || !Array.isArray(m.files) || !m.files.every((f) => typeof f?.name === 'string' && isCount(f.length) && isCount(f.crc32c))
    || (m.zeroFilled !== undefined && (!Array.isArray(m.zeroFilled) || !m.zeroFilled.every((z) => isCount(z?.localId) && isCount(z?.heldBytes))))) {
    throw new O3Error('INVALID_ARGUMENT', `Cannot import container ${id}: its manifest is malformed`)
  }
  return m as Manifest
}

/** A packed block's bytes against its checksums, in the worker pool (its own buffer goes there and back). */
async function verifyPacked(b: BlockData, data: Uint8Array, what: string): Promise<void> {
  const checksums = b.chunks[0].checksums
  const body = new ArrayBuffer(data.length + checksums.length)
  new Uint8Array(body).set(data)
  new Uint8Array(body).set(checksums, data.length)
  const { badWindow } = await runVerifyChunk({ type: b.checksumType, bytesPerChecksum: b.bytesPerChecksum, body, dataLength: data.length, checksumsLength: checksums.length })
  if (badWindow >= 0) throw new CorruptSourceBlock(b.localId as LocalId, `${what}: packed block ${b.localId} fails its checksum at window ${badWindow}`)
}
