/** @module
 * `o3 s3 getsecret|revokesecret --user NAME`: S3 key pairs kept by the OM (Ozone's
 * `ozone s3 getsecret`). getsecret creates the pair on first call and shows it after.
 */
import { clientSecurity } from './client-security.ts'
import { O3Client } from '../datapath/client/index.ts'
import { flag, option, stringOption, UsageError, type Invocation } from './args.ts'
import { printFields, printJson } from './output.ts'

/** Runs `o3 s3 VERB`; args.ts has checked its options and arguments. */
export async function s3(inv: Invocation): Promise<void> {
  const verb = inv.path[2]
  const user = stringOption(inv, 'user') ?? process.env.USER
  if (user === undefined || user === '') throw new UsageError('--user NAME is required (no $USER to default to)')
  const client = new O3Client({ om: option(inv, 'om'), scm: option(inv, 'scm'), ...clientSecurity() })
  const json = flag(inv, 'json')
  switch (verb) {
    case 'getsecret': {
      const s = await client.getS3Secret(user)
      if (json) return printJson(s)
      return printFields({ user, awsAccessKey: s.awsAccessKey, awsSecret: s.awsSecret })
    }
    case 'revokesecret': {
      const r = await client.revokeS3Secret(user)
      if (json) return printJson({ user, ...r })
      console.log(r.revoked > 0 ? `revoked the S3 secret of ${user}` : `${user} had no S3 secret`)
      return
    }
    default:
      throw new Error(`o3 s3 ${verb} is in the command table but has no handler`)
  }
}
