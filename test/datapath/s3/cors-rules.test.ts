/**
 * Goal: CORS rules (datapath/s3/cors.ts) parse and match as S3's: the first rule whose
 * origin pattern (one `*`), method and header patterns (any case) hold, and the headers it
 * answers with. Method: tables over parseCorsXml, matchCorsRule and corsHeaders.
 */
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { corsHeaders, matchCorsRule, parseCorsXml } from '../../../datapath/s3/cors.ts'
import { S3Error } from '../../../datapath/s3/errors.ts'
import type { CorsRule } from '../../../core/s3-access/model.ts'

const RULES: CorsRule[] = [
  { id: 'one', allowedOrigins: ['https://a.example'], allowedMethods: ['PUT'], allowedHeaders: ['X-Amz-*', 'content-type'], exposeHeaders: [] },
  { allowedOrigins: ['https://*.b.example'], allowedMethods: ['GET', 'HEAD'], allowedHeaders: ['*'], exposeHeaders: ['ETag'], maxAgeSeconds: 30 },
  { allowedOrigins: ['*'], allowedMethods: ['GET'], allowedHeaders: [], exposeHeaders: [] },
]

const MATCHES: [string, string, string[], string | number | undefined][] = [
  ['https://a.example', 'PUT', ['x-amz-date', 'content-type'], 'one'],
  ['https://a.example', 'PUT', ['authorization'], undefined],
  ['https://a.example', 'GET', [], 2],
  ['https://x.b.example', 'GET', ['anything'], 1],
  ['https://x.y.b.example', 'HEAD', [], 1],
  ['https://b.example', 'HEAD', [], undefined],
  ['http://x.b.example', 'GET', ['x-h'], undefined],
  ['https://z.example', 'DELETE', [], undefined],
]

for (const [origin, method, headers, want] of MATCHES) {
  test(`matchCorsRule(): ${method} from ${origin} with [${headers.join(', ')}]`, () => {
    const rule = matchCorsRule(RULES, { origin, method, headers })
    assert.is(rule === undefined ? undefined : rule.id ?? RULES.indexOf(rule), want)
  })
}

test('corsHeaders() echoes a named origin with credentials, and answers * for any origin', () => {
  assert.equal(corsHeaders(RULES[1]!, 'https://x.b.example'), {
    'access-control-allow-origin': 'https://x.b.example', 'access-control-allow-methods': 'GET, HEAD', 'access-control-allow-credentials': 'true',
    'access-control-expose-headers': 'ETag', 'access-control-max-age': '30', vary: 'Origin, Access-Control-Request-Headers, Access-Control-Request-Method',
  })
  assert.is(corsHeaders(RULES[2]!, 'https://q.example')['access-control-allow-origin'], '*')
  assert.is(corsHeaders(RULES[2]!, 'https://q.example')['access-control-allow-credentials'], undefined)
})

test('parseCorsXml() reads one or many rules and refuses what S3 refuses', () => {
  assert.equal(parseCorsXml({ CORSRule: { AllowedOrigin: '*', AllowedMethod: 'GET', MaxAgeSeconds: 5, ID: 'r' } }), [
    { id: 'r', allowedOrigins: ['*'], allowedMethods: ['GET'], allowedHeaders: [], exposeHeaders: [], maxAgeSeconds: 5 },
  ])
  assert.is(parseCorsXml({ CORSRule: [{ AllowedOrigin: 'a', AllowedMethod: ['GET', 'PUT'] }, { AllowedOrigin: 'b', AllowedMethod: 'POST' }] }).length, 2)
  const code = (body: Record<string, unknown>) => {
    try { parseCorsXml(body); return 'ok' } catch (err) { return err instanceof S3Error ? err.code : String(err) }
  }
  assert.is(code({}), 'MalformedXML')
  assert.is(code({ CORSRule: { AllowedMethod: 'GET' } }), 'MalformedXML')
  assert.is(code({ CORSRule: { AllowedOrigin: '*' } }), 'MalformedXML')
  assert.is(code({ CORSRule: { AllowedOrigin: '*', AllowedMethod: 'get' } }), 'InvalidRequest')
  assert.is(code({ CORSRule: { AllowedOrigin: '*', AllowedMethod: 'GET', MaxAgeSeconds: '-1' } }), 'MalformedXML')
  assert.is(code({ CORSRule: { AllowedOrigin: '*', AllowedMethod: 'GET', ID: 'x'.repeat(256) } }), 'MalformedXML')
  assert.is(code({ CORSRule: { AllowedOrigin: '**', AllowedMethod: 'GET' } }), 'InvalidRequest')
})

test.run()
