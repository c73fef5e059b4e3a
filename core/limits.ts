/** @module
 * Every size, count and timeout with a maximum, named with its unit last. Relations between
 * them are checked when this module loads, so a bad combination fails at start, not mid-write.
 */
import { assert } from './assert.ts'

export const KiB = 1024
export const MiB = 1024 * KiB
export const GiB = 1024 * MiB

/** Ozone's defaults: ozone.scm.block.size, ozone.scm.chunk.size, ozone.client.bytes.per.checksum. */
export const BLOCK_SIZE_BYTES_DEFAULT = 256 * MiB
export const CHUNK_SIZE_BYTES_DEFAULT = 4 * MiB
export const BYTES_PER_CHECKSUM_DEFAULT = 16 * KiB
export const CONTAINER_SIZE_BYTES_DEFAULT = 5 * GiB

/** The largest chunk a datanode accepts in one writeChunk: bounds every chunk buffer. */
export const CHUNK_SIZE_BYTES_MAX = 16 * MiB
export const BYTES_PER_CHECKSUM_MIN = 512
/** Checksum bytes of the widest algorithm (BLAKE3, 32 bytes) for the largest chunk. */
export const CHECKSUM_BYTES_MAX = (CHUNK_SIZE_BYTES_MAX / BYTES_PER_CHECKSUM_MIN) * 32

/** Ozone: volume and bucket names are 3-63 characters; key names up to 1024 bytes (S3's limit). */
export const VOLUME_NAME_LENGTH_MIN = 3
export const VOLUME_NAME_LENGTH_MAX = 63
export const KEY_NAME_BYTES_MAX = 1024
export const LIST_KEYS_COUNT_MAX = 1000
export const LIST_VOLUMES_COUNT_MAX = 1000
/** Custom metadata per key (S3 allows 2 KiB of user metadata). */
export const KEY_METADATA_BYTES_MAX = 8 * KiB
/** One field of a bucket's S3 configuration (BucketS3Config), as JSON: above S3's 20 KB policy limit. */
export const BUCKET_S3_FIELD_BYTES_MAX = 64 * KiB
/** Grants in one S3 ACL (AWS: "An ACL can have up to 100 grants"); an object's ACL is kept in its metadata, so this bounds it too. */
export const S3_ACL_GRANTS_MAX = 100
/** Parsed bucket policies a process keeps (core/s3-access/policy.ts evaluateStoredPolicy): at most 20 KiB each. */
export const S3_POLICY_CACHE_ENTRIES_MAX = 256
/** Native ACLs on one volume, bucket or key (each identity and scope once), so that a record stays small. */
export const NATIVE_ACL_COUNT_MAX = 100
/** Parts of one key made by commitMultipartKey (S3: part numbers 1..10,000). */
export const KEY_PARTS_COUNT_MAX = 10_000

/**
 * An S3 signature proof the gateway sends the OM (core/s3-signature.ts): a SigV4 signature
 * is 64 hex digits and a SigV2 one 28 base64 characters, so 128 leaves room for neither to be
 * cut; a SigV2 string to sign holds the request's x-amz-* headers and resource, which fit in
 * the gateway's 16 KiB of headers; at most 2 paths x 2 query forms are candidates (sigv2.ts).
 */
export const S3_SIGNATURE_BYTES_MAX = 128
export const S3_STRING_TO_SIGN_BYTES_MAX = 20 * KiB
export const S3_V2_STRINGS_TO_SIGN_COUNT_MAX = 4
/** SigV4 signing keys the OM keeps derived (core/s3-signature.ts): one per key pair, day, region and service in use. */
export const S3_SIGNING_KEYS_CACHED_MAX = 1024

/**
 * A signed native call (core/security/request-signing.ts): its x-amz-date may be this far off
 * the OM's clock, as S3 allows (RequestTimeTooSkewed); its Authorization header this long and
 * its SignedHeaders this many (our client signs 2).
 */
export const REQUEST_SIGNATURE_SKEW_MS_MAX = 15 * 60_000
export const REQUEST_AUTHORIZATION_BYTES_MAX = 1 * KiB
export const REQUEST_SIGNED_HEADERS_COUNT_MAX = 16

/** JSON control messages on the RPC wire. */
export const RPC_BODY_BYTES_MAX = 4 * MiB
export const RPC_TIMEOUT_MS_DEFAULT = 30_000
export const RPC_RETRY_COUNT_MAX = 5
/** How long a call to a Raft group (several addresses) keeps failing over before it gives up. */
export const RPC_FAILOVER_MS_MAX = 15_000
/** Addresses one client knows for a service's group: those it was given, and leaders named in NOT_LEADER answers (Raft groups here have 3 or 5 members). */
export const RPC_GROUP_ADDRESSES_MAX = 16
/** The longest pause between tries over a Raft group's members while it elects a leader. */
export const RPC_GROUP_BACKOFF_MS_MAX = 200

/**
 * S3 gateway: how long a request body may send nothing before the upload is answered
 * RequestTimeout (S3 closes a connection idle for about 20 s). Config: s3g.bodyIdleTimeoutMs.
 */
export const S3G_BODY_IDLE_TIMEOUT_MS_DEFAULT = 20_000
/**
 * S3 gateway: how long a GET's client may take no 1 MiB slice of the body (its socket full,
 * nothing drained) before the connection is cut and the pieces it holds go back: a client that
 * stopped reading, or a host gone without a word, holds them no longer (a client below about
 * 8.7 KB/s is cut too). Config: s3g.sendIdleTimeoutMs.
 */
export const S3G_SEND_IDLE_TIMEOUT_MS_DEFAULT = 120_000
/** The S3 gateway's /health asks the OM at most this often (probes in between share the answer), each try waiting this long. */
export const S3G_HEALTH_PROBE_MS = 1000
/** ... and answers within this, DOWN if no OM leader answered by then (frozen OMs: the probe's tries go on behind it). */
export const S3G_HEALTH_ANSWER_MS = 2000
/**
 * How often a silent upload body is checked (at most; an eighth of the idle timeout when that
 * is shorter): each time, if others wait for payload slabs, its writer sends what it has and
 * gives its slabs back (KeyWriter.park), so idle uploads hold no slab for longer than this.
 */
export const S3G_BODY_IDLE_CHECK_MS_MAX = 250
/**
 * A body that trickles is never quiet, so the same rule goes by the slab: an upload whose
 * writer has held a partly filled slab this long parks when others wait for one.
 */
export const S3G_SLAB_HOLD_MS_MAX = 1_000

/**
 * HTTP (every service): an answer sent before its request body was read whole (an early
 * error, a RequestTimeout) is followed by reading and discarding the rest of the body, so that
 * a client still sending reads the answer rather than a connection reset. Up to this many
 * bytes or this long the connection stays reusable; past either, it is half-closed (FIN after
 * the answer) and input is still discarded while it keeps coming (nginx's lingering close:
 * lingering_timeout 5 s, lingering_time 30 s), then closed.
 */
export const HTTP_BODY_DRAIN_BYTES_MAX = 64 * MiB
export const HTTP_BODY_DRAIN_MS_MAX = 5_000
export const HTTP_LINGER_IDLE_MS_MAX = 5_000
export const HTTP_LINGER_MS_MAX = 30_000
/**
 * HTTP on Node (every service): requests a client pipelines wait, parsed, until the answers
 * before them are out (they run one at a time). Past this many waiting on one connection, it
 * stops being read, the waiting ones are answered, and it closes; the rest are not run (a
 * client resends what a closed connection left unanswered). No O3 or S3 client pipelines.
 */
export const HTTP_PIPELINED_REQUESTS_MAX = 64
/**
 * HTTP (every service): a small body read whole (an RPC's arguments, a Raft batch, a chunk
 * read's) that sends nothing this long is cut, its connection with it: a client that sent a
 * head and part of a body, then nothing, held its connection and descriptor for good
 * (20,000 of them made the OM refuse its own callers).
 */
export const HTTP_SMALL_BODY_IDLE_MS_MAX = 30_000

/**
 * Datanode: a chunk body that sends nothing this long is abandoned (its slab freed), and a
 * writeChunk that gets no slab this long answers UNAVAILABLE, which the client retries or
 * excludes: half-open connections from a dead client hold a slab for at most this long and
 * can never stop a datanode's writes.
 */
export const DATANODE_BODY_IDLE_TIMEOUT_MS = RPC_TIMEOUT_MS_DEFAULT
export const DATANODE_SLAB_WAIT_MS_MAX = RPC_TIMEOUT_MS_DEFAULT
/**
 * Datanode: a chunk goes to its block file while its body arrives, in runs of whole checksum
 * windows, each verified and written by one pool task; a run waits until at least this much
 * has arrived (the last run takes what is left). Fewer tasks per chunk against a shorter tail
 * once the last byte is in: a 4 MiB chunk is written in about four runs.
 */
export const DATANODE_WRITE_RUN_BYTES_MIN = 1 * MiB

/**
 * ...but a shorter chunk still goes in about DATANODE_WRITE_RUNS_PER_CHUNK runs, none below
 * DATANODE_WRITE_RUN_BYTES_FLOOR: with one run of 1 MiB, a 1 MiB chunk (a 1 MiB S3 object)
 * was verified and written only after its last byte, all of it on the critical path. Measured
 * with a 1 MiB S3 PUT (bench/README.md, "1 MiB PUT"): the datanode's tail after the body
 * went from about 3 ms to 2 ms (RATIS/ONE) and from 14-17 ms to 7-12 ms (RATIS/THREE).
 */
export const DATANODE_WRITE_RUNS_PER_CHUNK = 4
export const DATANODE_WRITE_RUN_BYTES_FLOOR = 256 * KiB

/**
 * A short-circuit write's body (datapath/client/local-datanodes.ts) is handed to the datanode
 * in views of at most this size, as a socket would deliver it: each piece is copied into the
 * leader's slab and on to its followers' while it is still in the CPU's cache. Handed whole, a
 * 4 MiB chunk of a RATIS/THREE write cost 12-13 ms of CPU per MiB (half of it the kernel's
 * copy into the page cache), against 8.6-10.1 in 256 KiB views and 11.9-12.7 over HTTP (S3
 * PUTs of 64 MiB, 2026-12-05).
 */
export const LOCAL_BODY_PIECE_BYTES = 256 * KiB

/** Blocks the OM fetches from the SCM in one allocateBlock call and keeps ready per replication. */
export const OM_BLOCK_BATCH_COUNT = 8
/**
 * How long the OM keeps such a block before handing it out: one fetched earlier may sit in a
 * container the SCM has closed since (full, or its pipeline closed with a node), which costs
 * its writer a failed write, or a stalled one on a frozen node. Under load a batch lasts far
 * less; an idle OM asks the SCM afresh.
 */
export const OM_BLOCK_CACHE_AGE_MS_MAX = 2_000
/** Blocks preallocated in one openKey (Ozone's ozone.key.preallocation.maxblocks is 64). */
export const OPEN_KEY_PREALLOCATED_BLOCKS_MAX = 64
export const ALLOCATE_BLOCK_COUNT_MAX = 64

/** Client write window: chunks in flight per key writer, and chunks written between putBlock. */
export const CLIENT_CHUNKS_INFLIGHT_MAX = 4
export const CLIENT_FLUSH_CHUNKS = 4
/**
 * How long a key writer waits for a payload slab before the write fails UNAVAILABLE (the S3
 * gateway answers 503): the pool is shared, and waiting is back-pressure only while others
 * give slabs back.
 */
export const CLIENT_SLAB_WAIT_MS_MAX = 30_000
/** Block rewrites after failures before a key write gives up. */
export const CLIENT_BLOCK_RETRY_COUNT_MAX = 5
/**
 * How long a write to a pipeline (writeChunk, putBlock) keeps looking for the Raft group's
 * leader, following NOT_LEADER hints and trying the next member after a refused connection
 * or a timeout, before it fails UNAVAILABLE and the writer moves the block to another
 * pipeline: a few election timeouts, as RPC_FAILOVER_MS_MAX for the OM and SCM groups.
 */
export const PIPELINE_LEADER_WAIT_MS_MAX = 15_000
/**
 * At the end of a key, how long the writer waits for every member of a pipeline to hold the
 * log through its last write (watchForCommit ALL_COMMITTED) before it settles for the
 * majority that already made the key durable (Ozone waits likewise, then excludes the slow node).
 */
export const PIPELINE_WATCH_MS_DEFAULT = 3_000
/** The watch of a pipeline with a member known to lag: long enough for a healthy one to answer, short enough not to cost every key a full watch. */
export const PIPELINE_WATCH_KNOWN_SLOW_MS = 100
/** A watchForCommit answers at its timeout at the latest: the HTTP call waits this much longer. */
export const PIPELINE_WATCH_ANSWER_SLACK_MS = 1_000
/** Pipeline leaders a client remembers (pipeline id -> leader address), the oldest dropped past it. */
export const CLIENT_PIPELINE_LEADERS_MAX = 10_000
/**
 * A datanode that lagged behind a watchForCommit is avoided by a client's new blocks this
 * long (Ozone's ozone.client.exclude.nodes.expiry.time is 10 minutes; shorter here, as a
 * small cluster has no pipeline without it and every block then asks twice), and at most
 * this many are remembered.
 */
export const CLIENT_SLOW_DATANODE_MS = 60_000
export const CLIENT_SLOW_DATANODES_MAX = 1_000
/** Read-ahead of a key reader, in chunks. */
export const CLIENT_READ_AHEAD_CHUNKS = 2
/** Read-ahead of an EC key reader, in data-cell pieces: two stripes' worth (2k, every data
 *  replica read at once while the next stripe's cells come), at least
 *  CLIENT_READ_AHEAD_CHUNKS, at most this (each holds a pooled buffer). */
export const CLIENT_EC_READ_AHEAD_PIECES_MAX = 8
/** Reads an EC key reader has in flight around a lost replica, each of a stripe or of a run of
 *  whole stripes and each a slab of k + m cells. */
export const CLIENT_EC_DEGRADED_STRIPES_MAX = 2
/** The largest slab of a degraded read's run of whole stripes (k + m cells of the run each):
 *  four stripes of 1 MiB cells for rs-6-3 (about 37 MiB), two for rs-10-4. A run is also at
 *  most a request's bytes per cell. */
export const CLIENT_EC_DEGRADED_SLAB_BYTES_MAX = 40 * MiB
/** Bytes of stripe slabs per slab shape a client keeps for all its EC readers, reused across
 *  reads (a reader finding none free makes one of its own instead of waiting): three runs'
 *  slabs of rs-6-3, thirteen single stripes' (about 9.5 MiB each). */
export const CLIENT_EC_STRIPE_SLAB_BYTES = 128 * MiB
/**
 * A replicated read that has no answer from one replica this long asks the next one too and
 * takes whichever answers first (HDFS's hedged reads): a frozen datanode (a stopped process, a
 * hung disk) costs a read this, not RPC_TIMEOUT_MS_DEFAULT per frozen replica. A busy but
 * healthy replica costs at worst a second read.
 */
export const CLIENT_READ_HEDGE_MS = 2_000
/** Hedged reads one client has in flight at once (HDFS's dfs.client.hedged.read.threadpool.size). */
export const CLIENT_HEDGED_READS_MAX = 16
/** An EC replica read whose datanode has not begun to answer after this is read around (its cells rebuilt from the others). */
export const CLIENT_EC_READ_ANSWER_MS = 5_000
/** How long a client's reads go around a datanode they could not reach (FailedNodes): about
 *  a heartbeat timeout's worth, after which the SCM has closed its pipelines anyway. */
export const CLIENT_FAILED_NODE_MS = 10_000
/** ... and around one a read waited a whole timeout on (a frozen process, a lost host): finding
 *  it out again costs every read that timeout (RPC_TIMEOUT_MS_DEFAULT), so it is kept longer. */
export const CLIENT_TIMED_OUT_NODE_MS = 60_000
/** Datanodes a client remembers as failed at once (the oldest forgotten first). */
export const CLIENT_FAILED_NODES_MAX = 1024
/** How long a client's reads ask a replica that returned corrupt bytes (its container on that
 *  datanode) after the others: long enough for the SCM to check, mark and replace it (a
 *  replication round and a copy), short enough that a replaced one is soon asked first again. */
export const CLIENT_CORRUPT_REPLICA_MS = 300_000
/** Corrupt replicas a client remembers at once (the oldest forgotten first). */
export const CLIENT_CORRUPT_REPLICAS_MAX = 4096
/** Pooled chunk buffers a client's pooled reads (the S3 gateway's GETs) share: a GET holds
 *  its read-ahead and the pieces its socket has not sent yet, so 32 serve 8+ at full speed;
 *  with all out, reads stop reading ahead and take their next piece's buffer past the pool
 *  (BufferPool.take), never waiting on others' clients. */
export const CLIENT_READ_BUFFERS = 32

/** Datanode: pooled buffers chunk reads land in (each a default chunk and its checksums);
 *  a read waits for one when all are out, up to DATANODE_SLAB_WAIT_MS_MAX. */
export const DATANODE_READ_BUFFERS = 8
/**
 * Datanode: buffers (of CHUNK_SIZE_BYTES_MAX) for a pipeline member's read of chunk bytes a
 * follower missed (/pipeline/ID/chunk-data), a rare path: more reads at once wait for one.
 */
export const DATANODE_CHUNK_DATA_BUFFERS = 2
/** A datanode's receive slabs for chunks up to the default size (4 MiB and their checksums)... */
export const DATANODE_CHUNK_SLABS = 8
/** ...and for larger chunks (up to CHUNK_SIZE_BYTES_MAX): few, since few clients raise the chunk size. */
export const DATANODE_LARGE_CHUNK_SLABS = 2

/** The largest block a datanode packs inline in LMDB instead of giving it a file. */
export const SMALL_BLOCK_BYTES_MAX = 1 * MiB
/** Datanode: blocks written but not yet committed by putBlock, per datanode. */
export const DATANODE_PENDING_BLOCKS_MAX = 100_000
/**
 * Datanode: block files kept open for writing between chunks (closed on the block's final
 * putBlock, its container's close, or this long idle); past the count the least recently used
 * idle one is closed. An open file per chunk cost an open and a close every 4 MiB.
 */
export const DATANODE_OPEN_BLOCK_FILES_MAX = 64
export const DATANODE_BLOCK_FILE_IDLE_MS = 10_000
/** RATIS/THREE pipelines a datanode belongs to (ozone.datanode.pipeline.limit is 2). */
export const DATANODE_PIPELINE_LIMIT = 2
/** A pipeline group's Raft clock: heartbeats every 2 ticks, elections after 10 to 20 (1 to 2 s; shorter churns under load). */
export const PIPELINE_TICK_MS = 100
export const PIPELINE_ELECTION_TIMEOUT_TICKS = 10
/** Times a new group's suggested leader stands (three ticks apart) while no member leads yet. */
export const PIPELINE_CAMPAIGN_TRIES = 5
/** Applied entries between a pipeline group's snapshots: the log a follower back from an outage can catch up from. */
export const PIPELINE_SNAPSHOT_EVERY_ENTRIES = 10_000
/**
 * A pipeline group's applied entries of at least this size (a small block's bytes, a big
 * chunk's checksums) keep only their size in memory until the snapshot; a follower that lags
 * gets them read back from the log on disk. Kept whole, a log of small blocks held up to
 * 10,000 of them per replica for good (bench:rss under Deno, 2026-12-06: 312 MiB at rest).
 */
export const PIPELINE_EVICT_APPLIED_BYTES_MIN = 1024
/** How long a follower waits for a chunk's bytes still arriving from the leader before it fetches them instead. */
export const PIPELINE_STAGE_WAIT_MS = 10_000
/** How long a follower keeps trying to fetch a chunk's bytes (from the leader, then the other members) before its group stops. */
export const PIPELINE_FETCH_MS_MAX = 30_000
/** Staged chunk bytes whose entry never came (a write the leader gave up) are forgotten after this. */
export const PIPELINE_STAGED_TTL_MS = 120_000
/** The longest a datanode's watchForCommit waits for every member to hold an index. */
export const PIPELINE_WATCH_MS_MAX = 30_000
/** Pipeline groups one datanode runs. */
export const PIPELINE_GROUPS_MAX = 1000
export const PIPELINES_MAX = 10_000
/**
 * Pipeline reports (one per Raft group it runs) in one datanode heartbeat: its RATIS/ONE, its
 * RATIS/THREE ones, and closed ones it has not been told to remove yet.
 */
export const PIPELINE_REPORTS_MAX = 1000
/** allocateBlock waits this long for an ALLOCATED pipeline to open (its group to form) when no OPEN one fits. */
export const PIPELINE_OPEN_WAIT_MS = 5000
/** The SCM's triggerHeartbeat nudge to a new pipeline's members: one try, this long (the next heartbeat delivers the command anyway). */
export const PIPELINE_NUDGE_TIMEOUT_MS = 2000
/**
 * An ALLOCATED pipeline whose group has not formed after this long is closed (Ozone's
 * ozone.scm.pipeline.allocated.timeout): it would hold its members' pipeline slots for good.
 */
export const PIPELINE_ALLOCATED_MS_MAX = 5 * 60_000

/** The shortest pass of the container scanner: an idle datanode with few containers does not spin. */
export const SCANNER_INTERVAL_MS_MIN = 100
/** Container scanner: block records read from LMDB per batch (no read transaction is held across a chunk's read). */
export const SCANNER_BLOCK_BATCH = 256
/** On-demand scans (`o3 admin container scan`) and asked-for block checks (`checkBlock`) one datanode runs at once; more are refused UNAVAILABLE. */
export const SCANNER_ON_DEMAND_MAX = 4
/** Block checks a datanode starts itself (a read or an export found bytes lacking) at once, beside the on-demand ones; more are skipped until one ends. */
export const SCANNER_OWN_CHECKS_MAX = 4
/**
 * Readers' reports of corrupt replicas the SCM has its datanodes check at once (each a block
 * check there, ContainerScanner.checkBlock); more are dropped until one ends (a reader that
 * meets the corruption again reports it again).
 */
export const SCM_CORRUPT_REPORT_CHECKS_MAX = 64
/** Of those, at most this many on one datanode: its on-demand scans (SCANNER_ON_DEMAND_MAX) stay open to its administrators. */
export const SCM_CORRUPT_REPORT_CHECKS_PER_DATANODE = 2
/** How long the SCM (a reader's report) or a datanode (a copy's source) waits for another datanode's check of a block (throttled: 256 MiB at 5 MB/s take 52 s). */
export const BLOCK_CHECK_WAIT_MS_MAX = 10 * 60_000
/** How long `o3 admin container scan` waits for a datanode's throttled scan of one replica (5 GiB at 5 MB/s take 17 min). */
export const SCANNER_ON_DEMAND_WAIT_MS_MAX = 2 * 3600_000

/**
 * S3 bodies of at most this many bytes are hashed (MD5 ETag, SHA-256, x-amz-checksum-*) on
 * the main thread as they arrive; larger ones in the worker pool. Measured with
 * bench/digest-inline.ts (two runs, 2 shared vCPUs): the pool's hand-off costs the main thread
 * 44-101 us per body whatever its size; hashing inline costs 8-15 us at 4 KiB, 23-46 us at
 * 16 KiB, 44-64 us at 32 KiB (above the hand-off for MD5 + SHA-256) and 85-130 us at 64 KiB.
 */
export const DIGEST_INLINE_BYTES_MAX = 16 * KiB
/**
 * Bodies being hashed at once on one digest lane's thread (datapath/workers/digest-lanes.ts):
 * each holds a few hundred bytes of hasher state there. A body past it is refused UNAVAILABLE
 * (S3 503 ServiceUnavailable) rather than hashed on a thread that holds too many.
 */
export const DIGEST_SESSIONS_PER_LANE_MAX = 4096

/**
 * A multipart object keeps its parts' checksums (GetObjectAttributes' parts, a part's
 * checksum on GET/HEAD partNumber) in its metadata up to this many bytes: 384 CRC32 parts,
 * 192 CRC64NVME, 48 SHA-256. Past it, only the object's checksum is kept. A quarter of
 * KEY_METADATA_BYTES_MAX, which also holds S3's 2 KiB of user metadata, tags (up to about
 * 4 KiB, and added later) and the ACL; the upload also leaves room for what it already holds.
 */
export const S3_PART_CHECKSUMS_BYTES_MAX = 2 * KiB

/**
 * A chunk read from a datanode of at most this many data bytes is verified against its
 * checksums on the calling thread; a larger one in the worker pool (its buffer moved there and
 * back). Measured with bench/verify-inline.ts (three runs, 2 shared vCPUs, 16 KiB windows,
 * XXH64 and CRC32C): the hand-off to the pool costs the main thread 13-80 us per chunk
 * whatever its size; verifying inline costs 2-15 us up to 64 KiB (always below the
 * hand-off), 22-55 us at 256 KiB (about the hand-off), 85-374 us at 1 MiB and 430-1,500 us
 * at 4 MiB (the default chunk).
 */
export const VERIFY_INLINE_BYTES_MAX = 64 * KiB

/**
 * Container copies between datanodes (issue 13; datapath/datanode/container-copy.ts). Imports
 * one datanode runs at once (Ozone's hdds.datanode.replication.streams.limit is 10; 2 leave a
 * small node's disks and slabs to clients), and replicate commands waiting behind them (more
 * are dropped with a warning: the SCM's replication manager sends them again on timeout).
 */
export const DATANODE_IMPORTS_INFLIGHT_MAX = 2
export const DATANODE_IMPORTS_QUEUED_MAX = 1000
/**
 * A copy's archive carries block rows in batches of at most this many rows; a batch closes
 * once its rows and packed bytes pass the byte bound, so an entry exceeds it by at most one
 * row (a 256 MiB block's BLAKE3 checksums at 512-byte windows are 16 MiB, 22 MiB as base64):
 * the importer takes metadata entries up to the entry bound. Files are exported in pieces of
 * the read size; a container file is small JSON.
 */
export const CONTAINER_COPY_BATCH_ROWS_MAX = 1000
export const CONTAINER_COPY_BATCH_BYTES_MAX = 4 * MiB
export const CONTAINER_COPY_METADATA_ENTRY_BYTES_MAX = 64 * MiB
export const CONTAINER_COPY_READ_BYTES = 1 * MiB
export const CONTAINER_FILE_BYTES_MAX = 64 * KiB

/** A datanode's listBlocks answers at most this many blocks of a container per call (the EC
 *  reconstruction coordinator pages on): about 60 bytes of JSON each, 600 KB a page. */
export const DATANODE_LIST_BLOCKS_MAX = 10_000
/** EC reconstructions (reconstructECContainer commands) one datanode coordinates at once, each
 *  holding one stripe (k + m cells) in memory, and commands waiting behind them (more are
 *  dropped with a warning: the SCM sends them again on timeout). */
export const DATANODE_EC_RECONSTRUCTIONS_INFLIGHT_MAX = 2
export const DATANODE_EC_RECONSTRUCTIONS_QUEUED_MAX = 1000

/** A datanode volume's default reserve (datanode.volume.minFreeBytes; Ozone's is 5 GB, for disks of terabytes). */
export const VOLUME_MIN_FREE_BYTES_DEFAULT = GiB
/** How stale a datanode's free-space reading of a volume may be: statfs is a system call, not made per chunk. */
export const VOLUME_SPACE_REFRESH_MS = 1000

/** Container reports and heartbeat commands per message. */
export const HEARTBEAT_COMMANDS_MAX = 1000
/** SCM: datanodes one decommission, maintenance or recommission request names. */
export const DATANODE_ADMIN_TARGETS_MAX = 1000
/** The latest end a maintenance may be given, in hours from now (a year): a longer one is a typo, or a decommission. */
export const MAINTENANCE_END_HOURS_MAX = 24 * 365
/** SCM: block-deletion transactions (one per container) waiting for datanodes to acknowledge. */
export const SCM_DELETE_TXS_MAX = 1_000_000
/** SCM replication manager: container record moves (Raft entries) one round makes at most; the rest wait a round. */
export const REPLICATION_CONTAINERS_PER_ROUND_MAX = 1000
/**
 * SCM replication manager: a copy a datanode reported failed from every source is planned
 * again after this, doubled with each failure in a row (to scm.replication.commandTimeoutMs).
 */
export const REPLICATION_RETRY_BASE_MS = 1000
/** SCM replication manager: (container, target) pairs whose failures in a row it counts; the oldest go first. */
export const REPLICATION_FAILURES_TRACKED_MAX = 10_000
/**
 * SCM replication manager: whole-replica scans it asks of datanodes at once (at most one per
 * datanode, so that their on-demand slots, SCANNER_ON_DEMAND_MAX, stay open to report checks
 * and administrators): a lone healthy replica is scanned before a corrupt one beside it is
 * deleted to make room (plan.ts).
 */
export const REPLICATION_SCANS_MAX = 8
/**
 * ... and how long a scan that found the replica healthy stands for it (while its bcsid is
 * unchanged and the same SCM leads): longer than the scans of one container's indexes take
 * one after another (an EC container at k indexes needs them all: 5 GiB replicas at
 * 5 MB/s take 17 min each, REPLICATION_SCANS_MAX at once), so that the first answer still
 * stands when the last comes.
 */
export const REPLICATION_SCAN_VALID_MS = 12 * 3600_000
/**
 * ... and only while the scanned replica's datanode was heard from within this many heartbeat
 * intervals (datanode.heartbeatIntervalMs; each heartbeat reports every replica): a probe saw
 * the lone source killed two seconds before the delete beside it, which the SCM, waiting for
 * it to go STALE, did not know. Narrows the window; a source lost right after the delete is
 * make-room's risk, as in Ozone.
 */
export const REPLICATION_SCANNED_HEARD_HEARTBEATS = 1.5
/** Datanode: copies failed from every source it keeps to name in its next heartbeat (at most what one heartbeat carries). */
export const DATANODE_FAILED_COPIES_REPORTED_MAX = 1000
/**
 * EC replicas on nodes in maintenance count while the container's in-service indexes could
 * lose this many more and still decode (Ozone's hdds.scm.replication.maintenance.remaining.redundancy).
 */
export const EC_MAINTENANCE_REDUNDANCY = 1

/** `o3 freon`: operations of one run (each keeps an 8-byte latency), concurrent callers, and
 *  the one pattern block every payload repeats (a whole number of default chunks, so that a
 *  key write sends it without a copy). */
export const FREON_OPS_MAX = 10_000_000
export const FREON_THREADS_MAX = 1024
export const FREON_PATTERN_BYTES = 4 * MiB
/** The largest key `o3 freon -s` writes: S3's largest object, 5 TiB. */
export const FREON_SIZE_BYTES_MAX = 5 * 1024 * GiB

assert(S3_PART_CHECKSUMS_BYTES_MAX <= KEY_METADATA_BYTES_MAX / 4, 'part checksums must leave room for the rest of a key\'s metadata')
assert(CHUNK_SIZE_BYTES_DEFAULT <= CHUNK_SIZE_BYTES_MAX, 'default chunk exceeds max chunk')
assert(CHUNK_SIZE_BYTES_DEFAULT % BYTES_PER_CHECKSUM_DEFAULT === 0, 'chunk must hold whole checksums')
assert(DATANODE_WRITE_RUN_BYTES_MIN <= CHUNK_SIZE_BYTES_MAX, 'write run exceeds max chunk')
assert(DATANODE_WRITE_RUN_BYTES_FLOOR <= DATANODE_WRITE_RUN_BYTES_MIN, 'write run floor exceeds the run minimum')
assert(BLOCK_SIZE_BYTES_DEFAULT % CHUNK_SIZE_BYTES_DEFAULT === 0, 'block must hold whole chunks')
assert(CONTAINER_SIZE_BYTES_DEFAULT % BLOCK_SIZE_BYTES_DEFAULT === 0, 'container must hold whole blocks')
assert(HTTP_LINGER_IDLE_MS_MAX <= HTTP_LINGER_MS_MAX, 'linger idle bound exceeds the linger bound')
assert(OM_BLOCK_BATCH_COUNT <= ALLOCATE_BLOCK_COUNT_MAX, 'OM batch exceeds SCM allocation max')
assert(CONTAINER_COPY_BATCH_BYTES_MAX >= SMALL_BLOCK_BYTES_MAX, 'a copy batch must hold the largest packed block')
assert(CONTAINER_COPY_METADATA_ENTRY_BYTES_MAX > CONTAINER_COPY_BATCH_BYTES_MAX, 'a metadata entry must hold a full batch and one more row')
assert(PIPELINE_REPORTS_MAX > DATANODE_PIPELINE_LIMIT + 1, 'a datanode must be able to report every pipeline it is in')
assert(FREON_PATTERN_BYTES % CHUNK_SIZE_BYTES_DEFAULT === 0, 'freon pattern must hold whole chunks')
assert(VERIFY_INLINE_BYTES_MAX < CHUNK_SIZE_BYTES_DEFAULT, 'default chunks must be verified in the pool')
assert(PIPELINE_WATCH_MS_DEFAULT < PIPELINE_LEADER_WAIT_MS_MAX, 'a key end waits for the slowest member shorter than for a leader')
assert(PIPELINE_WATCH_MS_DEFAULT + PIPELINE_WATCH_ANSWER_SLACK_MS < RPC_TIMEOUT_MS_DEFAULT, 'a watch answers within an RPC timeout')
assert(CLIENT_READ_HEDGE_MS < RPC_TIMEOUT_MS_DEFAULT, 'a read asks another replica before the first one times out')
assert(CLIENT_EC_READ_ANSWER_MS < RPC_TIMEOUT_MS_DEFAULT, 'an EC read goes around a silent replica before the RPC times out')
assert(CLIENT_TIMED_OUT_NODE_MS >= RPC_TIMEOUT_MS_DEFAULT && CLIENT_TIMED_OUT_NODE_MS >= CLIENT_FAILED_NODE_MS, 'a node that cost a read its timeout is remembered at least that long')

/** A free slab unused this long is dropped from its pool (the GC gives its memory back): an
 *  idle process keeps no payload buffers, a busy one reuses them well within this time. */
export const SLAB_IDLE_MS = 10_000
/** A worker thread idle this long exits, and its heap with it (the pool starts one again on
 *  the next task, in tens of milliseconds). */
export const WORKER_IDLE_MS = 15_000
/** The datapath idle this long (no worker task, no slab released): one full GC gives the
 *  memory of dropped slabs and spent buffers back, after the pools and workers let go of it. */
export const IDLE_GC_MS = 20_000
/** The same for a worker's own heap: before the main thread's, so that the worker's views of
 *  dropped slabs are gone when it runs. */
export const WORKER_IDLE_GC_MS = 8_000
/** After an idle GC, the wait before the C heap's free pages go back to the OS (Deno on glibc,
 *  datapath/workers/malloc-trim.ts): V8 may free the dead buffers' memory on a background
 *  thread once the GC itself has returned. */
export const MALLOC_TRIM_AFTER_GC_MS = 1_000

assert(SLAB_IDLE_MS < IDLE_GC_MS, 'idle GC before slabs are dropped')
assert(WORKER_IDLE_MS < IDLE_GC_MS, 'idle GC before idle workers exit')
assert(WORKER_IDLE_GC_MS < IDLE_GC_MS, 'main idle GC before the workers collect')
