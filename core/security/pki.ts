/** @module
 * The cluster's X.509 primitives (Ozone's CertificateServer / CertificateClient core): ECDSA
 * P-256 key pairs, the root CA the SCM creates, certificates it issues that name a service's
 * role and id (SAN `o3://<role>/<id>`), and reading that identity back from a peer's
 * certificate. Built on @peculiar/x509 over WebCrypto; no I/O, no clock of its own.
 */
import 'reflect-metadata'
import { webcrypto, X509Certificate, createPublicKey, randomBytes } from 'node:crypto'
import * as x509 from '@peculiar/x509'
import { O3Error } from '../errors.ts'
import { CERT_URI_PREFIX, identityOfSan, SERVICE_ROLES, type CertIdentity, type ServiceRole } from './service-identity.ts'

x509.cryptoProvider.set(webcrypto as unknown as Crypto)

export { SERVICE_ROLES, identityOfSan, type CertIdentity, type ServiceRole } from './service-identity.ts'

/** A PEM key pair: PKCS#8 private key, SPKI public key. */
export interface KeyPairPem {
  readonly privateKey: string
  readonly publicKey: string
}

/** A certificate and its private key, PEM, plus the CA certificate that signed it. */
export interface Credentials {
  readonly key: string
  readonly cert: string
  readonly ca: string
}

const ALG = { name: 'ECDSA', namedCurve: 'P-256', hash: 'SHA-256' } as const

function pem(label: string, der: ArrayBuffer): string {
  const b64 = Buffer.from(der).toString('base64').match(/.{1,64}/g)!.join('\n')
  return `-----BEGIN ${label}-----\n${b64}\n-----END ${label}-----\n`
}

function der(text: string): ArrayBuffer {
  const b = Buffer.from(text.replace(/-----[^-]+-----/g, '').replace(/\s+/g, ''), 'base64')
  return b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength) as ArrayBuffer
}

export async function generateKeyPair(): Promise<KeyPairPem> {
  const keys = await webcrypto.subtle.generateKey(ALG, true, ['sign', 'verify'])
  return {
    privateKey: pem('PRIVATE KEY', await webcrypto.subtle.exportKey('pkcs8', keys.privateKey)),
    publicKey: pem('PUBLIC KEY', await webcrypto.subtle.exportKey('spki', keys.publicKey)),
  }
}

function importPrivate(p: string): Promise<CryptoKey> {
  return webcrypto.subtle.importKey('pkcs8', der(p), ALG, true, ['sign']) as Promise<CryptoKey>
}

function importPublic(p: string): Promise<CryptoKey> {
  // Accepts any SPKI PEM; a key that is not P-256 ECDSA fails here with a typed error.
  return (webcrypto.subtle.importKey('spki', der(p), ALG, true, ['verify']) as Promise<CryptoKey>)
    .catch((err: Error) => { throw new O3Error('INVALID_ARGUMENT', `Cannot use public key: ${err.message} (expected an ECDSA P-256 SPKI PEM)`) })
}

function serial(): string {
  // Positive, 16 bytes: RFC 5280 allows up to 20 octets.
  const b = randomBytes(16)
  b[0] &= 0x7f
  return b.toString('hex')
}

/** A self-signed root CA (the SCM's, made once on first start), valid from nowMs for validityMs. */
export async function createRootCa(options: { clusterId: string; nowMs: number; validityMs: number }): Promise<KeyPairPem & { cert: string }> {
  const keys = await generateKeyPair()
  const cert = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: serial(), name: `CN=o3-root-ca,O=${escapeDn(options.clusterId)}`,
    notBefore: new Date(options.nowMs - 60_000), notAfter: new Date(options.nowMs + options.validityMs),
    keys: { privateKey: await importPrivate(keys.privateKey), publicKey: await importPublic(keys.publicKey) },
    signingAlgorithm: ALG,
    extensions: [
      new x509.BasicConstraintsExtension(true, 0, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true),
    ],
  })
  return { ...keys, cert: cert.toString('pem') }
}

function escapeDn(v: string): string {
  return v.replace(/[,+"\\<>;=]/g, (c) => `\\${c}`)
}

/**
 * Issues a certificate for `publicKey` naming `identity`, signed by the CA, valid from nowMs
 * for validityMs, usable as both TLS server and client (every service is both). `hosts` (IPs
 * or DNS names) go in the SAN so that clients can check the server's name.
 */
export async function issueCertificate(options: {
  ca: { cert: string; privateKey: string }
  publicKey: string
  identity: CertIdentity
  hosts: readonly string[]
  nowMs: number
  validityMs: number
}): Promise<string> {
  const { identity } = options
  checkIdentity(identity)
  const caCert = new x509.X509Certificate(options.ca.cert)
  const names: x509.JsonGeneralName[] = [{ type: 'url', value: `${CERT_URI_PREFIX}${identity.role}/${encodeURIComponent(identity.id)}` }]
  for (const h of new Set(options.hosts)) names.push({ type: /^[\d.]+$|:/.test(h) ? 'ip' : 'dns', value: h })
  const cert = await x509.X509CertificateGenerator.create({
    serialNumber: serial(),
    subject: `CN=${escapeDn(identity.id)},OU=${identity.role}`,
    issuer: caCert.subject,
    notBefore: new Date(options.nowMs - 60_000), notAfter: new Date(options.nowMs + options.validityMs),
    signingKey: await importPrivate(options.ca.privateKey),
    publicKey: await importPublic(options.publicKey),
    signingAlgorithm: ALG,
    extensions: [
      new x509.BasicConstraintsExtension(false, undefined, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature | x509.KeyUsageFlags.keyAgreement, true),
      new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.serverAuth, x509.ExtendedKeyUsage.clientAuth]),
      new x509.SubjectAlternativeNameExtension(names),
      await x509.AuthorityKeyIdentifierExtension.create(caCert),
    ],
  })
  return cert.toString('pem')
}

export function checkIdentity(identity: CertIdentity): void {
  if (!(SERVICE_ROLES as readonly string[]).includes(identity.role)) throw new O3Error('INVALID_ARGUMENT', `Unknown role ${String(identity.role)}: expected one of ${SERVICE_ROLES.join(', ')}`)
  if (typeof identity.id !== 'string' || identity.id.length === 0 || identity.id.length > 128 || /[\s/]/.test(identity.id)) throw new O3Error('INVALID_ARGUMENT', `Invalid identity id ${JSON.stringify(identity.id)}: 1..128 characters, no spaces or slashes`)
}

/** The role and id a certificate names in its `o3://` SAN; undefined when it names none. */
export function identityOf(cert: X509Certificate | string): CertIdentity | undefined {
  const c = typeof cert === 'string' ? new X509Certificate(cert) : cert
  return identityOfSan(c.subjectAltName)
}

/** Whether `cert` was signed by `caCert` and is valid at nowMs (for certificates read from disk or the wire). */
export function verifyIssued(cert: string, caCert: string, nowMs: number): boolean {
  const c = new X509Certificate(cert)
  const ca = new X509Certificate(caCert)
  return c.checkIssued(ca) && c.verify(ca.publicKey) && Date.parse(c.validFrom) <= nowMs && nowMs <= Date.parse(c.validTo)
}

/** When a certificate stops being valid, ms since the epoch. */
export function expiresAtMs(cert: string): number {
  return Date.parse(new X509Certificate(cert).validTo)
}

/** Whether `publicKey` (SPKI PEM) is the key `cert` certifies. */
export function certifiesKey(cert: string, publicKey: string): boolean {
  return new X509Certificate(cert).publicKey.equals(createPublicKey(publicKey))
}
