/** @module
 * The POST policy of a browser upload (S3 "Creating a POST Policy"): parsing its base64 JSON
 * (InvalidPolicyDocument) and checking a form against it: expiration, exact (`{"f": "v"}`,
 * `["eq", "$f", "v"]`) and `starts-with` conditions, `content-length-range`, and that every
 * form field but the signature's own is named by a condition (AccessDenied "Invalid according
 * to Policy", AWS's words). Field names compare case-insensitively, values exactly. Pure: the
 * time comes in.
 */
import { S3Error } from './errors.ts'

/** One condition, its field name in lower case without the `$`; `text` is how it was written, for the error. */
export type PostCondition =
  | { type: 'eq' | 'starts-with'; field: string; value: string; text: string }
  | { type: 'content-length-range'; min: number; max: number; text: string }

export interface PostPolicy {
  expirationMs: number
  conditions: PostCondition[]
}

/** The form fields a policy need not name (S3: the signature's own, the file, and x-ignore-*). */
const UNCONDITIONED = new Set(['policy', 'signature', 'x-amz-signature', 'awsaccesskeyid', 'file'])
const ISO_UTC = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,9})?Z$/

function invalid(why: string): S3Error {
  return new S3Error('InvalidPolicyDocument', `Invalid Policy: ${why}`)
}

function denied(why: string): S3Error {
  return new S3Error('AccessDenied', `Invalid according to Policy: ${why}`)
}

/** The policy a form's `policy` field holds (base64 of UTF-8 JSON). */
export function parsePostPolicy(base64: string): PostPolicy {
  if (!/^[A-Za-z0-9+/\r\n]*={0,2}$/.test(base64)) throw invalid('Invalid Base64 Encoding.')
  let doc: unknown
  try {
    doc = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(Buffer.from(base64, 'base64')))
  } catch {
    throw invalid('Invalid JSON.')
  }
  if (typeof doc !== 'object' || doc === null || Array.isArray(doc)) throw invalid('Invalid JSON.')
  const d = doc as Record<string, unknown>
  if (d.expiration === undefined) throw invalid('Policy missing expiration.')
  if (typeof d.expiration !== 'string' || !ISO_UTC.test(d.expiration)) throw invalid(`Invalid 'expiration' value: ${JSON.stringify(d.expiration)}`)
  const expirationMs = Date.parse(d.expiration)
  if (Number.isNaN(expirationMs)) throw invalid(`Invalid 'expiration' value: ${JSON.stringify(d.expiration)}`)
  if (d.conditions === undefined) throw invalid('Policy missing conditions.')
  if (!Array.isArray(d.conditions)) throw invalid("Invalid 'conditions' value: must be a list")
  const conditions: PostCondition[] = []
  for (const c of d.conditions as unknown[]) conditions.push(...parseCondition(c))
  return { expirationMs, conditions }
}

function parseCondition(c: unknown): PostCondition[] {
  const text = JSON.stringify(c)
  if (typeof c === 'object' && c !== null && !Array.isArray(c)) {
    const entries = Object.entries(c as Record<string, unknown>)
    if (entries.length === 0) throw invalid(`Invalid Simple-Condition: ${text}`)
    return entries.map(([field, value]) => {
      if (typeof value !== 'string') throw invalid(`Invalid Simple-Condition: value must be a string: ${text}`)
      return { type: 'eq' as const, field: field.toLowerCase(), value, text }
    })
  }
  if (!Array.isArray(c) || c.length !== 3 || typeof c[0] !== 'string') throw invalid(`Invalid Condition: ${text}`)
  const op = c[0].toLowerCase()
  if (op === 'content-length-range') {
    const [min, max] = [bound(c[1]), bound(c[2])]
    if (min === undefined || max === undefined) throw invalid(`Invalid content-length-range: ${text}`)
    return [{ type: 'content-length-range', min, max, text }]
  }
  if (op !== 'eq' && op !== 'starts-with') throw invalid(`Invalid Condition: unknown operation ${JSON.stringify(c[0])}`)
  if (typeof c[1] !== 'string' || !c[1].startsWith('$') || typeof c[2] !== 'string') throw invalid(`Invalid Condition: ${text}`)
  return [{ type: op, field: c[1].slice(1).toLowerCase(), value: c[2], text }]
}

/** A content-length-range bound: a non-negative integer, as a number or its decimal text. */
function bound(v: unknown): number | undefined {
  const n = typeof v === 'number' ? v : typeof v === 'string' && /^\d{1,16}$/.test(v) ? Number(v) : NaN
  return Number.isSafeInteger(n) && n >= 0 ? n : undefined
}

/**
 * Checks a form against its policy; `fields` by lower-case name, `key` with ${filename}
 * already replaced, `bucket` the request's. Returns the content-length-range the file must
 * fall in (the tightest of those given), which only its reading can check.
 */
export function checkPostPolicy(policy: PostPolicy, form: { fields: Map<string, string>; bucket: string; nowMs: number }): { min: number; max: number } | undefined {
  if (form.nowMs > policy.expirationMs) throw denied('Policy expired.')
  const value = (field: string) => (field === 'bucket' ? form.bucket : form.fields.get(field) ?? '')
  const named = new Set<string>()
  let range: { min: number; max: number } | undefined
  for (const c of policy.conditions) {
    if (c.type === 'content-length-range') {
      range = range === undefined ? { min: c.min, max: c.max } : { min: Math.max(range.min, c.min), max: Math.min(range.max, c.max) }
      continue
    }
    named.add(c.field)
    const v = value(c.field)
    // S3 takes a Content-Type as a comma-separated list, each of which must start with the prefix.
    const ok = c.type === 'eq' ? v === c.value
      : c.field === 'content-type' ? v.split(',').every((t) => t.trim().startsWith(c.value))
      : v.startsWith(c.value)
    if (!ok) throw denied(`Policy Condition failed: ${c.text}`)
  }
  const extra = [...form.fields.keys()].filter((f) => !UNCONDITIONED.has(f) && !f.startsWith('x-ignore-') && !named.has(f))
  if (extra.length > 0) throw denied(`Extra input fields: ${extra.join(', ')}`)
  return range
}
