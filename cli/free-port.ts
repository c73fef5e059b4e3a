/** @module
 * Free loopback ports for settings that must name a port before anything listens on it
 * (`--ports free`, Raft groups, tests): below the ephemeral range, and reserved machine-wide
 * for a while so that two callers, in this process or another, never get the same one.
 */
import { readFileSync } from 'node:fs'
import { createServer } from 'node:net'
import { O3Error } from '../core/errors.ts'

/** Lowest port freePort picks: above every fixed port of `o3 local` (HA ones included). */
const FREE_PORT_MIN = 10_240
/** Tries at a random port before freePort settles for one the OS picks. */
const FREE_PORT_TRIES_MAX = 50
/**
 * How long a port freePort gave is kept from every other freePort call: longer than the
 * slowest start of a cluster on a loaded machine (a service binds its port within it).
 */
const FREE_PORT_RESERVED_MS = 180_000

/** Ports this process gave out within FREE_PORT_RESERVED_MS. */
const givenHere = new Set<number>()

/** Where the OS takes ports for outgoing connections and port 0 (Linux: ip_local_port_range). */
function ephemeralPortsFrom(): number {
  try {
    const low = Number(readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').trim().split(/\s+/)[0])
    if (Number.isSafeInteger(low) && low > FREE_PORT_MIN + 1000) return low
  } catch { /* not Linux */ }
  return 32_768
}

function listenOnce(port: number): Promise<number | undefined> {
  return new Promise((res) => {
    const s = createServer()
    s.once('error', () => res(undefined))
    s.listen(port, '127.0.0.1', () => { const p = (s.address() as { port: number }).port; s.close(() => res(p)) })
  })
}

/**
 * Claims `port` for FREE_PORT_RESERVED_MS. On Linux the claim is an abstract Unix socket named
 * after the port, which every process's freePort sees (and the kernel drops when the holder
 * exits); elsewhere only this process's own calls see it.
 */
export function reservePort(port: number): Promise<boolean> {
  if (givenHere.has(port)) return Promise.resolve(false)
  return new Promise((res) => {
    const claim = createServer()
    const held = (): void => {
      givenHere.add(port)
      setTimeout(() => { givenHere.delete(port); claim.close() }, FREE_PORT_RESERVED_MS).unref()
      res(true)
    }
    claim.once('error', (err: NodeJS.ErrnoException) => (err.code === 'EADDRINUSE' ? res(false) : held()))
    claim.listen(`\0o3-port-${port}`, () => { claim.unref(); held() })
  })
}

/**
 * A loopback port free right now and given to no other caller for FREE_PORT_RESERVED_MS.
 * Picked below the ephemeral range: a port from there (what port 0 gives) can be taken by any
 * outgoing connection before the service binds it, which a busy machine does within the
 * seconds a cluster takes to start.
 */
export async function freePort(): Promise<number> {
  const high = ephemeralPortsFrom()
  for (let i = 0; i < FREE_PORT_TRIES_MAX; i++) {
    const p = FREE_PORT_MIN + Math.floor(Math.random() * (high - FREE_PORT_MIN))
    if (givenHere.has(p) || await listenOnce(p) === undefined) continue
    if (await reservePort(p)) return p
  }
  const p = await listenOnce(0)
  if (p === undefined) throw new O3Error('UNAVAILABLE', 'Cannot find a free port on 127.0.0.1')
  return p
}
