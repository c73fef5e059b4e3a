/** @module
 * `o3 local --secure`: what a secure local cluster adds around its services, in-process or as
 * processes: the settings (security.enabled, the administrator `admin`), the files a user's
 * clients read (DATA/ca.pem, the administrator's certificate DATA/admin.pem and key
 * DATA/admin.key), the administrator's S3 key pair, and the lines printed to paste.
 */
import { existsSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import type { O3Config } from '../core/config.ts'
import { O3Error } from '../core/errors.ts'
import { tlsTransport } from '../core/rpc/transport.ts'
import { administratorsOf } from '../core/security/administrators.ts'
import type { Credentials } from '../core/security/pki.ts'
import { O3Client, type S3Secret } from '../datapath/client/index.ts'

/** The administrator `o3 local --secure` makes (named in o3.administrators). */
export const SECURE_ADMIN = 'admin'

/** How long `o3 local --secure --processes` waits for the SCM to write its CA and tokens. */
const CA_FILES_WAIT_MS = 60_000

/** The settings every service of a secure local cluster runs with, on top of `config`'s. */
export function secureSettings(config: Pick<O3Config, 'o3.administrators'>): Partial<O3Config> {
  return { 'security.enabled': 1, 'o3.administrators': [...new Set([...administratorsOf(config['o3.administrators']), SECURE_ADMIN])].join(',') }
}

/** Where a secure local cluster's client files are, and the administrator's S3 key pair. */
export interface SecureClient {
  caFile: string
  admin: string
  certFile: string
  keyFile: string
}

/** Writes DATA/ca.pem, DATA/admin.pem and DATA/admin.key (mode 0600) from the administrator's credentials. */
export function writeClientFiles(dataDir: string, admin: Credentials): SecureClient {
  const files = { caFile: join(dataDir, 'ca.pem'), admin: SECURE_ADMIN, certFile: join(dataDir, 'admin.pem'), keyFile: join(dataDir, 'admin.key') }
  writeFileSync(files.caFile, admin.ca, { mode: 0o644 })
  writeFileSync(files.certFile, admin.cert, { mode: 0o644 })
  // A new file, so 0600 from its first byte (mode does not apply to a file that exists: one of an earlier start).
  rmSync(files.keyFile, { force: true })
  writeFileSync(files.keyFile, admin.key, { mode: 0o600, flag: 'wx' })
  return files
}

/** The administrator's S3 key pair (created on first start, the same after), asked for with its certificate. */
export async function adminS3Key(o: { om: string; scm: string; admin: Credentials }): Promise<S3Secret> {
  const client = new O3Client({ om: o.om, scm: o.scm, transport: tlsTransport(() => o.admin) })
  return client.getS3Secret(SECURE_ADMIN)
}

/** What the SCM writes once its CA exists (`<scm.dir>/ca/`): the CA certificate and the two tokens. */
export interface ScmCaFiles { ca: string; bootstrapToken: string; adminToken: string }

/** Waits until an SCM has written its CA files, and reads them; UNAVAILABLE after CA_FILES_WAIT_MS. */
export async function waitForCaFiles(scmDir: string, stopped: () => boolean): Promise<ScmCaFiles | undefined> {
  const folder = join(scmDir, 'ca')
  const files = [join(folder, 'ca.crt'), join(folder, 'bootstrap-token'), join(folder, 'admin-token')]
  for (const until = Date.now() + CA_FILES_WAIT_MS; !stopped();) {
    if (files.every((f) => existsSync(f))) {
      const [ca, bootstrapToken, adminToken] = files.map((f) => readFileSync(f, 'utf8').trim())
      if (ca !== '' && bootstrapToken !== '' && adminToken !== '') return { ca: `${ca}\n`, bootstrapToken, adminToken }
    }
    if (Date.now() > until) throw new O3Error('UNAVAILABLE', `Cannot start a secure cluster: the SCM wrote no CA in ${folder} within ${CA_FILES_WAIT_MS / 1000} s`)
    await new Promise((r) => setTimeout(r, 50))
  }
  return undefined
}

/** The lines `o3 local --secure` prints for a user to paste: where the CA is, the administrator's files and keys. */
export function secureLines(o: { client: SecureClient; s3Key: { awsAccessKey: string; awsSecret: string }; s3: string; s3Region: string }): string[] {
  const c = o.client
  return [
    `Secure cluster: mutual TLS between services, signed users, block tokens. Clients trust the cluster CA in ${c.caFile}.`,
    `Administrator ${c.admin} (o3.administrators): certificate ${c.certFile}, key ${c.keyFile}, and this S3 key pair, which also signs native calls:`,
    `  export O3_CLIENT_CAFILE=${c.caFile} O3_CLIENT_ACCESSKEY=${o.s3Key.awsAccessKey} O3_CLIENT_SECRET=${o.s3Key.awsSecret}`,
    `  export O3_CLIENT_CERTFILE=${c.certFile} O3_CLIENT_KEYFILE=${c.keyFile}   # o3 admin: SCM and datanode admin calls`,
    `  export AWS_ACCESS_KEY_ID=${o.s3Key.awsAccessKey} AWS_SECRET_ACCESS_KEY=${o.s3Key.awsSecret} AWS_DEFAULT_REGION=${o.s3Region} AWS_CA_BUNDLE=${c.caFile}`,
    `  aws --endpoint-url ${o.s3} s3 mb s3://bucket1 && aws --endpoint-url ${o.s3} s3 cp ./README.md s3://bucket1/`,
    `Other users: o3 s3 getsecret --user NAME (as the administrator) gives them a key pair; they set O3_CLIENT_CAFILE and their own O3_CLIENT_ACCESSKEY/SECRET.`,
  ]
}
