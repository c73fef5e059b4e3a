/** Goal: the Raft core's behaviors, one scenario per testdata/*.txt script (elections with
 * pre-vote and check-quorum, replication, commitment, ReadIndex, transfer, snapshots,
 * membership). Method: each command's output is compared with the output recorded in
 * the script; run with O3_REWRITE=1 to record new output, then review the diff. */
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { readdirSync, readFileSync, writeFileSync } from 'node:fs'
import { Interaction } from './interaction.ts'

const dir = new URL('../../../../test/core/raft/testdata/', import.meta.url)
const rewrite = process.env.O3_REWRITE === '1'

interface Block {
  readonly command: string
  readonly expected: string[]
}

function parse(text: string): { blocks: Block[]; comments: Map<number, string[]> } {
  const blocks: Block[] = []
  const comments = new Map<number, string[]>()
  const lines = text.split('\n')
  let pending: string[] = []
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i]
    if (line.startsWith('#') || line.trim() === '') {
      if (line.startsWith('#')) pending.push(line)
      continue
    }
    assert.is(lines[i + 1], '----', `line ${i + 2}: a command is followed by ----`)
    const expected: string[] = []
    let j = i + 2
    for (; j < lines.length && lines[j] !== ''; j++) expected.push(lines[j])
    if (pending.length > 0) comments.set(blocks.length, pending)
    pending = []
    blocks.push({ command: line, expected })
    i = j
  }
  return { blocks, comments }
}

for (const name of readdirSync(dir).filter((n) => n.endsWith('.txt')).sort()) {
  test(`Interaction script ${name}`, () => {
    const { blocks, comments } = parse(readFileSync(new URL(name, dir), 'utf8'))
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
