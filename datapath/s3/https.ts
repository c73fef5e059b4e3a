/** @module
 * The S3 gateway's HTTPS (TLS at the edge): PEM files named by s3g.https.cert/key, read again
 * when they change (a renewed certificate takes over from the next connection, no restart), or
 * in a secure cluster the gateway's own certificate from the cluster CA (and which identity a
 * gateway already holds on disk). Reads files only.
 */
import { existsSync, statSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { identityOf, type CertIdentity } from '../../core/security/pki.ts'
import { createSecureContext } from 'node:tls'
import type { O3Config } from '../../core/config.ts'
import { O3Error } from '../../core/errors.ts'
import { log } from '../../core/log.ts'

/** What serveApp's `tls` takes: the key and certificate chain of the next connection. */
export interface EdgeTls {
  current: () => { key: string; cert: string }
}

/** The part of a ServiceIdentity (core/security/identity.ts) the edge needs: its current credentials. */
export interface EdgeIdentity {
  credentials(): { key: string; cert: string }
}

/** Whether the S3 port serves HTTPS under these settings (what edgeTls decides, without reading a file). */
export function servesHttps(config: Pick<O3Config, 's3g.https' | 'security.enabled'>): boolean {
  return config['s3g.https'] === 1 || config['security.enabled'] === 1
}

/**
 * The TLS the S3 port serves with, or undefined for plain HTTP. HTTPS when s3g.https=1 or
 * security.enabled=1: with s3g.https.cert/key when set, else the identity's certificate. S3
 * clients are not asked for a certificate (the cluster CA is not passed on): they sign their
 * requests, and a browser would otherwise prompt for one.
 */
export function edgeTls(config: O3Config, identity?: EdgeIdentity): EdgeTls | undefined {
  if (!servesHttps(config)) return undefined
  if (config['s3g.https.cert'] !== '') return filesTls(config['s3g.https.cert'], config['s3g.https.key'])
  if (identity === undefined) {
    throw new O3Error('INVALID_ARGUMENT', 'Cannot serve S3 over HTTPS: set s3g.https.cert and s3g.https.key (PEM files), or run a secure cluster (security.enabled=1) for the cluster certificate')
  }
  // serveApp swaps its TLS context when current() returns another object: one per renewal.
  let seen: { key: string; cert: string } | undefined
  let served: { key: string; cert: string } | undefined
  return {
    current: () => {
      const c = identity.credentials()
      if (c !== seen) { seen = c; served = { key: c.key, cert: c.cert } }
      return served!
    },
  }
}

/** The identity whose certificate a gateway keeps in `<dir>/security/cert.pem` (ServiceIdentity.obtain's folder), if any. */
export function storedIdentity(dir: string): CertIdentity | undefined {
  const file = join(dir, 'security', 'cert.pem')
  return existsSync(file) ? identityOf(readFileSync(file, 'utf8')) : undefined
}

interface Loaded { key: string; cert: string; stamp: string }

/** A file's modification time and size: what tells that it was written again. */
function stampOf(certFile: string, keyFile: string): string {
  const c = statSync(certFile), k = statSync(keyFile)
  return `${c.mtimeMs}:${c.size}:${k.mtimeMs}:${k.size}`
}

function load(certFile: string, keyFile: string): Loaded {
  const stamp = stampOf(certFile, keyFile)
  const cert = readFileSync(certFile, 'utf8'), key = readFileSync(keyFile, 'utf8')
  // Throws when the key is not the certificate's or either is not PEM.
  createSecureContext({ cert, key })
  return { cert, key, stamp }
}

/**
 * HTTPS from files. At start a missing, unreadable or mismatched pair is a setting error; later,
 * a pair caught half-written (the key replaced, the certificate not yet) keeps the one served
 * so far and is tried again on the next connection.
 */
function filesTls(certFile: string, keyFile: string): EdgeTls {
  let served: Loaded
  try {
    served = load(certFile, keyFile)
  } catch (err) {
    throw new O3Error('INVALID_ARGUMENT', `Cannot serve S3 over HTTPS with s3g.https.cert=${certFile} and s3g.https.key=${keyFile}: ${(err as Error).message}`)
  }
  let refused: string | undefined
  return {
    current: () => {
      let stamp: string
      try { stamp = stampOf(certFile, keyFile) } catch { return served }
      if (stamp === served.stamp || stamp === refused) return served
      try {
        served = load(certFile, keyFile)
        log.info(`S3 gateway: serving the certificate in ${certFile} again, changed on disk`)
      } catch (err) {
        refused = stamp
        log.warn(`S3 gateway: keeping the certificate served so far: cannot use ${certFile} and ${keyFile} as changed (${(err as Error).message})`)
      }
      return served
    },
  }
}
