/** @module
 * The datanode. `new Datanode({config, scmAddress})`, `await start()` (registers with the SCM,
 * opens its volumes, heartbeats), `await stop()`. Clients speak to it over /chunk/write,
 * /chunk/read and the Datanode RPCs (putBlock, getBlock, listBlock, closeContainer).
 */
export { Datanode, type DatanodeOptions, type BlockData, type ContainerData } from './datanode.ts'
export type { WriteChunkArgs } from './chunk-write.ts'
export { blockFile, containerDir, containerFile } from './layout.ts'
