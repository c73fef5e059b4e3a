/** @module
 * An embedded cluster in one process: SCM, OM, N datanodes and (optionally) the S3 gateway, with data under one directory
 * (what `o3 local` runs and what tests start, like Ozone's MiniOzoneCluster); with `ha`, three
 * SCMs and three OMs as Raft groups (issue 11). Ports come from the design (SCM 9860, OM
 * 9862, datanode n on 9900 + n; HA node i on those + 100 (i - 1)) or free ones. With `secure`,
 * every service serves and calls with a certificate from the cluster CA (mutual TLS).
 */
import { join } from 'node:path'
import { loadConfig, type O3Config } from '../core/config.ts'
import { O3Error } from '../core/errors.ts'
import { StorageContainerManager } from '../control/scm/index.ts'
import { OzoneManager } from '../control/om/index.ts'
import { Datanode } from '../datapath/datanode/index.ts'
import { closeWorkerPool } from '../datapath/workers/index.ts'
import { O3Client } from '../datapath/client/index.ts'
import { S3Gateway } from '../datapath/s3/index.ts'
import { DatanodeThread } from './datanode-thread.ts'
import { freePort } from './free-port.ts'
import { PLAIN_TRANSPORT, tlsTransport, type Transport } from '../core/rpc/transport.ts'
import { startIdentity } from '../core/security/identity-source.ts'
import { ServiceIdentity } from '../core/security/identity.ts'
import { generateKeyPair, type Credentials, type ServiceRole } from '../core/security/pki.ts'

export interface LocalClusterOptions {
  dataDir: string
  datanodes?: number
  /** Use free ports instead of the fixed ones. */
  freePorts?: boolean
  /** Settings on top of the embedded defaults (short heartbeats, ...). */
  overrides?: Partial<O3Config>
  /** Read O3_* environment overrides (true for `o3 local`, false for tests). */
  env?: boolean
  /** Start the S3 gateway too (`o3 local` does). */
  s3?: boolean
  /** Run the datanodes on their own worker thread (cli/datanode-thread.ts), as `o3 local` does:
   *  then `datanodes` stays empty and startDatanode/stopDatanode are not available. */
  datanodeThread?: boolean
  /** Three SCMs and three OMs, each a Raft group (`o3 local --ha`), instead of one of each. */
  ha?: boolean
  /**
   * security.enabled=1 (also when the settings say so): every service gets a certificate from
   * the cluster CA and serves HTTPS with mutual TLS; client() is an administrator's
   * (LOCAL_ADMIN, a user certificate, named in o3.administrators).
   */
  secure?: boolean
}

/** The administrator a secure local cluster's client() acts as. */
export const LOCAL_ADMIN = 'admin'

/** Members of each replicated service in an `o3 local --ha` cluster. */
export const LOCAL_HA_NODES = 3
/** Fixed ports of HA node i (1-based): the single node's ports + HA_PORT_STEP * (i - 1). */
const HA_PORT_STEP = 100

/** `o3 local` shortens Ozone's minutes to seconds: a laptop cluster notices a dead node fast. */
export const LOCAL_DEFAULTS: Partial<O3Config> = {
  'scm.heartbeat.staleMs': 6_000,
  'scm.heartbeat.deadMs': 12_000,
  'datanode.heartbeatIntervalMs': 1_000,
  'scm.pipeline.destroyTimeoutMs': 5_000,
  'scm.replication.intervalMs': 5_000,
  'scm.replication.commandTimeoutMs': 60_000,
  'om.openKey.expireMs': 24 * 3600_000,
  'datanode.scanner.intervalMs': 60_000,
}

/** The settings of an `o3 local` cluster of n datanodes, in-process or as processes: the
 *  shortened timings, safemode at up to 3 datanodes, and three replicas when there are 3. */
export function localOverrides(n: number): Partial<O3Config> {
  return { ...LOCAL_DEFAULTS, 'scm.safemode.minDatanodes': Math.min(n, 3), 'client.replication': n >= 3 ? 'RATIS/THREE' : 'RATIS/ONE' }
}

/** Datanode i's (1-based) port in an `o3 local` cluster on fixed ports. */
export function localDatanodePort(i: number): number {
  return 9900 + i
}

/** One member of a local SCM or OM group: its name (scm1, om2, ...) and settings. */
export interface LocalGroupNode {
  readonly name: string
  readonly config: O3Config
}

/**
 * The settings of a local `prefix` group of LOCAL_HA_NODES members, each with its own data
 * folder DATA/<name> and `<prefix>.nodes`/`<prefix>.id` naming the group and itself.
 */
export async function localGroup(prefix: 'scm' | 'om', base: O3Config, dataDir: string, free: boolean): Promise<LocalGroupNode[]> {
  const ports: [number, number][] = []
  for (let i = 0; i < LOCAL_HA_NODES; i++) {
    ports.push(free ? [await freePort(), await freePort()] : [base[`${prefix}.port`] + HA_PORT_STEP * i, base[`${prefix}.raft.port`] + HA_PORT_STEP * i])
  }
  const nodes = ports.map(([rpc, raft], i) => `${prefix}${i + 1}@${base.host}:${rpc}:${raft}`).join(',')
  return ports.map(([rpc, raft], i) => {
    const name = `${prefix}${i + 1}`
    return {
      name,
      config: {
        ...base, [`${prefix}.nodes`]: nodes, [`${prefix}.id`]: name, [`${prefix}.port`]: rpc, [`${prefix}.raft.port`]: raft,
        [`${prefix}.address`]: `${base.host}:${rpc}`, [`${prefix}.dir`]: join(dataDir, name),
      },
    }
  })
}

export class LocalCluster {
  /** Every SCM (one, or LOCAL_HA_NODES with `ha`). */
  readonly scms: StorageContainerManager[] = []
  readonly oms: OzoneManager[] = []

  /** The SCM, or with `ha` the first of `scms`; a test may replace it (restart on the same port), and stop() stops the replacement. */
  get scm(): StorageContainerManager { return this.scms[0] }
  set scm(s: StorageContainerManager) { this.scms[0] = s }
  /** The OM, or with `ha` the first of `oms`. */
  get om(): OzoneManager { return this.oms[0] }
  set om(o: OzoneManager) { this.oms[0] = o }
  s3g: S3Gateway | undefined
  readonly datanodes: (Datanode | undefined)[] = []
  private datanodeThread: DatanodeThread | undefined
  readonly config: O3Config
  private readonly datanodeConfigs: O3Config[] = []
  private readonly datanodePorts: number[] = []
  /** Security on: the administrator's certificate (a `user` one from the SCM's CA), what client() calls with. */
  adminCredentials: Credentials | undefined
  private adminTransport: Transport | undefined
  private s3gIdentity: ServiceIdentity | undefined

  constructor(readonly options: LocalClusterOptions) {
    const n = options.datanodes ?? 3
    if (!Number.isSafeInteger(n) || n < 1 || n > 100) throw new RangeError('datanodes must be 1..100')
    this.config = loadConfig({
      overrides: {
        ...localOverrides(n),
        'scm.dir': join(options.dataDir, 'scm'), 'om.dir': join(options.dataDir, 'om'), 's3g.dir': join(options.dataDir, 's3g'),
        ...(options.secure === true ? { 'security.enabled': 1 } : {}),
        ...options.overrides,
      },
      env: options.env ? process.env : {},
    })
    if (this.secure) {
      const admins = this.config['o3.administrators'].split(',').map((s) => s.trim()).filter((s) => s !== '')
      if (!admins.includes(LOCAL_ADMIN)) this.config['o3.administrators'] = [...admins, LOCAL_ADMIN].join(',')
    }
    for (let i = 1; i <= n; i++) {
      this.datanodeConfigs.push({ ...this.config, 'datanode.dirs': join(options.dataDir, `datanode-${i}`) })
      this.datanodePorts.push(options.freePorts ? 0 : localDatanodePort(i))
    }
  }

  /** The SCM's host:port; with `ha` every SCM's, comma-separated (what clients take). */
  get scmAddress(): string { return this.scms.map((s) => s.address).join(',') }
  get omAddress(): string { return this.oms.map((o) => o.address).join(',') }

  /** Every datanode's host:port, on this thread or on the datanodes' thread. */
  get datanodeAddresses(): string[] {
    return this.datanodeThread?.addresses ?? this.datanodes.flatMap((d) => d === undefined ? [] : [d.address])
  }

  /** security.enabled=1: the services serve and call with certificates (mutual TLS). */
  get secure(): boolean {
    return this.config['security.enabled'] === 1
  }

  /** How a test or tool reaches the services: plain HTTP, or when secure as the administrator (its user certificate). */
  get transport(): Transport {
    return this.adminTransport ?? PLAIN_TRANSPORT
  }

  /** The cluster CA's certificate (PEM) when secure: what a client trusts. */
  get caCert(): string | undefined {
    return this.scm?.ca?.caCert()
  }

  /** A certificate from the cluster CA for `role`/`id` (tests: callers of every kind); secure clusters only. */
  async issueIdentity(role: ServiceRole, id: string): Promise<ServiceIdentity> {
    const ca = this.scm?.ca
    if (ca === undefined) throw new O3Error('INVALID_ARGUMENT', 'Cannot issue an identity: the cluster is not secure (or not started)')
    const keys = await generateKeyPair()
    const cert = await ca.issuer().issue({ identity: { role, id }, publicKey: keys.publicKey, hosts: [this.config.host, '127.0.0.1', 'localhost'] })
    return ServiceIdentity.fromCredentials(role, id, { key: keys.privateKey, cert, ca: ca.caCert() })
  }

  /** Once the SCMs run (their CA made): the others' bootstrap token, the administrator named and given a certificate. */
  private async secureSetup(): Promise<void> {
    const ca = this.scm.ca
    if (ca === undefined) throw new O3Error('INTERNAL_ERROR', 'Cannot start a secure cluster: the SCM holds no CA')
    const settings = { 'security.bootstrapToken': this.config['security.bootstrapToken'] || ca.bootstrapToken() }
    Object.assign(this.config, settings)
    for (const c of this.datanodeConfigs) Object.assign(c, settings)
    const admin = await ca.issueUserCertificate(LOCAL_ADMIN)
    this.adminCredentials = admin
    this.adminTransport = tlsTransport(() => admin)
  }

  async start(): Promise<void> {
    const free = this.options.freePorts === true
    if (this.options.ha) {
      // A member serves only once its group has a leader: the members start together.
      const scms = (await localGroup('scm', this.config, this.options.dataDir, free)).map((n) => new StorageContainerManager({ config: n.config }))
      this.scms.push(...scms)
      await Promise.all(scms.map((s) => s.start()))
      if (this.secure) await this.secureSetup()
      const oms = (await localGroup('om', this.config, this.options.dataDir, free)).map((n) => new OzoneManager({ config: n.config, scmAddress: this.scmAddress }))
      this.oms.push(...oms)
      await Promise.all(oms.map((o) => o.start()))
    } else {
      this.scms.push(new StorageContainerManager({ config: this.config, port: free ? 0 : undefined }))
      await this.scms[0].start()
      if (this.secure) await this.secureSetup()
      this.oms.push(new OzoneManager({ config: this.config, port: free ? 0 : undefined, scmAddress: this.scmAddress }))
      await this.oms[0].start()
    }
    if (this.options.datanodeThread) this.datanodeThread = await DatanodeThread.start({ configs: this.datanodeConfigs, ports: this.datanodePorts, scmAddress: this.scmAddress })
    else await Promise.all(this.datanodeConfigs.map((_, i) => this.startDatanode(i)))
    await this.waitOutOfSafeMode()
    if (this.options.s3) {
      const identity = await startIdentity({
        enabled: this.config['security.enabled'], role: 's3g', id: 's3g1', host: this.config.host, dir: this.config['s3g.dir'],
        scm: this.scmAddress, bootstrapToken: this.config['security.bootstrapToken'],
      })
      this.s3gIdentity = identity
      const transport = identity?.transport()
      this.s3g = new S3Gateway({ config: this.config, omAddress: this.omAddress, scmAddress: this.scmAddress, port: free ? 0 : undefined, transport, identity })
      await this.s3g.start()
    }
  }

  /** Starts datanode i (0-based) again on the port it had, keeping its data; `overrides` change its settings from now on (tests). */
  async startDatanode(i: number, overrides: Partial<O3Config> = {}): Promise<Datanode> {
    if (this.options.datanodeThread) throw new TypeError('Cannot start one datanode: they run on their own thread')
    this.datanodeConfigs[i] = { ...this.datanodeConfigs[i], ...overrides }
    const dn = new Datanode({ config: this.datanodeConfigs[i], port: this.datanodePorts[i], scmAddress: this.scmAddress })
    await dn.start()
    this.datanodePorts[i] = dn.port
    this.datanodes[i] = dn
    return dn
  }

  async stopDatanode(i: number): Promise<void> {
    await this.datanodes[i]?.stop()
    this.datanodes[i] = undefined
  }

  /** A client of the cluster; when secure, the administrator's (LOCAL_ADMIN's certificate). */
  client(options: { chunkSizeBytes?: number } = {}): O3Client {
    return new O3Client({ om: this.omAddress, scm: this.scmAddress, chunkSizeBytes: options.chunkSizeBytes ?? this.config['client.chunkSizeBytes'], transport: this.adminTransport })
  }

  async waitOutOfSafeMode(timeoutMs = 30_000): Promise<void> {
    const client = new O3Client({ om: this.omAddress, scm: this.scmAddress, transport: this.adminTransport })
    const until = Date.now() + timeoutMs
    for (;;) {
      const s = await client.admin<{ inSafeMode: boolean }>('safemodeStatus')
      const pipelines = await client.admin<{ state: string; replication: string }[]>('listPipelines')
      const wanted = this.config['client.replication']
      if (!s.inSafeMode && pipelines.some((p) => p.state === 'OPEN' && p.replication === wanted)) return
      if (Date.now() > until) throw new Error('Cannot start cluster: still in safemode')
      await new Promise((r) => setTimeout(r, 50))
    }
  }

  async stop(): Promise<void> {
    await this.s3g?.stop()
    this.s3gIdentity?.stop()
    await Promise.all(this.datanodes.map((dn) => dn?.stop()))
    await this.datanodeThread?.stop()
    this.datanodeThread = undefined
    await Promise.all(this.oms.map((o) => o.stop()))
    await Promise.all(this.scms.map((s) => s.stop()))
    await closeWorkerPool()
  }
}
