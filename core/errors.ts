/** @module
 * The one table of operating-error codes that cross the wire (RPC bodies, worker results),
 * after Ozone's OMResponse/ContainerProtos result codes. Codes, not classes, cross boundaries.
 */

export interface ErrorSpec {
  /** HTTP status used on the internal RPC wire. */
  readonly http: number
  /** Whether a client may retry the same call (on the same or another replica). */
  readonly retry: boolean
}

export const ErrorCode = {
  INVALID_ARGUMENT: { http: 400, retry: false },
  INVALID_VOLUME_NAME: { http: 400, retry: false },
  INVALID_BUCKET_NAME: { http: 400, retry: false },
  INVALID_KEY_NAME: { http: 400, retry: false },
  VOLUME_NOT_FOUND: { http: 404, retry: false },
  VOLUME_ALREADY_EXISTS: { http: 409, retry: false },
  VOLUME_NOT_EMPTY: { http: 409, retry: false },
  BUCKET_NOT_FOUND: { http: 404, retry: false },
  BUCKET_ALREADY_EXISTS: { http: 409, retry: false },
  BUCKET_NOT_EMPTY: { http: 409, retry: false },
  KEY_NOT_FOUND: { http: 404, retry: false },
  KEY_ALREADY_EXISTS: { http: 409, retry: false },
  /** A write conditioned on the key's ETag (S3's If-Match) found another one there. */
  ETAG_MISMATCH: { http: 412, retry: false },
  /** A delete conditioned on the key's size or modification time (S3's x-amz-if-match-*) found others. */
  KEY_CONDITION_FAILED: { http: 412, retry: false },
  OPEN_KEY_NOT_FOUND: { http: 404, retry: false },
  /** A write conditioned on another key (an S3 part on its upload's record) found that key gone. */
  REQUIRED_KEY_NOT_FOUND: { http: 404, retry: false },
  /** A write or a new bucket would pass a space or namespace quota (Ozone's QUOTA_EXCEEDED). */
  QUOTA_EXCEEDED: { http: 403, retry: false },
  /** A quota change the current state does not allow: below what is used, or one a volume quota needs (Ozone's QUOTA_ERROR). */
  QUOTA_ERROR: { http: 409, retry: false },
  PERMISSION_DENIED: { http: 403, retry: false },
  /** A call that must say who makes it did not (no certificate, no signature), or its proof does not hold. */
  UNAUTHENTICATED: { http: 401, retry: false },
  /** A datanode call without a valid block token for that block and mode (Ozone's BLOCK_TOKEN_VERIFICATION_FAILED). */
  BLOCK_TOKEN_VERIFICATION_FAILED: { http: 403, retry: false },
  /** Certificate enrollment or renewal refused: a bad bootstrap token, an identity already enrolled, a key that does not match. */
  CERTIFICATE_ERROR: { http: 403, retry: false },
  /** An S3 request's signature does not verify with its access key's secret. */
  SIGNATURE_MISMATCH: { http: 403, retry: false },
  SAFE_MODE: { http: 503, retry: true },
  NOT_LEADER: { http: 503, retry: true },
  NO_PIPELINE: { http: 503, retry: true },
  NODE_NOT_FOUND: { http: 404, retry: false },
  /** An admin change a datanode's operational state does not allow, as decommissioning a node in maintenance (Ozone's InvalidNodeStateException). */
  INVALID_NODE_STATE: { http: 409, retry: false },
  /** No such pipeline: a datanode runs no Raft group for the id, or the SCM has none by that id. */
  PIPELINE_NOT_FOUND: { http: 404, retry: false },
  CONTAINER_NOT_FOUND: { http: 404, retry: false },
  CONTAINER_NOT_OPEN: { http: 409, retry: false },
  CONTAINER_UNHEALTHY: { http: 500, retry: false },
  /** The datanode holds (or is importing) a replica of the container already (Ozone's CONTAINER_EXISTS). */
  CONTAINER_EXISTS: { http: 409, retry: false },
  /** The replica's state does not allow it: export of an open one, delete of an open one without force (Ozone's INVALID_CONTAINER_STATE). */
  INVALID_CONTAINER_STATE: { http: 409, retry: false },
  BLOCK_NOT_FOUND: { http: 404, retry: false },
  CHUNK_NOT_FOUND: { http: 404, retry: false },
  CHECKSUM_MISMATCH: { http: 422, retry: false },
  /** A Raft state checkpoint was replaced by a newer one while a follower fetched it: fetch the newest. */
  CHECKPOINT_NOT_FOUND: { http: 404, retry: false },
  DISK_FULL: { http: 507, retry: false },
  IO_ERROR: { http: 500, retry: true },
  TIMEOUT: { http: 504, retry: true },
  UNAVAILABLE: { http: 503, retry: true },
  ENTITY_TOO_LARGE: { http: 413, retry: false },
  /** The request's body was cut before it ended (the client hung up mid-upload): the caller's doing, not the service's. */
  INCOMPLETE_BODY: { http: 400, retry: true },
  INTERNAL_ERROR: { http: 500, retry: false },
} as const satisfies Record<string, ErrorSpec>

export type ErrorCodeName = keyof typeof ErrorCode

/** The shape in which an error crosses the wire and the worker boundary. */
export interface WireError {
  code: ErrorCodeName
  message: string
  /** NOT_LEADER: the address of the leader, when known. */
  leader?: string
  /** The address of the node the failure is about (a follower that did not answer). */
  node?: string
}

/** The one domain error class, like undici's UND_ERR_*: callers switch on `code`. */
export class O3Error extends Error {
  override name = 'O3Error'
  readonly code: ErrorCodeName
  readonly leader?: string
  readonly node?: string
  constructor(code: ErrorCodeName, message: string, options?: { cause?: unknown; leader?: string; node?: string }) {
    super(message, options?.cause === undefined ? undefined : { cause: options.cause })
    this.code = code
    if (options?.leader !== undefined) this.leader = options.leader
    if (options?.node !== undefined) this.node = options.node
  }
  get spec(): ErrorSpec {
    return ErrorCode[this.code]
  }
  toWire(): WireError {
    const wire: WireError = { code: this.code, message: this.message }
    if (this.leader !== undefined) wire.leader = this.leader
    if (this.node !== undefined) wire.node = this.node
    return wire
  }
}

function isErrorCode(code: unknown): code is ErrorCodeName {
  return typeof code === 'string' && Object.hasOwn(ErrorCode, code)
}

/** Rebuilds an O3Error from a wire body; an unknown code becomes INTERNAL_ERROR. */
export function fromWire(body: unknown, fallbackMessage: string): O3Error {
  const b = (body ?? {}) as Partial<WireError>
  const code = isErrorCode(b.code) ? b.code : 'INTERNAL_ERROR'
  const message = typeof b.message === 'string' && b.message !== '' ? b.message : fallbackMessage
  return new O3Error(code, message, { leader: typeof b.leader === 'string' ? b.leader : undefined, node: typeof b.node === 'string' ? b.node : undefined })
}

/** Turns anything thrown into an O3Error (unknown throwables become INTERNAL_ERROR). */
export function toO3Error(err: unknown): O3Error {
  if (err instanceof O3Error) return err
  const message = err instanceof Error ? err.message : String(err)
  return new O3Error('INTERNAL_ERROR', message, { cause: err })
}
