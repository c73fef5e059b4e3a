/** @module
 * The datanodes a client's reads could not reach lately, shared by all its reads (HDFS's
 * DeadNodeDetector): a replicated read asks them last, an EC read plans around them from its
 * first stripe, instead of every new read finding out again (and an EC read rebuilding the
 * stripes it had planned as plain reads, one piece at a time). Forgotten after
 * CLIENT_FAILED_NODE_MS (CLIENT_TIMED_OUT_NODE_MS for one a read waited a whole timeout on),
 * or as soon as a read from one succeeds. Also the replicas (a container on a datanode) that
 * returned bytes failing their checksums: asked after the others for CLIENT_CORRUPT_REPLICA_MS,
 * so that every read does not meet the corruption first until the SCM replaces the replica.
 * Bounded; no I/O.
 */
import { assert } from '../../core/assert.ts'
import { O3Error } from '../../core/errors.ts'
import { ExpiringSet } from '../../core/expiring-set.ts'
import { CLIENT_CORRUPT_REPLICA_MS, CLIENT_CORRUPT_REPLICAS_MAX, CLIENT_FAILED_NODE_MS, CLIENT_FAILED_NODES_MAX, CLIENT_TIMED_OUT_NODE_MS } from '../../core/limits.ts'
import type { BlockId, ContainerId } from '../../core/wire.ts'

export class FailedNodes {
  /** Addresses, each until it is forgotten. */
  private readonly nodes: ExpiringSet<string>
  /** Replicas that returned corrupt bytes, as `what@address` (what: corruptContainer() or corruptBlock()), each until it is forgotten. */
  private readonly corruptReplicas = new ExpiringSet<string>(CLIENT_CORRUPT_REPLICA_MS, CLIENT_CORRUPT_REPLICAS_MAX)

  constructor(forgetAfterMs = CLIENT_FAILED_NODE_MS, private readonly now: () => number = Date.now, private readonly timedOutForgetAfterMs = CLIENT_TIMED_OUT_NODE_MS) {
    assert(forgetAfterMs > 0 && timedOutForgetAfterMs >= forgetAfterMs, 'a failed node is remembered for a positive time, a timed-out one at least as long')
    this.nodes = new ExpiringSet(forgetAfterMs, CLIENT_FAILED_NODES_MAX)
  }

  /**
   * Whether a read failed with `err` because its node could not be reached: a connection
   * that failed or timed out (transportError wraps the network error), not an answer the
   * node sent (a busy datanode's UNAVAILABLE, a missing block: O3Errors all the way down).
   */
  static unreachable(err: O3Error): boolean {
    let e: O3Error = err
    for (;;) {
      if (e.code !== 'UNAVAILABLE' && e.code !== 'TIMEOUT') return false
      if (!(e.cause instanceof O3Error)) return e.cause !== undefined
      e = e.cause
    }
  }

  /**
   * Whether `err` is a wait for the node that ran out its time: TIMEOUT anywhere in its
   * causes, or a connection attempt that timed out (undici's connect timeout: a lost host).
   */
  static timedOut(err: O3Error): boolean {
    let e: unknown = err
    for (; e instanceof O3Error; e = e.cause) if (e.code === 'TIMEOUT') return true
    return (e as { code?: unknown } | undefined)?.code === 'UND_ERR_CONNECT_TIMEOUT'
  }

  note(address: string, keepMs?: number): void {
    this.nodes.add(address, this.now(), keepMs)
  }

  /** A read from `address` failed with `err`: noted when the node could not be reached, longer when the read waited out its timeout. */
  readFailed(address: string, err: O3Error): void {
    if (FailedNodes.unreachable(err)) this.note(address, FailedNodes.timedOut(err) ? this.timedOutForgetAfterMs : undefined)
  }

  /** A read from `address` succeeded: it is not failed any more. */
  forget(address: string): void {
    this.nodes.delete(address)
  }

  has(address: string): boolean {
    return this.nodes.has(address, this.now())
  }

  /**
   * The replica on `address` returned bytes of `what` that fail their checksums: a container
   * (replicated reads ask that datanode's replica of it last) or an EC block group (reads go
   * around that replica of it; not the whole container, as that would make every read of its
   * other groups a degraded one). A read from it that succeeds later does not clear this (the
   * corrupt block is still there); forgetCorrupt() does, when the SCM did not take the report:
   * the next read meets the corruption and reports it again.
   */
  corrupt(what: string, address: string): void {
    this.corruptReplicas.add(`${what}@${address}`, this.now())
  }

  isCorrupt(what: string, address: string): boolean {
    return this.corruptReplicas.has(`${what}@${address}`, this.now())
  }

  forgetCorrupt(what: string, address: string): void {
    this.corruptReplicas.delete(`${what}@${address}`)
  }
}

/** What a replicated read remembers corrupt: the container's replica on that datanode. */
export function corruptContainer(id: ContainerId): string {
  return `container ${id}`
}

/** What an EC read remembers corrupt: that replica's part of one block group. */
export function corruptBlock(b: BlockId): string {
  return `block ${b.containerId}:${b.localId}`
}
