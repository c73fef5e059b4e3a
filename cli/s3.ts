/** @module
 * `o3 s3 getsecret|revokesecret --user NAME`: S3 key pairs kept by the OM (Ozone's
 * `ozone s3 getsecret`). getsecret creates the pair on first call and shows it after.
 */
import { O3Client } from '../datapath/client/index.ts'
import { parse, UsageError } from './args.ts'
import { printFields, printJson } from './output.ts'
import { S3_USAGE } from './usage.ts'

export async function s3(argv: string[]): Promise<void> {
  const [verb, ...rest] = argv
  const { values } = parse(rest, { user: { type: 'string' } })
  const user = values.user ?? process.env.USER
  if (user === undefined || user === '') throw new UsageError('--user NAME is required')
  const client = new O3Client({ om: values.om, scm: values.scm })
  switch (verb) {
    case 'getsecret': {
      const s = await client.getS3Secret(user)
      if (values.json) return printJson(s)
      return printFields({ user, awsAccessKey: s.awsAccessKey, awsSecret: s.awsSecret })
    }
    case 'revokesecret': {
      const r = await client.revokeS3Secret(user)
      if (values.json) return printJson({ user, ...r })
      console.log(r.revoked > 0 ? `revoked the S3 secret of ${user}` : `${user} had no S3 secret`)
      return
    }
    default:
      throw new UsageError(`unknown command: o3 s3 ${verb ?? ''}\n${S3_USAGE}`)
  }
}
