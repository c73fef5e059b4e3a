/** @module
 * The bare baseline: a plain `node:http` server that stores request bodies in files with
 * nothing in between (no checksums, no metadata, no replication protocol; the benchmark runs
 * it in a child process, bench/server-process.ts), and the undici client that drives it. What
 * O3 does on the same machine is reported as a ratio to these figures.
 * Routes: PUT /large?files=N (the body into N new files, written in parallel), GET /large
 * (the first file of the last PUT back), PUT /small/<n> (the body into a new file), GET
 * /small/<n> (that file back). Only loopback.
 * Every PUT writes new files, as a store does: rewriting the same files would measure the
 * kernel reusing their page-cache pages, which on this VM costs a tenth of writing new data
 * (bench/README.md, "The bare baseline writes new files").
 */
import { createServer, type IncomingMessage, type Server } from 'node:http'
import { createReadStream, createWriteStream, mkdirSync, statSync, type WriteStream } from 'node:fs'
import { writeFile } from 'node:fs/promises'
import { once } from 'node:events'
import { join } from 'node:path'
import { Pool } from 'undici'
import { assert } from '../core/assert.ts'

export class BareServer {
  private server: Server | undefined
  /** Large PUTs so far: each writes files of its own. */
  private largePuts = 0

  constructor(readonly dir: string) {
    mkdirSync(join(dir, 'small'), { recursive: true })
  }

  /** Listens on a free loopback port; returns the endpoint (http://127.0.0.1:port). */
  async start(): Promise<string> {
    this.server = createServer((req, res) => {
      if (req.method === 'GET') {
        const path = join(this.dir, req.url === '/large' ? `large-${this.largePuts - 1}-0` : new URL(req.url ?? '/', 'http://localhost').pathname)
        res.setHeader('content-length', statSync(path).size)
        // 1 MiB reads rather than the default 64 KiB: the baseline should be the best plain Node can do.
        createReadStream(path, { highWaterMark: 1024 * 1024 }).pipe(res)
        return
      }
      this.store(req).then(() => { res.statusCode = 204; res.end() }, (err: Error) => { res.statusCode = 500; res.end(err.message) })
    })
    this.server.listen(0, '127.0.0.1')
    await once(this.server, 'listening')
    const address = this.server.address()
    assert(address !== null && typeof address === 'object', 'server has no address')
    return `http://127.0.0.1:${address.port}`
  }

  async stop(): Promise<void> {
    this.server?.closeAllConnections()
    await new Promise<void>((resolve) => this.server === undefined ? resolve() : this.server.close(() => resolve()))
  }

  /** Stores a PUT body. */
  private async store(req: IncomingMessage): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://localhost')
    if (url.pathname === '/large') {
      const files = Number(url.searchParams.get('files') ?? '1')
      const put = this.largePuts++
      const streams = Array.from({ length: files }, (_, i) => createWriteStream(join(this.dir, `large-${put}-${i}`)))
      await teeInto(req, streams)
      return
    }
    const parts: Buffer[] = []
    for await (const part of req) parts.push(part as Buffer)
    await writeFile(join(this.dir, url.pathname), Buffer.concat(parts))
  }

}

/** The client side: an undici Pool to a BareServer's endpoint. */
export class BareClient {
  private readonly pool: Pool

  constructor(endpoint: string) {
    this.pool = new Pool(endpoint, { connections: 64, pipelining: 1 })
  }

  async put(path: string, body: Uint8Array): Promise<void> {
    const r = await this.pool.request({ method: 'PUT', path, body })
    await r.body.dump()
    if (r.statusCode !== 204) throw new Error(`Cannot PUT ${path}: status ${r.statusCode}`)
  }

  /** Reads a body back, counting its bytes without keeping them. */
  async getLength(path: string): Promise<number> {
    const r = await this.pool.request({ method: 'GET', path })
    let n = 0
    for await (const part of r.body) n += (part as Buffer).length
    if (r.statusCode !== 200) throw new Error(`Cannot GET ${path}: status ${r.statusCode}`)
    return n
  }

  async close(): Promise<void> {
    await this.pool.close()
  }
}

/** Writes every part of `source` to each stream, waiting for all to drain (back-pressure). */
async function teeInto(source: AsyncIterable<Buffer>, streams: WriteStream[]): Promise<void> {
  for await (const part of source) {
    const waits = streams.filter((s) => !s.write(part)).map((s) => once(s, 'drain'))
    if (waits.length > 0) await Promise.all(waits)
  }
  await Promise.all(streams.map((s) => new Promise<void>((resolve, reject) => { s.once('error', reject); s.end(resolve) })))
}
