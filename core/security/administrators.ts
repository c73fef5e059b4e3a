/** @module
 * Administrators (Ozone's ozone.administrators): the users named in `o3.administrators`, who
 * may do anything a user can, for any user (S3 secrets, admin routes). A user is one by the
 * name its signature or `user` certificate proved; services never are. Pure.
 */
import type { Caller } from './caller.ts'

/** The names in an `o3.administrators` setting (comma-separated; blanks dropped). */
export function administratorsOf(setting: string): ReadonlySet<string> {
  return new Set(setting.split(',').map((s) => s.trim()).filter((s) => s.length > 0))
}

/** Whether the caller is a user named in `administrators`. */
export function isAdministrator(caller: Caller, administrators: ReadonlySet<string>): boolean {
  return caller.kind === 'user' && administrators.has(caller.user)
}
