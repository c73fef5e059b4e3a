/** @module
 * Configuration: Ozone's defaults, then one JSON file, then `O3_*` environment overrides
 * (O3_OM_PORT sets om.port). Validated when built, like raft's Config.validate. Pure but for
 * loadConfig's file and environment reads.
 */
import { readFileSync } from 'node:fs'
import { O3Error } from './errors.ts'
import { parseGroups } from './access/native-acl.ts'
import {
  BLOCK_SIZE_BYTES_DEFAULT, BYTES_PER_CHECKSUM_DEFAULT, BYTES_PER_CHECKSUM_MIN, CHUNK_SIZE_BYTES_DEFAULT,
  CHUNK_SIZE_BYTES_MAX, CONTAINER_SIZE_BYTES_DEFAULT, VOLUME_MIN_FREE_BYTES_DEFAULT, S3G_BODY_IDLE_TIMEOUT_MS_DEFAULT, S3G_SEND_IDLE_TIMEOUT_MS_DEFAULT, DATANODE_BODY_IDLE_TIMEOUT_MS,
  SCANNER_INTERVAL_MS_MIN,
} from './limits.ts'
import { parseChecksumType, parseReplication, type ChecksumType } from './wire.ts'

export interface O3Config {
  /** Host name that services advertise to each other and bind to. */
  'host': string
  'scm.address': string
  'scm.port': number
  /** The SCM's Raft port (Ozone: 9894). */
  'scm.raft.port': number
  /** The SCM group: `scm1@host:port:raftPort,...` (empty: this SCM alone, a group of one). */
  'scm.nodes': string
  /** This SCM's name in scm.nodes. */
  'scm.id': string
  'scm.dir': string
  /** Datanodes that must register before the SCM leaves safemode. */
  'scm.safemode.minDatanodes': number
  'scm.heartbeat.staleMs': number
  'scm.heartbeat.deadMs': number
  'scm.container.sizeBytes': number
  'scm.block.sizeBytes': number
  /**
   * 1: pipelines are Raft groups on their datanodes (issue 12): ALLOCATED until every member
   * reports the group, then OPEN, closed when a member is STALE or DEAD or reports it
   * diverged. 0 (until the datanode side lands): OPEN at creation, closed when a member is DEAD.
   */
  /**
   * How long a closed pipeline's groups stay on its datanodes (so that its containers close
   * through the log) before the SCM tells them to remove it (Ozone's
   * ozone.scm.pipeline.destroy.timeout, 66 s); 0: at once.
   */
  'scm.pipeline.destroyTimeoutMs': number
  /** How often the SCM leader's replication manager looks at every container (Ozone's hdds.scm.replication.thread.interval, 300 s). */
  'scm.replication.intervalMs': number
  /** A replicate or delete command not seen done in reports within this is sent again (Ozone's hdds.scm.replication.event.timeout, 10 min). */
  'scm.replication.commandTimeoutMs': number
  /** Replicate and delete commands in flight per datanode. */
  'scm.replication.maxInflightPerDatanode': number
  /** Replicas of a container in maintenance count while this many live ones remain (Ozone's hdds.scm.replication.maintenance.replica.minimum). */
  'maintenance.replica.minimum': number
  'om.address': string
  'om.port': number
  /** The OM's Raft port (Ozone: 9872). */
  'om.raft.port': number
  /**
   * Raft timing of the OM and SCM groups: the clock tick, and the election and heartbeat
   * timeouts in ticks (an election starts after electionTimeoutTicks to twice that without
   * a leader). The defaults suit loopback and one machine; across machines raise them
   * (etcd: 100 ms heartbeats, 1 s elections), so that a pause does not cost a leader.
   */
  'raft.tickMs': number
  'raft.electionTimeoutTicks': number
  'raft.heartbeatTimeoutTicks': number
  /** The OM group: `om1@host:port:raftPort,...` (empty: this OM alone, a group of one). */
  'om.nodes': string
  /** This OM's name in om.nodes. */
  'om.id': string
  /** 1: a new OM joins the running group om.nodes lists (`o3 admin om add` admits it) instead of founding one. */
  'om.bootstrap': number
  'om.dir': string
  'om.openKey.expireMs': number
  'om.openKey.checkIntervalMs': number
  /**
   * How long the blocks of a deleted or replaced key stay on the datanodes before the OM hands
   * them to the SCM for deletion: a reader that looked the key up before the change can finish
   * (Ozone's key deleting service runs every 60 s).
   */
  'om.deletedBlocks.graceMs': number
  'datanode.port': number
  /** Comma-separated data volumes (directories). */
  'datanode.dirs': string
  'datanode.heartbeatIntervalMs': number
  /** Blocks written in one chunk below this size are packed instead of getting a file. */
  'datanode.smallBlockBytes': number
  'datanode.workerThreads': number
  /**
   * 1 (default): readers in the datanode's own process (`o3 local`'s gateway) read its chunks
   * without HTTP, a worker reading the block file into the reader's buffer (short-circuit
   * reads; never with security on); 0: every read goes over HTTP.
   */
  'datanode.shortCircuitReads': number
  /**
   * 1 (default): writers in the datanode's own process (`o3 local`'s gateway, a pipeline
   * leader forwarding to a follower) hand it their chunks without HTTP, and it copies them
   * into its slab as from a socket (short-circuit writes; never with security on); 0: over HTTP.
   */
  'datanode.shortCircuitWrites': number
  /**
   * Bytes each data volume keeps free (Ozone's hdds.datanode.volume.min.free.space): below it
   * the volume is full, takes no new containers or chunks as a write's entry point, and its
   * open containers are closed; writes already under way use the reserve.
   */
  'datanode.volume.minFreeBytes': number
  /** The container scanner's read rate: it re-reads closed replicas at most this fast, so client I/O keeps the disk (Ozone: 5 MB/s). */
  'datanode.scanner.bytesPerSec': number
  /** The shortest time one full pass of the container scanner takes (Ozone's data scan interval, 7 days; `o3 local` 60 s). */
  'datanode.scanner.intervalMs': number
  's3g.port': number
  /** The gateway's /prom and /health listener (Ozone's s3g web port). */
  's3g.adminPort': number
  /** Virtual-hosted-style domain (`bucket.<domain>`); empty: path-style only. */
  's3g.domain': string
  's3g.region': string
  /**
   * How long an upload's body may send nothing before the gateway answers RequestTimeout and
   * frees what the upload holds (S3's is about 20 s).
   */
  's3g.bodyIdleTimeoutMs': number
  /** How long a connection may take to send a request's headers before the gateway answers RequestTimeout and closes it (slow-header defense; Node). */
  's3g.headersTimeoutMs': number
  /** How long a GET's client may take no 1 MiB slice of the body before the gateway cuts it and frees what it holds. */
  's3g.sendIdleTimeoutMs': number
  'datanode.bodyIdleTimeoutMs': number
  /** How long a chunk read's answer may wait with no byte leaving (its client not reading) before the datanode cuts it and frees its buffer. */
  'datanode.sendIdleTimeoutMs': number
  'client.chunkSizeBytes': number
  'client.bytesPerChecksum': number
  'client.checksumType': ChecksumType
  'client.replication': string
  /**
   * 1: fsync every LMDB commit (OM, SCM, datanode metadata), surviving power loss; 0 (the
   * default, like Ozone's unsynced RocksDB writes and chunk files): commits reach the OS,
   * surviving kill -9 of any process.
   */
  'db.sync': number
  /**
   * 1 (default): an OM or SCM answers RPCs from clients in its own process (`o3 local`'s
   * gateway, datanodes and OM in the default topology) without HTTP, through the same
   * dispatch as its route (core/rpc/local-services.ts; never with security on); 0: over HTTP.
   */
  'rpc.shortCircuit': number
  /**
   * 1: the secure cluster (Ozone's ozone.security.enabled): the SCM is the cluster's CA,
   * every service call is mutual TLS, the OM takes only signed requests and checks ACLs,
   * datanodes take only block tokens. 0: plain HTTP, every caller trusted.
   */
  'security.enabled': number
  /** The token a service shows the SCM to get its first certificate (`o3 admin cert token` makes one; the SCM prints its first). */
  'security.bootstrapToken': string
  /** How long a service certificate the SCM issues is valid (Ozone's hdds.x509.default.duration, 1 year); renewed after two thirds of it. */
  'security.certValidityMs': number
  /** How often the SCM makes a new block-token secret key (Ozone's hdds.secret.key.rotate.duration, 1 day). */
  'security.secretKey.rotateMs': number
  /** How long a secret key verifies tokens after it was made (Ozone's hdds.secret.key.expiry.duration, 7 days). */
  'security.secretKey.expiryMs': number
  /** How long a block token is valid (Ozone's hdds.block.token.expiry.time, 1 day). */
  'security.blockToken.expiryMs': number
  /** Users with every right (Ozone's ozone.administrators), comma-separated. */
  'o3.administrators': string
  /** Group members for native ACLs (group:dev:rw), `group:user1,user2;group2:user3` (Ozone asks Hadoop's group mapping). */
  'o3.groups': string
  /** Where the S3 gateway keeps its key and certificate in a secure cluster. */
  's3g.dir': string
  /** 1: the S3 gateway serves HTTPS (s3g.https.cert/key files, else the cluster certificate). */
  's3g.https': number
  /** PEM certificate (chain) and key files for the gateway's HTTPS; empty: the cluster CA's. */
  's3g.https.cert': string
  's3g.https.key': string
  /** The CA certificate (PEM file) a client trusts to reach a secure cluster. */
  'client.caFile': string
  /** The key pair a client signs OM requests with (`o3 s3 getsecret`); empty: unsigned. */
  'client.accessKey': string
  'client.secret': string
  /** A user certificate and key (PEM files) from the cluster CA, for mutual TLS as that user (administrators: `o3 admin`). */
  'client.certFile': string
  'client.keyFile': string
}

/** Ozone's defaults (heartbeat 30 s, stale 5 min, dead 10 min; `o3 local` shortens them). */
export const DEFAULT_CONFIG: O3Config = {
  'host': '127.0.0.1',
  'scm.address': '127.0.0.1:9860',
  'scm.port': 9860,
  'scm.raft.port': 9894,
  'scm.nodes': '',
  'scm.id': '',
  'scm.dir': './o3-data/scm',
  'scm.safemode.minDatanodes': 1,
  'scm.heartbeat.staleMs': 5 * 60_000,
  'scm.heartbeat.deadMs': 10 * 60_000,
  'scm.container.sizeBytes': CONTAINER_SIZE_BYTES_DEFAULT,
  'scm.block.sizeBytes': BLOCK_SIZE_BYTES_DEFAULT,
  'scm.pipeline.destroyTimeoutMs': 66_000,
  'scm.replication.intervalMs': 300_000,
  'scm.replication.commandTimeoutMs': 600_000,
  'scm.replication.maxInflightPerDatanode': 20,
  'maintenance.replica.minimum': 2,
  'om.address': '127.0.0.1:9862',
  'om.port': 9862,
  'om.raft.port': 9872,
  'raft.tickMs': 10,
  'raft.electionTimeoutTicks': 10,
  'raft.heartbeatTimeoutTicks': 2,
  'om.nodes': '',
  'om.id': '',
  'om.bootstrap': 0,
  'om.dir': './o3-data/om',
  'om.openKey.expireMs': 7 * 24 * 3600_000,
  'om.openKey.checkIntervalMs': 60_000,
  'om.deletedBlocks.graceMs': 60_000,
  'datanode.port': 9859,
  'datanode.dirs': './o3-data/datanode',
  'datanode.heartbeatIntervalMs': 30_000,
  'datanode.smallBlockBytes': 64 * 1024,
  'datanode.workerThreads': 2,
  'datanode.shortCircuitReads': 1,
  'datanode.shortCircuitWrites': 1,
  'datanode.volume.minFreeBytes': VOLUME_MIN_FREE_BYTES_DEFAULT,
  'datanode.scanner.bytesPerSec': 5 * 1024 * 1024,
  'datanode.scanner.intervalMs': 7 * 24 * 3600_000,
  's3g.port': 9878,
  's3g.adminPort': 19878,
  's3g.domain': '',
  's3g.region': 'us-east-1',
  's3g.bodyIdleTimeoutMs': S3G_BODY_IDLE_TIMEOUT_MS_DEFAULT,
  's3g.sendIdleTimeoutMs': S3G_SEND_IDLE_TIMEOUT_MS_DEFAULT,
  's3g.headersTimeoutMs': 60_000,
  'datanode.bodyIdleTimeoutMs': DATANODE_BODY_IDLE_TIMEOUT_MS,
  'datanode.sendIdleTimeoutMs': DATANODE_BODY_IDLE_TIMEOUT_MS,
  'client.chunkSizeBytes': CHUNK_SIZE_BYTES_DEFAULT,
  'client.bytesPerChecksum': BYTES_PER_CHECKSUM_DEFAULT,
  'client.checksumType': 'XXH64',
  'client.replication': 'RATIS/THREE',
  'db.sync': 0,
  'rpc.shortCircuit': 1,
  'security.enabled': 0,
  'security.bootstrapToken': '',
  'security.certValidityMs': 365 * 24 * 3600_000,
  'security.secretKey.rotateMs': 24 * 3600_000,
  'security.secretKey.expiryMs': 7 * 24 * 3600_000,
  'security.blockToken.expiryMs': 24 * 3600_000,
  'o3.administrators': '',
  'o3.groups': '',
  's3g.dir': './o3-data/s3g',
  's3g.https': 0,
  's3g.https.cert': '',
  's3g.https.key': '',
  'client.caFile': '',
  'client.accessKey': '',
  'client.secret': '',
  'client.certFile': '',
  'client.keyFile': '',
}

export type ConfigKey = keyof O3Config

/** Throws INVALID_ARGUMENT naming the first bad setting. */
function validateConfig(c: O3Config): O3Config {
  const bad = (key: ConfigKey, why: string): never => {
    throw new O3Error('INVALID_ARGUMENT', `Cannot use setting ${key}=${JSON.stringify(c[key])}: ${why}`)
  }
  for (const key of Object.keys(DEFAULT_CONFIG) as ConfigKey[]) {
    if (typeof c[key] !== typeof DEFAULT_CONFIG[key]) bad(key, `expected a ${typeof DEFAULT_CONFIG[key]}`)
    if (typeof c[key] === 'number' && (!Number.isSafeInteger(c[key]) || (c[key] as number) < 0)) bad(key, 'expected a non-negative integer')
  }
  for (const key of ['scm.port', 'scm.raft.port', 'om.port', 'om.raft.port', 'datanode.port', 's3g.port', 's3g.adminPort'] as const) if (c[key] > 65535) bad(key, 'not a port')
  if (c['client.chunkSizeBytes'] < 1 || c['client.chunkSizeBytes'] > CHUNK_SIZE_BYTES_MAX) bad('client.chunkSizeBytes', `must be 1..${CHUNK_SIZE_BYTES_MAX}`)
  if (c['client.bytesPerChecksum'] < BYTES_PER_CHECKSUM_MIN) bad('client.bytesPerChecksum', `must be at least ${BYTES_PER_CHECKSUM_MIN}`)
  if (c['client.chunkSizeBytes'] % c['client.bytesPerChecksum'] !== 0) bad('client.chunkSizeBytes', 'must be a multiple of client.bytesPerChecksum')
  if (c['scm.block.sizeBytes'] < 1) bad('scm.block.sizeBytes', 'must be positive')
  if (c['scm.container.sizeBytes'] < c['scm.block.sizeBytes']) bad('scm.container.sizeBytes', 'must hold at least one block')
  if (c['raft.tickMs'] < 1) bad('raft.tickMs', 'must be positive')
  if (c['raft.heartbeatTimeoutTicks'] < 1) bad('raft.heartbeatTimeoutTicks', 'must be positive')
  if (c['raft.electionTimeoutTicks'] <= c['raft.heartbeatTimeoutTicks']) bad('raft.electionTimeoutTicks', 'must exceed raft.heartbeatTimeoutTicks')
  if (c['scm.heartbeat.deadMs'] <= c['scm.heartbeat.staleMs']) bad('scm.heartbeat.deadMs', 'must exceed scm.heartbeat.staleMs')
  if (c['scm.replication.intervalMs'] < 1) bad('scm.replication.intervalMs', 'must be positive')
  if (c['scm.replication.maxInflightPerDatanode'] < 1) bad('scm.replication.maxInflightPerDatanode', 'must be positive')
  if (c['datanode.dirs'].split(',').filter(Boolean).length === 0) bad('datanode.dirs', 'needs at least one directory')
  if (c['s3g.bodyIdleTimeoutMs'] < 1) bad('s3g.bodyIdleTimeoutMs', 'must be positive')
  if (c['s3g.sendIdleTimeoutMs'] < 1) bad('s3g.sendIdleTimeoutMs', 'must be positive')
  if (c['s3g.headersTimeoutMs'] < 1) bad('s3g.headersTimeoutMs', 'must be positive')
  if (c['datanode.bodyIdleTimeoutMs'] < 1) bad('datanode.bodyIdleTimeoutMs', 'must be positive')
  if (c['datanode.sendIdleTimeoutMs'] < 1) bad('datanode.sendIdleTimeoutMs', 'must be positive')
  if (c['db.sync'] > 1) bad('db.sync', 'must be 0 or 1')
  if (c['datanode.shortCircuitReads'] > 1) bad('datanode.shortCircuitReads', 'must be 0 or 1')
  if (c['datanode.shortCircuitWrites'] > 1) bad('datanode.shortCircuitWrites', 'must be 0 or 1')
  if (c['datanode.workerThreads'] < 1) bad('datanode.workerThreads', 'must be positive')
  if (c['datanode.scanner.bytesPerSec'] < 1) bad('datanode.scanner.bytesPerSec', 'must be positive')
  if (c['datanode.scanner.intervalMs'] < SCANNER_INTERVAL_MS_MIN) bad('datanode.scanner.intervalMs', `must be at least ${SCANNER_INTERVAL_MS_MIN}`)
  if (c['om.bootstrap'] > 1) bad('om.bootstrap', 'must be 0 or 1')
  if (c['security.enabled'] > 1) bad('security.enabled', 'must be 0 or 1')
  if (c['rpc.shortCircuit'] > 1) bad('rpc.shortCircuit', 'must be 0 or 1')
  if (c['s3g.https'] > 1) bad('s3g.https', 'must be 0 or 1')
  if (c['security.certValidityMs'] < 1000) bad('security.certValidityMs', 'must be at least 1000')
  if (c['security.secretKey.rotateMs'] < 1) bad('security.secretKey.rotateMs', 'must be positive')
  if (c['security.secretKey.expiryMs'] < c['security.secretKey.rotateMs'] + c['security.blockToken.expiryMs']) bad('security.secretKey.expiryMs', 'must be at least security.secretKey.rotateMs + security.blockToken.expiryMs (a token must outlive its key\'s turn)')
  if (c['security.blockToken.expiryMs'] < 1) bad('security.blockToken.expiryMs', 'must be positive')
  if ((c['s3g.https.cert'] === '') !== (c['s3g.https.key'] === '')) bad('s3g.https.cert', 's3g.https.cert and s3g.https.key go together')
  if ((c['client.accessKey'] === '') !== (c['client.secret'] === '')) bad('client.accessKey', 'client.accessKey and client.secret go together')
  if ((c['client.certFile'] === '') !== (c['client.keyFile'] === '')) bad('client.certFile', 'client.certFile and client.keyFile go together')
  parseChecksumType(c['client.checksumType'])
  parseReplication(c['client.replication'])
  parseGroups(c['o3.groups'])
  return c
}

/** Environment name of a key: om.openKey.expireMs -> O3_OM_OPENKEY_EXPIREMS. */
function envName(key: ConfigKey): string {
  return 'O3_' + key.replace(/\./g, '_').toUpperCase()
}

function coerce(key: ConfigKey, raw: string): string | number {
  if (typeof DEFAULT_CONFIG[key] !== 'number') return raw
  const n = Number(raw)
  if (raw.trim() === '' || Number.isNaN(n)) throw new O3Error('INVALID_ARGUMENT', `Cannot use setting ${key} from ${envName(key)}=${JSON.stringify(raw)}: expected a non-negative integer`)
  return n
}

/** Builds a config: defaults < file (JSON of O3Config keys) < overrides < O3_* environment. */
export function loadConfig(options: { file?: string; overrides?: Partial<O3Config>; env?: Record<string, string | undefined> } = {}): O3Config {
  const merged: Record<string, unknown> = { ...DEFAULT_CONFIG }
  if (options.file !== undefined) {
    let parsed: unknown
    try {
      parsed = JSON.parse(readFileSync(options.file, 'utf8'))
    } catch (err) {
      throw new O3Error('INVALID_ARGUMENT', `Cannot read config ${options.file}: ${(err as Error).message}`)
    }
    if (typeof parsed !== 'object' || parsed === null) throw new O3Error('INVALID_ARGUMENT', `Cannot read config ${options.file}: not a JSON object`)
    for (const [k, v] of Object.entries(parsed)) {
      if (!(k in DEFAULT_CONFIG)) throw new O3Error('INVALID_ARGUMENT', `Cannot read config ${options.file}: unknown setting ${k}`)
      merged[k] = v
    }
  }
  Object.assign(merged, options.overrides)
  const env = options.env ?? process.env
  for (const key of Object.keys(DEFAULT_CONFIG) as ConfigKey[]) {
    const raw = env[envName(key)]
    if (raw !== undefined) merged[key] = coerce(key, raw)
  }
  return validateConfig(merged as unknown as O3Config)
}
