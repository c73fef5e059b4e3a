/** @module
 * S3's XML bodies on fast-xml-parser: responses built from plain objects (namespace on the
 * root), request bodies validated (MalformedXML) and parsed with a size limit; a body that
 * stops coming is RequestTimeout, as an upload's is.
 */
import { XMLBuilder, XMLParser, XMLValidator } from 'fast-xml-parser'
import { S3Error } from './errors.ts'
import { bodyPieces } from './payload.ts'

export const S3_NS = 'http://s3.amazonaws.com/doc/2006-03-01/'
/** Request XML bodies (DeleteObjects of 1000 keys, CompleteMultipartUpload of 10000 parts) stay under this. */
export const XML_BODY_BYTES_MAX = 2 * 1024 * 1024

const builder = new XMLBuilder({ ignoreAttributes: false, attributeNamePrefix: '@_', suppressEmptyNode: false, processEntities: true })
const parser = new XMLParser({ ignoreAttributes: true, parseTagValue: false, trimValues: false, isArray: (name) => ['Object', 'Part', 'Tag'].includes(name) })

/** `<?xml ...?><Root xmlns=...>...</Root>`; undefined fields are left out, arrays repeat the element. */
export function toXml(root: string, body: Record<string, unknown>, namespace = true): string {
  const content = namespace ? { '@_xmlns': S3_NS, ...body } : body
  return '<?xml version="1.0" encoding="UTF-8"?>\n' + builder.build({ [root]: content })
}

export function xmlResponse(root: string, body: Record<string, unknown>, status = 200, headers: Record<string, string> = {}): Response {
  return new Response(toXml(root, body), { status, headers: { 'content-type': 'application/xml', ...headers } })
}

/**
 * Reads a small XML request body; throws MalformedXML when it is not well-formed or lacks
 * `root`, RequestTimeout when it sends nothing for `idleTimeoutMs` (config s3g.bodyIdleTimeoutMs).
 */
export async function readXml(req: Request, root: string, idleTimeoutMs: number): Promise<Record<string, unknown>> {
  const length = Number(req.headers.get('content-length') ?? 0)
  if (length > XML_BODY_BYTES_MAX) throw new S3Error('MalformedXML', `XML body of ${length} bytes exceeds ${XML_BODY_BYTES_MAX}`)
  const text = await readTextLimited(req, XML_BODY_BYTES_MAX, idleTimeoutMs)
  if (text.trim() === '' || XMLValidator.validate(text) !== true) throw new S3Error('MalformedXML', 'The XML you provided was not well-formed or did not validate against our published schema')
  const doc = parser.parse(text) as Record<string, unknown>
  const body = doc[root]
  if (body === undefined) throw new S3Error('MalformedXML', `The XML you provided has no ${root} element`)
  return (typeof body === 'object' && body !== null ? body : {}) as Record<string, unknown>
}

async function readTextLimited(req: Request, max: number, idleTimeoutMs: number): Promise<string> {
  if (req.body === null) return ''
  const parts: Uint8Array[] = []
  let total = 0
  for await (const p of bodyPieces(req.body, idleTimeoutMs)) {
    total += p.length
    if (total > max) throw new S3Error('MalformedXML', `XML body exceeds ${max} bytes`)
    parts.push(p)
  }
  return Buffer.concat(parts).toString('utf8')
}
