/** @module
 * The SCM as the cluster's certificate authority (issue 16, Ozone's SCM CertificateServer):
 * the root CA made once through Raft (requests/init-ca.ts) and kept only in the SCMs' state
 * (the replicated `ca` table and the Raft log it came through; `<scm.dir>/ca/ca.crt` holds the
 * certificate for clients), enrollment with bootstrap tokens, renewal over mutual TLS, the
 * list of enrolled services, and user certificates. Every SCM of a group issues with the same
 * CA; issuing is the leader's, recorded per identity in the log.
 */
import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import type { O3Config } from '../../core/config.ts'
import { O3Error } from '../../core/errors.ts'
import { log } from '../../core/log.ts'
import { administratorsOf, isAdministrator } from '../../core/security/administrators.ts'
import type { RpcContext } from '../../core/security/caller.ts'
import { answerProof, enrollProof, formatBootstrapToken, parseEnrollRequest, proofsEqual, type EnrollAnswer } from '../../core/security/enrollment.ts'
import { ENROLLING_ROLES, type CertIssuer } from '../../core/security/identity.ts'
import { checkIdentity, expiresAtMs, generateKeyPair, issueCertificate, type CertIdentity, type Credentials, type ServiceRole } from '../../core/security/pki.ts'
import type { ReplicatedService } from '../ha/replicated-service.ts'
import { enrolledKey, type CertificatePayload } from './requests/record-certificate.ts'
import type { BootstrapTokenRecord, CaRoot, EnrolledRecord, ScmTables } from './tables.ts'

/** How far an enroller's clock may be from the leader's: bounds how long a captured request could be replayed. */
export const ENROLL_CLOCK_SKEW_MS = 5 * 60_000
/** How long start() waits for the group to make or replicate the CA. */
const CA_WAIT_MS = 30_000

/**
 * A certificate for an O3 user (an administrator using `o3 admin`, `o3 local --secure`'s
 * admin), with a new key pair: for mutual TLS as that user. Not recorded: users are not
 * enrolled identities.
 */
export async function issueUserCertificate(o: { ca: { cert: string; privateKey: string }; user: string; nowMs: number; validityMs: number }): Promise<Credentials> {
  const identity: CertIdentity = { role: 'user', id: o.user }
  checkIdentity(identity)
  const keys = await generateKeyPair()
  const cert = await issueCertificate({ ca: o.ca, publicKey: keys.publicKey, identity, hosts: [], nowMs: o.nowMs, validityMs: o.validityMs })
  return { key: keys.privateKey, cert, ca: o.ca.cert }
}

export class ScmCa {
  private constructor(
    /** undefined for issuerOf's issuer, which only issues from the state (nothing goes through the log). */
    private readonly group: ReplicatedService | undefined,
    private readonly tables: () => ScmTables,
    private readonly config: O3Config,
  ) {}

  /**
   * Issues the SCM's own certificates from a CA the group's state already holds, before the
   * group runs (a restart: the SCM's Raft is mutual TLS from the first message); undefined
   * while the group has made no CA yet.
   */
  static issuerOf(tables: () => ScmTables, config: O3Config): CertIssuer | undefined {
    if (tables().ca.get('root') === undefined) return undefined
    return new ScmCa(undefined, tables, config).issuer()
  }

  private get ha(): ReplicatedService {
    if (this.group === undefined) throw new O3Error('UNAVAILABLE', 'Cannot change the CA before the SCM group runs')
    return this.group
  }

  /**
   * The group's CA, made by the leader on the group's first start (with its first bootstrap
   * token, whose file the log names) and replicated to the others; writes `<scm.dir>/ca/ca.crt` and
   * `<scm.dir>/ca/bootstrap-token` (mode 0600) on every SCM.
   */
  static async start(o: { ha: ReplicatedService; tables: () => ScmTables; config: O3Config; clusterId: string }): Promise<ScmCa> {
    const ca = new ScmCa(o.ha, o.tables, o.config)
    const deadline = Date.now() + CA_WAIT_MS
    let created = false
    while (o.tables().ca.get('root') === undefined) {
      if (o.ha.isLeader()) {
        created = ((await o.ha.submit('initCa', { clusterId: o.clusterId })) as { created: boolean }).created
        break
      }
      if (Date.now() > deadline) throw new O3Error('UNAVAILABLE', `Cannot start the SCM's CA: no leader made it within ${CA_WAIT_MS} ms`)
      await new Promise((r) => setTimeout(r, 10))
    }
    ca.writeFiles()
    if (created) {
      // The token's path, never the token: a log is read by more people than a 0600 file.
      log.info(`SCM: created the cluster CA (${ca.caFile}); services enroll with the bootstrap token in ${ca.tokenFile}, user certificates with ${ca.adminTokenFile} (both readable by this user only)`)
    }
    return ca
  }

  private get folder(): string {
    return join(this.config['scm.dir'], 'ca')
  }

  /** `<scm.dir>/ca/ca.crt`: the CA certificate, for clients (client.caFile) to trust. */
  get caFile(): string {
    return join(this.folder, 'ca.crt')
  }

  get tokenFile(): string {
    return join(this.folder, 'bootstrap-token')
  }

  /** `<scm.dir>/ca/admin-token` (0600): enrolls user certificates (enrollUser), for the operator on this host. */
  get adminTokenFile(): string {
    return join(this.folder, 'admin-token')
  }

  private writeFiles(): void {
    mkdirSync(this.folder, { recursive: true })
    const cert = this.caCert()
    if (!existsSync(this.caFile) || readFileSync(this.caFile, 'utf8') !== cert) writeFileSync(this.caFile, cert, { mode: 0o644 })
    for (const [file, token] of [[this.tokenFile, this.bootstrapToken()], [this.adminTokenFile, this.adminToken()]]) {
      if (!existsSync(file) || readFileSync(file, 'utf8').trim() !== token) writeFileSync(file, `${token}\n`, { mode: 0o600 })
      chmodSync(file, 0o600)
    }
  }

  private root(): CaRoot {
    const root = this.tables().ca.get('root') as CaRoot | undefined
    if (root === undefined) throw new O3Error('UNAVAILABLE', 'Cannot issue certificates: the cluster CA is not made yet')
    return root
  }

  caCert(): string {
    return this.root().cert
  }

  /** The group's first bootstrap token (reusable, no expiry): what `o3 local --secure` hands every service. */
  bootstrapToken(): string {
    const id = this.tables().ca.get('firstToken') as string
    const token = this.tables().ca.get(`token/${id}`) as BootstrapTokenRecord
    return formatBootstrapToken(id, token.secret)
  }

  /** The admin token: enrolls user certificates only (reusable, no expiry); in `<scm.dir>/ca/admin-token`. */
  adminToken(): string {
    const id = this.tables().ca.get('adminToken') as string
    const token = this.tables().ca.get(`token/${id}`) as BootstrapTokenRecord
    return formatBootstrapToken(id, token.secret)
  }

  /** A certificate's lifetime: what was asked (0: the setting), at most security.certValidityMs, never past the CA's. */
  private validityMs(askedMs: number | undefined, nowMs: number): number {
    const max = Math.min(this.config['security.certValidityMs'], expiresAtMs(this.root().cert) - nowMs)
    return askedMs === undefined || askedMs <= 0 ? max : Math.min(Math.max(askedMs, 1000), max)
  }

  private issue(identity: CertIdentity, publicKey: string, hosts: readonly string[], askedMs: number | undefined, nowMs: number): Promise<string> {
    const root = this.root()
    return issueCertificate({ ca: { cert: root.cert, privateKey: root.privateKey }, publicKey, identity, hosts, nowMs, validityMs: this.validityMs(askedMs, nowMs) })
  }

  /** Issues in-process, unrecorded: the SCM's own certificates (ServiceIdentity.forScm). */
  issuer(): CertIssuer {
    return {
      caCert: () => this.caCert(),
      issue: (o) => this.issue(o.identity, o.publicKey, o.hosts, o.validityMs, Date.now()),
    }
  }

  /**
   * A user certificate for `user` with a new key (administrators; `o3 local --secure`). An
   * explicit `validityMs` is the in-process caller's to choose (a user certificate does not
   * renew itself), bounded only by the CA's own expiry; else security.certValidityMs.
   */
  issueUserCertificate(user: string, o: { validityMs?: number } = {}): Promise<Credentials> {
    const root = this.root()
    const nowMs = Date.now()
    const validityMs = o.validityMs === undefined ? this.validityMs(undefined, nowMs) : Math.min(Math.max(o.validityMs, 1000), expiresAtMs(root.cert) - nowMs)
    return issueUserCertificate({ ca: { cert: root.cert, privateKey: root.privateKey }, user, nowMs, validityMs })
  }

  /** The CA's RPC handlers; `leader` runs a call on the leader (the SCM's). */
  handlers(leader: <T>(what: string, run: () => T | Promise<T>) => Promise<T>): Record<string, (a: Record<string, unknown>, ctx: RpcContext) => unknown> {
    return {
      getCaCertificate: () => ({ ca: this.caCert() }),
      enroll: (a) => leader('enroll', () => this.enroll(a)),
      renewCertificate: (a, ctx) => leader('renewCertificate', () => this.renew(a, ctx)),
      createBootstrapToken: (a, ctx) => leader('createBootstrapToken', () => this.createToken(a, ctx)),
      listCertificates: (_a, ctx) => leader('listCertificates', () => { this.requireAdmin(ctx, 'list certificates'); return this.enrolled() }),
      forgetEnrollment: (a, ctx) => leader('forgetEnrollment', async () => {
        this.requireAdmin(ctx, 'forget an enrollment')
        const made = (await this.ha.submit('forgetEnrollment', { role: a.role, id: a.id })) as { forgotten: boolean }
        if (!made.forgotten) throw new O3Error('INVALID_ARGUMENT', `Cannot forget the enrollment of ${String(a.role)} ${String(a.id)}: it is not enrolled`)
        log.warn(`SCM: forgot the enrollment of ${String(a.role)} ${String(a.id)}: it may enroll again with a new key (its old certificate stays valid until it expires)`)
        return made
      }),
    }
  }

  /** Every enrolled identity and its current certificate's dates (`o3 admin cert list`). */
  private enrolled(): { role: string; id: string; issuedAtMs: number; expiresAtMs: number }[] {
    const out = []
    for (const { value } of this.tables().ca.getRange({ start: 'cert/', end: 'cert0' })) {
      const r = value as EnrolledRecord
      out.push({ role: r.role, id: r.id, issuedAtMs: r.issuedAtMs, expiresAtMs: expiresAtMs(r.cert) })
    }
    return out
  }

  /** Throws unless the caller is an SCM or an administrator's user certificate (o3.administrators). */
  private requireAdmin(ctx: RpcContext, what: string): void {
    const c = ctx.caller
    if (c.kind === 'open' || (c.kind === 'service' && c.role === 'scm') || isAdministrator(c, administratorsOf(this.config['o3.administrators']))) return
    throw new O3Error(c.kind === 'anonymous' ? 'UNAUTHENTICATED' : 'PERMISSION_DENIED', `Cannot ${what}: ${c.kind === 'anonymous' ? 'the call carries no certificate' : 'the caller is not an administrator (o3.administrators)'}`)
  }

  /**
   * A service's first certificate: the request's proof must be an HMAC with a live token
   * (whose secret never crosses the wire), the enroller's clock near ours; the identity
   * enrolls once (requests/record-certificate.ts). The answer proves we hold the token too.
   */
  private async enroll(a: Record<string, unknown>): Promise<EnrollAnswer> {
    const r = parseEnrollRequest(a)
    const who = `${r.role} ${r.id}`
    if (r.role !== 'user' && !(ENROLLING_ROLES as readonly string[]).includes(r.role)) throw new O3Error('CERTIFICATE_ERROR', `Cannot enroll ${who}: role ${r.role} does not enroll with a bootstrap token (only ${ENROLLING_ROLES.join(', ')}, and users with the admin token)`)
    const identity = { role: r.role as ServiceRole, id: r.id }
    checkIdentity(identity)
    const nowMs = Date.now()
    if (Math.abs(nowMs - r.timeMs) > ENROLL_CLOCK_SKEW_MS) throw new O3Error('CERTIFICATE_ERROR', `Cannot enroll ${who}: the request's time is more than ${ENROLL_CLOCK_SKEW_MS / 1000} s from the SCM's clock (a replay, or a clock to fix)`)
    const token = this.tables().ca.get(`token/${r.tokenId}`) as BootstrapTokenRecord | undefined
    // One answer for an unknown token and a wrong proof: the caller learns nothing about which tokens exist.
    if (token === undefined || !proofsEqual(r.proof, enrollProof(token.secret, r))) throw new O3Error('CERTIFICATE_ERROR', `Cannot enroll ${who}: the bootstrap token proof does not verify (wrong or unknown token)`)
    if (token.spent) throw new O3Error('CERTIFICATE_ERROR', `Cannot enroll ${who}: the bootstrap token was used already (it is one-time)`)
    if (token.expiresAtMs !== 0 && token.expiresAtMs < nowMs) throw new O3Error('CERTIFICATE_ERROR', `Cannot enroll ${who}: the bootstrap token expired`)
    if ((r.role === 'user') !== (token.scope === 'admin')) {
      throw new O3Error('CERTIFICATE_ERROR', `Cannot enroll ${who}: ${r.role === 'user' ? 'a user certificate needs the admin token (<scm.dir>/ca/admin-token)' : 'the admin token enrolls users only'}`)
    }
    if (r.role === 'user') {
      // Users are not enrolled identities: an administrator may hold certificates on several machines. Nothing to record.
      const cert = await this.issue(identity, r.publicKey, [], r.validityMs, nowMs)
      const ca = this.caCert()
      log.info(`SCM: issued a user certificate for ${r.id} (admin token)`)
      return { cert, ca, proof: answerProof(token.secret, { cert, ca, nonce: r.nonce }) }
    }
    const existing = this.tables().ca.get(enrolledKey(r.role, r.id)) as EnrolledRecord | undefined
    const cert = existing !== undefined && existing.publicKey === r.publicKey ? existing.cert : await this.issue(identity, r.publicKey, r.hosts, r.validityMs, nowMs)
    const payload: CertificatePayload = { kind: 'enroll', role: r.role, id: r.id, publicKey: r.publicKey, cert, issuedAtMs: nowMs, nonce: r.nonce, tokenId: r.tokenId }
    const recorded = (await this.ha.submit('recordCertificate', payload)) as { cert: string }
    const ca = this.caCert()
    log.info(`SCM: enrolled ${who}`)
    return { cert: recorded.cert, ca, proof: answerProof(token.secret, { cert: recorded.cert, ca, nonce: r.nonce }) }
  }

  /** A new certificate for the caller's own identity and a new key: the peer proved the identity with its current certificate. */
  private async renew(a: Record<string, unknown>, ctx: RpcContext): Promise<{ cert: string; ca: string }> {
    const c = ctx.caller
    if (c.kind !== 'service') throw new O3Error(c.kind === 'anonymous' ? 'UNAUTHENTICATED' : 'PERMISSION_DENIED', 'Cannot renew a certificate: the call must come over mutual TLS with the certificate being renewed')
    if (!(ENROLLING_ROLES as readonly string[]).includes(c.role)) throw new O3Error('PERMISSION_DENIED', `Cannot renew the certificate of ${c.role} ${c.id}: only enrolled services renew with the SCM`)
    if (typeof a.publicKey !== 'string' || a.publicKey.length > 4096) throw new O3Error('INVALID_ARGUMENT', 'Cannot renew a certificate: publicKey must be a PEM public key')
    const hosts = Array.isArray(a.hosts) && a.hosts.length <= 32 && a.hosts.every((h) => typeof h === 'string' && /^[\w.:-]{1,253}$/.test(h)) ? a.hosts as string[] : undefined
    if (hosts === undefined) throw new O3Error('INVALID_ARGUMENT', 'Cannot renew a certificate: hosts must be up to 32 host names or addresses')
    const askedMs = typeof a.validityMs === 'number' && Number.isSafeInteger(a.validityMs) ? a.validityMs : 0
    const nowMs = Date.now()
    const cert = await this.issue({ role: c.role, id: c.id }, a.publicKey, hosts, askedMs, nowMs)
    const payload: CertificatePayload = { kind: 'renew', role: c.role, id: c.id, publicKey: a.publicKey, cert, issuedAtMs: nowMs, nonce: '' }
    const recorded = (await this.ha.submit('recordCertificate', payload)) as { cert: string }
    log.info(`SCM: renewed the certificate of ${c.role} ${c.id}`)
    return { cert: recorded.cert, ca: this.caCert() }
  }

  /** `o3 admin cert token`: a new bootstrap token, for an SCM or an administrator. */
  private async createToken(a: Record<string, unknown>, ctx: RpcContext): Promise<{ token: string; expiresAtMs: number; reusable: boolean }> {
    this.requireAdmin(ctx, 'make a bootstrap token')
    const made = (await this.ha.submit('addBootstrapToken', { ttlMs: a.ttlMs, reusable: a.reusable })) as { token: string; expiresAtMs: number; reusable: boolean }
    log.info(`SCM: made a ${made.reusable ? 'reusable' : 'one-time'} bootstrap token, valid until ${new Date(made.expiresAtMs).toISOString()}`)
    return made
  }
}
