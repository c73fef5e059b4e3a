/** @module
 * `o3 sh volume|bucket|key ...`: the namespace commands of Ozone's shell, on the native client.
 */
import { createReadStream, createWriteStream, statSync } from 'node:fs'
import { rename, rm } from 'node:fs/promises'
import { pipeline } from 'node:stream/promises'
import { Transform } from 'node:stream'
import { O3Client, type KeyInfo } from '../datapath/client/index.ts'
import { flag, option, parsePath, stringOption, UsageError, type Invocation } from './args.ts'
import { formatBytes, formatTime, printFields, printJson, printTable, progressBar } from './output.ts'

function keyJson(k: KeyInfo) {
  return {
    volume: k.volume, bucket: k.bucket, name: k.name, size: k.size, replication: k.replication, checksumType: k.checksumType,
    createdAt: formatTime(k.createdAtMs), modifiedAt: formatTime(k.modifiedAtMs), metadata: k.metadata,
    blocks: k.locations.map((l) => ({ containerId: l.blockId.containerId, localId: l.blockId.localId, offset: l.offset, length: l.length, pipelineId: l.pipeline.id, datanodes: l.pipeline.nodes.map((n) => ({ id: n.id, address: n.address })) })),
  }
}

/** Runs `o3 sh KIND VERB`; args.ts has checked its options and the number of its arguments. */
export async function sh(inv: Invocation): Promise<void> {
  const [, , kind, verb] = inv.path
  const { positionals } = inv
  const replication = stringOption(inv, 'replication')
  const client = new O3Client({ om: option(inv, 'om'), scm: option(inv, 'scm') })
  const json = flag(inv, 'json')
  const out = (value: unknown, human: () => void) => (json ? printJson(value) : human())
  switch (`${kind} ${verb}`) {
    case 'volume create': {
      const { volume } = parsePath(positionals[0], 'volume')
      const v = await client.createVolume(volume, { owner: process.env.USER ?? 'o3' })
      return out(v, () => console.log(`created volume /${v.name}`))
    }
    case 'volume info': {
      const v = await client.getVolume(parsePath(positionals[0], 'volume').volume)
      return out(v, () => printFields({ name: v.name, owner: v.owner, created: formatTime(v.createdAtMs), quotaBytes: v.quotaBytes }))
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
      const b = await client.createBucket(volume, bucket, { replication, owner: process.env.USER ?? 'o3' })
      return out(b, () => console.log(`created bucket /${volume}/${bucket} (${b.replication})`))
    }
    case 'bucket info': {
      const { volume, bucket } = parsePath(positionals[0], 'bucket')
      const b = await client.getBucket(volume, bucket)
      return out(b, () => printFields({ volume: b.volume, name: b.name, owner: b.owner, layout: b.layout, replication: b.replication, checksum: b.checksumType, keys: b.keyCount, used: formatBytes(b.usedBytes), created: formatTime(b.createdAtMs) }))
    }
    case 'bucket list': {
      const { volume } = parsePath(positionals[0], 'volume')
      const bs = await client.listBuckets(volume)
      return out(bs, () => printTable(['bucket', 'replication', 'keys', 'used', 'created'], bs.map((b) => [b.name, b.replication, b.keyCount, formatBytes(b.usedBytes), formatTime(b.createdAtMs)])))
    }
    case 'bucket delete': {
      const { volume, bucket } = parsePath(positionals[0], 'bucket')
      await client.deleteBucket(volume, bucket)
      return out({ deleted: `${volume}/${bucket}` }, () => console.log(`deleted bucket /${volume}/${bucket}`))
    }
    case 'key put': {
      const { volume, bucket, key } = parsePath(positionals[0], 'key')
      const file = positionals[1]
      if (file === undefined) throw new UsageError('key put needs a FILE to upload')
      const size = statSync(file).size
      const bar = await progressBar(size, 'put')
      const w = await client.createKey(volume, bucket, key, { replication, sizeBytes: size, onProgress: (n) => bar.update(n) })
      try {
        await pipeline(createReadStream(file, { highWaterMark: client.chunkSizeBytes }), w)
      } finally { bar.stop() }
      const k = await w.result
      return out(keyJson(k), () => console.log(`put /${volume}/${bucket}/${key} (${formatBytes(k.size)})`))
    }
    case 'key get': {
      const { volume, bucket, key } = parsePath(positionals[0], 'key')
      const file = positionals[1]
      if (file === undefined) throw new UsageError('key get needs a FILE to write')
      const r = await client.readKey(volume, bucket, key)
      const bar = await progressBar(r.key.size, 'get')
      let done = 0
      const count = new Transform({ transform(chunk: Buffer, _e, cb) { done += chunk.length; bar.update(done); cb(null, chunk) } })
      // Written beside the target and renamed, so that a failed read leaves no partial file.
      const tmp = `${file}.o3-part`
      try {
        await pipeline(r, count, createWriteStream(tmp))
        await rename(tmp, file)
      } catch (err) {
        await rm(tmp, { force: true })
        throw err
      } finally { bar.stop() }
      return out({ key: `${volume}/${bucket}/${key}`, file, size: done }, () => console.log(`got /${volume}/${bucket}/${key} -> ${file} (${formatBytes(done)})`))
    }
    case 'key info': {
      const { volume, bucket, key } = parsePath(positionals[0], 'key')
      const k = keyJson(await client.headKey(volume, bucket, key))
      return out(k, () => {
        printFields({ key: `/${k.volume}/${k.bucket}/${k.name}`, size: k.size, replication: k.replication, checksum: k.checksumType, created: k.createdAt, modified: k.modifiedAt })
        printTable(['containerId', 'localId', 'offset', 'length', 'datanodes'], k.blocks.map((b) => [b.containerId, b.localId, b.offset, b.length, b.datanodes.map((d) => d.address).join(' ')]))
      })
    }
    case 'key list': {
      const { volume, bucket } = parsePath(positionals[0], 'bucket')
      const max = stringOption(inv, 'max')
      const maxKeys = max === undefined ? undefined : Number(max)
      if (maxKeys !== undefined && (!/^\d+$/.test(max!) || !Number.isSafeInteger(maxKeys) || maxKeys < 1)) throw new UsageError(`--max must be a positive whole number, not ${JSON.stringify(max)}`)
      const r = await client.listKeys(volume, bucket, { prefix: stringOption(inv, 'prefix'), startAfter: stringOption(inv, 'start-after'), maxKeys })
      const keys = r.keys.map((k) => ({ name: k.name, size: k.size, replication: k.replication, modifiedAt: formatTime(k.modifiedAtMs) }))
      return out({ keys, truncated: r.truncated, nextStartAfter: r.nextStartAfter }, () => {
        printTable(['key', 'size', 'replication', 'modified'], keys.map((k) => [k.name, k.size, k.replication, k.modifiedAt]))
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
      const to = positionals[1]
      if (to === undefined) throw new UsageError('key rename needs the NEWKEY name')
      await client.renameKey(volume, bucket, key, to)
      return out({ renamed: `${volume}/${bucket}/${key}`, to }, () => console.log(`renamed /${volume}/${bucket}/${key} -> ${to}`))
    }
    default:
      throw new Error(`o3 sh ${kind} ${verb} is in the command table but has no handler`)
  }
}
