/** Goal: core/raft stays pure, as its headers promise: it imports only its own files and
 * core/assert.ts, and uses no clock, timer, randomness or I/O global. Method: read the
 * sources and look for the forbidden names. */
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { readdirSync, readFileSync } from 'node:fs'

const dir = new URL('../../../../core/raft/', import.meta.url)
const files = readdirSync(dir).filter((f) => f.endsWith('.ts'))

test('core/raft imports only its own files and core/assert.ts', () => {
  assert.ok(files.length >= 5)
  for (const f of files) {
    const source = readFileSync(new URL(f, dir), 'utf8')
    for (const m of source.matchAll(/from '([^']+)'/g)) {
      const spec = m[1]
      assert.ok(spec.startsWith('./') || spec === '../assert.ts', `${f} imports ${spec}`)
    }
  }
})

test('core/raft reads no clock and draws no randomness of its own', () => {
  const forbidden = [/Math\.random/, /Date\.now|new Date\(/, /performance\./, /setTimeout|setInterval|queueMicrotask/, /process\./, /\bfetch\(/, /crypto\./]
  for (const f of files) {
    const code = readFileSync(new URL(f, dir), 'utf8').replace(/\/\*[\s\S]*?\*\/|\/\/.*$/gm, '')
    for (const re of forbidden) assert.not.ok(re.test(code), `${f} uses ${re}`)
  }
})

test.run()
