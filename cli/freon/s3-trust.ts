/** @module
 * Which certificate authorities `o3 freon s3kg` trusts for an https:// gateway, and what it
 * says when TLS still cannot verify the gateway. The CA comes from client.caFile
 * (O3_CLIENT_CAFILE, what every other o3 client command trusts) and from AWS_CA_BUNDLE (what
 * users of the aws CLI set); with neither, Node's defaults (its CA store, NODE_EXTRA_CA_CERTS).
 * Reads the named files; no network.
 */
import { readFileSync } from 'node:fs'
import { loadConfig } from '../../core/config.ts'
import { UsageError } from '../args.ts'

export interface S3Trust {
  /** The PEM text of each CA file named; undefined: Node's default CAs. */
  readonly ca: string[] | undefined
  /** Where each came from, for messages: `O3_CLIENT_CAFILE=ca.pem`. */
  readonly sources: string[]
}

/** The CAs the environment names; UsageError for a file that cannot be read. */
export function s3TrustOf(env: Record<string, string | undefined>): S3Trust {
  const named: [variable: string, path: string][] = []
  const caFile = loadConfig({ env })['client.caFile']
  if (caFile !== '') named.push(['O3_CLIENT_CAFILE', caFile])
  const bundle = env.AWS_CA_BUNDLE ?? ''
  if (bundle !== '' && bundle !== caFile) named.push(['AWS_CA_BUNDLE', bundle])
  if (named.length === 0) return { ca: undefined, sources: [] }
  const ca = named.map(([variable, path]) => {
    try {
      return readFileSync(path, 'utf8')
    } catch (err) {
      throw new UsageError(`Cannot read ${variable} ${path}: ${(err as Error).message}`)
    }
  })
  return { ca, sources: named.map(([variable, path]) => `${variable}=${path}`) }
}

/**
 * OpenSSL's verification failures that a missing or wrong CA causes (Node puts them in
 * `err.code`); an expired certificate or a wrong host name is another problem, with its own
 * clear message.
 */
const UNTRUSTED_CODES: ReadonlySet<string> = new Set([
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE', 'UNABLE_TO_GET_ISSUER_CERT', 'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
  'SELF_SIGNED_CERT_IN_CHAIN', 'DEPTH_ZERO_SELF_SIGNED_CERT', 'CERT_UNTRUSTED', 'CERT_SIGNATURE_FAILURE',
])

/** `err` with a hint naming the variables that set the CA when it is a TLS trust failure; else `err` itself. */
export function withTrustHint(err: unknown, trust: S3Trust, origin: string): unknown {
  const code = (err as { code?: unknown } | null)?.code
  if (typeof code !== 'string' || !UNTRUSTED_CODES.has(code)) return err
  const hint = trust.sources.length === 0
    ? 'set O3_CLIENT_CAFILE or AWS_CA_BUNDLE to the CA that signed it (o3 local --secure writes DATA/ca.pem)'
    : `${trust.sources.join(' and ')} did not verify it: name the CA that signed it (o3 local --secure writes DATA/ca.pem)`
  const message = `Cannot verify the certificate of ${origin}: ${(err as Error).message} (${code}); ${hint}`
  return Object.assign(new Error(message, { cause: err }), { code })
}
