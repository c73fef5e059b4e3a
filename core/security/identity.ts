/** @module
 * A service's place in the secure cluster: its key and certificate from the cluster CA (kept
 * in `<dir>/security`, enrolled with the SCM on first start, renewed after two thirds of its
 * lifetime), the TLS it serves with and the Transport it calls others through. One per
 * service, several per process. The SCM's own is self-issued from the CA it holds (forScm).
 */
import { existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs'
import { createPublicKey, randomBytes, X509Certificate } from 'node:crypto'
import { join } from 'node:path'
import { Agent } from 'undici'
import { O3Error } from '../errors.ts'
import { log } from '../log.ts'
import { RpcClient } from '../rpc/client.ts'
import { AGENT_OPTIONS, tlsTransport, type Transport } from '../rpc/transport.ts'
import { answerProof, enrollProof, parseBootstrapToken, proofsEqual, type EnrollAnswer } from './enrollment.ts'
import { certifiesKey, checkIdentity, generateKeyPair, identityOf, verifyIssued, type CertIdentity, type Credentials, type ServiceRole } from './pki.ts'

/** Roles that enroll with a bootstrap token (the SCM issues its own; users get theirs from an administrator). */
export const ENROLLING_ROLES = ['om', 'datanode', 's3g', 'recon'] as const satisfies readonly ServiceRole[]
export type EnrollingRole = (typeof ENROLLING_ROLES)[number]

/** What issues certificates in-process: the SCM's CA (control/scm/ca.ts), for the SCM's own identity. */
export interface CertIssuer {
  caCert(): string
  issue(o: { identity: CertIdentity; publicKey: string; hosts: readonly string[]; validityMs?: number }): Promise<string>
}

export interface ObtainOptions {
  readonly role: EnrollingRole
  /** The OM's node name, the datanode's UUID, the gateway's id. */
  readonly id: string
  /** The service's data folder: its credentials live in `<dir>/security/{key.pem,cert.pem,ca.pem}`. */
  readonly dir: string
  /** Names and addresses peers reach it by (the certificate's SAN). */
  readonly hosts: readonly string[]
  /** The SCM's address, or its group's members. */
  readonly scm: string | readonly string[]
  /** security.bootstrapToken (`<id>.<secret>`): needed only when `<dir>/security` holds nothing yet. */
  readonly bootstrapToken: string
  /** A lifetime shorter than the SCM's security.certValidityMs (tests of renewal). */
  readonly validityMs?: number
  /**
   * How to reach the SCM before this service trusts it (enrollment). Default: HTTPS without
   * checking the SCM's certificate, as the service has no CA yet: the answer's proof (an HMAC
   * with the token) is what authenticates the SCM and the CA it sends.
   */
  readonly transport?: Transport
}

/** Files in `<dir>/security`. */
const KEY_FILE = 'key.pem'
const CERT_FILE = 'cert.pem'
const CA_FILE = 'ca.pem'
/** Retries of a failed enrollment (the SCM not up yet, no leader): a fresh nonce each. */
const ENROLL_ATTEMPTS_MAX = 60
const ENROLL_RETRY_MS = 1000
/** How far pki.ts issueCertificate dates a certificate's notBefore back. */
const ISSUE_BACKDATE_MS = 60_000
/** The longest setTimeout can wait; a later renewal is re-armed from there. */
const TIMER_MS_MAX = 2 ** 31 - 1

export class ServiceIdentity {
  private creds: Credentials
  private readonly outbound: Transport
  private renewer: ((publicKey: string) => Promise<string>) | undefined
  private folder: string | undefined
  private timer: ReturnType<typeof setTimeout> | undefined
  private renewing: Promise<void> | undefined
  private stopped = false

  private constructor(readonly role: ServiceRole, readonly id: string, creds: Credentials) {
    this.creds = creds
    this.outbound = tlsTransport(() => this.creds)
  }

  /** An identity from credentials already at hand (tests; a CLI's user certificate). Not renewed. */
  static fromCredentials(role: ServiceRole, id: string, creds: Credentials): ServiceIdentity {
    return new ServiceIdentity(role, id, creds)
  }

  /**
   * A service's identity: the credentials in `<dir>/security` when they are this identity's
   * and still valid, else enrolled with the SCM using the bootstrap token (the key pair is
   * made here and kept first, so a retry after a lost answer asks for the same key). Renews
   * itself after two thirds of the certificate's lifetime, over mutual TLS.
   */
  static async obtain(o: ObtainOptions): Promise<ServiceIdentity> {
    const identity = { role: o.role, id: o.id }
    checkIdentity(identity)
    if (o.role === ('scm' as string) || o.role === ('user' as string)) throw new O3Error('INVALID_ARGUMENT', `Cannot obtain a ${o.role} identity by enrollment`)
    const folder = join(o.dir, 'security')
    mkdirSync(folder, { recursive: true, mode: 0o700 })
    const scm = typeof o.scm === 'string' ? o.scm : [...o.scm]
    let creds = loadStored(folder, identity)
    if (creds === undefined) {
      if (o.bootstrapToken === '') throw new O3Error('CERTIFICATE_ERROR', `Cannot enroll ${o.role} ${o.id}: no certificate in ${folder} and no security.bootstrapToken to enroll with (\`o3 admin cert token\` makes one)`)
      const key = readKey(folder) ?? await newKey(folder)
      const answer = await enroll(o, key, scm)
      creds = { key: key.privateKey, cert: answer.cert, ca: answer.ca }
      writeAtomically(folder, CA_FILE, creds.ca, 0o644)
      writeAtomically(folder, CERT_FILE, creds.cert, 0o644)
      log.info(`${o.role} ${o.id}: enrolled with the SCM, certificate valid until ${new Date(Date.parse(certValidTo(creds.cert))).toISOString()}`)
    }
    const self = new ServiceIdentity(o.role, o.id, creds)
    self.folder = folder
    self.renewer = async (publicKey) => {
      const rpc = new RpcClient('SCM', scm, { transport: self.transport() })
      const a = await rpc.call<{ cert: string; ca: string }>('renewCertificate', { publicKey, hosts: [...o.hosts], validityMs: o.validityMs ?? 0 }, { idempotent: true })
      return a.cert
    }
    self.arm()
    return self
  }

  /** The SCM's identity, issued by the CA it holds (not persisted: made again at each start); renews itself too. */
  static async forScm(o: { id: string; hosts: readonly string[]; issuer: CertIssuer; validityMs?: number }): Promise<ServiceIdentity> {
    const identity: CertIdentity = { role: 'scm', id: o.id }
    checkIdentity(identity)
    const issue = (publicKey: string) => o.issuer.issue({ identity, publicKey, hosts: o.hosts, validityMs: o.validityMs })
    const keys = await generateKeyPair()
    const self = new ServiceIdentity('scm', o.id, { key: keys.privateKey, cert: await issue(keys.publicKey), ca: o.issuer.caCert() })
    self.renewer = issue
    self.arm()
    return self
  }

  /** The current key, certificate and CA; a new object after each renewal. */
  credentials(): Credentials {
    return this.creds
  }

  /** Replaces the credentials (renewal): new connections in and out use them. */
  protected replace(creds: Credentials): void {
    this.creds = creds
  }

  /** What this service serves with (serveApp's `tls`): its certificate, asking peers for theirs. */
  serverTls(): { current: () => { key: string; cert: string; ca: string } } {
    return { current: () => this.creds }
  }

  /** How this service calls the others: HTTPS trusting the CA, showing its certificate. */
  transport(): Transport {
    return this.outbound
  }

  /** When the current certificate stops being valid (ms since the epoch). */
  expiresAtMs(): number {
    return Date.parse(certValidTo(this.creds.cert))
  }

  /**
   * A new key pair and certificate now (the timer calls this after two thirds of the
   * lifetime): kept on disk first, then used by every new connection; connections open
   * keep the old one until they close. Concurrent calls share one renewal.
   */
  renew(): Promise<void> {
    if (this.renewer === undefined) return Promise.reject(new O3Error('CERTIFICATE_ERROR', `Cannot renew the certificate of ${this.role} ${this.id}: it was given, not enrolled`))
    this.renewing ??= (async () => {
      try {
        const keys = await generateKeyPair()
        const cert = await this.renewer!(keys.publicKey)
        checkIssued(cert, this.creds.ca, { role: this.role, id: this.id }, keys.publicKey, 'the renewed certificate')
        if (this.folder !== undefined) persistRenewal(this.folder, keys.privateKey, cert)
        this.replace({ key: keys.privateKey, cert, ca: this.creds.ca })
        log.info(`${this.role} ${this.id}: certificate renewed, valid until ${new Date(this.expiresAtMs()).toISOString()}`)
      } finally {
        this.renewing = undefined
      }
    })()
    return this.renewing
  }

  /** Schedules the next renewal at two thirds of the current certificate's lifetime (at once when past it). */
  private arm(retryMs?: number): void {
    clearTimeout(this.timer)
    if (this.stopped || this.renewer === undefined) return
    // pki.ts backdates notBefore by a minute (for peers whose clocks are behind): the lifetime counts from issuance.
    const to = this.expiresAtMs()
    const from = Math.min(Date.parse(certValidFrom(this.creds.cert)) + ISSUE_BACKDATE_MS, to)
    const dueMs = retryMs ?? Math.max(0, from + Math.floor(((to - from) * 2) / 3) - Date.now())
    this.timer = setTimeout(() => {
      if (dueMs > TIMER_MS_MAX) return this.arm()
      this.renew().then(() => this.arm(), (err: unknown) => {
        const left = this.expiresAtMs() - Date.now()
        log.warn(`${this.role} ${this.id}: renewing the certificate failed (${(err as Error).message}); ${left > 0 ? `it expires in ${Math.round(left / 1000)} s, trying again` : 'it has expired'}`)
        // Before expiry, again soon (a tenth of what is left, 1..30 s); after it, every 30 s (an operator must act).
        this.arm(left <= 0 ? 30_000 : Math.max(1000, Math.min(30_000, Math.floor(left / 10))))
      })
    }, Math.min(dueMs, TIMER_MS_MAX))
    this.timer.unref?.()
  }

  /** Stops renewing (the service stops). */
  stop(): void {
    this.stopped = true
    clearTimeout(this.timer)
  }
}

function certValidTo(cert: string): string {
  return new X509Certificate(cert).validTo
}

function certValidFrom(cert: string): string {
  return new X509Certificate(cert).validFrom
}

/** Throws CERTIFICATE_ERROR unless `cert` names `identity`, chains to `ca`, is valid now and certifies `publicKey`. */
function checkIssued(cert: string, ca: string, identity: CertIdentity, publicKey: string, what: string): void {
  const named = identityOf(cert)
  if (named?.role !== identity.role || named.id !== identity.id) throw new O3Error('CERTIFICATE_ERROR', `Cannot use ${what}: it names ${named === undefined ? 'no o3 identity' : `${named.role} ${named.id}`}, not ${identity.role} ${identity.id}`)
  if (!verifyIssued(cert, ca, Date.now())) throw new O3Error('CERTIFICATE_ERROR', `Cannot use ${what}: not signed by the cluster CA, or not valid now`)
  if (!certifiesKey(cert, publicKey)) throw new O3Error('CERTIFICATE_ERROR', `Cannot use ${what}: it is for another key`)
}

function publicKeyOf(privateKey: string): string {
  return createPublicKey(privateKey).export({ type: 'spki', format: 'pem' }).toString()
}

function readText(folder: string, name: string): string | undefined {
  const path = join(folder, name)
  return existsSync(path) ? readFileSync(path, 'utf8') : undefined
}

function readKey(folder: string): { privateKey: string; publicKey: string } | undefined {
  const privateKey = readText(folder, KEY_FILE)
  return privateKey === undefined ? undefined : { privateKey, publicKey: publicKeyOf(privateKey) }
}

async function newKey(folder: string): Promise<{ privateKey: string; publicKey: string }> {
  const keys = await generateKeyPair()
  writeAtomically(folder, KEY_FILE, keys.privateKey, 0o600)
  return keys
}

function writeAtomically(folder: string, name: string, text: string, mode: number): void {
  const tmp = join(folder, `${name}.tmp`)
  writeFileSync(tmp, text, { mode })
  renameSync(tmp, join(folder, name))
}

/**
 * A renewal on disk: key and certificate written aside, then moved in key first. A crash
 * between the two moves leaves `cert.pem.next` for the key in place, which loadStored takes.
 */
function persistRenewal(folder: string, key: string, cert: string): void {
  writeFileSync(join(folder, `${KEY_FILE}.next`), key, { mode: 0o600 })
  writeFileSync(join(folder, `${CERT_FILE}.next`), cert, { mode: 0o644 })
  renameSync(join(folder, `${KEY_FILE}.next`), join(folder, KEY_FILE))
  renameSync(join(folder, `${CERT_FILE}.next`), join(folder, CERT_FILE))
}

/**
 * The credentials in `folder` when there are some: checked to be this identity's, from their
 * CA, and valid. None yet (or a key alone: an enrollment that did not finish): undefined.
 */
function loadStored(folder: string, identity: CertIdentity): Credentials | undefined {
  const key = readText(folder, KEY_FILE)
  let cert = readText(folder, CERT_FILE)
  const ca = readText(folder, CA_FILE)
  if (key === undefined || cert === undefined || ca === undefined) return undefined
  const publicKey = publicKeyOf(key)
  const next = readText(folder, `${CERT_FILE}.next`)
  if (!certifiesKey(cert, publicKey) && next !== undefined && certifiesKey(next, publicKey)) {
    renameSync(join(folder, `${CERT_FILE}.next`), join(folder, CERT_FILE))
    cert = next
  }
  const named = identityOf(cert)
  if (named?.role !== identity.role || named.id !== identity.id) {
    throw new O3Error('CERTIFICATE_ERROR', `Cannot start ${identity.role} ${identity.id}: ${folder} holds the certificate of ${named === undefined ? 'no o3 identity' : `${named.role} ${named.id}`}`)
  }
  if (Date.now() > Date.parse(certValidTo(cert))) {
    throw new O3Error('CERTIFICATE_ERROR', `Cannot start ${identity.role} ${identity.id}: its certificate in ${folder} expired on ${new Date(Date.parse(certValidTo(cert))).toISOString()} and cannot be renewed (an identity enrolls once; renewal needs a valid certificate)`)
  }
  checkIssued(cert, ca, identity, publicKey, `the certificate in ${folder}`)
  return { key, cert, ca }
}

interface EnrollOptions {
  readonly role: EnrollingRole | 'user'
  readonly id: string
  readonly hosts: readonly string[]
  readonly bootstrapToken: string
  readonly validityMs?: number
  readonly transport?: Transport
}

/**
 * An O3 user's certificate (an administrator's, for `o3 admin` over mutual TLS) from the SCM,
 * enrolled with the SCM's admin token (`<scm.dir>/ca/admin-token`, which only the operator on
 * the SCM's host reads): a new key pair, the certificate and the CA, all checked as a
 * service's enrollment is. Not kept anywhere: the caller writes the files it wants.
 */
export async function enrollUser(o: { user: string; scm: string | readonly string[]; adminToken: string; validityMs?: number; transport?: Transport }): Promise<Credentials> {
  checkIdentity({ role: 'user', id: o.user })
  const keys = await generateKeyPair()
  const answer = await enroll({ role: 'user', id: o.user, hosts: [], bootstrapToken: o.adminToken, validityMs: o.validityMs, transport: o.transport }, keys, typeof o.scm === 'string' ? o.scm : [...o.scm])
  return { key: keys.privateKey, cert: answer.cert, ca: answer.ca }
}

/**
 * Asks the SCM for a certificate with the bootstrap token, checking that the answer comes
 * from a holder of the same token. Retried with a fresh nonce while the SCM is unreachable
 * or has no leader; a refusal (bad token, identity taken) is final.
 */
async function enroll(o: EnrollOptions, key: { publicKey: string }, scm: string | string[]): Promise<EnrollAnswer> {
  const token = parseBootstrapToken(o.bootstrapToken)
  let agent: Agent | undefined
  const transport: Transport = o.transport ?? {
    scheme: 'https',
    dispatcher: () => (agent ??= new Agent({ ...AGENT_OPTIONS, connect: { rejectUnauthorized: false } })),
  }
  const rpc = new RpcClient('SCM', scm, { transport })
  try {
    for (let attempt = 1; ; attempt++) {
      const request = {
        role: o.role, id: o.id, publicKey: key.publicKey, hosts: [...o.hosts], validityMs: o.validityMs ?? 0,
        nonce: randomBytes(16).toString('hex'), timeMs: Date.now(), tokenId: token.id,
      }
      let answer: EnrollAnswer
      try {
        answer = await rpc.call<EnrollAnswer>('enroll', { ...request, proof: enrollProof(token.secret, request) })
      } catch (err) {
        const e = err as O3Error
        if (!(e instanceof O3Error) || !e.spec.retry || attempt >= ENROLL_ATTEMPTS_MAX) throw err
        log.debug(`${o.role} ${o.id}: enrolling with the SCM: ${e.message}; trying again`)
        await new Promise((r) => setTimeout(r, ENROLL_RETRY_MS))
        continue
      }
      if (typeof answer?.cert !== 'string' || typeof answer.ca !== 'string' || typeof answer.proof !== 'string' ||
        !proofsEqual(answer.proof, answerProof(token.secret, { cert: answer.cert, ca: answer.ca, nonce: request.nonce }))) {
        throw new O3Error('CERTIFICATE_ERROR', `Cannot enroll ${o.role} ${o.id}: the answer does not prove it comes from the holder of the bootstrap token (another server at ${Array.isArray(scm) ? scm.join(',') : scm}?)`)
      }
      checkIssued(answer.cert, answer.ca, { role: o.role as ServiceRole, id: o.id }, key.publicKey, 'the enrolled certificate')
      return answer
    }
  } finally {
    await agent?.close().catch(() => {})
  }
}
