/** @module
 * A scripted driver for Raft nodes in memory, after etcd's rafttest interaction tests:
 * each command of a testdata/*.txt script runs one handler and prints what it shows,
 * compared with the output recorded under `----`. O3_REWRITE=1 records the actual output.
 * Every Ready is persisted and synced; messages wait in a queue until `stabilize` or
 * `deliver` moves them; partitions drop them.
 */
import { assert } from '../../../core/assert.ts'
import * as realRaft from '../../../core/raft/index.ts'
import type { ConfChange, Entry, Message, NodeId, RawNode, ReadState } from '../../../core/raft/index.ts'
import type { RaftModule } from '../../sim/simulator.ts'
import { SimStorage } from '../../sim/storage.ts'

interface Node {
  readonly id: NodeId
  raw: RawNode
  storage: SimStorage
  starts: number
  applied: string[]
  readStates: ReadState[]
}

export class Interaction {
  private nodes = new Map<NodeId, Node>()
  private queue: Message[] = []
  private cut = new Set<string>()
  /** Why the nodes dropped messages no correct peer sends, since the last look. */
  private readonly droppedWhy: string[] = []
  private options = { preVote: true, checkQuorum: true, appendEntriesCountMax: 64 }

  /** `raft` is the core under test: a planted-bug copy when a mutant is checked by a script. */
  constructor(private readonly raft: RaftModule = realRaft) {}

  private node(arg: string | undefined): Node {
    const n = this.nodes.get(Number(arg))
    assert(n !== undefined, `no node ${arg}`)
    return n
  }

  private create(id: NodeId, voters: NodeId[]): void {
    const storage = new SimStorage(voters.length > 0 ? this.raft.bootstrap({ voters, learners: [] }) : this.raft.joiner())
    this.nodes.set(id, { id, raw: this.newRaw(id, storage), storage, starts: 1, applied: [], readStates: [] })
  }

  private newRaw(id: NodeId, storage: SimStorage, afterCrash?: { incarnation: number }): RawNode {
    // Fixed jitter per node (1: +3, 2: +6, 3: +9 ticks of 10), so lower ids time out first.
    const crash = afterCrash === undefined ? {} : { restartedAfterCrash: true, incarnation: afterCrash.incarnation }
    // Dropped messages (no correct peer's) show in the output, as the host logs them.
    const dropped = (why: string) => { this.droppedWhy.push(why) }
    return new this.raft.RawNode({ id, randomInt: (n) => (id * 3) % n, electionTimeoutTicks: 10, heartbeatTimeoutTicks: 1, dropped, ...this.options, ...crash }, storage.restore())
  }

  /** Runs one command line and returns its output lines. */
  run(line: string): string[] {
    const [cmd, ...args] = line.trim().split(/\s+/)
    const out: string[] = []
    switch (cmd) {
      case 'nodes': {
        // nodes N [preVote=false] [checkQuorum=false] [appendEntriesCountMax=1]
        for (const a of args.slice(1)) {
          const [k, v] = a.split('=')
          if (k === 'preVote' || k === 'checkQuorum') this.options[k] = v === 'true'
          else if (k === 'appendEntriesCountMax') this.options[k] = Number(v)
          else throw new Error(`unknown option ${k}`)
        }
        const voters = Array.from({ length: Number(args[0]) }, (_, i) => i + 1)
        for (const id of voters) this.create(id, voters)
        break
      }
      case 'add-empty-node':
        // A node that joins later: it knows no members until the leader tells it.
        this.create(Number(args[0]), [])
        break
      case 'campaign':
        this.node(args[0]).raw.campaign()
        this.process(out)
        break
      case 'tick': {
        const ids = args[0] === 'all' ? [...this.nodes.keys()] : [Number(args[0])]
        for (let i = 0; i < Number(args[1] ?? 1); i++) {
          for (const id of ids) this.node(String(id)).raw.tick()
          this.process(out)
        }
        break
      }
      case 'propose': {
        const r = this.node(args[0]).raw.propose(new TextEncoder().encode(args[1]))
        out.push(r.ok ? `ok index ${r.index} term ${r.term}` : `refused: ${r.reason}, leader ${r.leader}`)
        this.process(out)
        break
      }
      case 'conf-change': {
        const change: ConfChange = { type: args[1] as ConfChange['type'], nodeId: Number(args[2]) }
        const r = this.node(args[0]).raw.proposeMembershipChange(change)
        out.push(r.ok ? `ok index ${r.index}` : `refused: ${r.reason}`)
        this.process(out)
        break
      }
      case 'read-index':
        out.push(this.node(args[0]).raw.readIndex(args[1]) ? 'accepted' : 'refused')
        this.process(out)
        break
      case 'transfer':
        out.push(this.node(args[0]).raw.transferLeadership(Number(args[1])) ? 'started' : 'refused')
        this.process(out)
        break
      case 'compact': {
        const n = this.node(args[0])
        const s = n.raw.compact(new TextEncoder().encode(JSON.stringify(n.applied)))
        n.storage.write({ kind: 'compact', snapshot: s })
        n.storage.sync()
        out.push(`snapshot at ${s.meta.index} term ${s.meta.term}`)
        break
      }
      case 'restart': {
        // The node loses its memory; storage is synced, so nothing on disk is lost.
        const n = this.node(args[0])
        n.raw = this.newRaw(n.id, n.storage)
        n.applied = decodeApplied(n.storage.restore().snapshot.data)
        break
      }
      case 'crash-restart': {
        // crash-restart N keep=K [term=T vote=V]: a crash on a disk whose fsync lied: the log
        // keeps entries up to K only (and the hard state the given term and vote); the node
        // restarts as a host that distrusts fsync starts it, with a new incarnation.
        const n = this.node(args[0])
        const kv = new Map(args.slice(1).map((a) => a.split('=') as [string, string]))
        const disk = n.storage.restore()
        const keep = Number(kv.get('keep') ?? disk.snapshot.meta.index + disk.entries.length)
        const term = Number(kv.get('term') ?? disk.hardState.term)
        const vote = Number(kv.get('vote') ?? disk.hardState.vote)
        n.storage = new SimStorage({
          snapshot: disk.snapshot, entries: disk.entries.filter((e) => e.index <= keep),
          hardState: { term, vote, commit: Math.min(disk.hardState.commit, Math.max(keep, disk.snapshot.meta.index)) },
        })
        n.raw = this.newRaw(n.id, n.storage, { incarnation: ++n.starts })
        n.applied = decodeApplied(disk.snapshot.data)
        this.process(out)
        break
      }
      case 'partition': {
        // partition 1 | 2 3   (both ways)   or   partition 1 > 2 3  (1's messages to 2 and 3 are lost)
        const sep = args.findIndex((a) => a === '|' || a === '>')
        const left = args.slice(0, sep).map(Number)
        const right = args.slice(sep + 1).map(Number)
        for (const a of left) for (const b of right) {
          this.cut.add(`${a}>${b}`)
          if (args[sep] === '|') this.cut.add(`${b}>${a}`)
        }
        break
      }
      case 'send': {
        // send FROM TO TYPE key=value...: a hand-made message, stepped at once (no network);
        // entries=3/2,4/2 gives entries index/term with data "e<index>".
        out.push(...this.send(args))
        this.process(out)
        break
      }
      case 'progress': {
        const n = this.node(args[0])
        out.push(...n.raw.progress().map((p) => `${p.id}: match ${p.match} next ${p.next} ${p.state}`))
        break
      }
      case 'heal':
        this.cut.clear()
        break
      case 'stabilize':
        this.stabilize(out, args[0] === 'verbose')
        break
      case 'deliver': {
        // deliver [verbose]: one round, every queued message once.
        const msgs = this.queue
        this.queue = []
        for (const m of msgs) this.deliverOne(m, out, args[0] === 'verbose')
        this.process(out)
        break
      }
      case 'drop':
        out.push(`dropped ${this.queue.length} messages`)
        this.queue = []
        break
      case 'status':
        for (const n of this.nodes.values()) {
          const s = n.raw.status()
          out.push(`${n.id}: ${s.role} term ${s.hardState.term} vote ${s.hardState.vote} lead ${s.leader} commit ${s.hardState.commit} applied ${s.applied} last ${s.lastIndex} voters [${s.confState.voters.join(' ')}] learners [${s.confState.learners.join(' ')}]`)
        }
        break
      case 'log': {
        const n = this.node(args[0])
        const ents = n.raw.entriesFrom(0).map((e) => `${e.index}/${e.term}${e.type === 'confChange' ? 'c' : ''}`)
        out.push(`first ${n.raw.firstIndex()}: ${ents.join(' ')}`)
        break
      }
      case 'applied':
        out.push(`${args[0]}: ${this.node(args[0]).applied.join(' ')}`)
        break
      case 'read-states': {
        const n = this.node(args[0])
        out.push(`${args[0]}: ${n.readStates.map((r) => `${r.context}@${r.index}`).join(' ')}`)
        break
      }
      default:
        throw new Error(`unknown command ${cmd}`)
    }
    return out
  }

  private send(args: string[]): string[] {
    const [from, to, type, ...fields] = args
    const m: Record<string, unknown> = { type, from: Number(from), to: Number(to) }
    for (const f of fields) {
      const [k, v] = f.split('=')
      if (k === 'entries') {
        m.entries = v === '' ? [] : v.split(',').map((x): Entry => {
          const [index, term] = x.split('/').map(Number)
          return { index, term, type: 'normal', data: new TextEncoder().encode(`e${index}`) }
        })
      } else if (v === 'true' || v === 'false') m[k] = v === 'true'
      else m[k] = Number.isNaN(Number(v)) ? v : Number(v)
    }
    if (type === 'app') m.entries ??= []
    if (type === 'appResp') {
      m.reject ??= false
      m.hint ??= 0
      m.incarnation ??= 0
    }
    const msg = m as unknown as Message
    const before = this.queue.length
    this.node(to).raw.step(msg)
    const out = this.droppedWhy.splice(0).map((why) => `dropped: ${why}`)
    // Show what the addressee answers right away (its Ready is processed below).
    this.process(out)
    for (const r of this.queue.slice(before)) out.push(`${r.from}->${r.to} ${describe(r)}`)
    return out
  }

  private deliverOne(m: Message, out: string[], verbose: boolean): void {
    const to = this.nodes.get(m.to)
    if (to === undefined || this.cut.has(`${m.from}>${m.to}`)) return
    if (verbose) out.push(`${m.from}->${m.to} ${describe(m)}`)
    to.raw.step(m)
  }

  private stabilize(out: string[], verbose: boolean): void {
    for (let round = 0; round < 1000; round++) {
      this.process(out)
      if (this.queue.length === 0) return
      const msgs = this.queue
      this.queue = []
      for (const m of msgs) this.deliverOne(m, out, verbose)
    }
    throw new Error('stabilize did not settle in 1000 rounds')
  }

  /** Handles every node's Ready: persist and sync, queue messages, apply, advance. */
  private process(out: string[]): void {
    for (const n of this.nodes.values()) {
      while (n.raw.hasReady()) {
        const rd = n.raw.ready()
        if (rd.snapshot) n.storage.write({ kind: 'install', snapshot: rd.snapshot })
        if (rd.entries.length > 0) n.storage.write({ kind: 'entries', entries: rd.entries })
        if (rd.hardState) n.storage.write({ kind: 'hardState', hardState: rd.hardState })
        n.storage.sync()
        if (rd.softState) out.push(`${n.id} becomes ${rd.softState.role} (leader ${rd.softState.leader})`)
        this.queue.push(...rd.earlyMessages, ...rd.messages)
        if (rd.snapshot) n.applied = decodeApplied(rd.snapshot.data)
        for (const e of rd.committedEntries) if (e.type === 'normal' && e.data.byteLength > 0) n.applied.push(new TextDecoder().decode(e.data))
        n.readStates.push(...rd.readStates)
        n.raw.advance(rd)
      }
    }
  }
}

/** The test state machine's snapshot image: the applied values; empty data is the initial state. */
function decodeApplied(data: Uint8Array): string[] {
  return data.byteLength === 0 ? [] : (JSON.parse(new TextDecoder().decode(data)) as string[])
}

function describe(m: Message): string {
  switch (m.type) {
    case 'app':
      return `app term ${m.term} prev ${m.prevIndex}/${m.prevTerm} entries [${m.entries.map((e) => `${e.index}/${e.term}`).join(' ')}] commit ${m.commit}`
    case 'appResp':
      return `appResp term ${m.term} index ${m.index}${m.reject ? ` rejected hint ${m.hint}` : ''}`
    case 'vote':
      return `${m.pre ? 'preVote' : 'vote'} term ${m.term} last ${m.lastIndex}/${m.lastTerm}`
    case 'voteResp':
      return `${m.pre ? 'preVoteResp' : 'voteResp'} term ${m.term} ${m.reject ? 'rejected' : 'granted'}`
    case 'heartbeat':
      return `heartbeat term ${m.term} commit ${m.commit}${m.context ? ` ctx ${m.context}` : ''}`
    case 'heartbeatResp':
      return `heartbeatResp term ${m.term}${m.context ? ` ctx ${m.context}` : ''}`
    case 'snap':
      return `snap term ${m.term} at ${m.snapshot.meta.index}/${m.snapshot.meta.term}`
    case 'readIndexResp':
      return `readIndexResp index ${m.index} ctx ${m.context}`
    case 'readIndex':
      return `readIndex ctx ${m.context}`
    case 'timeoutNow':
      return `timeoutNow term ${m.term}`
    case 'recover':
      return `recover term ${m.term} incarnation ${m.incarnation}`
    case 'recoverResp':
      return `recoverResp term ${m.term} incarnation ${m.incarnation} last ${m.lastIndex}/${m.lastTerm}`
  }
}

/** One command of a script and the output recorded under its `----`. */
export interface ScriptBlock {
  readonly command: string
  readonly expected: string[]
}

/** Parses a testdata script into its commands and the comments before each. */
export function parseScript(text: string): { blocks: ScriptBlock[]; comments: Map<number, string[]> } {
  const blocks: ScriptBlock[] = []
  const comments = new Map<number, string[]>()
  const lines = text.split('\n')
  let pending: string[] = []
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i]
    if (line.startsWith('#') || line.trim() === '') {
      if (line.startsWith('#')) pending.push(line)
      continue
    }
    assert(lines[i + 1] === '----', `line ${i + 2}: a command is followed by ----`)
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

/** Runs a script against `raft`; the first command whose output differs from the recorded one, if any. */
export function firstMismatch(text: string, raft: RaftModule = realRaft): string | undefined {
  const env = new Interaction(raft)
  for (const b of parseScript(text).blocks) {
    let actual: string[]
    try {
      actual = env.run(b.command)
    } catch (err) {
      return `${b.command}: ${(err as Error).message}`
    }
    const shown = actual.length > 0 ? actual : ['ok']
    if (shown.join('\n') !== b.expected.join('\n')) return `${b.command}: got ${shown.join(' / ')}`
  }
  return undefined
}
