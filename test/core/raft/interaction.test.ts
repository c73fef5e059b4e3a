/** Goal: the Raft core's behaviors, one scenario per testdata/*.txt script (elections with
 * pre-vote and check-quorum, replication, commitment, ReadIndex, transfer, snapshots,
 * membership). Method: each command's output is compared with the output recorded in
 * the script; run with O3_REWRITE=1 to record new output, then review the diff. */
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { readdirSync, readFileSync, writeFileSync } from 'node:fs'
import { Interaction, parseScript } from './interaction.ts'

const dir = new URL('../../../../test/core/raft/testdata/', import.meta.url)
const rewrite = process.env.O3_REWRITE === '1'

for (const name of readdirSync(dir).filter((n) => n.endsWith('.txt')).sort()) {
  test(`Interaction script ${name}`, () => {
    const { blocks, comments } = parseScript(readFileSync(new URL(name, dir), 'utf8'))
    const env = new Interaction()
    const rewritten: string[] = []
    for (const [i, b] of blocks.entries()) {
      const actual = env.run(b.command)
      rewritten.push(...(comments.get(i) ?? []), b.command, '----', ...(actual.length > 0 ? actual : ['ok']), '')
      if (!rewrite) assert.equal(actual.length > 0 ? actual : ['ok'], b.expected, `${name}: ${b.command}`)
    }
    if (rewrite) writeFileSync(new URL(name, dir), rewritten.join('\n'))
  })
}

test.run()
