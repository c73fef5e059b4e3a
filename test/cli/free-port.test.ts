/**
 * Goal: `--ports free` and the tests' clusters never get one port twice: freePort gives ports
 * below the ephemeral range that nothing listens on, never the same one twice in a process,
 * and a port it gave is reserved from every other process's freePort until the giver exits.
 * Method: real sockets on loopback; a second Node process asks for the ports this one holds.
 */
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { execFile } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { createServer } from 'node:net'
import { promisify } from 'node:util'
import { freePort, reservePort } from '../../cli/free-port.ts'

const execFileAsync = promisify(execFile)
const freePortModule = new URL('../../cli/free-port.js', import.meta.url).href

/** What reservePort answers in another process, for each of `ports`. */
async function reservableElsewhere(ports: number[]): Promise<boolean[]> {
  const script = `const { reservePort } = await import(${JSON.stringify(freePortModule)}); console.log(JSON.stringify(await Promise.all(${JSON.stringify(ports)}.map(reservePort)))); process.exit(0)`
  const { stdout } = await execFileAsync(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8', timeout: 20_000 })
  return JSON.parse(stdout) as boolean[]
}

test('freePort gives distinct ports nothing listens on, below the ephemeral range', async () => {
  const low = process.platform === 'linux' ? Number(readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').trim().split(/\s+/)[0]) : 32_768
  const ports: number[] = []
  for (let i = 0; i < 300; i++) ports.push(await freePort())
  assert.is(new Set(ports).size, ports.length, 'a port given twice')
  for (const p of ports) assert.ok(p >= 10_240 && p < Math.max(low, 11_240), `port ${p} outside [10240, ${low})`)
  // Each one can be listened on (nothing took it), as a service would.
  for (const p of ports.slice(0, 20)) {
    await new Promise<void>((res, rej) => { const s = createServer(); s.once('error', rej); s.listen(p, '127.0.0.1', () => s.close(() => res())) })
  }
})

test('a port given here is reserved from other processes while this one lives', async () => {
  if (process.platform !== 'linux') return // the claim is a Linux abstract socket; elsewhere it is per process
  const given = [await freePort(), await freePort(), await freePort()]
  assert.equal(await reservableElsewhere(given), [false, false, false], 'another process could claim a port this one was given')
  assert.is(await reservePort(given[0]), false, 'this process could claim a port it already gave')
})

test('the reservation dies with the process that holds it', async () => {
  if (process.platform !== 'linux') return
  const script = `const { freePort } = await import(${JSON.stringify(freePortModule)}); console.log(JSON.stringify([await freePort(), await freePort()])); process.exit(0)`
  const { stdout } = await execFileAsync(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8', timeout: 20_000 })
  const theirs = JSON.parse(stdout) as number[]
  assert.is(theirs.length, 2)
  // Their process has exited: its claims went with it, so this one can claim the ports.
  assert.equal(await Promise.all(theirs.map(reservePort)), [true, true])
})

test.run()
