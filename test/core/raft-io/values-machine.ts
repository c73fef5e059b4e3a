/** @module
 * The state machine the raft-io tests replicate: the list of values applied, in order, kept
 * in memory and snapshotted as JSON.
 */
import type { StateMachine } from '../../../core/raft-io/index.ts'
import type { Entry, Snapshot } from '../../../core/raft/index.ts'

export class ValuesMachine implements StateMachine {
  values: string[] = []
  apply(e: Entry): unknown {
    this.values.push(new TextDecoder().decode(e.data))
    return this.values.length
  }
  snapshot(): Uint8Array {
    return new TextEncoder().encode(JSON.stringify(this.values))
  }
  restore(s: Snapshot): void {
    this.values = s.data.byteLength === 0 ? [] : (JSON.parse(new TextDecoder().decode(s.data)) as string[])
  }
}
