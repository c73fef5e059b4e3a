/** @module
 * Datanodes on their own worker thread: `o3 local` (and LocalCluster with `datanodeThread`)
 * runs its datanodes here, so that their event loop is not the one the S3 gateway, the OM
 * and the SCM serve requests on, and the two run on two cores. The thread has its own
 * module instances, so its own Piscina pool. Messages: the host posts {stop}; the thread
 * posts {ready, addresses}, {failed, message} or {stopped}.
 */
import { isMainThread, parentPort, Worker, workerData } from 'node:worker_threads'
import { once } from 'node:events'
import type { O3Config } from '../core/config.ts'
import { Datanode } from '../datapath/datanode/index.ts'
import { closeWorkerPool } from '../datapath/workers/index.ts'

interface ThreadData { configs: O3Config[]; ports: number[]; scmAddress: string }
type FromThread = { kind: 'ready'; addresses: string[]; ports: number[] } | { kind: 'failed'; message: string } | { kind: 'stopped' }

function threadFile(): URL {
  // Under Node the compiled .js sits beside this file; Deno runs the TypeScript source.
  return new URL(import.meta.url.endsWith('.ts') ? './datanode-thread.ts' : './datanode-thread.js', import.meta.url)
}

/** The host's handle on the thread. */
export class DatanodeThread {
  private constructor(private readonly worker: Worker, readonly addresses: string[], readonly ports: number[]) {}

  /** Starts one datanode per config (on the given ports, 0 for a free one) on a new thread. */
  static async start(data: ThreadData): Promise<DatanodeThread> {
    const worker = new Worker(threadFile(), { workerData: data })
    const [first] = await Promise.race([
      once(worker, 'message') as Promise<[FromThread]>,
      once(worker, 'exit').then(([code]) => { throw new Error(`Cannot start the datanodes' thread: it exited with ${code}`) }),
    ])
    if (first.kind !== 'ready') {
      await worker.terminate()
      throw new Error(`Cannot start the datanodes' thread: ${first.kind === 'failed' ? first.message : first.kind}`)
    }
    return new DatanodeThread(worker, first.addresses, first.ports)
  }

  /** Stops every datanode (drains requests in flight, closes LMDB) and ends the thread. */
  async stop(): Promise<void> {
    const stopped = once(this.worker, 'message')
    this.worker.postMessage({ kind: 'stop' })
    await Promise.race([stopped, once(this.worker, 'exit')])
    // Everything on the thread is closed by now; Deno's workers do not end by themselves.
    await this.worker.terminate()
  }
}

async function runThread(data: ThreadData): Promise<void> {
  const port = parentPort!
  const datanodes: Datanode[] = []
  try {
    for (let i = 0; i < data.configs.length; i++) datanodes.push(new Datanode({ config: data.configs[i], port: data.ports[i], scmAddress: data.scmAddress }))
    await Promise.all(datanodes.map((d) => d.start()))
  } catch (err) {
    await Promise.all(datanodes.map((d) => d.stop().catch(() => {})))
    await closeWorkerPool()
    port.postMessage({ kind: 'failed', message: (err as Error).message } satisfies FromThread)
    return
  }
  port.postMessage({ kind: 'ready', addresses: datanodes.map((d) => d.address), ports: datanodes.map((d) => d.port) } satisfies FromThread)
  await once(port, 'message')
  await Promise.all(datanodes.map((d) => d.stop()))
  await closeWorkerPool()
  port.postMessage({ kind: 'stopped' } satisfies FromThread)
}

if (!isMainThread && (workerData as ThreadData | undefined)?.configs !== undefined) {
  runThread(workerData as ThreadData).catch((err: Error) => {
    console.error(`datanode thread failed: ${err.stack ?? err.message}`)
    process.exit(1)
  })
}
