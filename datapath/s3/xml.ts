/** @module
 * S3's XML bodies on fast-xml-parser. Requests: read with a size limit, checked well-formed as
 * XML 1.0 (MalformedXML otherwise) and parsed with XML's own references decoded: the five
 * predefined entities and character references (`&#34;`, `&#x27;`), which Go clients such as
 * rclone write for every quote. Answers: built from plain objects (namespace on the root),
 * every text escaped as S3 escapes it. Pure.
 *
 * A request body can name no entity of its own: a DOCTYPE is refused, never expanded, so no
 * body grows when decoded, and nesting deeper than any S3 body is refused before it costs.
 * A body that stops coming is RequestTimeout, as an upload's is.
 */
import { XMLBuilder, XMLParser, XMLValidator } from 'fast-xml-parser'
import { S3Error } from './errors.ts'
import type { RequestBody } from '../../core/http/body.ts'
import type { RequestAuth } from './auth.ts'
import { readBodyText } from './payload.ts'

export const S3_NS = 'http://s3.amazonaws.com/doc/2006-03-01/'
/** Request XML bodies (DeleteObjects of 1000 keys, CompleteMultipartUpload of 10000 parts) stay under this. */
export const XML_BODY_BYTES_MAX = 2 * 1024 * 1024
/** Elements nested in a request body: S3's deepest (Delete/Object/Key) are 3 deep. */
export const XML_DEPTH_MAX = 32

/** S3's words for a body that is not well-formed; the detail after it says what was wrong. */
const MALFORMED = 'The XML you provided was not well-formed or did not validate against our published schema'
const malformed = (detail: string) => new S3Error('MalformedXML', `${MALFORMED}: ${detail}`)

/** XML 1.0's Char production (§2.2): what text may hold, raw or as a character reference. */
const isXmlChar = (cp: number) =>
  cp === 0x9 || cp === 0xA || cp === 0xD || (cp >= 0x20 && cp <= 0xD7FF) || (cp >= 0xE000 && cp <= 0xFFFD) || (cp >= 0x10000 && cp <= 0x10FFFF)
/** A character XML 1.0 does not allow, lone surrogates included (the `u` flag reads them as code points). */
const NOT_XML_CHAR = /[^\t\n\r\u0020-\uD7FF\uE000-\uFFFD\u{10000}-\u{10FFFF}]/u

/** A Map, not an object: `&constructor;` must not find Object.prototype's. */
const PREDEFINED = new Map([['amp', '&'], ['lt', '<'], ['gt', '>'], ['quot', '"'], ['apos', "'"]])

/** `&` and up to 32 characters to the `;` that ends a reference (`#x0000000041` is legal). */
const REFERENCE = /&([^;]{0,32})(;?)/g

/**
 * Replaces XML's references in a text: the predefined entities and character references to
 * XML characters. Anything else is not well-formed and throws MalformedXML, since dropping
 * or keeping it would name another key than the client meant (AWS refuses `&#x1;` in
 * DeleteObjects the same way).
 */
export function decodeReferences(text: string): string {
  if (!text.includes('&')) return text
  return text.replace(REFERENCE, (whole, name: string, semicolon: string) => {
    if (semicolon === '') throw malformed(`"&" does not start a reference in "${whole.slice(0, 12)}"`)
    const predefined = PREDEFINED.get(name)
    if (predefined !== undefined) return predefined
    const numeric = /^#(?:x([0-9A-Fa-f]+)|([0-9]+))$/.exec(name)
    if (numeric === null) throw malformed(`the entity &${name}; is not defined`)
    const cp = numeric[1] !== undefined ? parseInt(numeric[1], 16) : parseInt(numeric[2], 10)
    if (!isXmlChar(cp)) throw malformed(`&${name}; is not a character XML allows`)
    return String.fromCodePoint(cp)
  })
}

/**
 * fast-xml-parser's hook for entities (its `entityDecoder` option), strict where the
 * library's own decoders are lenient: with `htmlEntities` they also expand HTML's names
 * (`&nbsp;`), drop references to control characters and keep unknown or out-of-range
 * references as literal text, each of which turns one key name into another.
 */
const strictReferences = {
  setExternalEntities(): void {},
  /** Called with a DOCTYPE's entities, and only when the body has a DOCTYPE: S3 bodies have none. */
  addInputEntities(): void {
    throw malformed('a DOCTYPE is not accepted')
  },
  reset(): void {},
  setXmlVersion(): void {},
  decode: decodeReferences,
}

/** Text escaped as S3 writes it: the five predefined entities, CR as a reference (a raw CR
 *  reads back as LF), and characters XML 1.0 cannot hold as `&#xN;`, as S3 does (clients that
 *  must read such keys ask for encoding-type=url). */
export function escapeText(text: string): string {
  return text.replace(/[&<>"'\r]|[^\t\n\u0020-\uD7FF\uE000-\uFFFD\u{10000}-\u{10FFFF}]/gu, (ch) => {
    switch (ch) {
      case '&': return '&amp;'
      case '<': return '&lt;'
      case '>': return '&gt;'
      case '"': return '&quot;'
      case "'": return '&apos;'
      default: return `&#x${ch.codePointAt(0)!.toString(16).toUpperCase()};`
    }
  })
}

const escapeValue = (_name: string, value: unknown) => typeof value === 'string' ? escapeText(value) : value
// The processors escape; the builder's own entity pass would escape the references again.
const builder = new XMLBuilder({
  ignoreAttributes: false, attributeNamePrefix: '@_', suppressEmptyNode: false, processEntities: false,
  tagValueProcessor: escapeValue, attributeValueProcessor: escapeValue,
})
const parser = new XMLParser({
  ignoreAttributes: true, parseTagValue: false, trimValues: false, isArray: (name) => ['Object', 'Part', 'Tag'].includes(name),
  processEntities: true, entityDecoder: strictReferences, maxNestedTags: XML_DEPTH_MAX,
})

/** The same, keeping attributes as `@_name` without their namespace prefix (an ACL Grantee's xsi:type is `@_type`). */
const attributeParser = new XMLParser({
  ignoreAttributes: false, attributeNamePrefix: '@_', removeNSPrefix: true, parseTagValue: false, parseAttributeValue: false, trimValues: false,
  isArray: (name) => ['Grant'].includes(name), processEntities: true, entityDecoder: strictReferences, maxNestedTags: XML_DEPTH_MAX,
})

/** `<?xml ...?><Root xmlns=...>...</Root>`; undefined fields are left out, arrays repeat the element. */
export function toXml(root: string, body: Record<string, unknown>, namespace = true): string {
  const content = namespace ? { '@_xmlns': S3_NS, ...body } : body
  return '<?xml version="1.0" encoding="UTF-8"?>\n' + builder.build({ [root]: content })
}

export function xmlResponse(root: string, body: Record<string, unknown>, status = 200, headers: Record<string, string> = {}): Response {
  return new Response(toXml(root, body), { status, headers: { 'content-type': 'application/xml', ...headers } })
}

/** What readXml needs of a request: its body, headers and authentication (S3Context's). */
export interface XmlRequest {
  readonly req: Request
  readonly body: RequestBody | null
  readonly auth: RequestAuth
  readonly bodyIdleTimeoutMs: number
}

/**
 * Reads a small XML request body, verified as an object's body is before it is parsed (the
 * signed x-amz-content-sha256, Content-MD5, an x-amz-checksum-* unless `objectChecksums`
 * says those name the object's: XAmzContentSHA256Mismatch, BadDigest): a signature covers a
 * body only through its hash, so an unverified body could be another than the one signed.
 * Throws MalformedXML when it is not well-formed, lacks `root` or is too large,
 * RequestTimeout when it sends nothing for the request's idle timeout (s3g.bodyIdleTimeoutMs).
 */
export async function readXml(r: XmlRequest, root: string, options: { attributes?: boolean; objectChecksums?: boolean } = {}): Promise<Record<string, unknown>> {
  const length = Number(r.req.headers.get('content-length') ?? 0)
  if (length > XML_BODY_BYTES_MAX) throw new S3Error('MalformedXML', `XML body of ${length} bytes exceeds ${XML_BODY_BYTES_MAX}`)
  const text = await readBodyText({ body: r.body, headers: options.objectChecksums === true ? withoutChecksums(r.req.headers) : r.req.headers, auth: r.auth, sizeMaxBytes: XML_BODY_BYTES_MAX, idleTimeoutMs: r.bodyIdleTimeoutMs }, {
    tooLarge: () => new S3Error('MalformedXML', `XML body exceeds ${XML_BODY_BYTES_MAX} bytes`),
    notUtf8: () => malformed('the body is not UTF-8'),
  })
  return parseXml(text, root, options)
}

/** The headers without x-amz-checksum-*: where they name the object's checksum (CompleteMultipartUpload's), not the body's. */
function withoutChecksums(headers: Headers): Headers {
  const kept = new Headers()
  headers.forEach((value, name) => { if (!name.startsWith('x-amz-checksum-') && name !== 'x-amz-sdk-checksum-algorithm') kept.set(name, value) })
  return kept
}

/** Parses a request body's text (see readXml); `attributes` keeps them (attributeParser). */
export function parseXml(raw: string, root: string, options: { attributes?: boolean } = {}): Record<string, unknown> {
  if (raw.trim() === '') throw malformed('the body is empty')
  if (NOT_XML_CHAR.test(raw)) throw malformed('the body holds a character XML does not allow')
  // XML 1.0 §2.11: a parser reads CR LF and lone CR as LF; a CR in a key is sent as &#13;.
  const text = raw.replace(/\r\n?/g, '\n')
  const valid = XMLValidator.validate(text)
  if (valid !== true) throw malformed(`${valid.err.msg} (line ${valid.err.line}, column ${valid.err.col})`)
  let doc: Record<string, unknown>
  try {
    doc = (options.attributes === true ? attributeParser : parser).parse(text) as Record<string, unknown>
  } catch (err) {
    if (err instanceof S3Error) throw err
    // What the validator lets through and the parser refuses: nesting past XML_DEPTH_MAX.
    throw malformed(err instanceof Error ? err.message : String(err))
  }
  // One root element, the one the operation takes (the validator lets two through).
  const roots = Object.keys(doc).filter((k) => k !== '?xml')
  if (roots.length !== 1 || roots[0] !== root || Array.isArray(doc[root])) throw malformed(`the body must be one ${root} element`)
  const body = doc[root]
  return (typeof body === 'object' && body !== null ? body : {}) as Record<string, unknown>
}

