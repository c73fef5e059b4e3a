/** @module
 * The Ozone Manager service: the namespace of volumes, buckets and keys (Ozone's table
 * names), block allocation through the SCM in batches, atomic key commits, expiry of
 * abandoned open keys and hand-off of deleted blocks to the SCM. Every change is a Raft
 * entry (requests/: prepare on the leader, pure apply on every replica, over tables.ts);
 * reads are served by the leader. This file is the wiring: RPC handlers and housekeeping.
 */
import type { Database, RootDatabase } from 'lmdb'
import { assert } from '../../core/assert.ts'
import type { O3Config } from '../../core/config.ts'
import { DirLock } from '../../core/dir-lock.ts'
import { O3Error } from '../../core/errors.ts'
import { serveApp, type Listener } from '../../core/http/serve.ts'
import { KEY_NAME_BYTES_MAX, LIST_KEYS_COUNT_MAX, LIST_VOLUMES_COUNT_MAX, OM_BLOCK_BATCH_COUNT, OM_BLOCK_CACHE_AGE_MS_MAX, VOLUME_NAME_LENGTH_MAX } from '../../core/limits.ts'
import { log } from '../../core/log.ts'
import { entryCount } from '../../core/metadata-db.ts'
import { ServiceMetrics } from '../../core/metrics.ts'
import { RpcClient } from '../../core/rpc/client.ts'
import { createServiceApp, localServiceCall, type ServiceAppOptions } from '../../core/rpc/server.ts'
import { serveRpcLocally } from '../../core/rpc/local-services.ts'
import { PLAIN_TRANSPORT } from '../../core/rpc/transport.ts'
import type { ServiceIdentity } from '../../core/security/identity.ts'
import { startIdentity, type IdentitySource } from '../../core/security/identity-source.ts'
import { administratorsOf, isAdministrator } from '../../core/security/administrators.ts'
import { OPEN_CONTEXT, type RpcContext } from '../../core/security/caller.ts'
import { parseId, type AllocatedBlock, type ContainerId, type ContainerLocation, type ContainerState, type DatanodeDetails, type ExcludeList, type Pipeline } from '../../core/wire.ts'
import { checkProof, verifyProof } from '../../core/s3-signature.ts'
import type { BucketInfo, KeyInfo, ListKeysResult, LookupPart, OpenKeyResult, S3AuthResult, S3OpenIntent, S3Secret, VolumeInfo } from '../../core/om-wire.ts'
import { GroupAdmin } from '../ha/group-admin.ts'
import { stateDigest } from '../ha/state-digest.ts'
import { startServiceGroup, type ReplicatedService } from '../ha/replicated-service.ts'
import { callerIdOf, checkGateway, checkSecretAccess, omAuthenticate } from './authenticate.ts'
import { actingUser, omAuthorizer, volumeVisible, type OmAuthorize } from './access.ts'
import { checkBucketName, checkKeyName, checkVolumeName } from './names.ts'
import { bucketsOf, volumeWithUsage, withUsage } from './quota.ts'
import { omRequests } from './requests/index.ts'
import { aclsOf, checkAclObject } from './requests/acls.ts'
import { keyOf } from './requests/keys.ts'
import { refreshPipeline } from './locations.ts'
import { checkUser, secretOf } from './requests/s3-secrets.ts'
import { BlockTokenIssuer, tokenOwner } from './block-tokens.ts'
import { SecretKeyCache, secretKeyRefreshMs, type SecretKeysAnswer } from '../../core/security/secret-keys.ts'
import { bucketOf, keyPath, openOmTables, startsWith, volumeOf, type DeletedEntry, type OmTables } from './tables.ts'

const LOCATION_CACHE_TTL_MS = 2000
/**
 * A refresh of locations fails over between SCMs this long at most (the recorded pipelines
 * serve meanwhile: readers fall back between replicas); once one failed (no SCM leader), the
 * next reads skip it for as long, instead of each paying the SCM group's whole failover.
 * A single SCM that does not answer (hung) costs a lookup LOCATION_REFRESH_TIMEOUT_MS, then
 * lookups skip it for LOCATION_REFRESH_MS_MAX; in a group, a hung leader its members still
 * point to may cost a few of those timeouts.
 */
const LOCATION_REFRESH_MS_MAX = 1000
const LOCATION_REFRESH_TIMEOUT_MS = 2000
const LOCATION_CACHE_COUNT_MAX = 100_000

type Locations = Record<string, ContainerLocation>

export interface OmOptions {
  config: O3Config
  port?: number
  /** Raft port; 0 picks a free one (the default when `port` is given: a group of one needs no fixed one). */
  raftPort?: number
  scmAddress: string
  /** With security.enabled=1: an identity source in process (tests); default: enroll with security.bootstrapToken. */
  identity?: IdentitySource
}

export class OzoneManager {
  readonly metrics = new ServiceMetrics('om')
  private readonly config: O3Config
  /** The `authorize` option of the OM's RPC edge (control/om/access.ts): public for tests that build RpcContexts. */
  readonly authorize: OmAuthorize
  private scm!: RpcClient
  /** Security on: the certificate this OM serves and calls the SCM and its peers with. */
  private identity: ServiceIdentity | undefined
  private ha!: ReplicatedService
  private t!: OmTables
  private listener?: Listener
  /** Ends the local calls of this process's clients (serveRpcLocally), once they began. */
  private leaveLocal: (() => Promise<void>) | undefined
  /** stop() was called: a start still under way registers nothing. */
  private stopping = false
  private timers: ReturnType<typeof setInterval>[] = []
  /** The data directory's in_use.lock, held from start to stop. */
  private dirLock: DirLock | undefined
  /** The background task running now (one at a time), awaited by stop(). */
  private background: Promise<unknown> | undefined
  /** Blocks from the SCM's last batches, by replication, each with when it was fetched. */
  private readonly blockCache = new Map<string, { block: AllocatedBlock; fetchedAtMs: number }[]>()
  /** Container locations from the SCM, kept briefly: readers fall back between replicas anyway. */
  private readonly locationCache = new Map<ContainerId, { loc: Locations[string]; expiresAtMs: number }>()
  /** No location refresh before this time (one failed just now). */
  private locationRefreshAfterMs = 0
  /** Security on: the SCM's secret keys, which sign the block tokens `tokens` attaches. */
  private secretKeys?: SecretKeyCache
  private tokens = new BlockTokenIssuer(undefined, 0)
  /** o3.administrators: users with every right, any user's S3 secrets among them. */
  private readonly administrators: ReadonlySet<string>

  constructor(private readonly options: OmOptions) {
    this.config = options.config
    this.administrators = administratorsOf(this.config['o3.administrators'])
    this.authorize = omAuthorizer({ tables: () => this.t, config: this.config })
  }

  get port(): number {
    assert(this.listener !== undefined, 'OM not started')
    return this.listener.port
  }

  get address(): string {
    return `${this.config.host}:${this.port}`
  }

  async start(): Promise<void> {
    // A second process on this directory would share its LMDB files.
    this.dirLock = DirLock.acquire(this.config['om.dir'], `the OM on ${this.config['om.dir']}`)
    this.identity = await startIdentity({
      enabled: this.config['security.enabled'], role: 'om', id: this.config['om.id'] === '' ? 'om1' : this.config['om.id'], host: this.config.host,
      dir: this.config['om.dir'], scm: this.options.scmAddress, bootstrapToken: this.config['security.bootstrapToken'], source: this.options.identity,
    })
    this.scm = new RpcClient('SCM', this.options.scmAddress, { transport: this.identity?.transport() ?? PLAIN_TRANSPORT })
    const group = await startServiceGroup({
      identity: this.identity,
      service: 'OM', prefix: 'om', dir: this.config['om.dir'], legacyDb: 'om.db', nodes: this.config['om.nodes'], id: this.config['om.id'],
      host: this.config.host, raftPort: this.options.raftPort ?? (this.options.port !== undefined ? 0 : this.config['om.raft.port']), sync: this.config['db.sync'] === 1,
      bootstrap: this.config['om.bootstrap'] === 1,
      timing: { tickMs: this.config['raft.tickMs'], electionTimeoutTicks: this.config['raft.electionTimeoutTicks'], heartbeatTimeoutTicks: this.config['raft.heartbeatTimeoutTicks'] },
      requests: omRequests({ tables: () => this.t, config: this.config, blocksFor: (r, n, x) => this.blocksFor(r, n, x) }),
      opened: (db: RootDatabase) => { this.t = openOmTables(db) },
    })
    this.ha = group.ha

    this.metrics.gauge('open_keys', 'Keys being written', () => entryCount(this.t.openKeys))
    this.metrics.gauge('keys', 'Committed keys', () => entryCount(this.t.keys))
    this.metrics.gauge('volumes', 'Volumes', () => entryCount(this.t.volumes))
    this.metrics.gauge('buckets', 'Buckets', () => entryCount(this.t.buckets))
    this.metrics.gauge('deleted_pending', 'Deleted-key entries whose blocks await the SCM', () => entryCount(this.t.deleted))
    this.ha.exportMetrics(this.metrics)

    if (this.config['security.enabled'] === 1) {
      this.secretKeys = new SecretKeyCache({ name: 'OM', fetch: () => this.scm.call<SecretKeysAnswer>('getSecretKeys', {}), refreshMs: secretKeyRefreshMs(this.config['security.secretKey.rotateMs']) })
      // Not awaited: a start before the SCM answers fetches again on the first token it signs.
      void this.secretKeys.start()
      this.tokens = new BlockTokenIssuer(this.secretKeys, this.config['security.blockToken.expiryMs'])
    }
    const submit = (name: string) => (a: Record<string, unknown>, ctx: RpcContext) => this.ha.submit(name, a, callerIdOf(a.caller, ctx))
    /** A create request whose new record is owned by the calling user (never by what the wire says). */
    const submitOwned = (name: string) => (a: Record<string, unknown>, ctx: RpcContext) => {
      const { owner: _ignored, ...rest } = a
      const owner = actingUser(ctx)
      return this.ha.submit(name, owner === undefined ? rest : { ...rest, owner }, callerIdOf(a.caller, ctx))
    }
    /**
     * createVolume, createBucket: the owner given, else the calling user (Ozone's default), else
     * the record's default. A signed user names only itself as owner, an administrator anyone;
     * the S3 gateway, which authorizes its users itself, names the owner it decided.
     */
    const submitDefaultOwner = (name: string) => (a: Record<string, unknown>, ctx: RpcContext) => {
      const owner = actingUser(ctx)
      if (ctx.caller.kind === 'user' && a.owner !== undefined && a.owner !== owner && !isAdministrator(ctx.caller, this.administrators)) {
        throw new O3Error('PERMISSION_DENIED', `Cannot ${name} owned by ${String(a.owner)}: user ${owner} is not an administrator, and may only own what it creates`)
      }
      return this.ha.submit(name, a.owner === undefined && owner !== undefined ? { ...a, owner } : a, callerIdOf(a.caller, ctx))
    }
    const service: ServiceAppOptions = {
      service: 'OM',
      metrics: this.metrics,
      health: () => this.ha.health(),
      // Security on: every call names a user (signature, user certificate) or a service (its certificate).
      authenticate: this.config['security.enabled'] === 1 ? omAuthenticate({ secretOf: (accessKey) => secretOf(this.t, accessKey) }) : undefined,
      // Then the native ACLs decide what a user may (control/om/access.ts); open callers pass.
      authorize: this.authorize,
      handlers: {
        createVolume: submitDefaultOwner('createVolume'),
        getVolume: (a) => this.read(() => this.getVolume(a)),
        listVolumes: (a, ctx) => this.read(() => listByName(this.t.volumes, '', a, (v) => volumeVisible(this.config, ctx, v))),
        deleteVolume: submit('deleteVolume'),
        createBucket: submitDefaultOwner('createBucket'),
        getBucket: (a) => this.read(() => withUsage(this.t, bucketOf(this.t, checkVolumeName(a.volume), checkBucketName(a.bucket)))),
        listBuckets: (a) => this.read(() => this.listBuckets(a)),
        deleteBucket: submit('deleteBucket'),
        setVolumeQuota: submit('setVolumeQuota'),
        setBucketQuota: submit('setBucketQuota'),
        setBucketS3: submit('setBucketS3'),
        // Block tokens go on at this edge, after the apply (block-tokens.ts).
        openKey: async (a, ctx) => this.tokens.opened(await submitOwned('openKey')(a, ctx) as OpenKeyResult, tokenOwner(ctx)),
        allocateBlock: async (a, ctx) => this.tokens.block(await this.allocateBlock(a, ctx), ctx),
        // The committed key comes back readable, as a lookup would (putKey's answer reads the key at once).
        commitKey: async (a, ctx) => this.tokens.key(await submit('commitKey')(a, ctx) as KeyInfo, tokenOwner(ctx)),
        abortKey: submit('abortKey'),
        lookupKey: async (a, ctx) => this.tokens.key(await this.read(() => this.lookupKey(a)), tokenOwner(ctx)),
        listKeys: (a) => this.read(() => this.listKeys(a)),
        deleteKey: submit('deleteKey'),
        renameKey: submit('renameKey'),
        commitMultipartKey: submitOwned('commitMultipartKey'),
        getAcl: (a) => this.read(() => ({ acls: aclsOf(this.t, checkAclObject(a)) })),
        addAcl: submit('addAcl'),
        removeAcl: submit('removeAcl'),
        setAcl: submit('setAcl'),
        getS3Secret: (a, ctx) => this.getS3Secret(a, ctx),
        revokeS3Secret: (a, ctx) => {
          checkSecretAccess(ctx, checkUser(a.user), this.administrators, `revoke the S3 secret of ${String(a.user)}`)
          return submit('revokeS3Secret')(a, ctx)
        },
        lookupS3Secret: (a, ctx) => this.read(() => this.lookupS3Secret(a, ctx)),
        s3Authenticate: async (a, ctx) => {
          checkGateway(ctx, 'check an S3 signature')
          return this.tokens.s3(await this.read(() => this.s3Authenticate(a, ctx)), ctx)
        },
        ...new GroupAdmin(this.ha, 'OM', 'om', () => ({ address: this.address, raftAddress: `${this.config.host}:${this.ha.raft.port}` })).handlers(true),
        stateDigest: () => stateDigest(this.ha.db),
      },
    }
    const app = createServiceApp(service)
    const port = group.rpcPort ?? this.options.port ?? this.config['om.port']
    this.listener = await serveApp(app, { host: this.config.host, port, name: 'OM', ...(this.identity === undefined ? {} : { tls: this.identity.serverTls() }) })
    const every = (ms: number, run: () => Promise<unknown>) => {
      const t = setInterval(() => {
        if (this.background !== undefined || !this.ha.isLeader()) return
        this.background = run().catch((e) => log.debug(`OM background: ${(e as Error).message}`)).finally(() => { this.background = undefined })
      }, ms)
      t.unref()
      this.timers.push(t)
    }
    every(this.config['om.openKey.checkIntervalMs'], () => this.expireOpenKeys())
    every(2000, () => this.purgeDeletedBlocks())
    // Last, once started: clients in this process call without HTTP (never with security on: calls stay on HTTPS).
    if (service.authenticate === undefined && this.config['rpc.shortCircuit'] === 1 && !this.stopping) this.leaveLocal = serveRpcLocally('OM', this.address, localServiceCall(service))
    log.info(`OM listening on ${this.address}`)
  }

  async stop(): Promise<void> {
    this.stopping = true
    // Clients in this process reach it over HTTP from now on, as any stopped service; the
    // local calls under way settle first, as the listener's requests do.
    const leaving = this.leaveLocal?.()
    this.leaveLocal = undefined
    await leaving
    for (const t of this.timers) clearInterval(t)
    this.secretKeys?.stop()
    await this.listener?.close()
    await this.background
    await this.ha?.stop()
    this.identity?.stop()
    this.dirLock?.release()
  }

  /** A linearizable read on the leader (NOT_LEADER on a follower). */
  private async read<T>(run: () => T | Promise<T>): Promise<T> {
    return await this.ha.read('read', run)
  }

  // --- volumes and buckets --------------------------------------------------------------

  /** A volume with its bucket count and, summed over its buckets, the replicated bytes they use. */
  private getVolume(a: { volume?: unknown }): VolumeInfo {
    const v = volumeWithUsage(this.t, volumeOf(this.t, checkVolumeName(a.volume)))
    let usedBytes = 0
    for (const b of bucketsOf(this.t, v.name)) usedBytes += withUsage(this.t, b).usedBytes
    return { ...v, usedBytes }
  }

  private listBuckets(a: { volume?: unknown; prefix?: unknown; startAfter?: unknown; maxCount?: unknown }): BucketInfo[] {
    const volume = checkVolumeName(a.volume)
    volumeOf(this.t, volume)
    return listByName(this.t.buckets, `${volume}/`, a).map((b) => withUsage(this.t, b))
  }

  // --- keys -----------------------------------------------------------------------------

  /** Blocks from the SCM: from the batch cache when nothing is excluded, else asked afresh. */
  private async blocksFor(replication: string, count: number, exclude?: ExcludeList): Promise<AllocatedBlock[]> {
    const excluding = exclude !== undefined && (exclude.datanodes.length + exclude.containers.length + exclude.pipelines.length) > 0
    if (excluding) {
      // A writer excludes what just failed it (a closed container or pipeline, a dead node):
      // cached blocks there would fail the next writers alike, one retry each.
      // In place: a call waiting for a batch holds its cache and takes from it afterwards; a
      // copy would leave both holding the same blocks, handed out twice.
      for (const cached of this.blockCache.values()) {
        let kept = 0
        for (const c of cached) if (!excludes(exclude, c.block)) cached[kept++] = c
        cached.length = kept
      }
      return this.scm.call<AllocatedBlock[]>('allocateBlock', { replication, count, excludeList: exclude, sizeBytes: this.config['scm.block.sizeBytes'] })
    }
    const cache = this.blockCache.get(replication) ?? []
    this.blockCache.set(replication, cache)
    // Fetched in order: the stale ones are at the front.
    const freshFromMs = Date.now() - OM_BLOCK_CACHE_AGE_MS_MAX
    while (cache.length > 0 && cache[0].fetchedAtMs < freshFromMs) cache.shift()
    while (cache.length < count) {
      const batch = await this.scm.call<AllocatedBlock[]>('allocateBlock', { replication, count: Math.max(OM_BLOCK_BATCH_COUNT, count - cache.length), sizeBytes: this.config['scm.block.sizeBytes'] })
      const fetchedAtMs = Date.now()
      cache.push(...batch.map((block) => ({ block, fetchedAtMs })))
    }
    return cache.splice(0, count).map((c) => c.block)
  }

  private async allocateBlock(a: Record<string, unknown>, ctx: RpcContext): Promise<AllocatedBlock> {
    const r = await this.ha.submit('allocateBlock', a, callerIdOf(a.caller, ctx)) as AllocatedBlock | { lost: true }
    if ('lost' in r) throw new O3Error('OPEN_KEY_NOT_FOUND', `Cannot allocate a block for open key ${String(a.clientId)}: it expired or was aborted meanwhile`)
    return r
  }

  private getKey(a: { volume?: unknown; bucket?: unknown; key?: unknown }): KeyInfo {
    return keyOf(this.t, { volume: checkVolumeName(a.volume), bucket: checkBucketName(a.bucket), name: checkKeyName(a.key) })
  }

  /** A key with its blocks' current locations from the SCM (closed containers list their replicas). */
  private async lookupKey(a: { volume?: unknown; bucket?: unknown; key?: unknown }): Promise<KeyInfo> {
    const key = this.getKey(a)
    if (key.locations.length === 0) return key
    const now = Date.now()
    const missing = [...new Set(key.locations.map((l) => l.blockId.containerId))].filter((id) => (this.locationCache.get(id)?.expiresAtMs ?? 0) <= now)
    if (missing.length > 0 && now >= this.locationRefreshAfterMs) {
      try {
        const found = await this.scm.call<Locations>('getContainerLocations', { containerIds: missing }, { idempotent: true, timeoutMs: LOCATION_REFRESH_TIMEOUT_MS, failoverMs: LOCATION_REFRESH_MS_MAX })
        if (this.locationCache.size > LOCATION_CACHE_COUNT_MAX) this.locationCache.clear()
        for (const [id, loc] of Object.entries(found)) this.locationCache.set(Number(id) as ContainerId, { loc, expiresAtMs: now + LOCATION_CACHE_TTL_MS })
      } catch (err) {
        this.locationRefreshAfterMs = Date.now() + LOCATION_REFRESH_MS_MAX
        log.warn(`OM: cannot refresh locations from SCM, using recorded pipelines: ${(err as Error).message}`)
      }
    }
    return { ...key, locations: key.locations.map((l) => ({ ...l, pipeline: refreshPipeline(l.pipeline, this.locationCache.get(l.blockId.containerId)?.loc) })) }
  }

  private listKeys(a: { volume?: unknown; bucket?: unknown; prefix?: unknown; startAfter?: unknown; maxKeys?: unknown }): ListKeysResult {
    const volume = checkVolumeName(a.volume)
    const bucket = checkBucketName(a.bucket)
    bucketOf(this.t, volume, bucket)
    const prefix = typeof a.prefix === 'string' ? a.prefix : ''
    const max = a.maxKeys === undefined ? LIST_KEYS_COUNT_MAX : Math.min(LIST_KEYS_COUNT_MAX, parseId<number>(a.maxKeys, 'maxKeys'))
    // No key is longer than KEY_NAME_BYTES_MAX: a longer prefix matches none (as in S3), and
    // one longer than the database's key size would fail LMDB's range (a 500 at the gateway).
    if (Buffer.byteLength(prefix) > KEY_NAME_BYTES_MAX) return { keys: [], truncated: false, nextStartAfter: null }
    const full = keyPath(volume, bucket, prefix)
    let start = full
    if (typeof a.startAfter === 'string' && a.startAfter.length > 0) {
      let after = keyPath(volume, bucket, a.startAfter)
      // A longer startAfter: the keys after it are those after its first KEY_NAME_BYTES_MAX
      // bytes (a key that long or shorter sorts after the whole exactly when after its start).
      const over = Buffer.byteLength(a.startAfter) - KEY_NAME_BYTES_MAX
      if (over > 0) after = after.subarray(0, after.length - over)
      const next = new Uint8Array(after.length + 1)
      next.set(after)
      if (Buffer.compare(next, start) > 0) start = next
    }
    const keys: KeyInfo[] = []
    let truncated = false
    for (const { key, value } of this.t.keys.getRange({ start })) {
      if (!startsWith(key, full)) break
      if (keys.length >= max) { truncated = true; break }
      keys.push(value)
    }
    assert(keys.every((k) => k.volume === volume && k.bucket === bucket), 'listKeys left its bucket')
    return { keys, truncated, nextStartAfter: truncated && keys.length > 0 ? keys[keys.length - 1].name : null }
  }

  // --- S3 secrets (Ozone's S3SecretManager) ----------------------------------------------

  /**
   * The user's key pair, created on first call, asked for in-process with no caller to check:
   * how `o3 local --secure` gives its administrator a key before anyone can sign a call. On the
   * OM group's leader (NOT_LEADER elsewhere).
   */
  ensureUserSecret(user: string): Promise<S3Secret> {
    return this.getS3Secret({ user }, OPEN_CONTEXT)
  }

  /** Returns the user's key pair, creating one (through the log) on first call: for that user or an administrator. */
  private async getS3Secret(a: { user?: unknown; caller?: unknown }, ctx: RpcContext): Promise<S3Secret> {
    const user = checkUser(a.user)
    checkSecretAccess(ctx, user, this.administrators, `get the S3 secret of ${user}`)
    const existing = await this.read(() => {
      for (const { value } of this.t.s3Secrets.getRange()) if (value.user === user) return value
      return undefined
    })
    return existing ?? (await this.ha.submit('getS3Secret', { user }, callerIdOf(a.caller, ctx)) as S3Secret)
  }

  /** The key pair of an access key: for its user or an administrator (the OM's own reads pass OPEN_CONTEXT). */
  private lookupS3Secret(a: { accessKey?: unknown }, ctx: RpcContext): S3Secret {
    if (typeof a.accessKey !== 'string' || a.accessKey.length === 0) throw new O3Error('INVALID_ARGUMENT', 'accessKey must be a non-empty string')
    const secret = secretOf(this.t, a.accessKey)
    if (secret === undefined) throw new O3Error('PERMISSION_DENIED', `Access key ${a.accessKey} not found`)
    checkSecretAccess(ctx, secret.user, this.administrators, `look up access key ${a.accessKey}`)
    return secret
  }

  /**
   * Everything the S3 gateway asks before its handler, in one call. The access key must exist
   * (PERMISSION_DENIED, as lookupS3Secret) and the request's signature verify with its secret,
   * which never leaves the OM (SIGNATURE_MISMATCH); with no proof (the gateway found the
   * request malformed and only needs to know whether the key exists) nothing more is read.
   * With no access key at all (an anonymous request) there is no user and nothing to verify.
   * Then, if named, the bucket; if named and the bucket exists, the key with its current
   * locations, whoever owns it (the gateway authorizes); and if asked and the bucket is the
   * user's, the key is opened with its first block (S3OpenIntent).
   * A bucket, key or open that fails comes back as its error code, not thrown: the gateway
   * answers it only where its handler would (NoSuchBucket, AccessDenied, NoSuchKey), and
   * aborts an open key its handler did not use. Nothing is cached on either side.
   */
  private async s3Authenticate(a: { accessKey?: unknown; proof?: unknown; signingKey?: unknown; volume?: unknown; bucket?: unknown; key?: unknown; open?: unknown; caller?: unknown }, ctx: RpcContext): Promise<S3AuthResult> {
    // An anonymous request (no access key: S3 evaluates it against ACLs and policies) has
    // nothing to verify and never opens a key; its bucket and key are read as anyone's.
    const anonymous = a.accessKey === undefined || a.accessKey === null
    const secret = anonymous ? undefined : this.lookupS3Secret(a, OPEN_CONTEXT)
    const out: S3AuthResult = secret === undefined ? {} : { user: secret.user }
    if (secret !== undefined) {
      if (a.proof === undefined || a.proof === null) return out
      const proof = checkProof(a.proof)
      const verified = verifyProof(secret.awsSecret, proof)
      if (!verified.ok) throw new O3Error('SIGNATURE_MISMATCH', `Cannot authenticate access key ${a.accessKey as string}: the signature does not match`)
      if (a.signingKey === true && verified.signingKey !== undefined) out.signingKeyHex = verified.signingKey.toString('hex')
    }
    if (a.bucket === undefined) return out
    const bucket = await lookupPart(async () => bucketOf(this.t, checkVolumeName(a.volume), checkBucketName(a.bucket)))
    out.bucket = bucket
    if (!bucket.ok) return out
    // The key is read whoever owns the bucket: the gateway decides who may see it (ACLs, policy).
    if (a.key !== undefined) out.key = await lookupPart(() => this.lookupKey({ volume: a.volume, bucket: a.bucket, key: a.key }))
    if (a.open === undefined || a.open === null || secret === undefined || bucket.value.owner !== secret.user) return out
    const open = checkOpenIntent(a.open)
    // Only the request's own bucket, which was just found to be the user's, is opened in.
    if (open.bucket !== a.bucket) throw new O3Error('INVALID_ARGUMENT', `Cannot open key ${String(open.key)} in bucket ${String(open.bucket)}: the request names bucket ${String(a.bucket)}`)
    if (open.ifNotExists === true && (out.key === undefined || out.key.ok || out.key.error.code !== 'KEY_NOT_FOUND')) return out
    if (open.requireKey !== undefined) {
      out.required = await lookupPart(async () => this.getKey(open.requireKey!))
      if (!out.required.ok) return out
    }
    // A retried s3Authenticate (same caller) gets the key it opened the first time.
    out.opened = await lookupPart(async () => await this.ha.submit('openKey', { ...open, owner: secret.user }, callerIdOf(a.caller, ctx)) as OpenKeyResult)
    return out
  }

  // --- background (leader) --------------------------------------------------------------

  private async expireOpenKeys(): Promise<void> {
    const cutoffMs = Date.now() - this.config['om.openKey.expireMs']
    const clientIds: string[] = []
    for (const { value } of this.t.openKeys.getRange()) if (value.createdAtMs < cutoffMs) clientIds.push(value.clientId)
    if (clientIds.length === 0) return
    const expired = await this.ha.submit('expireOpenKeys', { clientIds, cutoffMs }) as number
    log.info(`OM: expired ${expired} open keys`)
  }

  private async purgeDeletedBlocks(): Promise<void> {
    const batch: { id: number; entry: DeletedEntry }[] = []
    // Entries are numbered in the order they were made: the first one still in its grace ends the batch.
    const cutoffMs = Date.now() - this.config['om.deletedBlocks.graceMs']
    for (const { key, value } of this.t.deleted.getRange({ limit: 100 })) {
      if (value.deletedAtMs > cutoffMs) break
      batch.push({ id: key, entry: value })
    }
    if (batch.length === 0) return
    await this.scm.call('deleteBlocks', { blocks: batch.flatMap((b) => b.entry.blocks) })
    await this.ha.submit('forgetDeleted', { ids: batch.map((b) => b.id) })
  }
}

/** Runs one part of a lookup; an operating error becomes its wire form, anything else is thrown. */
async function lookupPart<T>(run: () => Promise<T>): Promise<LookupPart<T>> {
  try {
    return { ok: true, value: await run() }
  } catch (err) {
    if (err instanceof O3Error) return { ok: false, error: err.toWire() }
    throw err
  }
}



/** An S3OpenIntent as it came off the wire; names are checked again by openKey. */
function checkOpenIntent(raw: unknown): S3OpenIntent {
  if (typeof raw !== 'object' || raw === null) throw new O3Error('INVALID_ARGUMENT', 'open must be an object')
  const o = raw as Partial<S3OpenIntent>
  const r = o.requireKey
  if (r !== undefined && (typeof r !== 'object' || r === null)) throw new O3Error('INVALID_ARGUMENT', 'open.requireKey must be an object')
  return o as S3OpenIntent
}



/** Up to maxCount (at most LIST_VOLUMES_COUNT_MAX) records of `table` whose names, after the
 *  key's `scope` (a volume's 'vol/' for buckets, '' for volumes), start with `prefix` and
 *  sort after `startAfter`: the paging of listVolumes and listBuckets. */
function listByName<T>(table: Database<T, string>, scope: string, a: { prefix?: unknown; startAfter?: unknown; maxCount?: unknown }, visible: (record: T) => boolean = () => true): T[] {
  const prefix = `${scope}${typeof a.prefix === 'string' ? a.prefix : ''}`
  // Names are ASCII of at most VOLUME_NAME_LENGTH_MAX: a longer prefix matches none, and the
  // names after a longer startAfter are those after its first VOLUME_NAME_LENGTH_MAX characters.
  if (prefix.length - scope.length > VOLUME_NAME_LENGTH_MAX) return []
  const max = Math.min(LIST_VOLUMES_COUNT_MAX, typeof a.maxCount === 'number' ? a.maxCount : LIST_VOLUMES_COUNT_MAX)
  const start = typeof a.startAfter === 'string' ? `${scope}${a.startAfter.slice(0, VOLUME_NAME_LENGTH_MAX)}\0` : prefix
  const out: T[] = []
  for (const { key, value } of table.getRange({ start })) {
    if (!key.startsWith(prefix) || out.length >= max) break
    if (visible(value)) out.push(value)
  }
  return out
}

/** Whether a block lies in an excluded container or pipeline, or on an excluded datanode. */
function excludes(x: ExcludeList, b: AllocatedBlock): boolean {
  return x.containers.includes(b.blockId.containerId) || x.pipelines.includes(b.pipeline.id) || b.pipeline.nodes.some((n) => x.datanodes.includes(n.id))
}
