/** @module
 * `o3 sh volume|bucket|key ...`: the namespace commands of Ozone's shell, on the native client.
 */
import { createReadStream, createWriteStream, rmSync, statSync } from 'node:fs'
import { lstat, realpath, rename, rm, stat } from 'node:fs/promises'
import { basename, dirname, join } from 'node:path'
import { randomBytes } from 'node:crypto'
import { pipeline } from 'node:stream/promises'
import { Transform } from 'node:stream'
import { replicaLengthBytes } from '../core/ec-layout.ts'
import { O3Error } from '../core/errors.ts'
import { parseReplication, type KeyLocation } from '../core/wire.ts'
import { formatAcl, parseAcl, type OzoneAcl } from '../core/access/native-acl.ts'
import { clientSecurity } from './client-security.ts'
import { PLAIN_TRANSPORT } from '../core/rpc/transport.ts'
import { O3Client, type AclObject, type BucketInfo, type KeyInfo, type VolumeInfo } from '../datapath/client/index.ts'
import { flag, option, parsePath, SAFE_RANGE, stringOption, UsageError, type Invocation } from './args.ts'
import { formatBytes, formatTime, printFields, printJson, printTable, progressBar } from './output.ts'

function keyJson(k: KeyInfo) {
  return {
    volume: k.volume, bucket: k.bucket, name: k.name, size: k.size, replication: k.replication, checksumType: k.checksumType,
    createdAt: formatTime(k.createdAtMs), modifiedAt: formatTime(k.modifiedAtMs), metadata: k.metadata,
    blocks: k.locations.map((l) => ({ containerId: l.blockId.containerId, localId: l.blockId.localId, offset: l.offset, length: l.length, pipelineId: l.pipeline.id, datanodes: datanodesJson(l) })),
  }
}

/**
 * A block's datanodes; for an EC block group (whose `length` is the group's key bytes), each
 * with the replica index it holds (nodes[i] holds index i + 1), data or parity, and its bytes.
 */
function datanodesJson(l: KeyLocation): { id: string; address: string; replicaIndex?: number; role?: 'data' | 'parity'; replicaBytes?: number }[] {
  const r = parseReplication(l.pipeline.replication)
  if (r.ec === undefined) return l.pipeline.nodes.map((n) => ({ id: n.id, address: n.address }))
  const s = r.ec
  return l.pipeline.nodes.map((n, i) => ({ id: n.id, address: n.address, replicaIndex: i + 1, role: i < s.data ? 'data' : 'parity', replicaBytes: replicaLengthBytes(s, l.length, i + 1) }))
}

/** Ozone's quota units (OzoneQuota.Units), powers of 1024; KiB, MiB ... are accepted as the same. */
const QUOTA_UNITS: [string, number][] = [['PB', 1024 ** 5], ['TB', 1024 ** 4], ['GB', 1024 ** 3], ['MB', 1024 ** 2], ['KB', 1024], ['B', 1]]

/**
 * A space quota as Ozone's OzoneQuota.parseSpaceQuota reads it: a positive whole number,
 * optionally followed by B, KB, MB, GB, TB or PB (any case, spaces ignored; 1 KB = 1024 B).
 * Decimals are refused, as in Ozone; so is anything past 2^53 - 1 bytes, the most O3 stores exactly.
 */
export function parseSpaceQuota(text: string): number {
  const t = text.toUpperCase().replace(/\s+/g, '').replace(/([KMGTP])IB$/, '$1B')
  const [unit, scale] = QUOTA_UNITS.find(([u]) => t.endsWith(u)) ?? ['', 1]
  const digits = t.slice(0, t.length - unit.length)
  if (!/^\d+$/.test(digits) || /^0+$/.test(digits)) {
    throw new UsageError(`invalid space quota ${JSON.stringify(text)}: a positive whole number of B, KB, MB, GB, TB or PB (powers of 1024), e.g. 10GB`)
  }
  const bytes = Number(digits) * scale
  // 8PB is 2^53 bytes, one past the limit: the message gives the limit in bytes, not as a unit it refuses.
  if (!Number.isSafeInteger(bytes)) throw new UsageError(`invalid space quota ${JSON.stringify(text)}: more than 2^53 - 1 bytes (${Number.MAX_SAFE_INTEGER}, just under 8 PiB), the most O3 stores exactly`)
  return bytes
}

/** A namespace quota as Ozone's OzoneQuota.parseNameSpaceQuota reads it: a positive whole number. */
export function parseNamespaceQuota(text: string): number {
  const n = Number(text.trim())
  if (!/^\d+$/.test(text.trim()) || n < 1) throw new UsageError(`invalid namespace quota ${JSON.stringify(text)}: a positive whole number`)
  if (!Number.isSafeInteger(n)) throw new UsageError(`invalid namespace quota ${JSON.stringify(text)}: out of range (${SAFE_RANGE})`)
  return n
}

/** The quotas --space-quota and --namespace-quota give (each undefined when absent). */
function quotaOptions(inv: Invocation): { quotaBytes?: number; quotaNamespace?: number } {
  const space = stringOption(inv, 'space-quota')
  const namespace = stringOption(inv, 'namespace-quota')
  return {
    ...(space === undefined ? {} : { quotaBytes: parseSpaceQuota(space) }),
    ...(namespace === undefined ? {} : { quotaNamespace: parseNamespaceQuota(namespace) }),
  }
}

/** What setquota sends: at least one of the quotas (Ozone: "At least one of the quota set flag is required"). */
function setQuotaArgs(inv: Invocation): { quotaBytes?: number; quotaNamespace?: number } {
  const q = quotaOptions(inv)
  if (q.quotaBytes === undefined && q.quotaNamespace === undefined) throw new UsageError('setquota needs --space-quota SIZE, --namespace-quota N or both')
  return q
}

/** What clrquota sends: -1 (Ozone's QUOTA_RESET) for each quota it clears, at least one. */
function clearQuotaArgs(inv: Invocation): { quotaBytes?: number; quotaNamespace?: number } {
  const q = { ...(flag(inv, 'space-quota') ? { quotaBytes: -1 } : {}), ...(flag(inv, 'namespace-quota') ? { quotaNamespace: -1 } : {}) }
  if (q.quotaBytes === undefined && q.quotaNamespace === undefined) throw new UsageError('clrquota needs --space-quota, --namespace-quota or both')
  return q
}

const quotaText = (q: number, bytes: boolean) => (q <= 0 ? 'none' : bytes ? `${formatBytes(q)} (${q} bytes)` : String(q))

/** The quota and usage fields of `volume info` and `bucket info` (tables; --json prints the record). */
function volumeFields(v: VolumeInfo) {
  return { name: v.name, owner: v.owner, created: formatTime(v.createdAtMs), spaceQuota: quotaText(v.quotaBytes, true), usedBytes: `${formatBytes(v.usedBytes ?? 0)} (replicated, in its buckets)`, namespaceQuota: quotaText(v.quotaNamespace, false), buckets: v.usedNamespace ?? '-' }
}

function bucketFields(b: BucketInfo) {
  return {
    volume: b.volume, name: b.name, owner: b.owner, layout: b.layout, replication: b.replication, checksum: b.checksumType,
    spaceQuota: quotaText(b.quotaBytes, true), usedBytes: `${formatBytes(b.usedBytes)} (replicated)`, namespaceQuota: quotaText(b.quotaNamespace, false), keys: b.usedNamespace, created: formatTime(b.createdAtMs),
  }
}

/**
 * After `err` from an op in `volume`: if that is the S3 buckets' volume (s3v) and it does not
 * exist yet, makes it as the S3 gateway does on first use (Ozone's OM makes it at start), so
 * that `o3 sh bucket create /s3v/NAME --replication EC/...` works before any S3 request; then
 * runs `op` again. Any other error is thrown.
 */
async function withS3Volume<T>(client: O3Client, volume: string, err: unknown, op: () => Promise<T>): Promise<T> {
  if (!(err instanceof O3Error && err.code === 'VOLUME_NOT_FOUND')) throw err
  // Loaded only here: the gateway's module is large for a command that does not need it.
  const { S3_VOLUME } = await import('../datapath/s3/index.ts')
  if (volume !== S3_VOLUME) throw err
  await client.createVolume(volume, { owner: 's3' }).catch((e: unknown) => {
    if (!(e instanceof O3Error && e.code === 'VOLUME_ALREADY_EXISTS')) throw e
  })
  return op()
}

/** Runs `o3 sh KIND VERB`; args.ts has checked its options and the number of its arguments. */
export async function sh(inv: Invocation): Promise<void> {
  const [, , kind, verb] = inv.path
  const { positionals } = inv
  const replication = stringOption(inv, 'replication')
  const security = clientSecurity()
  const client = new O3Client({ om: option(inv, 'om'), scm: option(inv, 'scm'), ...security })
  // Without security the OM knows no caller: new volumes and buckets are this login's. With
  // it, the OM makes them the signed-in user's: naming $USER would hand them to whoever that says.
  const owner = security.credentials === undefined && security.transport === PLAIN_TRANSPORT ? process.env.USER || 'o3' : undefined
  const json = flag(inv, 'json')
  const out = (value: unknown, human: () => void) => (json ? printJson(value) : human())
  if (verb === 'addacl' || verb === 'removeacl' || verb === 'setacl' || verb === 'getacl') return aclCommand(client, kind as AclObject['kind'], verb, inv, json)
  switch (`${kind} ${verb}`) {
    case 'volume create': {
      const { volume } = parsePath(positionals[0], 'volume')
      const v = await client.createVolume(volume, { owner, ...quotaOptions(inv) })
      return out(v, () => console.log(`created volume /${v.name}`))
    }
    case 'volume info': {
      const v = await client.getVolume(parsePath(positionals[0], 'volume').volume)
      return out(v, () => printFields(volumeFields(v)))
    }
    case 'volume setquota':
    case 'volume clrquota': {
      const { volume } = parsePath(positionals[0], 'volume')
      const v = await client.setVolumeQuota(volume, verb === 'setquota' ? setQuotaArgs(inv) : clearQuotaArgs(inv))
      return out(v, () => console.log(`volume /${volume}: space quota ${quotaText(v.quotaBytes, true)}, namespace quota ${quotaText(v.quotaNamespace, false)}`))
    }
    case 'volume list': {
      const vs = await client.listVolumes()
      return out(vs, () => printTable(['volume', 'owner', 'created'], vs.map((v) => [v.name, v.owner, formatTime(v.createdAtMs)])))
    }
    case 'volume delete': {
      const { volume } = parsePath(positionals[0], 'volume')
      await client.deleteVolume(volume)
      return out({ deleted: volume }, () => console.log(`deleted volume /${volume}`))
    }
    case 'bucket create': {
      const { volume, bucket } = parsePath(positionals[0], 'bucket')
      const create = () => client.createBucket(volume, bucket, { replication, owner, ...quotaOptions(inv) })
      const b = await create().catch((err: unknown) => withS3Volume(client, volume, err, create))
      return out(b, () => console.log(`created bucket /${volume}/${bucket} (${b.replication})`))
    }
    case 'bucket info': {
      const { volume, bucket } = parsePath(positionals[0], 'bucket')
      const b = await client.getBucket(volume, bucket)
      return out(b, () => printFields(bucketFields(b)))
    }
    case 'bucket setquota':
    case 'bucket clrquota': {
      const { volume, bucket } = parsePath(positionals[0], 'bucket')
      const b = await client.setBucketQuota(volume, bucket, verb === 'setquota' ? setQuotaArgs(inv) : clearQuotaArgs(inv))
      return out(b, () => console.log(`bucket /${volume}/${bucket}: space quota ${quotaText(b.quotaBytes, true)}, namespace quota ${quotaText(b.quotaNamespace, false)}`))
    }
    case 'bucket list': {
      const { volume } = parsePath(positionals[0], 'volume')
      const bs = await client.listBuckets(volume)
      return out(bs, () => printTable(['bucket', 'replication', 'keys', 'used (replicated)', 'space quota', 'created'], bs.map((b) => [b.name, b.replication, b.usedNamespace, formatBytes(b.usedBytes), quotaText(b.quotaBytes, true), formatTime(b.createdAtMs)])))
    }
    case 'bucket delete': {
      const { volume, bucket } = parsePath(positionals[0], 'bucket')
      await client.deleteBucket(volume, bucket)
      // An S3 bucket's unfinished uploads go with it, as S3's DeleteBucket drops them.
      const { S3_VOLUME, MULTIPART_VOLUME } = await import('../datapath/s3/index.ts')
      if (volume === S3_VOLUME) await client.deleteBucketWithKeys(MULTIPART_VOLUME, bucket)
      return out({ deleted: `${volume}/${bucket}` }, () => console.log(`deleted bucket /${volume}/${bucket}`))
    }
    case 'key put': {
      const { volume, bucket, key } = parsePath(positionals[0], 'key')
      const file = positionals[1]
      if (file === undefined) throw new UsageError('key put needs a FILE to upload')
      const st = statSync(file)
      if (st.isDirectory()) throw new UsageError(`${file} is a directory: key put uploads one file`)
      const size = st.size
      const bar = await progressBar(size, 'put', json)
      // Ctrl-C (or SIGTERM) aborts the key, so that its blocks are not kept for the OM's
      // open-key expiry; the exit waits for that. Again, and it quits at once.
      let w: Awaited<ReturnType<typeof client.createKey>> | undefined
      let stoppedBy: NodeJS.Signals | undefined
      // Once the file is read whole the key is being committed: it finishes, and is reported.
      const stop = () => { if (w !== undefined && !w.writableEnded) w.destroy(new Error(`interrupted by ${stoppedBy}`)) }
      const interrupted = (signal: NodeJS.Signals) => {
        stoppedBy = signal
        process.once(signal, () => process.exit(signalExitCode(signal)))
        stop()
      }
      process.once('SIGINT', interrupted)
      process.once('SIGTERM', interrupted)
      try {
        w = await client.createKey(volume, bucket, key, { replication, sizeBytes: size, onProgress: (n) => bar.update(n) })
        if (stoppedBy !== undefined) stop()
        await pipeline(createReadStream(file, { highWaterMark: client.chunkSizeBytes }), w)
      } catch (err) {
        await w?.result.catch(() => {})
        if (stoppedBy !== undefined) {
          bar.stop()
          process.exit(signalExitCode(stoppedBy))
        }
        throw err
      } finally {
        bar.stop()
        process.off('SIGINT', interrupted)
        process.off('SIGTERM', interrupted)
      }
      const k = await w.result
      return out(keyJson(k), () => console.log(`put /${volume}/${bucket}/${key} (${formatBytes(k.size)})`))
    }
    case 'key get': {
      const { volume, bucket, key } = parsePath(positionals[0], 'key')
      const file = positionals[1]
      if (file === undefined) throw new UsageError('key get needs a FILE to write')
      // Where it goes is settled before a byte is read: a directory or a refused overwrite costs no download.
      const target = await downloadTarget(file, key, flag(inv, 'force'))
      const r = await client.readKey(volume, bucket, key)
      const bar = await progressBar(r.key.size, 'get', json)
      let done = 0
      const count = new Transform({ transform(chunk: Buffer, _e, cb) { done += chunk.length; bar.update(done); cb(null, chunk) } })
      try {
        if (target.into === 'stdout') await pipeline(r, count, process.stdout, { end: false })
        else if (target.into === 'in place') await pipeline(r, count, createWriteStream(target.path))
        else await writeWhole(target.path, (into) => pipeline(r, count, into))
      } finally { bar.stop() }
      const summary = { key: `${volume}/${bucket}/${key}`, file: target.path, size: done }
      // Written to standard output: what is said about it goes to stderr, apart from the bytes.
      if (target.into === 'stdout') return console.error(json ? JSON.stringify(summary) : `got /${volume}/${bucket}/${key} -> standard output (${formatBytes(done)})`)
      return out(summary, () => console.log(`got /${volume}/${bucket}/${key} -> ${target.path} (${formatBytes(done)})`))
    }
    case 'key info': {
      const { volume, bucket, key } = parsePath(positionals[0], 'key')
      const k = keyJson(await client.headKey(volume, bucket, key))
      return out(k, () => {
        printFields({ key: `/${k.volume}/${k.bucket}/${k.name}`, size: `${formatBytes(k.size)} (${k.size} bytes)`, replication: k.replication, checksum: k.checksumType, created: k.createdAt, modified: k.modifiedAt })
        const isGroup = (b: (typeof k.blocks)[number]) => b.datanodes.some((d) => d.replicaIndex !== undefined)
        const [groups, blocks] = [k.blocks.filter(isGroup), k.blocks.filter((b) => !isGroup(b))]
        if (blocks.length > 0) printTable(['containerId', 'localId', 'offset', 'length', 'datanodes'], blocks.map((b) => [b.containerId, b.localId, b.offset, b.length, b.datanodes.map((d) => d.address).join(' ')]))
        // An EC block group: one row per replica, with its index (1..k data, then parity).
        if (groups.length > 0) {
          printTable(['block group', 'offset', 'length', 'index', 'role', 'replica bytes', 'datanode'], groups.flatMap((b) => b.datanodes.map((d) => [
            `${b.containerId}:${b.localId}`, b.offset, b.length, d.replicaIndex!, d.role!, d.replicaBytes!, d.address,
          ])))
        }
      })
    }
    case 'key list': {
      const { volume, bucket } = parsePath(positionals[0], 'bucket')
      const max = stringOption(inv, 'max')
      const maxKeys = max === undefined ? undefined : Number(max)
      if (maxKeys !== undefined && (!/^\d+$/.test(max!) || maxKeys < 1)) throw new UsageError(`--max must be a positive whole number, not ${JSON.stringify(max)}`)
      if (maxKeys !== undefined && !Number.isSafeInteger(maxKeys)) throw new UsageError(`--max ${max} is out of range (${SAFE_RANGE}; a page holds up to 1000 keys)`)
      const r = await client.listKeys(volume, bucket, { prefix: stringOption(inv, 'prefix'), startAfter: stringOption(inv, 'start-after'), maxKeys })
      const keys = r.keys.map((k) => ({ name: k.name, size: k.size, replication: k.replication, modifiedAt: formatTime(k.modifiedAtMs) }))
      return out({ keys, truncated: r.truncated, nextStartAfter: r.nextStartAfter }, () => {
        printTable(['key', 'size', 'replication', 'modified'], keys.map((k) => [k.name, formatBytes(k.size), k.replication, k.modifiedAt]))
        if (r.truncated) console.log(`(more: --start-after ${r.nextStartAfter})`)
      })
    }
    case 'key delete': {
      const { volume, bucket, key } = parsePath(positionals[0], 'key')
      await client.deleteKey(volume, bucket, key)
      return out({ deleted: `${volume}/${bucket}/${key}` }, () => console.log(`deleted /${volume}/${bucket}/${key}`))
    }
    case 'key rename': {
      const { volume, bucket, key } = parsePath(positionals[0], 'key')
      let to = positionals[1]
      if (to === undefined) throw new UsageError('key rename needs the NEWKEY name')
      // NEWKEY given as a full path (as the source is): the same bucket's key it names, not a key called "/v/b/k".
      if (to.startsWith('/') || to.startsWith('o3://')) {
        const target = parsePath(to, 'key')
        if (target.volume !== volume || target.bucket !== bucket) throw new UsageError(`key rename stays within its bucket: ${to} is not in /${volume}/${bucket}`)
        to = target.key
      }
      await client.renameKey(volume, bucket, key, to)
      return out({ renamed: `${volume}/${bucket}/${key}`, to }, () => console.log(`renamed /${volume}/${bucket}/${key} -> ${to}`))
    }
    default:
      throw new Error(`o3 sh ${kind} ${verb} is in the command table but has no handler`)
  }
}

/** The object a path names for an ACL command of `kind`. */
function aclObject(kind: AclObject['kind'], path: string | undefined): AclObject {
  if (kind === 'volume') return { kind, volume: parsePath(path, 'volume').volume }
  if (kind === 'bucket') {
    const { volume, bucket } = parsePath(path, 'bucket')
    return { kind, volume, bucket }
  }
  const { volume, bucket, key } = parsePath(path, 'key')
  return { kind, volume, bucket, key }
}

const objectPath = (o: AclObject) => (o.kind === 'volume' ? `/${o.volume}` : o.kind === 'bucket' ? `/${o.volume}/${o.bucket}` : `/${o.volume}/${o.bucket}/${o.key}`)

/** getacl's table and JSON (Ozone's getacl prints type, name, scope and rights). */
function printAcls(acls: OzoneAcl[], json: boolean): void {
  if (json) return printJson(acls.map((a) => ({ type: a.type, name: a.name, scope: a.scope, rights: a.rights, acl: formatAcl(a) })))
  printTable(['type', 'name', 'rights', 'scope', 'acl'], acls.map((a) => [a.type, a.name === '' ? '-' : a.name, a.rights.join(','), a.scope, formatAcl(a)]))
}

/** `o3 sh volume|bucket|key addacl|removeacl|setacl|getacl PATH [-a ACL]`. */
async function aclCommand(client: O3Client, kind: AclObject['kind'], verb: 'addacl' | 'removeacl' | 'setacl' | 'getacl', inv: Invocation, json: boolean): Promise<void> {
  const object = aclObject(kind, inv.positionals[0])
  if (verb === 'getacl') return printAcls(await client.getAcl(object), json)
  const text = stringOption(inv, 'acl')
  if (text === undefined || text.trim() === '') throw new UsageError(`${verb} needs --acl (-a), e.g. -a user:bob:rw`)
  // Parsed here too, so that a typo is a usage error before any call.
  const parse = (t: string) => {
    try { return parseAcl(t) } catch (err) { throw new UsageError((err as Error).message) }
  }
  const r = verb === 'setacl' ? await client.setAcl(object, text.split(',').map(parse))
    : verb === 'addacl' ? await client.addAcl(object, parse(text)) : await client.removeAcl(object, parse(text))
  if (json) return printJson({ object: objectPath(object), changed: r.changed, acls: r.acls.map(formatAcl) })
  const what = verb === 'setacl' ? 'set the ACLs of' : verb === 'addacl' ? (r.changed ? 'added ACL to' : 'ACL already on') : (r.changed ? 'removed ACL from' : 'ACL not on')
  console.log(`${what} ${kind} ${objectPath(object)}: ${r.acls.map(formatAcl).join(' ') || '(none)'}`)
}

/**
 * Where `key get` writes: standard output for `-` or /dev/stdout (whatever it is redirected
 * to); into DIR/<the key's last name> for a directory (as Ozone's get); a pipe, character
 * device or socket in place (renaming a file over it would replace /dev/null or a FIFO for
 * everyone), a block device in place only with --force; through a symbolic link to the file it
 * names (the link stays). An existing file is replaced only with --force (Ozone: "Download
 * would overwrite an existing file. Aborting."), and refused before anything is downloaded.
 */
async function downloadTarget(file: string, key: string, force: boolean): Promise<{ path: string; into: 'stdout' | 'in place' | 'whole' }> {
  if (file === '-' || file === '/dev/stdout') return { path: '-', into: 'stdout' }
  let path = file
  let st = await stat(path).catch(() => undefined)
  if (st?.isDirectory() === true) {
    const name = basename(key)
    if (name === '' || name === '.' || name === '..') throw new UsageError(`cannot name a file in ${file} after key ${JSON.stringify(key)}`)
    path = join(file, name)
    st = await stat(path).catch(() => undefined)
    if (st?.isDirectory() === true) throw new UsageError(`${path} is a directory`)
  }
  if (st?.isBlockDevice() === true && !force) throw new UsageError(`${path} is a block device: writing the key over it needs --force`)
  if (st !== undefined && !st.isFile()) return { path, into: 'in place' }
  // The file is written beside its place, then renamed: its directory must exist.
  const dir = dirname(path)
  if ((await stat(dir).catch(() => undefined))?.isDirectory() !== true) throw new UsageError(`cannot write ${path}: there is no directory ${dir}`)
  const linked = await lstat(path).catch(() => undefined)
  if (linked !== undefined && !force) throw new UsageError(`${path} exists: the download would replace it (add --force)`)
  // A link to a file: the file it names is replaced, beside itself; a dangling link itself.
  if (linked?.isSymbolicLink() === true && st !== undefined) path = await realpath(path)
  return { path, into: 'whole' }
}

/** A shell's exit code for a command stopped by `signal` (128 + its number). */
function signalExitCode(signal: NodeJS.Signals): number {
  return signal === 'SIGINT' ? 130 : 143
}

/**
 * Writes `path` whole or not at all: into a new file beside it, renamed over it once
 * complete; removed when the write fails or the command is interrupted (Ctrl-C, SIGTERM).
 */
async function writeWhole(path: string, write: (into: NodeJS.WritableStream) => Promise<void>): Promise<void> {
  // Its own name: another get of the same file at the same time has its own part file.
  const tmp = `${path}.o3-part-${process.pid}-${randomBytes(4).toString('hex')}`
  const interrupted = (signal: NodeJS.Signals) => {
    rmSync(tmp, { force: true })
    process.exit(signalExitCode(signal))
  }
  process.once('SIGINT', interrupted)
  process.once('SIGTERM', interrupted)
  try {
    // 'wx': a file or link already at the temporary name is not written through.
    await write(createWriteStream(tmp, { flags: 'wx' }))
    await rename(tmp, path)
  } catch (err) {
    await rm(tmp, { force: true })
    // The part file's name means nothing to the user: say which file could not be written, and why.
    const e = err as NodeJS.ErrnoException
    if (e.path === tmp && e.code !== undefined) throw new Error(`cannot write ${path}: ${whyNotWritten(path, e)} (${e.code})`)
    throw err
  } finally {
    process.off('SIGINT', interrupted)
    process.off('SIGTERM', interrupted)
  }
}

/** Why the part file beside `path` could not be made or written, in the user's terms. */
function whyNotWritten(path: string, e: NodeJS.ErrnoException): string {
  if (e.code === 'ENOSPC') return 'no space left on the device'
  if (['ENOENT', 'EACCES', 'EPERM', 'EROFS'].includes(e.code!)) return `${dirname(path)} does not take new files`
  return e.message
}
