/** @module
 * The usage text of every `o3` command, in one place so that the dispatcher loads nothing else.
 */
export const LOCAL_USAGE = 'o3 local [--data DIR] [--datanodes N] [--fresh] [--processes] [--ports fixed|free] [--json]'

export const SH_USAGE = `o3 sh volume create|info|list|delete /vol
o3 sh bucket create|info|list|delete /vol/bucket [--replication RATIS/THREE|RATIS/ONE]
o3 sh key put /vol/bucket/key FILE [--replication R]
o3 sh key get /vol/bucket/key FILE
o3 sh key info|delete /vol/bucket/key
o3 sh key list /vol/bucket [--prefix P] [--start-after K] [--max N]
o3 sh key rename /vol/bucket/key NEWKEY
  all take --om HOST:PORT, --scm HOST:PORT and --json`

export const ADMIN_USAGE = `o3 admin datanode list
o3 admin pipeline list
o3 admin container list [--state OPEN|CLOSING|CLOSED]
o3 admin container info ID
o3 admin safemode status
  all take --scm HOST:PORT and --json`

export const S3_USAGE = `o3 s3 getsecret --user NAME     create or show the user's S3 key pair (awsAccessKey, awsSecret)
o3 s3 revokesecret --user NAME  the key stops working at once
  both take --om HOST:PORT and --json`

export const USAGE = `usage: o3 <command> ...
  ${LOCAL_USAGE}
  o3 scm|om|datanode|s3g [--config FILE] one service (settings from FILE and O3_* variables)
${S3_USAGE.replace(/^/gm, '  ')}
${SH_USAGE.replace(/^/gm, '  ')}
${ADMIN_USAGE.replace(/^/gm, '  ')}`
