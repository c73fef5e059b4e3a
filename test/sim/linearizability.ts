/** @module
 * A linearizability checker for a key-value register history, in the style of Porcupine
 * (Wing & Gong's search with Lowe's memoization of (linearized set, state)), partitioned
 * by key: a history is linearizable iff each key's sub-history is (Herlihy & Wing §3.3,
 * locality). Pure.
 */

export interface Operation {
  readonly client: number
  readonly key: string
  readonly kind: 'put' | 'get'
  /** put: the value written; get: the value read. */
  readonly value: string
  readonly callTime: number
  /** Infinity when the client never saw an answer (the put may or may not have happened). */
  readonly returnTime: number
}

interface Node {
  readonly op: number
  readonly isCall: boolean
  match: Node | undefined
  prev: Node | undefined
  next: Node | undefined
}

/** True when `ops` (all on one key) can be ordered so that every get reads the latest put. */
function checkKey(ops: readonly Operation[]): boolean {
  const events: { time: number; isCall: boolean; op: number }[] = []
  ops.forEach((o, i) => {
    events.push({ time: o.callTime, isCall: true, op: i })
    events.push({ time: o.returnTime, isCall: false, op: i })
  })
  // Calls sort before returns at the same instant: treating them as concurrent never
  // reports a violation that is not one.
  events.sort((a, b) => a.time - b.time || (a.isCall === b.isCall ? 0 : a.isCall ? -1 : 1))
  const head: Node = { op: -1, isCall: false, match: undefined, prev: undefined, next: undefined }
  let tail = head
  const calls = new Map<number, Node>()
  for (const e of events) {
    const node: Node = { op: e.op, isCall: e.isCall, match: undefined, prev: tail, next: undefined }
    tail.next = node
    tail = node
    if (e.isCall) calls.set(e.op, node)
    else {
      const call = calls.get(e.op)!
      call.match = node
      node.match = call
    }
  }
  const lift = (call: Node) => {
    call.prev!.next = call.next
    if (call.next) call.next.prev = call.prev
    const ret = call.match!
    ret.prev!.next = ret.next
    if (ret.next) ret.next.prev = ret.prev
  }
  const unlift = (call: Node) => {
    const ret = call.match!
    ret.prev!.next = ret
    if (ret.next) ret.next.prev = ret
    call.prev!.next = call
    if (call.next) call.next.prev = call
  }
  const words = new Uint32Array(Math.ceil(ops.length / 32) + 1)
  const cache = new Set<string>()
  const stack: { call: Node; state: string }[] = []
  let state = ''
  let entry = head.next
  while (head.next !== undefined) {
    if (entry === undefined) return false
    if (entry.isCall) {
      const op = ops[entry.op]
      const ok = op.kind === 'put' || op.value === state
      if (ok) {
        const next = op.kind === 'put' ? op.value : state
        words[entry.op >>> 5] ^= 1 << (entry.op & 31)
        const key = `${words.join(',')}|${next}`
        if (!cache.has(key)) {
          cache.add(key)
          stack.push({ call: entry, state })
          state = next
          lift(entry)
          entry = head.next
          continue
        }
        words[entry.op >>> 5] ^= 1 << (entry.op & 31)
      }
      entry = entry.next
    } else {
      const top = stack.pop()
      if (top === undefined) return false
      state = top.state
      words[top.call.op >>> 5] ^= 1 << (top.call.op & 31)
      unlift(top.call)
      entry = top.call.next
    }
  }
  return true
}

/** The keys whose sub-history is not linearizable (empty when the history is). */
export function checkLinearizable(ops: readonly Operation[]): string[] {
  const byKey = new Map<string, Operation[]>()
  for (const o of ops) {
    if (o.kind === 'get' && o.returnTime === Infinity) continue // an unanswered read constrains nothing
    let list = byKey.get(o.key)
    if (list === undefined) byKey.set(o.key, (list = []))
    list.push(o)
  }
  const bad: string[] = []
  for (const [key, list] of byKey) if (!checkKey(list)) bad.push(key)
  return bad
}
