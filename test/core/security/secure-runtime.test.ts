/**
 * Goal: a secure service starts on Node and is refused plainly on Deno, whose HTTP server
 * cannot ask callers for certificates (a new user's `deno task start -- --secure` failed
 * later, on a certificate check that named the wrong cause).
 * Method: startIdentity as every service calls it, with an identity source in process; this
 * file runs under Node (npm test) and under Deno (deno.json's test:secure-runtime).
 */
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { O3Error } from '../../../core/errors.ts'
import { startIdentity } from '../../../core/security/identity-source.ts'
import type { ServiceIdentity } from '../../../core/security/identity.ts'

const marker = { role: 'om', id: 'om1' } as unknown as ServiceIdentity
const options = { enabled: 1, role: 'om' as const, id: 'om1', host: '127.0.0.1', dir: '/nonexistent', scm: '127.0.0.1:1', bootstrapToken: '', source: async () => marker }

test('security off: no identity, on either runtime', async () => {
  assert.is(await startIdentity({ ...options, enabled: 0 }), undefined)
})

test('security on: the identity on Node; refused on Deno, saying why', async () => {
  if (!('Deno' in globalThis)) {
    assert.is(await startIdentity(options), marker)
    return
  }
  try {
    await startIdentity(options)
    assert.unreachable('a secure service started under Deno')
  } catch (err) {
    assert.instance(err, O3Error)
    assert.is((err as O3Error).code, 'INVALID_ARGUMENT')
    assert.match((err as O3Error).message, 'mutual TLS')
  }
})

test.run()
