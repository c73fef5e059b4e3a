/** @module
 * The sink of the S3 benchmark: a bare node:http server that accepts any request, drains PUT
 * bodies and answers GETs from memory. Run in a child process (bench/server-process.ts).
 */
import { createServer, type Server } from 'node:http'
import { once } from 'node:events'
import { assert } from '../core/assert.ts'

/**
 * Accepts any request without checking it: PUT bodies are drained and their lengths kept by
 * path, GET answers that many bytes from one preallocated buffer. What the generator reaches
 * against it is the most it can measure of any server.
 */
export class Sink {
  private readonly lengths = new Map<string, number>()
  private readonly zeros = Buffer.alloc(64 * 1024 * 1024)

  private constructor(private readonly server: Server, readonly endpoint: string) {}

  static async start(): Promise<Sink> {
    let sink: Sink | undefined
    const server = createServer((req, res) => {
      const path = req.url ?? '/'
      if (req.method === 'GET') {
        const n = sink!.lengths.get(path) ?? 0
        res.writeHead(200, { 'content-length': n })
        res.end(sink!.zeros.subarray(0, n))
        return
      }
      let n = 0
      req.on('data', (part: Buffer) => { n += part.length })
      req.on('end', () => { sink!.lengths.set(path, n); res.writeHead(200, { etag: '"0"' }); res.end() })
    })
    server.listen(0, '127.0.0.1')
    await once(server, 'listening')
    const address = server.address()
    assert(address !== null && typeof address === 'object', 'sink has no address')
    sink = new Sink(server, `http://127.0.0.1:${address.port}`)
    return sink
  }

  async stop(): Promise<void> {
    this.server.closeAllConnections()
    await new Promise<void>((resolve) => this.server.close(() => resolve()))
  }
}
