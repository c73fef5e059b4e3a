/** @module
 * Raft members answering in this process, by the origin their peers reach them at, to which
 * this process's transports hand batches without HTTP: in `o3 local`'s default topology
 * the three members of a RATIS/THREE pipeline are datanodes of one process, and every append
 * and its answer crossed a loopback socket. The batch goes as the route takes it (encoded and
 * decoded, so the receiver's messages are its own, as from a socket) to the receiver's
 * delivery for that path. Only a member without security registers (with it, each message's
 * sender is checked against the caller's certificate on HTTPS).
 */
import { assert } from '../assert.ts'
import type { Message } from '../raft/index.ts'

/** Hands a batch to the group whose messages path is `path` on this origin, as receiveRaftBatch's `deliver` does; null when no such group is here (the route's 404). */
export type LocalRaftDelivery = (path: string, messages: Message[], wantReplies: boolean) => void | Promise<Message[]> | null

const origins = new Map<string, LocalRaftDelivery>()

/** Lets this process's transports hand batches for peers at `origin` (http://host:port) to `deliver`; returns the call that stops it. */
export function serveRaftLocally(origin: string, deliver: LocalRaftDelivery): () => void {
  assert(!origins.has(origin), `one server takes raft batches locally at ${origin}`)
  origins.set(origin, deliver)
  return () => {
    if (origins.get(origin) === deliver) origins.delete(origin)
  }
}

/** The delivery of the server at `origin` if it answers in this process. */
export function localRaftDelivery(origin: string): LocalRaftDelivery | undefined {
  return origins.size === 0 ? undefined : origins.get(origin)
}
