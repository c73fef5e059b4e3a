/** @module
 * Every mutating OM request (issue 11): prepare on the leader, apply on every replica.
 */
import type { ReplicatedRequest } from '../../ha/replicated-service.ts'
import { abortKey } from './abort-key.ts'
import { addAclRequest, removeAclRequest, setAclRequest } from './acls.ts'
import { allocateBlock } from './allocate-block.ts'
import { expireOpenKeys, forgetDeleted } from './background.ts'
import { commitKey } from './commit-key.ts'
import { commitMultipartKey } from './commit-multipart-key.ts'
import type { OmRequestContext } from './context.ts'
import { createBucket } from './create-bucket.ts'
import { createVolume } from './create-volume.ts'
import { deleteBucket } from './delete-bucket.ts'
import { deleteKey } from './delete-key.ts'
import { deleteVolume } from './delete-volume.ts'
import { openKey } from './open-key.ts'
import { renameKey } from './rename-key.ts'
import { getS3Secret, revokeS3Secret } from './s3-secrets.ts'
import { setBucketQuota } from './set-bucket-quota.ts'
import { setBucketS3 } from './set-bucket-s3.ts'
import { setVolumeQuota } from './set-volume-quota.ts'

export type { OmRequestContext } from './context.ts'

export function omRequests(ctx: OmRequestContext): ReplicatedRequest<unknown, unknown, unknown>[] {
  return [
    createVolume(ctx), deleteVolume(ctx), createBucket(ctx), deleteBucket(ctx), openKey(ctx), allocateBlock(ctx), commitKey(ctx), abortKey(ctx),
    deleteKey(ctx), renameKey(ctx), commitMultipartKey(ctx), getS3Secret(ctx), revokeS3Secret(ctx), expireOpenKeys(ctx), forgetDeleted(ctx),
    setVolumeQuota(ctx), setBucketQuota(ctx), setBucketS3(ctx), addAclRequest(ctx), removeAclRequest(ctx), setAclRequest(ctx),
  ] as ReplicatedRequest<unknown, unknown, unknown>[]
}
