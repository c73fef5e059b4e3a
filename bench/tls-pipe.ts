/** @module
 * TLS alone, without O3 around it: bytes pushed through one loopback connection, plain TCP
 * beside TLS 1.3 (node:tls, the certificate the gateway serves), and full handshakes on new
 * connections; both ends run in this process, so its CPU time is what both sides pay. The
 * floor under what TLS can cost a gateway per MiB and per connection.
 */
import { once } from 'node:events'
import { createServer as createTcpServer, connect as tcpConnect, type AddressInfo, type Server, type Socket } from 'node:net'
import { createServer as createTlsServer, connect as tlsConnect } from 'node:tls'

export interface TlsPipeFigures {
  plain: { mbPerSec: number; cpuMsPerMiB: number }
  tls: { mbPerSec: number; cpuMsPerMiB: number; cipher: string }
  /** CPU both ends spent per full handshake (TLS 1.3, ECDSA P-256), one after another. */
  handshakeCpuUs: number
}

const MiB = 1024 * 1024
const PIECE_BYTES = 256 * 1024

function cpuNowMs(): number {
  const u = process.cpuUsage()
  return (u.user + u.system) / 1000
}

async function listen(server: Server): Promise<number> {
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  return (server.address() as AddressInfo).port
}

/** Writes `bytes` through `socket` (respecting back-pressure) while the server counts them; resolves when all arrived. */
async function push(socket: Socket, arrived: Promise<void>, bytes: number): Promise<void> {
  const piece = Buffer.alloc(PIECE_BYTES, 7)
  for (let sent = 0; sent < bytes; sent += PIECE_BYTES) {
    if (!socket.write(piece)) await once(socket, 'drain')
  }
  socket.end()
  await arrived
}

/** A server socket handler counting `bytes` and resolving `done` once they are in. */
function counter(bytes: number): { onSocket: (s: Socket) => void; done: Promise<void> } {
  let resolve!: () => void
  const done = new Promise<void>((r) => { resolve = r })
  return {
    done,
    onSocket: (s) => {
      let n = 0
      s.on('data', (d: Buffer) => { n += d.length; if (n >= bytes) resolve() })
      s.on('error', () => {})
    },
  }
}

async function timed(run: () => Promise<void>, bytes: number): Promise<{ mbPerSec: number; cpuMsPerMiB: number }> {
  const cpu = cpuNowMs(), started = performance.now()
  await run()
  const seconds = (performance.now() - started) / 1000
  return { mbPerSec: bytes / 1e6 / seconds, cpuMsPerMiB: (cpuNowMs() - cpu) / (bytes / MiB) }
}

/**
 * `rounds` times each, taking turns: plain then TLS over fresh connections (the TLS handshake
 * untimed); each figure is its best round (least CPU per MiB, most MB/s), since interference
 * from other work only ever adds. Then `handshakes` full handshakes one after another.
 */
export async function measureTlsPipe(options: { bytes: number; rounds?: number; handshakes: number; tls: { key: string; cert: string; ca: string } }): Promise<TlsPipeFigures> {
  const bytes = Math.ceil(options.bytes / PIECE_BYTES) * PIECE_BYTES
  const rounds = options.rounds ?? 3
  let c = counter(bytes)
  const tcp = createTcpServer((s) => c.onSocket(s))
  const server = createTlsServer({ key: options.tls.key, cert: options.tls.cert }, (s) => c.onSocket(s))
  try {
    const tcpPort = await listen(tcp)
    const port = await listen(server)
    const plainRuns: { mbPerSec: number; cpuMsPerMiB: number }[] = []
    const tlsRuns: { mbPerSec: number; cpuMsPerMiB: number }[] = []
    let cipher = ''
    for (let r = 0; r < rounds; r++) {
      c = counter(bytes)
      const p = tcpConnect(tcpPort, '127.0.0.1')
      await once(p, 'connect')
      plainRuns.push(await timed(() => push(p, c.done, bytes), bytes))
      c = counter(bytes)
      const s = tlsConnect({ port, host: '127.0.0.1', ca: options.tls.ca, servername: 'localhost' })
      await once(s, 'secureConnect')
      cipher = `${s.getProtocol()} ${s.getCipher().name}`
      tlsRuns.push(await timed(() => push(s, c.done, bytes), bytes))
    }
    const best = (runs: { mbPerSec: number; cpuMsPerMiB: number }[]) => ({ mbPerSec: Math.max(...runs.map((x) => x.mbPerSec)), cpuMsPerMiB: Math.min(...runs.map((x) => x.cpuMsPerMiB)) })
    // Handshakes: connect, complete, close; one at a time.
    const cpu = cpuNowMs()
    for (let i = 0; i < options.handshakes; i++) {
      const h = tlsConnect({ port, host: '127.0.0.1', ca: options.tls.ca, servername: 'localhost' })
      await once(h, 'secureConnect')
      h.destroy()
    }
    const handshakeCpuUs = ((cpuNowMs() - cpu) * 1000) / options.handshakes
    return { plain: best(plainRuns), tls: { ...best(tlsRuns), cipher }, handshakeCpuUs }
  } finally {
    tcp.close()
    server.close()
  }
}
