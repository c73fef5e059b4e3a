/**
 * Goal: the SCM never writes a bootstrap token to its log: the first token is reusable and never
 * expires (it enrolls any om, datanode or s3g identity, and an s3g acts for any user), and logs
 * are read by more people than the 0600 token file. Method: a real secure SCM started in a temp
 * dir with O3_LOG=info and stderr captured; the log must name the token's file, not the token.
 */
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { loadConfig } from '../../../core/config.ts'
import { StorageContainerManager } from '../../../control/scm/index.ts'

test('the SCM logs where the bootstrap token is, never the token', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'o3-scm-ca-log-'))
  const config = loadConfig({ env: {}, overrides: { 'scm.dir': join(dir, 'scm'), 'security.enabled': 1 } })
  const scm = new StorageContainerManager({ config, port: 0 })
  const lines: string[] = []
  const error = console.error
  const level = process.env.O3_LOG
  process.env.O3_LOG = 'info'
  console.error = (...a: unknown[]) => { lines.push(a.map(String).join(' ')) }
  try {
    await scm.start()
  } finally {
    console.error = error
    if (level === undefined) delete process.env.O3_LOG
    else process.env.O3_LOG = level
  }
  try {
    const logged = lines.join('\n')
    assert.match(logged, scm.ca!.tokenFile, 'the log names the token file')
    for (const token of [scm.ca!.bootstrapToken(), scm.ca!.adminToken()]) {
      assert.not.ok(logged.includes(token.split('.')[1]!), 'no token secret in the log')
    }
  } finally {
    await scm.stop()
    rmSync(dir, { recursive: true, force: true })
  }
})

test.run()
