/** @module
 * The Condition block of a bucket policy statement (IAM's condition operators, as S3 uses
 * them): parsing an operator name, checking its values, and deciding one condition against a
 * request's context keys; also the wildcard matcher (`*`, `?`) and the policy variables
 * (`${aws:username}`) that Resource and string conditions share. Pure: no I/O, no clock.
 */

/** A wildcard pattern, resolved: literal characters, `*` (any run) and `?` (one character). */
export type Glob = (string | typeof STAR | typeof ONE)[]
export const STAR = 0
export const ONE = 1

/**
 * The request's context keys by lower-case name (IAM: "Context key names are not
 * case-sensitive"). A key with no value is absent, never an empty list.
 */
export type ContextKeys = ReadonlyMap<string, readonly string[]>

/** A value in a policy: text, or a text with `${...}` policy variables (Version 2012-10-17). */
export interface PolicyText {
  readonly raw: string
  /** Whether `raw` holds policy variables to resolve per request. */
  readonly variables: boolean
}

/**
 * Resolves a pattern's policy variables against the request and splits it into literal
 * characters and wildcards; `wildcards: false` keeps `*` and `?` literal (StringEquals).
 * undefined when a variable has no value and no default: IAM says such a resource "will
 * not match any resource" and such a condition value matches nothing.
 * Variables (IAM "Policy variables"): `${key}` with a single-valued context key,
 * `${key, 'default'}`, and `${*}`, `${?}`, `${$}` for the literal characters.
 */
export function resolvePattern(text: PolicyText, keys: ContextKeys, wildcards: boolean): Glob | undefined {
  const out: Glob = []
  const raw = text.raw
  for (let i = 0; i < raw.length; i++) {
    const c = raw[i]!
    if (text.variables && c === '$' && raw[i + 1] === '{') {
      const end = raw.indexOf('}', i + 2)
      if (end > 0) {
        const value = variableValue(raw.slice(i + 2, end), keys)
        if (value === undefined) return undefined
        for (const ch of value) out.push(ch)
        i = end
        continue
      }
    }
    if (wildcards && c === '*') out.push(STAR)
    else if (wildcards && c === '?') out.push(ONE)
    else out.push(c)
  }
  return out
}

function variableValue(body: string, keys: ContextKeys): string | undefined {
  const name = body.trim()
  if (name === '*' || name === '?' || name === '$') return name
  const comma = name.indexOf(',')
  const key = (comma < 0 ? name : name.slice(0, comma)).trim().toLowerCase()
  const values = keys.get(key)
  if (values !== undefined && values.length === 1) return values[0]
  if (comma < 0) return undefined
  const fallback = /^\s*'([^']*)'\s*$/.exec(name.slice(comma + 1))
  return fallback === null ? undefined : fallback[1]
}

/** Whether `glob` matches the whole of `text`: `*` any run of characters (`/` and `:`
 *  included), `?` exactly one. Greedy with one backtrack point: O(pattern x text) at worst. */
export function globMatches(glob: Glob, text: string, ignoreCase = false): boolean {
  const t = [...(ignoreCase ? text.toLowerCase() : text)]
  const p = ignoreCase ? glob.map((u) => (typeof u === 'string' ? u.toLowerCase() : u)) : glob
  let pi = 0, ti = 0, starP = -1, starT = 0
  while (ti < t.length) {
    const u = p[pi]
    if (pi < p.length && (u === ONE || u === t[ti])) {
      pi++; ti++
    } else if (pi < p.length && u === STAR) {
      starP = pi++; starT = ti
    } else if (starP >= 0) {
      pi = starP + 1; ti = ++starT
    } else {
      return false
    }
  }
  while (pi < p.length && p[pi] === STAR) pi++
  return pi === p.length
}

/** The literal text of a glob with no wildcards, else undefined. */
export function globLiteral(glob: Glob): string | undefined {
  return glob.every((u) => typeof u === 'string') ? glob.join('') : undefined
}

// ---- operators --------------------------------------------------------------------------

type Kind = 'string' | 'numeric' | 'date' | 'bool' | 'binary' | 'ip' | 'arn' | 'null'

interface OperatorSpec {
  kind: Kind
  /** A negated operator (StringNotEquals, NotIpAddress...): missing keys make it true,
   *  and several values are NORed. */
  negated: boolean
  /** One request value against one (resolved) policy value. */
  test: (request: string, policy: string) => boolean
}

const num = (s: string) => (s.trim() === '' ? NaN : Number(s))
const cmp = (f: (a: number, b: number) => boolean) => (r: string, p: string) => {
  const a = num(r), b = num(p)
  return !Number.isNaN(a) && !Number.isNaN(b) && f(a, b)
}
const dateCmp = (f: (a: number, b: number) => boolean) => (r: string, p: string) => {
  const a = parseDateMs(r), b = parseDateMs(p)
  return a !== undefined && b !== undefined && f(a, b)
}
const eq = (a: number, b: number) => a === b
const lt = (a: number, b: number) => a < b
const le = (a: number, b: number) => a <= b
const gt = (a: number, b: number) => a > b
const ge = (a: number, b: number) => a >= b
/** String operators get their policy value resolved per request (variables, wildcards), so their test is done elsewhere. */
const byGlob = () => false

/** IAM's condition operators by name (case-sensitive, as AWS checks them). */
const OPERATORS: Record<string, OperatorSpec> = {
  StringEquals: { kind: 'string', negated: false, test: byGlob },
  StringNotEquals: { kind: 'string', negated: true, test: byGlob },
  StringEqualsIgnoreCase: { kind: 'string', negated: false, test: byGlob },
  StringNotEqualsIgnoreCase: { kind: 'string', negated: true, test: byGlob },
  StringLike: { kind: 'string', negated: false, test: byGlob },
  StringNotLike: { kind: 'string', negated: true, test: byGlob },
  NumericEquals: { kind: 'numeric', negated: false, test: cmp(eq) },
  NumericNotEquals: { kind: 'numeric', negated: true, test: cmp(eq) },
  NumericLessThan: { kind: 'numeric', negated: false, test: cmp(lt) },
  NumericLessThanEquals: { kind: 'numeric', negated: false, test: cmp(le) },
  NumericGreaterThan: { kind: 'numeric', negated: false, test: cmp(gt) },
  NumericGreaterThanEquals: { kind: 'numeric', negated: false, test: cmp(ge) },
  DateEquals: { kind: 'date', negated: false, test: dateCmp(eq) },
  DateNotEquals: { kind: 'date', negated: true, test: dateCmp(eq) },
  DateLessThan: { kind: 'date', negated: false, test: dateCmp(lt) },
  DateLessThanEquals: { kind: 'date', negated: false, test: dateCmp(le) },
  DateGreaterThan: { kind: 'date', negated: false, test: dateCmp(gt) },
  DateGreaterThanEquals: { kind: 'date', negated: false, test: dateCmp(ge) },
  Bool: { kind: 'bool', negated: false, test: (r, p) => r.toLowerCase() === p.toLowerCase() },
  BinaryEquals: { kind: 'binary', negated: false, test: (r, p) => r === p },
  IpAddress: { kind: 'ip', negated: false, test: (r, p) => ipInCidr(r, p) },
  NotIpAddress: { kind: 'ip', negated: true, test: (r, p) => ipInCidr(r, p) },
  ArnEquals: { kind: 'arn', negated: false, test: (r, p) => arnMatches(r, p) },
  ArnNotEquals: { kind: 'arn', negated: true, test: (r, p) => arnMatches(r, p) },
  ArnLike: { kind: 'arn', negated: false, test: (r, p) => arnMatches(r, p) },
  ArnNotLike: { kind: 'arn', negated: true, test: (r, p) => arnMatches(r, p) },
  Null: { kind: 'null', negated: false, test: () => false },
}

/** One condition: an operator (with its set qualifier and IfExists) on one context key. */
export interface Condition {
  /** The operator as written, e.g. `ForAnyValue:StringLikeIfExists`. */
  readonly operator: string
  /** The base operator, e.g. `StringLike`. */
  readonly base: string
  readonly qualifier: 'ForAllValues' | 'ForAnyValue' | undefined
  readonly ifExists: boolean
  /** The context key, lower case. */
  readonly key: string
  readonly values: readonly PolicyText[]
}

/** The parts of an operator name, or undefined when it is not one of IAM's. */
export function parseOperator(name: string): Pick<Condition, 'base' | 'qualifier' | 'ifExists'> | undefined {
  let rest = name
  let qualifier: Condition['qualifier']
  for (const q of ['ForAllValues', 'ForAnyValue'] as const) {
    if (rest.startsWith(q + ':')) { qualifier = q; rest = rest.slice(q.length + 1) }
  }
  let ifExists = false
  if (rest.endsWith('IfExists') && rest !== 'IfExists') { ifExists = true; rest = rest.slice(0, -'IfExists'.length) }
  if (!Object.hasOwn(OPERATORS, rest)) return undefined
  // IAM: "...IfExists" applies to every operator but Null.
  if (ifExists && rest === 'Null') return undefined
  return { base: rest, qualifier, ifExists }
}

/** Why a policy value does not suit its operator (a MalformedPolicy message), or undefined. */
export function checkConditionValue(base: string, value: string): string | undefined {
  switch (OPERATORS[base]!.kind) {
    case 'ip': return parseCidr(value) === undefined ? 'Invalid IP address in Conditions' : undefined
    case 'numeric': return Number.isNaN(num(value)) ? `Invalid numeric value in Conditions: ${value}` : undefined
    case 'date': return parseDateMs(value) === undefined ? `Invalid date value in Conditions: ${value}` : undefined
    case 'bool': case 'null': return /^(true|false)$/i.test(value) ? undefined : `Invalid boolean value in Conditions: ${value}`
    default: return undefined
  }
}

/**
 * Decides one condition against the request's context keys (IAM "Condition operators" and
 * "single-valued vs. multivalued context keys"):
 * - a key the request lacks: true for ...IfExists, for ForAllValues and for negated
 *   operators; false otherwise (ForAnyValue and positive operators); Null asks exactly that;
 * - several policy values are ORed (NORed for a negated operator);
 * - several request values: ForAllValues needs each to match, ForAnyValue (and an
 *   unqualified operator) one.
 */
export function conditionHolds(c: Condition, keys: ContextKeys, version2012: boolean): boolean {
  const spec = OPERATORS[c.base]!
  const present = keys.get(c.key)
  if (spec.kind === 'null') {
    const absent = present === undefined
    return c.values.some((v) => (v.raw.toLowerCase() === 'true') === absent)
  }
  if (present === undefined) {
    if (c.ifExists || c.qualifier === 'ForAllValues') return true
    if (c.qualifier === 'ForAnyValue') return false
    return spec.negated
  }
  const matchesAny = valueMatcher(c, spec, keys, version2012)
  if (!spec.negated) return c.qualifier === 'ForAllValues' ? present.every(matchesAny) : present.some(matchesAny)
  return c.qualifier === 'ForAnyValue' ? present.some((r) => !matchesAny(r)) : present.every((r) => !matchesAny(r))
}

/** Whether one request value matches any of the condition's policy values. */
function valueMatcher(c: Condition, spec: OperatorSpec, keys: ContextKeys, version2012: boolean): (request: string) => boolean {
  if (spec.kind !== 'string') return (r) => c.values.some((v) => spec.test(r, v.raw))
  const like = c.base === 'StringLike' || c.base === 'StringNotLike'
  const ignoreCase = c.base.endsWith('IgnoreCase')
  // Variables resolve per request; one with no value matches nothing (IAM: "StringEquals
  // or StringLike do not match; inverted condition operators ... do match").
  const globs = c.values.map((v) => resolvePattern(version2012 ? v : { raw: v.raw, variables: false }, keys, like)).filter((g) => g !== undefined)
  return (r) => globs.some((g) => globMatches(g, r, ignoreCase))
}

/** ArnEquals / ArnLike: each of the six colon-separated parts matched on its own, with wildcards. */
function arnMatches(request: string, policy: string): boolean {
  const r = splitArn(request), p = splitArn(policy)
  if (r === undefined || p === undefined) return false
  return p.every((part, i) => globMatches(resolvePattern({ raw: part, variables: false }, new Map(), true)!, r[i]!))
}

function splitArn(arn: string): string[] | undefined {
  const parts = arn.split(':')
  if (parts.length < 6) return undefined
  return [...parts.slice(0, 5), parts.slice(5).join(':')]
}

/** IAM dates: "one of the W3C implementations of the ISO 8601 date formats or in epoch (UNIX) time". */
export function parseDateMs(s: string): number | undefined {
  const t = s.trim()
  if (/^\d+(\.\d+)?$/.test(t)) return Number(t) * 1000
  if (!/^\d{4}(-\d{2}(-\d{2}(T\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:\d{2})?)?)?)?$/.test(t)) return undefined
  const ms = Date.parse(t)
  return Number.isNaN(ms) ? undefined : ms
}

// ---- IP addresses -----------------------------------------------------------------------

/** An address as a number and its family's bit width. */
interface Ip { value: bigint; bits: 32 | 128 }

/** A CIDR (or a bare address, IAM's default prefix /32, /128 for IPv6), or undefined. */
export function parseCidr(s: string): { ip: Ip; prefix: number } | undefined {
  const slash = s.indexOf('/')
  const ip = parseIp(slash < 0 ? s : s.slice(0, slash))
  if (ip === undefined) return undefined
  if (slash < 0) return { ip, prefix: ip.bits }
  const text = s.slice(slash + 1)
  if (!/^\d{1,3}$/.test(text)) return undefined
  const prefix = Number(text)
  return prefix <= ip.bits ? { ip, prefix } : undefined
}

/** Parses an IPv4 or IPv6 address (an IPv4-mapped IPv6 one, as Node reports IPv4 clients on a dual-stack socket, becomes IPv4). */
export function parseIp(s: string): Ip | undefined {
  const v4 = parseIpv4(s)
  if (v4 !== undefined) return { value: v4, bits: 32 }
  const v6 = parseIpv6(s)
  if (v6 === undefined) return undefined
  if (v6 >> 32n === 0xffffn) return { value: v6 & 0xffffffffn, bits: 32 }
  return { value: v6, bits: 128 }
}

function parseIpv4(s: string): bigint | undefined {
  const parts = s.split('.')
  if (parts.length !== 4) return undefined
  let v = 0n
  for (const p of parts) {
    if (!/^\d{1,3}$/.test(p) || Number(p) > 255) return undefined
    v = (v << 8n) | BigInt(Number(p))
  }
  return v
}

function parseIpv6(s: string): bigint | undefined {
  let text = s
  const tail: bigint[] = []
  // A trailing dotted quad is the last 32 bits (::ffff:192.0.2.1).
  const lastColon = text.lastIndexOf(':')
  if (lastColon >= 0 && text.includes('.', lastColon)) {
    const v4 = parseIpv4(text.slice(lastColon + 1))
    if (v4 === undefined) return undefined
    tail.push(v4 >> 16n, v4 & 0xffffn)
    text = text.slice(0, lastColon + 1)
    if (!text.endsWith('::')) text = text.slice(0, -1)
  }
  const halves = text.split('::')
  if (halves.length > 2) return undefined
  const groups = (h: string): bigint[] | undefined => {
    if (h === '') return []
    const out: bigint[] = []
    for (const g of h.split(':')) {
      if (!/^[0-9a-fA-F]{1,4}$/.test(g)) return undefined
      out.push(BigInt('0x' + g))
    }
    return out
  }
  const head = groups(halves[0]!), rest = halves.length === 2 ? groups(halves[1]!) : []
  if (head === undefined || rest === undefined) return undefined
  const total = head.length + rest.length + tail.length
  if (halves.length === 1 ? total !== 8 : total > 7) return undefined
  const zeros = Array<bigint>(8 - total).fill(0n)
  return [...head, ...zeros, ...rest, ...tail].reduce((acc, g) => (acc << 16n) | g, 0n)
}

/** Whether an address lies in a CIDR of its own family. */
export function ipInCidr(address: string, cidr: string): boolean {
  const ip = parseIp(address), net = parseCidr(cidr)
  if (ip === undefined || net === undefined || ip.bits !== net.ip.bits) return false
  const shift = BigInt(ip.bits - net.prefix)
  return ip.value >> shift === net.ip.value >> shift
}
