/** @module
 * Storage Container Manager. A caller builds a config, then `new StorageContainerManager({config})`,
 * `await start()`, and `await stop()` at the end; everything else happens over its RPC.
 */
export { StorageContainerManager, type ScmOptions, type DatanodeCommand, type ContainerReplicaReport } from './scm.ts'
