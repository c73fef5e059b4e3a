/**
 * Goal: a datanode's view of its volumes' free space keeps its promises: a volume is full
 * below its reserve (or when statfs fails), the datanode hears once per turn to full, a
 * reading is reused within VOLUME_SPACE_REFRESH_MS and taken again after, new containers go
 * on the volume with room holding the fewest, and a copy's target is the roomiest.
 * Method: VolumeSpace with a scripted statfs (bytes free per directory) and a given clock;
 * the real statfs against a temp directory once.
 */
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { VOLUME_SPACE_REFRESH_MS } from '../../../core/limits.ts'
import { VolumeSpace } from '../../../datapath/datanode/volume-space.ts'

const RESERVE = 1000

/** A statfs whose free bytes per directory the test sets (blocks of 1 byte); a missing one throws, as an unreadable volume. */
function disks(free: Record<string, number>) {
  const calls: string[] = []
  const statfs = (dir: string) => {
    calls.push(dir)
    if (!(dir in free)) throw new Error(`ENOENT: ${dir}`)
    return { blocks: 1_000_000, bavail: free[dir]!, bsize: 1 }
  }
  return { free, calls, statfs }
}

test('a volume is full below its reserve; the datanode hears each turn, to full and back, once', () => {
  const d = disks({ a: 5000, b: 999 })
  const turned: string[] = []
  const space = new VolumeSpace(['a', 'b'], RESERVE, (dir) => turned.push(dir), d.statfs)
  assert.equal(space.room(0, 0), { capacityBytes: 1_000_000, availableBytes: 5000, reservedBytes: RESERVE, full: false, readable: true })
  assert.is(space.room(1, 0).full, true)
  assert.equal(turned, ['b'])
  // Still full at the next reading: not told again; room back, then full again: told each time.
  space.room(1, VOLUME_SPACE_REFRESH_MS)
  d.free.b = 2000
  assert.is(space.room(1, 2 * VOLUME_SPACE_REFRESH_MS).full, false)
  space.room(1, 3 * VOLUME_SPACE_REFRESH_MS)
  d.free.b = 10
  assert.is(space.room(1, 4 * VOLUME_SPACE_REFRESH_MS).full, true)
  assert.equal(turned, ['b', 'b', 'b'])
})

test('a reading is reused within VOLUME_SPACE_REFRESH_MS and taken again after it', () => {
  const d = disks({ a: 5000 })
  const space = new VolumeSpace(['a'], RESERVE, () => {}, d.statfs)
  space.room(0, 100)
  d.free.a = 0
  assert.is(space.room(0, 100 + VOLUME_SPACE_REFRESH_MS - 1).full, false)
  assert.is(d.calls.length, 1)
  assert.is(space.room(0, 100 + VOLUME_SPACE_REFRESH_MS).full, true)
  assert.is(d.calls.length, 2)
})

test('a volume statfs cannot read is full', () => {
  const space = new VolumeSpace(['gone'], RESERVE, () => {}, disks({}).statfs)
  assert.equal(space.room(0, 0), { capacityBytes: 0, availableBytes: 0, reservedBytes: RESERVE, full: true, readable: false })
})

test('choose() takes the volume with room holding the fewest containers; undefined when all are full; roomiest() the most spare', () => {
  const d = disks({ a: 5000, b: 900, c: 3000 })
  const space = new VolumeSpace(['a', 'b', 'c'], RESERVE, () => {}, d.statfs)
  assert.is(space.choose([4, 0, 2], 0), 2, 'b holds fewest but is full')
  assert.is(space.choose([1, 0, 1], 0), 0, 'ties go to the lower index')
  assert.equal(space.roomiest(0), { index: 0, spareBytes: 4000 })
  d.free.a = 10
  d.free.c = 10
  assert.is(space.choose([0, 0, 0], VOLUME_SPACE_REFRESH_MS), undefined)
  // Every one full: the least far below its reserve, not the first.
  assert.equal(space.roomiest(VOLUME_SPACE_REFRESH_MS), { index: 1, spareBytes: -100 })
})

test('roomiest() never takes a volume statfs cannot read while another answers', () => {
  const space = new VolumeSpace(['gone', 'b'], RESERVE, () => {}, disks({ b: 10 }).statfs)
  assert.equal(space.roomiest(0), { index: 1, spareBytes: -990 })
  assert.equal(new VolumeSpace(['gone'], RESERVE, () => {}, disks({}).statfs).roomiest(0), { index: 0, spareBytes: -Infinity })
})

test('refusal(): accept a volume with room; a full one beside one with room refuses the container; all full refuses the node', () => {
  const d = disks({ a: 5000, b: 10 })
  const space = new VolumeSpace(['a', 'b'], RESERVE, () => {}, d.statfs)
  assert.is(space.refusal(0, 0), undefined)
  assert.is(space.refusal(undefined, 0), undefined, 'a new container goes on a volume with room')
  assert.is(space.refusal(1, 0), 'container', 'the writer takes a new container and keeps the node')
  d.free.a = 20
  assert.is(space.refusal(1, VOLUME_SPACE_REFRESH_MS), 'node')
  assert.is(space.refusal(undefined, VOLUME_SPACE_REFRESH_MS), 'node')
})

test('the real statfs of a temp directory: capacity and free space, full only with a reserve past the free space', () => {
  const dir = mkdtempSync(join(tmpdir(), 'o3-volume-space-'))
  try {
    const room = new VolumeSpace([dir], 0).room(0)
    assert.ok(room.capacityBytes > 0 && room.availableBytes > 0 && room.availableBytes <= room.capacityBytes, JSON.stringify(room))
    assert.is(room.full, false)
    assert.is(new VolumeSpace([dir], room.availableBytes * 2 + 2 ** 40).room(0).full, true)
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
})

test.run()
