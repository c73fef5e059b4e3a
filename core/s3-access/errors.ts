/** @module
 * The one error the pure S3 access modules (acl.ts, policy.ts, authorize.ts) throw: an S3
 * error code with AWS's words for it. The gateway answers it as the S3Error of the same code
 * (datapath/s3/errors.ts toS3Error); core cannot import the gateway's error table. Pure.
 */

/** The S3 codes core/s3-access throws; each must be in the gateway's S3ErrorCode table. */
export type S3AccessErrorCode =
  | 'AccessDenied'
  | 'InvalidArgument'
  | 'InvalidRequest'
  | 'MalformedACLError'
  | 'MalformedPolicy'
  | 'UnresolvableGrantByEmailAddress'

export class S3AccessError extends Error {
  override name = 'S3AccessError'
  constructor(readonly code: S3AccessErrorCode, message: string) {
    super(message)
  }
}
