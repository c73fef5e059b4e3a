/** @module
 * Free space on a datanode's volumes (Ozone's hdds.datanode.volume.min.free.space): a volume
 * with less than its reserve left is full. New containers go on volumes with room, a full
 * volume takes no new writes as a pipeline's entry point, and the heartbeat asks the SCM to
 * close its open containers; the reserve is what writes already under way may still use.
 */
import { statfsSync, type StatsFs } from 'node:fs'
import { VOLUME_SPACE_REFRESH_MS } from '../../core/limits.ts'

export interface VolumeRoom {
  capacityBytes: number
  availableBytes: number
  /** What the datanode keeps free on the volume (datanode.volume.minFreeBytes). */
  reservedBytes: number
  /** Less than the reserve is left, or the volume cannot be read (statfs failed). */
  full: boolean
  /** statfs answered (a volume it fails on is full and the last choice for anything). */
  readable: boolean
}

export class VolumeSpace {
  private readonly rooms: { room: VolumeRoom; checkedAtMs: number }[] = []

  /**
   * `onTurn` runs once each time a volume turns full (the datanode tells the SCM at once) or
   * has room again; `statfs` is the system call, replaceable in tests.
   */
  constructor(
    private readonly dirs: readonly string[],
    private readonly reservedBytes: number,
    private readonly onTurn: (dir: string, room: VolumeRoom) => void = () => {},
    private readonly statfs: (dir: string) => Pick<StatsFs, 'blocks' | 'bavail' | 'bsize'> = statfsSync,
  ) {}

  /** Volume `i` as seen at most VOLUME_SPACE_REFRESH_MS ago: statfs is a system call, not made per chunk. */
  room(i: number, nowMs = Date.now()): VolumeRoom {
    const known = this.rooms[i]
    if (known !== undefined && nowMs - known.checkedAtMs < VOLUME_SPACE_REFRESH_MS) return known.room
    let room: VolumeRoom
    try {
      const s = this.statfs(this.dirs[i])
      const availableBytes = s.bavail * s.bsize
      room = { capacityBytes: s.blocks * s.bsize, availableBytes, reservedBytes: this.reservedBytes, full: availableBytes < this.reservedBytes, readable: true }
    } catch {
      room = { capacityBytes: 0, availableBytes: 0, reservedBytes: this.reservedBytes, full: true, readable: false }
    }
    this.rooms[i] = { room, checkedAtMs: nowMs }
    if (room.full ? known?.room.full !== true : known?.room.full === true) this.onTurn(this.dirs[i], room)
    return room
  }

  /**
   * The volume for a new container: of those not full, the one holding the fewest containers
   * (`counts[i]`), ties to the lower index; undefined when every volume is full.
   */
  choose(counts: readonly number[], nowMs = Date.now()): number | undefined {
    let best: number | undefined
    for (let i = 0; i < this.dirs.length; i++) {
      if (this.room(i, nowMs).full) continue
      if (best === undefined || counts[i] < counts[best]) best = i
    }
    return best
  }

  /**
   * The volume with the most space beyond its reserve (a container copy's target, or where a
   * container goes when every volume is full), and that space; negative below the reserve,
   * -Infinity when no volume can be read.
   */
  roomiest(nowMs = Date.now()): { index: number; spareBytes: number } {
    let best = { index: 0, spareBytes: -Infinity }
    for (let i = 0; i < this.dirs.length; i++) {
      const r = this.room(i, nowMs)
      const spareBytes = r.readable ? r.availableBytes - r.reservedBytes : -Infinity
      if (spareBytes > best.spareBytes) best = { index: i, spareBytes }
    }
    return best
  }

  /**
   * What a write entering the cluster here into `container`'s volume (undefined: a new
   * container) must be refused for: 'container' when that volume is full but another has
   * room (the writer takes a new container, the datanode makes it on a volume with room),
   * 'node' when every volume is full (the writer leaves this datanode); undefined to accept.
   */
  refusal(containerVolume: number | undefined, nowMs = Date.now()): 'container' | 'node' | undefined {
    if (containerVolume !== undefined && !this.room(containerVolume, nowMs).full) return undefined
    for (let i = 0; i < this.dirs.length; i++) if (!this.room(i, nowMs).full) return containerVolume === undefined ? undefined : 'container'
    return 'node'
  }
}

/** What a refused write says: the volume, what is left, the reserve, and the setting. */
export function fullVolumeMessage(dir: string, room: VolumeRoom): string {
  return `volume ${dir} has ${room.availableBytes} bytes free, below its reserve of ${room.reservedBytes} (datanode.volume.minFreeBytes)`
}
