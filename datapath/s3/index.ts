/** @module
 * The S3 gateway (Ozone's s3gateway) on port 9878: S3 REST calls turned into native-client
 * calls, bodies streamed both ways.
 *
 * Steps for a caller (`o3 s3g`, `o3 local`):
 * 1. `const s3g = new S3Gateway({ config, omAddress, scmAddress, port?, domain?, region?, identity? })`
 *    (port 0 picks a free one; `domain` enables virtual-hosted-style `bucket.<domain>`; HTTPS
 *    with s3g.https=1 and s3g.https.cert/key files, or with `identity`'s cluster certificate
 *    when security.enabled=1).
 * 2. `await s3g.start()`; `s3g.endpoint` is the URL to give clients (https:// when TLS); `GET /prom` and
 *    `GET /health` answer on `s3g.adminAddress` (port 19878, `adminPort` option).
 * 3. Give users key pairs: `client.getS3Secret(user)` → `{ awsAccessKey, awsSecret }` (stored
 *    in the OM's s3SecretTable; `revokeS3Secret(user)` stops the key at once).
 * 4. `await s3g.stop()`.
 *
 * S3 buckets are buckets of volume `s3v` (created on first use), owned by the user whose key
 * created them; multipart parts live in volume `s3v-multipart` until completed.
 * Clients: `aws --endpoint-url http://127.0.0.1:9878 s3 ls` with AWS_ACCESS_KEY_ID,
 * AWS_SECRET_ACCESS_KEY and AWS_DEFAULT_REGION=us-east-1 set.
 */
export { S3Gateway, type S3GatewayOptions } from './gateway.ts'
export { S3_VOLUME, MULTIPART_VOLUME } from './context.ts'
export { servesHttps } from './https.ts'
