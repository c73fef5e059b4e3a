/** @module
 * The part of s3rver's API (a JavaScript package without types) that bench/s3.ts uses.
 */
declare module 's3rver' {
  export interface S3rverOptions {
    address?: string
    port?: number
    silent?: boolean
    directory?: string
    configureBuckets?: { name: string }[]
  }
  export default class S3rver {
    constructor(options: S3rverOptions)
    run(): Promise<{ address: string; port: number }>
    close(): Promise<void>
  }
}
