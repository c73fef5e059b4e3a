/** @module
 * What TLS at the edge costs (issue 16): two S3 gateways on the benchmark's `o3 local`, each in
 * a child process of its own and alike but for one setting, plain HTTP and HTTPS (s3g.https=1,
 * an ECDSA P-256 certificate from a CA made by core/security/pki.ts, TLS 1.3), driven by the
 * same load generator (trusting that CA) into one RATIS/ONE bucket: PUT/GET of 4 KiB (32
 * concurrent, kept-alive connections) and 64 MiB (one at a time). The two take turns round by
 * round so that drift on a shared machine hits both. Figures per scheme, HTTPS over HTTP, and
 * the gateway process's CPU per unit, where TLS's work lands.
 */
import { mkdirSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { createRootCa, generateKeyPair, issueCertificate } from '../core/security/pki.ts'
import { S3_VOLUME } from '../datapath/s3/index.ts'
import { SERVER_V8_FLAGS } from '../cli/v8-flags.ts'
import { moduleCommand, startChild, stopChild, type Child } from './child.ts'
import { combineRounds, expectLength, inTurnOrder, measureOps, measureThroughput, type OpsResult, type ThroughputResult, failure } from './measure.ts'
import { warmPagesForPuts } from './page-pool.ts'
import { cpuMs } from './proc-cpu.ts'
import type { BenchCluster } from './o3-cluster.ts'
import { S3Load } from './s3-load.ts'
import type { Failure } from './s3.ts'
import { measureTlsPipe, type TlsPipeFigures } from './tls-pipe.ts'

export const TLS_SCHEMES = ['http', 'https'] as const
export type TlsScheme = (typeof TLS_SCHEMES)[number]

export interface S3TlsSettings {
  /** 4 KiB objects per round and scheme. */
  smallCount: number
  /** 64 MiB objects per round and scheme (after one untimed). */
  largeIterations: number
  concurrency: number
  /** Rounds, each scheme once per round in turn: the figures sum them. */
  rounds: number
  /** Bytes through one bare TLS connection, and full handshakes, for the TLS-alone figures. */
  pipeBytes: number
  handshakes: number
}

export interface TlsOps {
  put4KiB: OpsResult | Failure
  get4KiB: OpsResult | Failure
  put64MiB: ThroughputResult | Failure
  get64MiB: ThroughputResult | Failure
}

export interface TlsFigures extends Record<TlsScheme, TlsOps> {
  /** TLS without O3: one loopback connection's bytes and new connections' handshakes (bench/tls-pipe.ts). */
  pipe: TlsPipeFigures | Failure
}

const OPS = ['put4KiB', 'get4KiB', 'put64MiB', 'get64MiB'] as const
const USER = 'bench-tls'
const BUCKET = 'tls-ratis-one'

/** Progress steps measureS3Tls announces. */
export function s3TlsStepCount(s: S3TlsSettings): number {
  return 2 + s.rounds * TLS_SCHEMES.length * OPS.length
}

export async function measureS3Tls(options: {
  bench: BenchCluster
  dir: string
  profileDir?: string
  settings: S3TlsSettings
  large: Uint8Array
  onStep: (name: string) => void
  /** Each gateway process started, for the run's profile names. */
  onProcess?: (pid: number, name: string) => void
}): Promise<TlsFigures> {
  const { bench, settings: s, large, onStep } = options
  const small = large.subarray(0, 4 * 1024)
  const tls = await makeCertificate(options.dir)
  onStep(`TLS alone: 3 x ${s.pipeBytes / 1024 / 1024} MiB through loopback connections, ${s.handshakes} handshakes`)
  let pipe: TlsPipeFigures | Failure
  try { pipe = await measureTlsPipe({ bytes: s.pipeBytes, handshakes: s.handshakes, tls: { key: tls.key, cert: tls.cert, ca: tls.ca } }) } catch (err) { pipe = failure(err) }
  onStep('S3 TLS: start an http and an https gateway on the cluster')
  const gateways = new Map<TlsScheme, Child<{ endpoint: string }>>()
  const loads = new Map<TlsScheme, S3Load>()
  try {
    const base = { O3_OM_ADDRESS: bench.endpoints.om, O3_SCM_ADDRESS: bench.endpoints.scm }
    const env: Record<TlsScheme, Record<string, string>> = {
      http: base,
      https: { ...base, O3_S3G_HTTPS: '1', O3_S3G_HTTPS_CERT: tls.certFile, O3_S3G_HTTPS_KEY: tls.keyFile },
    }
    const client = bench.client
    const secret = await client.getS3Secret(USER)
    const credentials = { accessKeyId: secret.awsAccessKey, secretAccessKey: secret.awsSecret }
    // The S3 figures before this one made the volume; --tls-only has not.
    await client.createVolume(S3_VOLUME).catch((err: { code?: string }) => { if (err.code !== 'VOLUME_ALREADY_EXISTS') throw err })
    await client.createBucket(S3_VOLUME, BUCKET, { replication: 'RATIS/ONE', owner: USER })
    for (const scheme of TLS_SCHEMES) {
      // The gateway runs with the V8 flags of every O3 server process.
      const command = moduleCommand('bench/server-process', { profileDir: options.profileDir })
      const child = await startChild<{ endpoint: string }>({ file: command.file, args: [...SERVER_V8_FLAGS, ...command.args] }, ['s3g', join(options.dir, scheme)], env[scheme])
      gateways.set(scheme, child)
      options.onProcess?.(child.pid, `s3g ${scheme}`)
      if (!child.ready.endpoint.startsWith(`${scheme}://`)) throw new Error(`The ${scheme} gateway serves ${child.ready.endpoint}`)
      const load = new S3Load(child.ready.endpoint, credentials, scheme === 'https' ? { ca: tls.ca } : {})
      loads.set(scheme, load)
      // Opens the pool's connections (TLS handshakes included) before anything is timed, as an
      // SDK's kept-alive pool would have them.
      await measureOps({ count: s.concurrency, concurrency: s.concurrency, op: (i) => load.put(BUCKET, `${scheme}-warm-${i}`, small) })
    }
    type Figure = OpsResult | ThroughputResult | Failure
    const rounds = new Map<string, Figure[]>()
    const record = (scheme: TlsScheme, op: string, f: Figure) => { rounds.set(`${scheme} ${op}`, [...rounds.get(`${scheme} ${op}`) ?? [], f]) }
    for (let round = 0; round < s.rounds; round++) {
      // Who goes first alternates (measure.ts inTurnOrder): neither scheme always meets a cache or a disk the other warmed.
      const order = inTurnOrder(TLS_SCHEMES, round)
      for (const op of OPS) {
        for (const scheme of order) {
          onStep(`S3 TLS: ${scheme} ${op}, round ${round + 1}`)
          const load = loads.get(scheme)!
          const pid = gateways.get(scheme)!.pid
          const cpu = () => cpuMs([pid])
          const name = (i: number) => `${scheme}-${round}-${op.slice(3)}-${i}`
          const run = (): Promise<OpsResult | ThroughputResult> => {
            switch (op) {
              case 'put4KiB': return measureOps({ count: s.smallCount, concurrency: s.concurrency, op: (i) => load.put(BUCKET, name(i), small), cpu })
              case 'get4KiB': return measureOps({ count: s.smallCount, concurrency: s.concurrency, op: async (i) => expectLength(await load.get(BUCKET, `${scheme}-${round}-4KiB-${i}`), small.length), cpu })
              case 'put64MiB': return measureThroughput({ iterations: s.largeIterations, bytes: large.length, op: (i) => load.put(BUCKET, name(i), large), cpu, beforeTimed: warmPagesForPuts })
              case 'get64MiB': return measureThroughput({ iterations: s.largeIterations, bytes: large.length, op: async (i) => expectLength(await load.get(BUCKET, `${scheme}-${round}-64MiB-${i}`), large.length), cpu })
            }
          }
          try { record(scheme, op, await run()) } catch (err) { record(scheme, op, failure(err)) }
        }
      }
    }
    const figures = { http: {}, https: {}, pipe } as TlsFigures
    for (const scheme of TLS_SCHEMES) for (const op of OPS) (figures[scheme] as unknown as Record<string, unknown>)[op] = combineRounds(rounds.get(`${scheme} ${op}`) ?? [])
    return figures
  } finally {
    for (const load of loads.values()) await load.close().catch(() => {})
    for (const child of gateways.values()) await stopChild(child.process).catch(() => {})
  }
}

/** A CA and the gateway's certificate for 127.0.0.1, written as PEM files under `dir`. */
async function makeCertificate(dir: string): Promise<{ ca: string; cert: string; key: string; certFile: string; keyFile: string }> {
  const nowMs = Date.now(), validityMs = 24 * 3600_000
  const ca = await createRootCa({ clusterId: 'bench', nowMs, validityMs })
  const keys = await generateKeyPair()
  const cert = await issueCertificate({ ca: { cert: ca.cert, privateKey: ca.privateKey }, publicKey: keys.publicKey, identity: { role: 's3g', id: 'bench-s3g' }, hosts: ['127.0.0.1', 'localhost'], nowMs, validityMs })
  mkdirSync(dir, { recursive: true })
  const certFile = join(dir, 's3g.crt'), keyFile = join(dir, 's3g.key')
  writeFileSync(certFile, cert)
  writeFileSync(keyFile, keys.privateKey, { mode: 0o600 })
  return { ca: ca.cert, cert, key: keys.privateKey, certFile, keyFile }
}
