/** @module
 * The datanode. `new Datanode({config, scmAddress})`, `await start()` (registers with the SCM,
 * opens its volumes, heartbeats), `await stop()`. Clients speak to it over /chunk/write,
 * /chunk/read and the Datanode RPCs (putBlock, getBlock, listBlock, closeContainer); EC
 * writers name a replica index on each (ec-replica.ts), and the EC reconstruction
 * coordinator (ec-reconstruction.ts) also uses listBlocks, createContainer, deleteContainer.
 */
export { Datanode, type DatanodeOptions, type BlockData, type ContainerData } from './datanode.ts'
export type { WriteChunkArgs } from './chunk-write.ts'
export { blockFile, containerDir, containerFile } from './layout.ts'
