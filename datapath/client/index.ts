/** @module
 * The native client. `new O3Client({ om, scm })`; create a volume and a bucket; putKey or
 * createKey to write, readKey / getKey to read, headKey, listKeys, deleteKey, renameKey.
 */
export { O3Client, type O3ClientOptions, type PutKeyOptions, type KeySource, type KeyWriting } from './client.ts'
export { KeyWriter } from './key-writer.ts'
export { EcKeyWriter } from './ec-key-writer.ts'
export { KeyDigest } from './key-digest.ts'
export { allPieces, resolveRange, type Pieces, type StartedRange } from './key-reader.ts'
export type { AclObject, VolumeInfo, BucketInfo, KeyInfo, ListKeysResult, S3AuthResult, S3OpenIntent, S3Secret } from '../../core/om-wire.ts'
export type { OzoneAcl } from '../../core/access/native-acl.ts'
