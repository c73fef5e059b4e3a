/** @module
 * A server of the benchmark in its own process (`node dist/bench/server-process.js KIND DIR`):
 * `bare` (bench/bare-http.ts), `sink` (bench/s3.ts), `s3rver`, or `s3g`, an O3 S3 gateway
 * on a free port from O3_* settings (om.address, s3g.https, ...: bench/s3-tls.ts). Prints
 * `{"endpoint": ...}` once listening; stops on SIGTERM, SIGINT or when its stdin closes (the
 * benchmark exited), then exits so that a --cpu-prof profile is written.
 */
import { join } from 'node:path'
import S3rver from 's3rver'
import { loadConfig } from '../core/config.ts'
import { BareServer } from './bare-http.ts'
import { Sink } from './sink.ts'

export type ServerKind = 'bare' | 'sink' | 's3rver' | 's3g'

async function start(kind: string, dir: string): Promise<{ endpoint: string; stop: () => Promise<void> }> {
  switch (kind) {
    case 'bare': {
      const bare = new BareServer(dir)
      return { endpoint: await bare.start(), stop: () => bare.stop() }
    }
    case 'sink': {
      const sink = await Sink.start()
      return { endpoint: sink.endpoint, stop: () => sink.stop() }
    }
    case 's3rver': {
      const s3rver = new S3rver({ address: '127.0.0.1', port: 0, silent: true, directory: join(dir, 's3rver'), configureBuckets: [{ name: 'bench' }] })
      const address = await s3rver.run()
      return { endpoint: `http://127.0.0.1:${address.port}`, stop: () => s3rver.close() }
    }
    case 's3g': {
      // Loaded only here: the baseline servers' processes stay as lean as they were.
      const { S3Gateway } = await import('../datapath/s3/index.ts')
      const { closeWorkerPool } = await import('../datapath/workers/index.ts')
      const config = loadConfig({ env: process.env })
      const gateway = new S3Gateway({ config, omAddress: config['om.address'], scmAddress: config['scm.address'], port: 0 })
      await gateway.start()
      return { endpoint: gateway.endpoint, stop: async () => { await gateway.stop(); await closeWorkerPool() } }
    }
    default:
      throw new TypeError(`Unknown server ${kind}: expected bare, sink, s3rver or s3g`)
  }
}

async function main(): Promise<void> {
  const [kind, dir] = process.argv.slice(2)
  if (dir === undefined) throw new TypeError('Usage: server-process.js bare|sink|s3rver|s3g DIR')
  const server = await start(kind, dir)
  const stopped = new Promise<void>((resolve) => {
    process.once('SIGTERM', () => resolve())
    process.once('SIGINT', () => resolve())
    process.stdin.once('end', () => resolve())
    process.stdin.once('close', () => resolve())
    process.stdin.resume()
  })
  process.stdout.write(JSON.stringify({ endpoint: server.endpoint }) + '\n')
  await stopped
  await server.stop()
  process.exit(0)
}

main().catch((err: Error) => {
  console.error(`server-process failed: ${err.stack ?? err.message}`)
  process.exit(1)
})
