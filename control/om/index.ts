/** @module
 * Ozone Manager. `new OzoneManager({config, scmAddress})`, `await start()`, `await stop()`;
 * clients call its RPCs: volumes, buckets, then openKey -> (write blocks) -> commitKey.
 */
export { OzoneManager, type OmOptions } from './om.ts'
export type { VolumeInfo, BucketInfo, KeyInfo, OpenKeyResult, CommittedBlock, ListKeysResult } from '../../core/om-wire.ts'
export { checkVolumeName, checkBucketName, checkKeyName, resourceNameProblem } from './names.ts'
