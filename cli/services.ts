/** @module
 * `o3 scm`, `o3 om`, `o3 datanode`, `o3 s3g`: one service per process for real deployments, each from
 * `--config FILE` (JSON of settings) plus O3_* environment overrides; stops on SIGTERM/SIGINT,
 * and, when `o3 local --processes` started it, when that `o3 local` exits.
 */
import { surviveLmdbCommitFailures } from '../core/lmdb-failures.ts'
import { loadConfig } from '../core/config.ts'
import { StorageContainerManager } from '../control/scm/index.ts'
import { OzoneManager } from '../control/om/index.ts'
import { Datanode } from '../datapath/datanode/index.ts'
import { S3Gateway } from '../datapath/s3/index.ts'
import { closeWorkerPool } from '../datapath/workers/index.ts'
import { stringOption, type Invocation } from './args.ts'
import { StopRequest } from './lifecycle.ts'

export async function runService(inv: Invocation): Promise<void> {
  const name = inv.path[1] as 'scm' | 'om' | 'datanode' | 's3g'
  surviveLmdbCommitFailures()
  // Listening from the start: a SIGTERM while starting stops the service once it is up
  // instead of killing it half-written. A service is not tied to the shell that started
  // it (deployments run it under nohup or a supervisor), only to an o3 local parent.
  const stop = new StopRequest({ watchParent: false, onRepeat: () => process.exit(1) })
  try {
    const config = loadConfig({ file: stringOption(inv, 'config') })
    const service = name === 'scm' ? new StorageContainerManager({ config })
      : name === 'om' ? new OzoneManager({ config, scmAddress: config['scm.address'] })
      // A secure gateway obtains its certificate at start (kept in s3g.dir, its id read back from there).
      : name === 's3g' ? new S3Gateway({ config, omAddress: config['om.address'], scmAddress: config['scm.address'] })
      : new Datanode({ config, scmAddress: config['scm.address'] })
    await service.start()
    console.log(`o3 ${name} ready on ${'endpoint' in service ? service.endpoint : service.address}`)
    const reason = await stop.promise
    console.log(`o3 ${name}: stopping (${reason})`)
    await service.stop()
    await closeWorkerPool()
  } finally {
    stop.dispose()
  }
}
