/** @module
 * Bucket policies (S3's resource policies in IAM's policy language): parsePolicy checks a
 * document the way S3 does on PutBucketPolicy (MalformedPolicy with S3's messages),
 * evaluatePolicy decides a request against it (an explicit Deny wins, then an Allow, else
 * the policy does not apply), isPublicPolicy tells whether it grants public access (S3's
 * "meaning of public", for PublicAccessBlock and GetBucketPolicyStatus).
 * Pure: no I/O, no clock (the request's time comes in as aws:CurrentTime / aws:EpochTime);
 * evaluateStoredPolicy remembers parsed documents, a bounded cache that changes no answer.
 *
 * Identities: an S3 user is an account whose canonical id is its user name, so a principal
 * names a user as `alice`, `arn:aws:iam::alice:root`, `arn:aws:iam::<any>:user/alice` or
 * `{"CanonicalUser": "alice"}`. Anonymous requests (no principal) match only `*`.
 */
import { S3AccessError } from './errors.ts'
import { S3_POLICY_CACHE_ENTRIES_MAX } from '../limits.ts'
import { BoundedMemo } from '../bounded-memo.ts'
import {
  checkConditionValue, conditionHolds, globLiteral, globMatches, parseCidr, parseOperator, resolvePattern,
  type Condition, type ContextKeys, type Glob, type PolicyText,
} from './policy-conditions.ts'

/** S3's limit: "Normalized policy document exceeds the maximum allowed size of 20480 bytes". */
export const POLICY_NORMALIZED_BYTES_MAX = 20_480

/** What a policy is asked: who does what to which resource, in which context. */
export interface PolicyRequest {
  /** The user, undefined when anonymous. */
  principal: string | undefined
  /** e.g. `s3:GetObject`. */
  action: string
  /** `arn:aws:s3:::bucket` or `arn:aws:s3:::bucket/key`. */
  resource: string
  /**
   * The request's context keys (names compared case-insensitively): `aws:SourceIp`,
   * `aws:SecureTransport` ('true'/'false'), `aws:CurrentTime` (ISO 8601), `aws:EpochTime`,
   * `aws:username`, `aws:Referer`, `aws:UserAgent`, `s3:prefix`, `s3:delimiter`,
   * `s3:max-keys`, `s3:x-amz-acl`, `s3:ExistingObjectTag/<key>`... Undefined means absent.
   */
  conditions: Record<string, string | string[] | undefined>
}

export type PolicyDecision = 'Allow' | 'Deny' | 'NotApplicable'

/** A parsed, validated bucket policy. */
export interface BucketPolicy {
  version: '2008-10-17' | '2012-10-17'
  id?: string
  statements: PolicyStatement[]
}

/** Who a Principal or NotPrincipal names. */
export interface PrincipalSet {
  /** `*`: everyone, anonymous included. */
  everyone: boolean
  /** Users by name (O3's canonical ids). */
  users: string[]
  /** Service and Federated principals: accepted, but never an O3 request's principal. */
  others: string[]
}

export interface PolicyStatement {
  sid?: string
  effect: 'Allow' | 'Deny'
  /** Exactly one of principal / notPrincipal. */
  principal?: PrincipalSet
  notPrincipal?: PrincipalSet
  /** Exactly one of actions / notActions: lower-case wildcard patterns (`s3:get*`). */
  actions?: string[]
  notActions?: string[]
  /** Exactly one of resources / notResources: ARN wildcard patterns, maybe with variables. */
  resources?: PolicyText[]
  notResources?: PolicyText[]
  conditions: Condition[]
}

/** A document S3 refuses (MalformedPolicy, 400); the gateway answers it as an S3Error, as every S3AccessError. */
export class MalformedPolicyError extends S3AccessError {
  override name = 'MalformedPolicyError'
  constructor(message: string) {
    super('MalformedPolicy', message)
  }
}

function fail(message: string): never {
  throw new MalformedPolicyError(message)
}

const ARN_PREFIX = 'arn:aws:s3:::'
const STATEMENT_FIELDS = new Set(['Sid', 'Effect', 'Principal', 'NotPrincipal', 'Action', 'NotAction', 'Resource', 'NotResource', 'Condition'])

/**
 * Parses and validates a bucket policy for `bucket`, as S3's PutBucketPolicy does: the
 * grammar of IAM's policy language, Principal required (a resource policy), S3 actions
 * only, every Resource inside this bucket (wildcards allowed: `arn:aws:s3:::*` names it too),
 * every action applicable to some resource of its statement, known condition operators and
 * S3 condition keys, values of the operator's type. Throws MalformedPolicyError.
 */
export function parsePolicy(json: string, bucket: string): BucketPolicy {
  if (!json.startsWith('{')) fail("Policies must be valid JSON and the first byte must be '{'")
  if (nestingDepth(json) > POLICY_JSON_DEPTH_MAX) fail('Invalid policy syntax.')
  let doc: unknown
  try {
    doc = JSON.parse(json)
  } catch {
    fail('This policy contains invalid Json')
  }
  const d = doc as Record<string, unknown>
  if (Buffer.byteLength(JSON.stringify(d)) > POLICY_NORMALIZED_BYTES_MAX) fail(`Normalized policy document exceeds the maximum allowed size of ${POLICY_NORMALIZED_BYTES_MAX} bytes`)
  for (const k of Object.keys(d)) if (k !== 'Version' && k !== 'Id' && k !== 'Statement') fail(`Policy has an invalid field: ${k}`)
  // IAM: "The default policy version is 2008-10-17".
  const version = d.Version ?? '2008-10-17'
  if (version !== '2008-10-17' && version !== '2012-10-17') fail('The policy must contain a valid version string')
  if (d.Id !== undefined && typeof d.Id !== 'string') fail('Invalid policy syntax.')
  if (d.Statement === undefined) fail('Missing required field Statement')
  const list = Array.isArray(d.Statement) ? d.Statement : [d.Statement]
  if (list.length === 0) fail('Could not parse the policy: Statement is empty!')
  const version2012 = version === '2012-10-17'
  const statements = list.map((s) => parseStatement(s, bucket, version2012))
  const policy: BucketPolicy = { version: version as BucketPolicy['version'], statements }
  if (typeof d.Id === 'string') policy.id = d.Id
  return policy
}

/**
 * A policy nests six deep at most (document, Statement list, statement, Condition, operator,
 * value list); past this a document is refused before JSON.parse and JSON.stringify, whose
 * recursion a body of 30,000 brackets would overflow.
 */
const POLICY_JSON_DEPTH_MAX = 32

/** The deepest nesting of objects and arrays in a JSON text (strings skipped); stops counting past the limit. */
function nestingDepth(json: string): number {
  let depth = 0, deepest = 0, inString = false
  for (let i = 0; i < json.length; i++) {
    const c = json.charCodeAt(i)
    if (inString) {
      if (c === 0x5c) i++ // backslash: skip the escaped character
      else if (c === 0x22) inString = false
    } else if (c === 0x22) {
      inString = true
    } else if (c === 0x7b || c === 0x5b) {
      if (++depth > deepest) deepest = depth
      if (deepest > POLICY_JSON_DEPTH_MAX) return deepest
    } else if (c === 0x7d || c === 0x5d) {
      depth--
    }
  }
  return deepest
}

function parseStatement(raw: unknown, bucket: string, version2012: boolean): PolicyStatement {
  if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) fail('Invalid policy syntax.')
  const s = raw as Record<string, unknown>
  for (const k of Object.keys(s)) if (!STATEMENT_FIELDS.has(k)) fail(`Statement has an invalid field: ${k}`)
  if (s.Sid !== undefined && typeof s.Sid !== 'string') fail('Invalid policy syntax.')
  if (s.Effect === undefined) fail('Missing required field Effect')
  // IAM: "The Effect value is case sensitive".
  if (s.Effect !== 'Allow' && s.Effect !== 'Deny') fail(`Invalid effect: ${String(s.Effect)}`)
  const out: PolicyStatement = { effect: s.Effect, conditions: [] }
  if (typeof s.Sid === 'string') out.sid = s.Sid

  exclusive(s, 'Principal', 'NotPrincipal')
  if (s.Principal !== undefined) out.principal = parsePrincipal(s.Principal)
  else if (s.NotPrincipal !== undefined) out.notPrincipal = parsePrincipal(s.NotPrincipal)
  else fail('Missing required field Principal')
  // IAM: "NotPrincipal must be used with "Effect":"Deny"" (s3-tests: Allow is refused).
  if (out.notPrincipal !== undefined && out.effect !== 'Deny') fail('NotPrincipal is only allowed with Effect Deny')

  exclusive(s, 'Action', 'NotAction')
  if (s.Action !== undefined) out.actions = parseActions(s.Action)
  else if (s.NotAction !== undefined) out.notActions = parseActions(s.NotAction)
  else fail('Missing required field Action')

  exclusive(s, 'Resource', 'NotResource')
  if (s.Resource !== undefined) out.resources = parseResources(s.Resource, bucket, version2012)
  else if (s.NotResource !== undefined) out.notResources = parseResources(s.NotResource, bucket, version2012)
  else fail('Missing required field Resource')

  if (out.actions !== undefined && out.resources !== undefined) checkActionsApply(out.actions, out.resources, bucket)
  if (s.Condition !== undefined) out.conditions = parseConditions(s.Condition, version2012)
  return out
}

/** IAM: Principal/NotPrincipal, Action/NotAction and Resource/NotResource are mutually exclusive. */
function exclusive(s: Record<string, unknown>, a: string, b: string): void {
  if (s[a] !== undefined && s[b] !== undefined) fail(`A statement cannot have both ${a} and ${b}`)
}

/** A string or a non-empty list of strings ("If the element takes an array but only one value is included, the brackets are optional"). */
function stringList(v: unknown): string[] {
  const list = Array.isArray(v) ? v : [v]
  if (list.length === 0) fail('Invalid policy syntax.')
  for (const x of list) if (typeof x !== 'string') fail('Invalid policy syntax.')
  return list as string[]
}

function parsePrincipal(v: unknown): PrincipalSet {
  const set: PrincipalSet = { everyone: false, users: [], others: [] }
  if (v === '*') return { ...set, everyone: true }
  if (v === null || typeof v !== 'object' || Array.isArray(v)) fail('Invalid principal in policy')
  const entries = Object.entries(v as Record<string, unknown>)
  if (entries.length === 0) fail('Invalid principal in policy')
  for (const [type, ids] of entries) {
    if (ids === null || (typeof ids !== 'string' && !Array.isArray(ids))) fail('Invalid principal in policy')
    const list = Array.isArray(ids) ? ids : [ids]
    if (list.length === 0) fail('Invalid principal in policy')
    for (const id of list) {
      if (typeof id !== 'string' || id === '') fail('Invalid principal in policy')
      const name = id as string
      switch (type) {
        case 'AWS':
          if (name === '*') set.everyone = true
          else set.users.push(userOfAwsPrincipal(name))
          break
        case 'CanonicalUser':
          if (!USER_NAME.test(name)) fail('Invalid principal in policy')
          set.users.push(name)
          break
        case 'Service':
        case 'Federated':
          // IAM: no wildcards in principals; a service is never `*`.
          if (name.includes('*') || name.includes('?')) fail('Invalid principal in policy')
          set.others.push(`${type}:${name}`)
          break
        default:
          fail('Invalid principal in policy')
      }
    }
  }
  return set
}

/** O3's user names as a principal may name them (no wildcards: IAM refuses a partial wildcard). */
const USER_NAME = /^[A-Za-z0-9._@+=,-]{1,256}$/

/** The user an AWS principal names: a bare id, the account's root ARN, or an IAM user ARN. */
function userOfAwsPrincipal(id: string): string {
  if (USER_NAME.test(id)) return id
  const root = /^arn:aws:iam::([^:*?]+):root$/.exec(id)
  if (root !== null && USER_NAME.test(root[1]!)) return root[1]!
  const user = /^arn:aws:iam::[^:*?]*:user\/(?:[^*?]*\/)?([^/*?]+)$/.exec(id)
  if (user !== null && USER_NAME.test(user[1]!)) return user[1]!
  return fail('Invalid principal in policy')
}

// ---- actions ----------------------------------------------------------------------------

type ActionKind = 'bucket' | 'object' | 'account'

/**
 * S3's actions (Service Authorization Reference, "Actions defined by Amazon S3") that a
 * bucket policy may name, with the resource each applies to. Names stored lower case: IAM
 * compares them case-insensitively.
 */
const S3_ACTIONS: ReadonlyMap<string, ActionKind> = new Map([
  ...['AbortMultipartUpload', 'BypassGovernanceRetention', 'DeleteObject', 'DeleteObjectTagging', 'DeleteObjectVersion', 'DeleteObjectVersionTagging',
    'GetObject', 'GetObjectAcl', 'GetObjectAttributes', 'GetObjectLegalHold', 'GetObjectRetention', 'GetObjectTagging', 'GetObjectTorrent',
    'GetObjectVersion', 'GetObjectVersionAcl', 'GetObjectVersionAttributes', 'GetObjectVersionForReplication', 'GetObjectVersionTagging',
    'GetObjectVersionTorrent', 'ListMultipartUploadParts', 'ObjectOwnerOverrideToBucketOwner', 'PutObject', 'PutObjectAcl', 'PutObjectLegalHold',
    'PutObjectRetention', 'PutObjectTagging', 'PutObjectVersionAcl', 'PutObjectVersionTagging', 'ReplicateDelete', 'ReplicateObject',
    'ReplicateTags', 'RestoreObject', 'InitiateReplication'].map((a) => [`s3:${a.toLowerCase()}`, 'object'] as const),
  ...['CreateBucket', 'DeleteBucket', 'DeleteBucketOwnershipControls', 'DeleteBucketPolicy', 'DeleteBucketWebsite', 'GetAccelerateConfiguration',
    'GetAnalyticsConfiguration', 'GetBucketAcl', 'GetBucketCORS', 'GetBucketLocation', 'GetBucketLogging', 'GetBucketNotification',
    'GetBucketObjectLockConfiguration', 'GetBucketOwnershipControls', 'GetBucketPolicy', 'GetBucketPolicyStatus', 'GetBucketPublicAccessBlock',
    'GetBucketRequestPayment', 'GetBucketTagging', 'GetBucketVersioning', 'GetBucketWebsite', 'GetEncryptionConfiguration',
    'GetIntelligentTieringConfiguration', 'GetInventoryConfiguration', 'GetLifecycleConfiguration', 'GetMetricsConfiguration',
    'GetReplicationConfiguration', 'ListBucket', 'ListBucketMultipartUploads', 'ListBucketVersions', 'PutAccelerateConfiguration',
    'PutAnalyticsConfiguration', 'PutBucketAcl', 'PutBucketCORS', 'PutBucketLogging', 'PutBucketNotification', 'PutBucketObjectLockConfiguration',
    'PutBucketOwnershipControls', 'PutBucketPolicy', 'PutBucketPublicAccessBlock', 'PutBucketRequestPayment', 'PutBucketTagging',
    'PutBucketVersioning', 'PutBucketWebsite', 'PutEncryptionConfiguration', 'PutIntelligentTieringConfiguration', 'PutInventoryConfiguration',
    'PutLifecycleConfiguration', 'PutMetricsConfiguration', 'PutReplicationConfiguration'].map((a) => [`s3:${a.toLowerCase()}`, 'bucket'] as const),
  ...['ListAllMyBuckets'].map((a) => [`s3:${a.toLowerCase()}`, 'account'] as const),
])

/** Whether an action name is one S3 knows (the gateway's routes use only these). */
export function isS3Action(action: string): boolean {
  return S3_ACTIONS.has(action.toLowerCase())
}

/** A pattern with `*` and `?` as wildcards and no variables (actions, a resource's bucket). */
function wildcards(pattern: string): Glob {
  return resolvePattern({ raw: pattern, variables: false }, new Map(), true)!
}

function parseActions(v: unknown): string[] {
  const list = stringList(v).map((a) => a.toLowerCase())
  for (const a of list) {
    if (a === '*') continue
    // A bucket policy names S3's actions only, and each pattern must name at least one.
    if (!a.startsWith('s3:')) fail('Policy has invalid action')
    const g = wildcards(a)
    if (![...S3_ACTIONS.keys()].some((known) => globMatches(g, known))) fail('Policy has invalid action')
  }
  return list
}

function parseResources(v: unknown, bucket: string, version2012: boolean): PolicyText[] {
  const list = stringList(v)
  return list.map((r) => {
    // S3 refuses `*` and anything outside S3's ARNs, and a resource of another bucket.
    if (!r.startsWith(ARN_PREFIX)) fail('Policy has invalid resource')
    const rest = r.slice(ARN_PREFIX.length)
    const slash = rest.indexOf('/')
    const bucketPart = slash < 0 ? rest : rest.slice(0, slash)
    if (bucketPart === '' || !globMatches(wildcards(bucketPart), bucket)) fail('Policy has invalid resource')
    return { raw: r, variables: version2012 && r.includes('${') }
  })
}

/**
 * S3 refuses a statement with an action that no resource of it can be the target of
 * ("Action does not apply to any resource(s) in statement"): s3:GetObject on the bucket's
 * ARN alone, s3:ListBucket on objects alone.
 */
function checkActionsApply(actions: string[], resources: PolicyText[], bucket: string): void {
  const kinds = new Set<ActionKind>()
  for (const r of resources) {
    const rest = r.raw.slice(ARN_PREFIX.length)
    const glob = wildcards(rest)
    if (globMatches(glob, bucket)) kinds.add('bucket')
    if (rest.includes('/') || rest.endsWith('*')) kinds.add('object')
  }
  for (const a of actions) {
    const g = wildcards(a)
    const applies = [...S3_ACTIONS].some(([known, kind]) => kinds.has(kind) && globMatches(g, known))
    if (!applies) fail('Action does not apply to any resource(s) in statement')
  }
}

// ---- conditions -------------------------------------------------------------------------

/**
 * S3's condition keys (Service Authorization Reference, "Condition keys for Amazon S3"),
 * lower case; entries ending in `/` are prefixes (`s3:ExistingObjectTag/<key>`). Global
 * `aws:` keys are not checked, as S3 does not check them.
 */
const S3_CONDITION_KEYS = new Set([
  's3:prefix', 's3:delimiter', 's3:max-keys', 's3:x-amz-acl', 's3:x-amz-copy-source', 's3:x-amz-metadata-directive',
  's3:x-amz-grant-read', 's3:x-amz-grant-write', 's3:x-amz-grant-read-acp', 's3:x-amz-grant-write-acp', 's3:x-amz-grant-full-control',
  's3:x-amz-storage-class', 's3:x-amz-server-side-encryption', 's3:x-amz-server-side-encryption-aws-kms-key-id',
  's3:x-amz-server-side-encryption-customer-algorithm', 's3:x-amz-website-redirect-location', 's3:x-amz-content-sha256',
  's3:existingobjecttag/', 's3:requestobjecttag/', 's3:requestobjecttagkeys', 's3:versionid', 's3:signatureversion', 's3:authtype',
  's3:signatureage', 's3:tlsversion', 's3:if-match', 's3:if-none-match', 's3:objectcreationoperation', 's3:resourceaccount',
  's3:locationconstraint', 's3:object-lock-mode', 's3:object-lock-retain-until-date', 's3:object-lock-remaining-retention-days',
  's3:object-lock-legal-hold', 's3:dataaccesspointarn', 's3:dataaccesspointaccount', 's3:accesspointnetworkorigin',
  's3:x-amz-object-ownership', 's3:bucketownerenforced',
])

function knownConditionKey(key: string): boolean {
  if (key.startsWith('aws:')) return true
  if (S3_CONDITION_KEYS.has(key)) return true
  const slash = key.indexOf('/')
  return slash > 0 && slash < key.length - 1 && S3_CONDITION_KEYS.has(key.slice(0, slash + 1))
}

function parseConditions(v: unknown, version2012: boolean): Condition[] {
  if (v === null || typeof v !== 'object' || Array.isArray(v)) fail('Invalid policy syntax.')
  const out: Condition[] = []
  for (const [operator, block] of Object.entries(v as Record<string, unknown>)) {
    const op = parseOperator(operator)
    if (op === undefined) fail(`Invalid Condition type : ${operator}`)
    if (block === null || typeof block !== 'object' || Array.isArray(block)) fail('Invalid policy syntax.')
    for (const [rawKey, rawValues] of Object.entries(block as Record<string, unknown>)) {
      const key = rawKey.toLowerCase()
      if (!knownConditionKey(key)) fail('Policy has an invalid condition key')
      const list = Array.isArray(rawValues) ? rawValues : [rawValues]
      if (list.length === 0) fail('Invalid policy syntax.')
      const values: PolicyText[] = list.map((x) => {
        // IAM: "Quotation marks are optional for numeric and Boolean values".
        if (typeof x !== 'string' && typeof x !== 'number' && typeof x !== 'boolean') fail('Invalid policy syntax.')
        const raw = String(x)
        const problem = checkConditionValue(op!.base, raw)
        if (problem !== undefined) fail(problem)
        return { raw, variables: version2012 && raw.includes('${') }
      })
      out.push({ operator, ...op!, key, values })
    }
  }
  return out
}

// ---- evaluation -------------------------------------------------------------------------

/** The request's context keys by lower-case name, each a non-empty list. */
function contextKeys(req: PolicyRequest): ContextKeys {
  const keys = new Map<string, string[]>()
  for (const [k, v] of Object.entries(req.conditions)) {
    if (v === undefined) continue
    const list = Array.isArray(v) ? v : [v]
    if (list.length > 0) keys.set(k.toLowerCase(), list)
  }
  return keys
}

function principalMatches(set: PrincipalSet, principal: string | undefined): boolean {
  if (set.everyone) return true
  return principal !== undefined && set.users.includes(principal)
}

function resourceMatches(patterns: PolicyText[], resource: string, keys: ContextKeys): boolean {
  return patterns.some((p) => {
    const g = resolvePattern(p, keys, true)
    return g !== undefined && globMatches(g, resource)
  })
}

function statementApplies(s: PolicyStatement, req: PolicyRequest, keys: ContextKeys, version2012: boolean): boolean {
  if (s.principal !== undefined && !principalMatches(s.principal, req.principal)) return false
  if (s.notPrincipal !== undefined && principalMatches(s.notPrincipal, req.principal)) return false
  const action = req.action.toLowerCase()
  if (s.actions !== undefined && !s.actions.some((a) => globMatches(wildcards(a), action))) return false
  if (s.notActions !== undefined && s.notActions.some((a) => globMatches(wildcards(a), action))) return false
  if (s.resources !== undefined && !resourceMatches(s.resources, req.resource, keys)) return false
  if (s.notResources !== undefined && resourceMatches(s.notResources, req.resource, keys)) return false
  return s.conditions.every((c) => conditionHolds(c, keys, version2012))
}

/**
 * Decides a request against a policy (IAM's evaluation logic, one resource policy): any
 * statement that applies with Deny decides Deny; else one that applies with Allow decides
 * Allow; else the policy does not apply (the caller falls back to ACLs).
 */
export function evaluatePolicy(policy: BucketPolicy, req: PolicyRequest): PolicyDecision {
  const keys = contextKeys(req)
  const version2012 = policy.version === '2012-10-17'
  let allowed = false
  for (const s of policy.statements) {
    if (!statementApplies(s, req, keys, version2012)) continue
    if (s.effect === 'Deny') return 'Deny'
    allowed = true
  }
  return allowed ? 'Allow' : 'NotApplicable'
}

/** A stored policy's decision on a request, and whether the policy is public (RestrictPublicBuckets). */
export interface PolicyVerdict {
  effect: PolicyDecision
  isPublic: boolean
}

/** Parsed stored policies by bucket and document (the oldest parsed dropped first). */
const parsedPolicies = new BoundedMemo<string, { policy: BucketPolicy; isPublic: boolean }>(S3_POLICY_CACHE_ENTRIES_MAX)

/**
 * evaluatePolicy on a policy document as the bucket stores it (BucketS3Config.policy), for
 * the authorizer on every request: the parse is remembered (S3_POLICY_CACHE_ENTRIES_MAX
 * documents), so a request costs the evaluation alone. The document was checked by
 * PutBucketPolicy; one this parser refuses now throws MalformedPolicyError.
 */
export function evaluateStoredPolicy(document: string, bucket: string, req: PolicyRequest): PolicyVerdict {
  const entry = parsedPolicies.get(`${bucket}\n${document}`, () => {
    const policy = parsePolicy(document, bucket)
    return { policy, isPublic: isPublicPolicy(policy) }
  })
  return { effect: evaluatePolicy(entry.policy, req), isPublic: entry.isPublic }
}

// ---- public -----------------------------------------------------------------------------

/**
 * Condition keys that, with fixed values (no wildcard, no variable) under a positive
 * operator, confine a statement to known callers (S3 "The meaning of public"). O3 adds
 * its own identities' keys (aws:username, aws:PrincipalArn...), fixed users as a principal is.
 */
const CONFINING_KEYS = new Set(['aws:sourcearn', 'aws:sourcevpc', 'aws:sourcevpce', 'aws:sourceowner', 'aws:sourceaccount',
  's3:x-amz-server-side-encryption-aws-kms-key-id', 'aws:userid', 'aws:username', 'aws:principalarn', 'aws:principalaccount',
  'aws:principalorgid', 's3:dataaccesspointarn', 's3:dataaccesspointaccount'])
const CONFINING_OPERATORS = new Set(['StringEquals', 'StringEqualsIgnoreCase', 'StringLike', 'ArnEquals', 'ArnLike', 'IpAddress'])

/**
 * Whether a policy grants public access (S3 "The meaning of public"): some Allow statement
 * names everyone (`*`) as its principal and no condition of it confines it to fixed values of
 * aws:SourceIp (a CIDR no broader than /8 for IPv4, /32 for IPv6) or of a key naming the
 * caller or its source (aws:SourceArn, aws:SourceAccount, aws:userid outside `AROLEID:*`...).
 */
export function isPublicPolicy(policy: BucketPolicy): boolean {
  return policy.statements.some((s) => s.effect === 'Allow' && s.principal?.everyone === true && !s.conditions.some(confines))
}

function confines(c: Condition): boolean {
  if (!CONFINING_OPERATORS.has(c.base) || c.ifExists || c.qualifier !== undefined) return false
  const fixed = c.values.every((v) => !v.variables && globLiteral(resolvePattern(v, new Map(), c.base.endsWith('Like'))!) !== undefined)
  if (!fixed) return false
  if (c.key === 'aws:sourceip') {
    return c.base === 'IpAddress' && c.values.every((v) => {
      const net = parseCidr(v.raw)
      return net !== undefined && net.prefix >= (net.ip.bits === 32 ? 8 : 32)
    })
  }
  // A fixed aws:userid is never the `AROLEID:*` S3 excepts: that one has a wildcard. But
  // `anonymous` is every unsigned caller's aws:userid (access.ts): it confines nothing.
  if (c.key === 'aws:userid' && c.values.some((v) => v.raw.toLowerCase() === 'anonymous')) return false
  return c.base !== 'IpAddress' && CONFINING_KEYS.has(c.key)
}
