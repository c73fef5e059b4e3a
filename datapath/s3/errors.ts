/** @module
 * The S3 error table (after Ozone's S3ErrorTable and the S3 REST error-code list): each S3
 * code with its HTTP status, the one S3Error class handlers throw, and the mapping from O3's
 * operating-error codes and core/s3-access's S3AccessError. Pure.
 */
import { O3Error, type ErrorCodeName } from '../../core/errors.ts'
import { S3AccessError, type S3AccessErrorCode } from '../../core/s3-access/errors.ts'

export const S3ErrorCode = {
  /** A CORS preflight (OPTIONS) that no rule of the bucket allows. */
  AccessForbidden: 403,
  AccessDenied: 403,
  AuthorizationHeaderMalformed: 400,
  AuthorizationQueryParametersError: 400,
  BadDigest: 400,
  BucketAlreadyExists: 409,
  BucketAlreadyOwnedByYou: 409,
  BucketNotEmpty: 409,
  EntityTooLarge: 400,
  EntityTooSmall: 400,
  IncompleteBody: 400,
  IllegalLocationConstraintException: 400,
  IncorrectNumberOfFilesInPostRequest: 400,
  InternalError: 500,
  InvalidAccessKeyId: 403,
  InvalidArgument: 400,
  InvalidBucketName: 400,
  /** A signed aws-chunked chunk under 8 KiB that is not the last. */
  InvalidChunkSizeError: 403,
  InvalidDigest: 400,
  InvalidLocationConstraint: 400,
  InvalidPart: 400,
  /** A trailer that does not carry what x-amz-trailer declared, or carries a checksum it did not declare. */
  MalformedTrailerError: 400,
  InvalidPartNumber: 416,
  InvalidPartOrder: 400,
  InvalidPolicyDocument: 400,
  InvalidRange: 416,
  InvalidRedirectLocation: 400,
  InvalidRequest: 400,
  InvalidStorageClass: 400,
  InvalidTag: 400,
  InvalidURI: 400,
  KeyTooLongError: 400,
  MalformedACLError: 400,
  MalformedPOSTRequest: 400,
  MalformedPolicy: 400,
  MalformedXML: 400,
  MaxPostPreDataLengthExceeded: 400,
  MetadataTooLarge: 400,
  MethodNotAllowed: 405,
  MissingContentLength: 411,
  NoSuchBucket: 404,
  NoSuchBucketPolicy: 404,
  NoSuchCORSConfiguration: 404,
  NoSuchKey: 404,
  NoSuchPublicAccessBlockConfiguration: 404,
  NoSuchTagSet: 404,
  NoSuchUpload: 404,
  NotImplemented: 501,
  NotModified: 304,
  OperationAborted: 409,
  PreconditionFailed: 412,
  /** Ozone's S3ErrorTable.QUOTA_EXCEEDED: not one of AWS's codes, Ozone's gateway's own. */
  QuotaExceeded: 403,
  RequestHeaderSectionTooLarge: 400,
  RequestTimeout: 400,
  RequestTimeTooSkewed: 403,
  ServiceUnavailable: 503,
  SignatureDoesNotMatch: 403,
  UnresolvableGrantByEmailAddress: 400,
  XAmzContentSHA256Mismatch: 400,
} as const satisfies Record<string, number>

export type S3ErrorCodeName = keyof typeof S3ErrorCode
/** Every code core/s3-access throws is one of this table's. */
const ACCESS_CODES_ARE_S3_CODES: S3AccessErrorCode extends S3ErrorCodeName ? true : never = true
void ACCESS_CODES_ARE_S3_CODES

/** What an O3 operating error is called in S3; unlisted codes are InternalError. */
const FROM_O3: Partial<Record<ErrorCodeName, S3ErrorCodeName>> = {
  INVALID_ARGUMENT: 'InvalidArgument',
  INVALID_BUCKET_NAME: 'InvalidBucketName',
  INVALID_KEY_NAME: 'InvalidArgument',
  BUCKET_NOT_FOUND: 'NoSuchBucket',
  VOLUME_NOT_FOUND: 'NoSuchBucket',
  BUCKET_ALREADY_EXISTS: 'BucketAlreadyExists',
  BUCKET_NOT_EMPTY: 'BucketNotEmpty',
  KEY_NOT_FOUND: 'NoSuchKey',
  ETAG_MISMATCH: 'PreconditionFailed',
  KEY_CONDITION_FAILED: 'PreconditionFailed',
  OPEN_KEY_NOT_FOUND: 'NoSuchUpload',
  // Only an upload's record is required by a write (a part's, a completion's).
  REQUIRED_KEY_NOT_FOUND: 'NoSuchUpload',
  PERMISSION_DENIED: 'AccessDenied',
  QUOTA_EXCEEDED: 'QuotaExceeded',
  // A bucket created in a volume with a space quota needs one (Ozone answers InternalError).
  QUOTA_ERROR: 'QuotaExceeded',
  ENTITY_TOO_LARGE: 'EntityTooLarge',
  INCOMPLETE_BODY: 'IncompleteBody',
  SAFE_MODE: 'ServiceUnavailable',
  NOT_LEADER: 'ServiceUnavailable',
  NO_PIPELINE: 'ServiceUnavailable',
  UNAVAILABLE: 'ServiceUnavailable',
  TIMEOUT: 'ServiceUnavailable',
  DISK_FULL: 'ServiceUnavailable',
}

/**
 * What a client is told for an O3 error: S3's own words for the code it maps to, never the
 * O3 message, which names what S3 clients must not see (volumes such as s3v and
 * s3v-multipart, upload part keys, block ids). The O3 error stays the S3Error's cause, for
 * the log.
 */
const S3_MESSAGE: Partial<Record<S3ErrorCodeName, string>> = {
  AccessDenied: 'Access Denied',
  BucketAlreadyExists: 'The requested bucket name is not available',
  BucketNotEmpty: 'The bucket you tried to delete is not empty',
  EntityTooLarge: 'Your proposed upload exceeds the maximum allowed size',
  InternalError: 'We encountered an internal error. Please try again.',
  InvalidArgument: 'Invalid Argument',
  InvalidBucketName: 'The specified bucket is not valid',
  NoSuchBucket: 'The specified bucket does not exist',
  NoSuchKey: 'The specified key does not exist',
  NoSuchUpload: 'The specified multipart upload does not exist. The upload ID may be invalid, or the upload may have been aborted or completed.',
  QuotaExceeded: 'The quota has been exceeded. Please review your disk space or namespace usage and adjust accordingly.',
  ServiceUnavailable: 'Service is unable to handle request. Please try again.',
}

export class S3Error extends Error {
  override name = 'S3Error'
  /** Elements of the error body after Message (S3's <Region> of a wrongly signed region). */
  readonly xml: Readonly<Record<string, string>>
  constructor(readonly code: S3ErrorCodeName, message: string, readonly extraHeaders: Record<string, string> = {}, options?: { cause?: unknown; xml?: Record<string, string> }) {
    super(message, options)
    this.xml = options?.xml ?? {}
  }
  get status(): number {
    return S3ErrorCode[this.code]
  }
}

/**
 * Why the service is unavailable, where the cause is the cluster's state and telling it helps
 * the operator reading the client's error (the gateway's log has the details). None names a
 * volume, key or block.
 */
const UNAVAILABLE_WHY: Partial<Record<ErrorCodeName, string>> = {
  SAFE_MODE: 'Service is unable to handle request: the cluster is starting (safe mode, too few datanodes registered). Please try again.',
  NO_PIPELINE: 'Service is unable to handle request: too few healthy datanodes with room for this bucket\'s replication. Please try again.',
  DISK_FULL: 'Service is unable to handle request: the datanodes are out of space. Please try again.',
}

/** Turns anything thrown by a handler into an S3Error: O3 codes through the table, anything
 *  else InternalError; either way with S3's message, the original kept as the cause. */
export function toS3Error(err: unknown): S3Error {
  if (err instanceof S3Error) return err
  // The pure access modules' errors (MalformedPolicyError too) carry S3's code and words
  // already: core/s3-access cannot throw the gateway's S3Error itself.
  if (err instanceof S3AccessError) return new S3Error(err.code, err.message, {}, { cause: err })
  const code = err instanceof O3Error ? FROM_O3[err.code] ?? 'InternalError' : 'InternalError'
  const why = err instanceof O3Error ? UNAVAILABLE_WHY[err.code] : undefined
  return new S3Error(code, why ?? S3_MESSAGE[code] ?? code, {}, { cause: err })
}
