/** @module
 * The S3 access-control and bucket-configuration records the OM keeps with a bucket
 * (BucketInfo.s3) and a key (its `x-o3-acl` metadata): types only, shared by the gateway and the OM.
 */

/** The AWS group grantees, by URI. LogDelivery may be stored but grants nothing here. */
export const ALL_USERS_GROUP = 'http://acs.amazonaws.com/groups/global/AllUsers'
export const AUTHENTICATED_USERS_GROUP = 'http://acs.amazonaws.com/groups/global/AuthenticatedUsers'
export const LOG_DELIVERY_GROUP = 'http://acs.amazonaws.com/groups/s3/LogDelivery'

/** S3's ACL permissions. */
export type S3Permission = 'FULL_CONTROL' | 'READ' | 'WRITE' | 'READ_ACP' | 'WRITE_ACP'

/** Who a grant is for: a user (canonical id = user name) or one of the groups above. */
export type S3Grantee = { type: 'CanonicalUser'; id: string } | { type: 'Group'; uri: string }

export interface S3Grant {
  grantee: S3Grantee
  permission: S3Permission
}

/** An access control list: the resource's owner (user name) and its grants, in order. */
export interface S3Acl {
  owner: string
  grants: S3Grant[]
}

/** S3's PublicAccessBlockConfiguration: each flag false when left out. */
export interface PublicAccessBlockConfig {
  blockPublicAcls: boolean
  ignorePublicAcls: boolean
  blockPublicPolicy: boolean
  restrictPublicBuckets: boolean
}

/** One CORSRule of a bucket's CORS configuration. */
export interface CorsRule {
  id?: string
  allowedOrigins: string[]
  allowedMethods: string[]
  allowedHeaders: string[]
  exposeHeaders: string[]
  maxAgeSeconds?: number
}

/** What S3 configures on a bucket beside its keys; absent fields are S3's defaults. */
export interface BucketS3Config {
  /** Absent: private (the owner has FULL_CONTROL). */
  acl?: S3Acl
  /** The bucket policy as the client sent it: GetBucketPolicy answers it verbatim. */
  policy?: string
  publicAccessBlock?: PublicAccessBlockConfig
  cors?: CorsRule[]
  /** Bucket tags in the order they were sent. */
  tags?: [string, string][]
}

/** The fields of BucketS3Config, as setBucketS3 names them. */
export const BUCKET_S3_FIELDS = ['acl', 'policy', 'publicAccessBlock', 'cors', 'tags'] as const satisfies readonly (keyof BucketS3Config)[]
export type BucketS3Field = (typeof BUCKET_S3_FIELDS)[number]

/** Key metadata names O3 reserves for itself: never taken from a request, never shown as headers. */
export const OBJECT_ACL_METADATA = 'x-o3-acl'
export const UPLOAD_ID_METADATA = 'x-o3-upload-id'
export const RESERVED_METADATA_PREFIX = 'x-o3-'
