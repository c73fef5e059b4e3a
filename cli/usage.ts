/** @module
 * The table of every `o3` command and subcommand: its arguments, its options and the help
 * text made from them. The dispatcher (main.ts, args.ts) reads only this file, so `--help`,
 * a wrong flag or a missing argument is answered before any command module (the client,
 * LMDB, the services) loads. Must not import anything that does I/O.
 */

export interface OptionSpec {
  type: 'string' | 'boolean'
  short?: string
  default?: string | boolean
  /** The value's name in the help text (`--data DIR`). */
  value?: string
  help: string
}

export interface ArgSpec {
  name: string
  optional?: boolean
  /** The last argument only: it may be given more than once (`HOST|ID...`). */
  repeats?: boolean
}

/** A command that runs: `module` names the file main.ts loads for it. */
export interface LeafCommand {
  summary: string
  args: ArgSpec[]
  options: Record<string, OptionSpec>
  module: 'local' | 'services' | 's3' | 'sh' | 'admin' | 'freon/ockg' | 'freon/ockr' | 'freon/s3kg'
  /** More lines for its --help. */
  notes?: string
}

/** A command that only chooses among subcommands (`o3 sh`, `o3 sh key`). */
export interface GroupCommand {
  summary: string
  commands: Record<string, Command>
}

export type Command = LeafCommand | GroupCommand

export function isGroup(c: Command): c is GroupCommand {
  return 'commands' in c
}

export const HELP_OPTION: Record<string, OptionSpec> = {
  help: { type: 'boolean', short: 'h', help: 'show this help and exit' },
}

/** The addresses and output format every client command (sh, admin, s3) takes. */
const CLIENT_OPTIONS: Record<string, OptionSpec> = {
  om: { type: 'string', value: 'HOST:PORT', default: process.env.O3_OM_ADDRESS ?? '127.0.0.1:9862', help: 'the OM ($O3_OM_ADDRESS, else 127.0.0.1:9862); a secure cluster: $O3_CLIENT_ACCESSKEY and $O3_CLIENT_SECRET sign the calls, $O3_CLIENT_CAFILE (+ $O3_CLIENT_CERTFILE, $O3_CLIENT_KEYFILE) for HTTPS' },
  scm: { type: 'string', value: 'HOST:PORT', default: process.env.O3_SCM_ADDRESS ?? '127.0.0.1:9860', help: 'the SCM ($O3_SCM_ADDRESS, else 127.0.0.1:9860)' },
  json: { type: 'boolean', default: false, help: 'print JSON for scripts instead of tables' },
}

/** `o3 sh volume|bucket|key addacl|removeacl|setacl|getacl` (Ozone's `ozone sh ... addacl -a user:bob:rw`). */
const ACL_NOTES = `An ACL is type:name:rights[scope]: type user, group (members from the OM's o3.groups), world
(every authenticated user) or anonymous (anyone); rights as letters r(ead) w(rite) c(reate) l(ist)
d(elete) x (read ACL) y (write ACL) a(ll) n(one); scope [ACCESS] (the default) or [DEFAULT], which
new buckets of a volume and new keys of a bucket inherit. Examples: user:bob:rw, group:dev:a[DEFAULT],
world::r. Checked only when security.enabled=1 (owners and o3.administrators have every right).`
function aclCommands(object: string, args: ArgSpec[]): Record<string, LeafCommand> {
  const acl = (help: string): Record<string, OptionSpec> => ({ acl: { type: 'string', short: 'a', value: 'ACL', help } })
  return {
    addacl: { ...client(`add an ACL to the ${object} (its rights join an ACL of the same identity and scope)`, args, 'sh', acl('the ACL to add, e.g. user:bob:rw')), notes: ACL_NOTES },
    removeacl: { ...client(`remove an ACL's rights from the ${object}`, args, 'sh', acl('the ACL to remove, e.g. user:bob:w')), notes: ACL_NOTES },
    setacl: { ...client(`replace all ACLs of the ${object}`, args, 'sh', acl('the ACLs, comma-separated, e.g. user:alice:a,group:dev:r')), notes: ACL_NOTES },
    getacl: { ...client(`show the ${object}'s ACLs`, args, 'sh'), notes: ACL_NOTES },
  }
}

function replication(byDefault: string): Record<string, OptionSpec> {
  return { replication: { type: 'string', value: 'R', help: `RATIS/THREE, RATIS/ONE or EC/<codec>-<k>-<m>-<cell>k: EC/rs-3-2-1024k, EC/rs-6-3-1024k, EC/rs-10-4-1024k, EC/xor-2-1-1024k; EC needs k + m healthy datanodes (default: ${byDefault})` } }
}

function client(summary: string, args: ArgSpec[], module: 'sh' | 'admin' | 's3', options: Record<string, OptionSpec> = {}): LeafCommand {
  return { summary, args, module, options: { ...options, ...CLIENT_OPTIONS } }
}

/** Ozone's quota flags (SetSpaceQuotaOptions, ClearSpaceQuotaOptions). */
function setQuota(namespaceOf: string): Record<string, OptionSpec> {
  return {
    'space-quota': { type: 'string', value: 'SIZE', help: 'replicated bytes it may use: 5000, 10GB, 1TB (B, KB, MB, GB, TB, PB; powers of 1024, as Ozone\'s; KiB etc. too)' },
    'namespace-quota': { type: 'string', value: 'N', help: `how many ${namespaceOf} it may hold` },
  }
}
const CLEAR_QUOTA: Record<string, OptionSpec> = {
  'space-quota': { type: 'boolean', default: false, help: 'clear the space quota' },
  'namespace-quota': { type: 'boolean', default: false, help: 'clear the namespace quota' },
}
const QUOTA_NOTES = `Space quotas count replicated bytes (a key of 1 MiB in RATIS/THREE uses 3 MiB), as Ozone's.
A quota below what is used now is refused. A volume's space quota caps the sum of its
buckets' space quotas; a volume's namespace quota counts buckets, a bucket's counts keys.`

const NODES: ArgSpec[] = [{ name: 'HOST|ID', repeats: true }]
const NODES_NOTE = 'HOST|ID is a datanode\'s host:port address or its id, as o3 admin datanode list shows them; name several to change them together.'
/** --target of `om transfer` and `scm transfer`: the example names a node of that group. */
const target = (example: string): Record<string, OptionSpec> => ({ target: { type: 'string', value: 'NODE', help: `the voter to lead (its name, e.g. ${example})` } })

const VOLUME = [{ name: '/volume' }]
const BUCKET = [{ name: '/volume/bucket' }]
const KEY = [{ name: '/volume/bucket/key' }]

function service(name: string): LeafCommand {
  return {
    summary: `run the ${name} alone, for real deployments (stops on SIGTERM or Ctrl-C)`,
    args: [],
    module: 'services',
    options: { config: { type: 'string', value: 'FILE', help: 'a JSON object of settings; O3_* environment variables override it (O3_OM_PORT sets om.port)' } },
  }
}

const S3_USER: Record<string, OptionSpec> = {
  user: { type: 'string', value: 'NAME', help: 'the user (default: $USER)' },
}

/** What every `o3 freon` generator takes, with Ozone's names and defaults (BaseFreonGenerator). */
function freonOptions(size: string): Record<string, OptionSpec> {
  return {
    'number-of-tests': { type: 'string', short: 'n', value: 'N', default: '1000', help: 'number of keys (operations) (default 1000)' },
    threads: { type: 'string', short: 't', value: 'T', default: '10', help: 'operations at once (default 10)' },
    size: { type: 'string', short: 's', value: 'SIZE', help: size },
    prefix: { type: 'string', short: 'p', value: 'P', help: 'keys are named P/0 ... P/N-1 (default: a random P, printed with the summary)' },
    'fail-at-end': { type: 'boolean', short: 'f', default: false, help: 'run every operation even after a failure (default: stop at the first)' },
  }
}

const SIZE_HELP = 'bytes per key: 10240, 4KB, 4KiB, 1MB, 64MiB (KB = 1000, KiB = 1024; default 10240)'

const FREON_NOTES = `Shows a progress bar on stderr when it is a terminal (not with --json), then a summary:
ops, failures, elapsed seconds, ops/s, MB/s, latency p50/p95/p99/max of the successful ops.
Exits 1 after the summary if any operation failed.`

function volumeBucket(bucketHelp: string): Record<string, OptionSpec> {
  return {
    volume: { type: 'string', short: 'v', value: 'VOLUME', default: 'vol1', help: 'the volume (default vol1)' },
    bucket: { type: 'string', short: 'b', value: 'BUCKET', default: 'bucket1', help: bucketHelp },
  }
}

export const COMMANDS: GroupCommand = {
  summary: 'O3, an object store with the architecture of Apache Ozone',
  commands: {
    local: {
      summary: 'run a whole cluster (SCM, OM, datanodes, S3 gateway) on this machine',
      args: [],
      module: 'local',
      options: {
        data: { type: 'string', value: 'DIR', default: './o3-data', help: 'where the data lives (default ./o3-data); kept between runs' },
        datanodes: { type: 'string', value: 'N', default: '3', help: 'number of datanodes, 1..32 (default 3)' },
        fresh: { type: 'boolean', default: false, help: 'wipe DIR first' },
        ha: { type: 'boolean', default: false, help: 'three SCMs and three OMs, each trio a Raft group (node i: DIR/scm<i>, DIR/om<i>; fixed ports + 100 (i - 1))' },
        processes: { type: 'boolean', default: false, help: 'one child process per service, PIDs in DIR/pids/<service>.pid, logs in DIR/logs' },
        'datanode-thread': { type: 'boolean', default: false, help: 'the datanodes on a worker thread of their own, beside the SCM, OM and gateway (for more than 2 cores; see bench/README.md)' },
        ports: { type: 'string', value: 'fixed|free', default: 'fixed', help: 'fixed: S3 9878 (admin 19878), SCM 9860, OM 9862, datanode n 9900+n (default); free: any free ones' },
        secure: { type: 'boolean', default: false, help: 'a secure cluster: mutual TLS between services (certificates from the SCM\'s CA), HTTPS endpoints, signed users, block tokens; writes DIR/ca.pem and the administrator admin\'s DIR/admin.pem and DIR/admin.key, and prints admin\'s key pair and the O3_CLIENT_* / AWS_* lines to paste' },
        json: { type: 'boolean', default: false, help: 'print the endpoints as JSON' },
        'outlive-parent': { type: 'boolean', default: false, help: 'keep running when the process that started it exits (a CI step that starts it in the background)' },
      },
      notes: `Writes its PID to DIR/pids/local.pid. SIGTERM or Ctrl-C stops every service it started
(with --processes, every child too) and removes the PID file; so does the exit of the process
that started it (npx, a shell script), unless --outlive-parent. Data stays in DIR: starting
again keeps every key.`,
    },
    scm: service('SCM'),
    om: service('OM'),
    datanode: service('datanode'),
    s3g: service('S3 gateway'),
    s3: {
      summary: 'S3 key pairs, as `ozone s3`',
      commands: {
        getsecret: client('create or show the user\'s S3 key pair (awsAccessKey, awsSecret)', [], 's3', S3_USER),
        revokesecret: client('revoke the user\'s S3 key pair; the key stops working at once', [], 's3', S3_USER),
      },
    },
    sh: {
      summary: 'volumes, buckets and keys, as `ozone sh`',
      commands: {
        volume: {
          summary: 'volumes',
          commands: {
            create: client('create a volume', VOLUME, 'sh', setQuota('buckets')),
            info: client('show a volume, its quotas and usage', VOLUME, 'sh'),
            list: client('list the volumes', [], 'sh'),
            delete: client('delete an empty volume', VOLUME, 'sh'),
            setquota: { ...client('set the volume\'s space and/or namespace quota', VOLUME, 'sh', setQuota('buckets')), notes: QUOTA_NOTES },
            clrquota: client('clear the volume\'s space and/or namespace quota', VOLUME, 'sh', CLEAR_QUOTA),
            ...aclCommands('volume', VOLUME),
          },
        },
        bucket: {
          summary: 'buckets',
          commands: {
            create: client('create a bucket', BUCKET, 'sh', { ...replication('the OM\'s client.replication'), ...setQuota('keys') }),
            info: client('show a bucket, its quotas and usage', BUCKET, 'sh'),
            list: client('list the buckets of a volume', VOLUME, 'sh'),
            delete: client('delete an empty bucket', BUCKET, 'sh'),
            setquota: { ...client('set the bucket\'s space and/or namespace quota', BUCKET, 'sh', setQuota('keys')), notes: QUOTA_NOTES },
            clrquota: client('clear the bucket\'s space and/or namespace quota', BUCKET, 'sh', CLEAR_QUOTA),
            ...aclCommands('bucket', BUCKET),
          },
        },
        key: {
          summary: 'keys',
          commands: {
            put: client('upload FILE as the key', [...KEY, { name: 'FILE' }], 'sh', replication('the bucket\'s')),
            get: client('download the key to FILE (written whole or not at all; into DIR/<key name> when FILE is a directory; a pipe or device is written in place)', [...KEY, { name: 'FILE' }], 'sh', {
              force: { type: 'boolean', help: 'replace FILE when it exists (as Ozone, refused without it)' },
            }),
            info: client('show a key, its blocks and their datanodes (EC: block groups, each replica with its index)', KEY, 'sh'),
            list: client('list the keys of a bucket', BUCKET, 'sh', {
              prefix: { type: 'string', value: 'P', help: 'only keys that start with P' },
              'start-after': { type: 'string', value: 'K', help: 'only keys after K (the next page)' },
              max: { type: 'string', value: 'N', help: 'at most N keys' },
            }),
            rename: client('rename the key within its bucket: NEWKEY is the new name, or the new key\'s whole /volume/bucket/key path', [...KEY, { name: 'NEWKEY' }], 'sh'),
            delete: client('delete a key', KEY, 'sh'),
            ...aclCommands('key', KEY),
          },
        },
      },
    },
    admin: {
      summary: 'the SCM\'s view of the cluster and the OM and SCM Raft groups, as `ozone admin`',
      commands: {
        datanode: {
          summary: 'datanodes',
          commands: {
            list: client('list the datanodes: health (HEALTHY, STALE, DEAD), operational state, space, pipelines, containers', [], 'admin'),
            decommission: {
              ...client('take datanodes out for good: their pipelines close, their containers are copied to other nodes, then they are DECOMMISSIONED (safe to stop)', NODES, 'admin'),
              notes: NODES_NOTE,
            },
            maintenance: {
              ...client('put datanodes in maintenance: their pipelines close, and once every container keeps maintenance.replica.minimum replicas elsewhere they are IN_MAINTENANCE and may go down without their containers being copied', NODES, 'admin', {
                'end-hours': { type: 'string', value: 'N', help: 'back IN_SERVICE after N hours, at most 8760 (a year; default 0: until recommissioned)' },
              }),
              notes: NODES_NOTE,
            },
            recommission: { ...client('put datanodes back IN_SERVICE (ends decommission or maintenance)', NODES, 'admin'), notes: NODES_NOTE },
          },
        },
        pipeline: {
          summary: 'pipelines',
          commands: {
            list: client('list the pipelines: replication, state (ALLOCATED, OPEN, CLOSED), members with the leader starred, Raft term', [], 'admin'),
            close: client('close a pipeline: its open containers close, its datanodes remove the group after scm.pipeline.destroyTimeoutMs', [{ name: 'ID' }], 'admin'),
          },
        },
        container: {
          summary: 'containers',
          commands: {
            list: client('list the containers', [], 'admin', { state: { type: 'string', value: 'S', help: 'only containers in state S (OPEN, CLOSING, QUASI_CLOSED, CLOSED)' } }),
            info: client('show a container, its health and its replicas: datanode, node state, replica state, bcsid, blocks, used bytes', [{ name: 'ID' }], 'admin'),
            report: client('containers per lifecycle state and per health state (healthy, under-, over-, mis-replicated, missing, unhealthy, QUASI_CLOSED stuck), as `ozone admin container report`', [], 'admin'),
            replicate: client('copy a CLOSED or QUASI_CLOSED container to datanode DN (an id or host:port): DN pulls it from a replica; it shows in container info once DN reports it', [{ name: 'ID' }], 'admin', {
              target: { type: 'string', value: 'DN', help: 'the datanode to copy to (required)' },
            }),
            scan: {
              ...client('scan every replica of a container now: metadata, then every chunk against its checksums; a corrupt one becomes UNHEALTHY', [{ name: 'ID' }], 'admin'),
              notes: `One row per replica: datanode, result (HEALTHY, UNHEALTHY, SKIPPED for an OPEN or CLOSING
replica, FAILED when its datanode did not answer), bytes scanned and the first error. Each
datanode reads at datanode.scanner.bytesPerSec, as its background scanner does.`,
            },
          },
        },
        safemode: { summary: 'safe mode', commands: { status: client('whether the SCM is in safe mode', [], 'admin') } },
        cert: {
          summary: 'the cluster CA (security.enabled=1)',
          commands: {
            token: {
              ...client('make a bootstrap token a new service (OM, datanode, S3 gateway) enrolls with: set it as security.bootstrapToken', [], 'admin', {
                'ttl-hours': { type: 'string', value: 'H', help: 'valid for H hours (default 24)' },
                reusable: { type: 'boolean', default: false, help: 'may enroll several services (default: one-time, spent by its first enrollment)' },
              }),
              notes: `Needs an administrator's certificate (o3.administrators): O3_CLIENT_CERTFILE and O3_CLIENT_KEYFILE
with O3_CLIENT_CAFILE, as o3 local --secure prints them. The token is printed once; the SCM
keeps it in its replicated state until it is spent or expires. A service enrolls once: later
starts use the certificate in its data folder and renew it before it expires.`,
            },
            list: client('list the enrolled services: role, id, when their certificate was issued and when it expires', [], 'admin'),
            forget: {
              ...client('let a service whose data folder (and key) is lost enroll again with a new token', [{ name: 'ROLE' }, { name: 'ID' }], 'admin'),
              notes: `ROLE is om, datanode, s3g or recon; ID as o3 admin cert list shows it. An identity enrolls
once, so a service that lost its key cannot come back under the same id until this is done.
Its old certificate stays valid until it expires: forget only an identity whose key is gone.`,
            },
            user: {
              ...client('get a user certificate (mutual TLS as that user; an administrator\'s for o3 admin) with the SCM\'s admin token', [{ name: 'NAME' }], 'admin', {
                'token-file': { type: 'string', value: 'FILE', help: 'the SCM\'s admin token (default: <scm.dir>/ca/admin-token, readable on the SCM\'s host only)' },
                out: { type: 'string', value: 'DIR', default: '.', help: 'where to write NAME.pem, NAME.key (0600) and ca.pem (default: the current folder)' },
              }),
              notes: `Then O3_CLIENT_CAFILE=DIR/ca.pem O3_CLIENT_CERTFILE=DIR/NAME.pem O3_CLIENT_KEYFILE=DIR/NAME.key
make o3 admin (and o3 sh) call as NAME; NAME counts as an administrator when it is in
o3.administrators. A user may hold several certificates; each expires after
security.certValidityMs.`,
            },
          },
        },
        om: {
          summary: 'the OM group (Raft)',
          commands: {
            roles: client('every OM of the group: node, address, LEADER/FOLLOWER/LEARNER or UNREACHABLE, term, commit and applied index', [], 'admin'),
            transfer: client('hand leadership to another OM and wait until it leads', [], 'admin', target('om2')),
            add: {
              ...client('add an OM to the running group: a learner until it has caught up, then a voter', [{ name: 'NODE' }], 'admin'),
              notes: `NODE is name@host:port:raftPort, as in om.nodes. Start the new OM first, empty, with om.bootstrap=1,
om.id=name and om.nodes listing the group and itself; it waits until this command admits it.
One server at a time; run it again after a failure and it resumes.`,
            },
            remove: client('remove an OM from the group (a leader removing itself steps down); stop it afterwards', [{ name: 'NAME' }], 'admin'),
          },
        },
        scm: {
          summary: 'the SCM group (Raft)',
          commands: {
            roles: client('every SCM of the group: node, address, LEADER/FOLLOWER or UNREACHABLE, term, commit and applied index', [], 'admin'),
            transfer: client('hand leadership to another SCM and wait until it leads', [], 'admin', target('scm2')),
          },
        },
      },
    },
    freon: {
      summary: 'load generators, as `ozone freon`',
      commands: {
        ockg: {
          summary: 'write keys with the native client (OzoneClientKeyGenerator)',
          args: [],
          module: 'freon/ockg',
          options: {
            ...freonOptions(SIZE_HELP), ...volumeBucket('the bucket (default bucket1); it and the volume are created if missing'),
            ...replication('the bucket\'s'), ...CLIENT_OPTIONS,
          },
          notes: FREON_NOTES,
        },
        ockr: {
          summary: 'read back and verify the keys ockg wrote, byte for byte (same -p)',
          args: [],
          module: 'freon/ockr',
          options: {
            ...freonOptions('every key must have this size (default: any size; each is checked against its own length)'),
            ...volumeBucket('the bucket (default bucket1)'), ...CLIENT_OPTIONS,
          },
          notes: FREON_NOTES,
        },
        s3kg: {
          summary: 'PUT objects through the S3 gateway (S3KeyGenerator)',
          args: [],
          module: 'freon/s3kg',
          options: {
            ...freonOptions(SIZE_HELP),
            bucket: { type: 'string', short: 'b', value: 'BUCKET', default: 'bucket1', help: 'the S3 bucket (default bucket1), created if missing' },
            endpoint: { type: 'string', short: 'e', value: 'URL', default: process.env.O3_S3_ENDPOINT ?? 'http://127.0.0.1:9878', help: 'the S3 gateway ($O3_S3_ENDPOINT, else o3 local\'s http://127.0.0.1:9878)' },
            'access-key': { type: 'string', value: 'ID', help: 'the S3 access key (default $AWS_ACCESS_KEY_ID; o3 s3 getsecret makes a pair)' },
            'secret-key': { type: 'string', value: 'SECRET', help: 'the S3 secret (default $AWS_SECRET_ACCESS_KEY)' },
            region: { type: 'string', value: 'REGION', help: 'the region to sign for, the gateway\'s s3g.region (default $AWS_REGION, else $AWS_DEFAULT_REGION, else us-east-1)' },
            json: CLIENT_OPTIONS.json,
          },
          notes: FREON_NOTES,
        },
      },
    },
  },
}

function synopsis(path: string[], c: LeafCommand): string {
  const args = c.args.map((a) => `${a.optional ? `[${a.name}]` : a.name}${a.repeats ? '...' : ''}`)
  return [...path, ...args, Object.keys(c.options).length > 0 ? '[options]' : ''].filter((s) => s !== '').join(' ')
}

function leaves(path: string[], c: Command): [string[], LeafCommand][] {
  if (!isGroup(c)) return [[path, c]]
  return Object.entries(c.commands).flatMap(([name, sub]) => leaves([...path, name], sub))
}

function columns(rows: [string, string][]): string {
  const width = Math.max(...rows.map(([a]) => a.length)) + 2
  return rows.map(([a, b]) => `  ${a.padEnd(width)}${b}`).join('\n')
}

function optionHelp(options: Record<string, OptionSpec>): string {
  return columns(Object.entries({ ...options, ...HELP_OPTION }).map(([name, o]) =>
    [`${o.short === undefined ? '' : `-${o.short}, `}--${name}${o.value === undefined ? '' : ` ${o.value}`}`, o.help]))
}

/** The --help text of the command at `path` (['o3', 'sh', 'key']). */
export function helpText(path: string[], c: Command): string {
  const name = path.join(' ')
  if (!isGroup(c)) {
    return `usage: ${synopsis(path, c)}\n\n${c.summary}${c.notes === undefined ? '' : `\n${c.notes}`}\n\noptions:\n${optionHelp(c.options)}`
  }
  const rows = leaves([], c).map(([sub, leaf]): [string, string] => [synopsis(sub, leaf).replace(/ \[options\]$/, ''), leaf.summary])
  return `usage: ${name} <command> ...\n\n${c.summary}\n\ncommands:\n${columns(rows)}\n\n` +
    `Run '${name} <command> --help' for the options of one. -h, --help shows this help.`
}
