/** @module
 * Builds a planted-bug copy of the compiled Raft core: copies dist/core/raft (and the
 * assert module it imports) to a temporary folder, applies one search/replace patch from
 * mutants.json (whitespace runs in `search` match any whitespace, since the patch is
 * applied to tsc's output) and imports the copy. The copy is removed afterwards.
 * An OM mutant (`om: true`, its file a path under dist/) is planted in a copy of that
 * file's folder made beside it, so that its imports of the rest of dist/ stay as they are.
 */
import { cpSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { basename, dirname, join } from 'node:path'
import { pathToFileURL } from 'node:url'
import { assert } from '../../../core/assert.ts'
import type { RaftModule } from '../simulator.ts'
import { realOm, type OmModules } from '../om.ts'

export interface Mutant {
  readonly name: string
  readonly why: string
  readonly file: string
  readonly search: string
  readonly replace: string
  /** The first seed that caught it in `npm run sim:mutants` (a regression test in npm test); 0 when only a script does. */
  readonly killedBySeed: number
  /** A test/core/raft/testdata script whose recorded output the mutant breaks, for a bug no schedule was seen to reach. */
  readonly killedByScript?: string
  /** Its seeds run with fsyncs that lie (`npm run sim -- --lost-fsync`): the bug is in the recovery from them. */
  readonly lostFsync?: boolean
  /** A bug in the OM (control/om/requests or control/ha, `file` relative to dist/): its seeds run `--om`. */
  readonly om?: boolean
}

const distCore = new URL('../../../core/', import.meta.url)

export function loadMutants(): Mutant[] {
  // mutants.json lives in the source tree beside this file's source (test/sim/mutants/).
  const path = new URL('../../../../test/sim/mutants/mutants.json', import.meta.url)
  return JSON.parse(readFileSync(path, 'utf8')) as Mutant[]
}

function pattern(search: string): RegExp {
  const escaped = search.trim().split(/\s+/).map((part) => part.replace(/[.*+?^${}()|[\]\\]/g, '\\$&'))
  return new RegExp(escaped.join('\\s+'), 'g')
}

function plant(mutant: Mutant, file: string): void {
  const source = readFileSync(file, 'utf8')
  const re = pattern(mutant.search)
  const hits = source.match(re)?.length ?? 0
  assert(hits === 1, `mutant ${mutant.name}: its search text occurs ${hits} times in ${mutant.file}, not once`)
  writeFileSync(file, source.replace(re, () => mutant.replace))
}

const distRoot = new URL('../../../', import.meta.url)

/** Copies the folder of the OM mutant's file beside it, plants the bug there, and returns the OM code with it. */
export async function buildOmMutant(mutant: Mutant): Promise<{ om: OmModules; dispose: () => void }> {
  assert(mutant.om === true, `mutant ${mutant.name} is an OM mutant`)
  const folder = dirname(new URL(mutant.file, distRoot).pathname)
  const copy = mkdtempSync(`${folder}-mutant-`)
  for (const name of readdirSync(folder)) if (name.endsWith('.js')) cpSync(join(folder, name), join(copy, name))
  plant(mutant, join(copy, basename(mutant.file)))
  const load = async <T>(path: string): Promise<T> => {
    const inCopy = dirname(new URL(path, distRoot).pathname) === folder
    return (await import(pathToFileURL(inCopy ? join(copy, basename(path)) : new URL(path, distRoot).pathname).href)) as T
  }
  const requests = await load<{ omRequests: OmModules['omRequests'] }>('control/om/requests/index.js')
  const ha = await load<{ applyEntry: OmModules['applyEntry']; refuseEntry: OmModules['refuseEntry']; encodeEntry: OmModules['encodeEntry']; RetryCache: OmModules['RetryCache'] }>('control/ha/replicated-service.js')
  const om: OmModules = { ...realOm, omRequests: requests.omRequests, applyEntry: ha.applyEntry, refuseEntry: ha.refuseEntry, encodeEntry: ha.encodeEntry, RetryCache: ha.RetryCache }
  return { om, dispose: () => rmSync(copy, { recursive: true, force: true }) }
}

/** Copies the core, plants `mutant`, and returns the patched module with a cleanup function. */
export async function buildMutant(mutant: Mutant): Promise<{ raft: RaftModule; dispose: () => void }> {
  const dir = mkdtempSync(join(tmpdir(), `o3-mutant-${mutant.name}-`))
  const raftDir = join(dir, 'core', 'raft')
  cpSync(new URL('assert.js', distCore), join(dir, 'core', 'assert.js'))
  for (const name of readdirSync(new URL('raft/', distCore))) {
    if (name.endsWith('.js')) cpSync(new URL(`raft/${name}`, distCore), join(raftDir, name))
  }
  plant(mutant, join(raftDir, mutant.file))
  const raft = (await import(pathToFileURL(join(raftDir, 'index.js')).href)) as RaftModule
  return { raft, dispose: () => rmSync(dir, { recursive: true, force: true }) }
}

/**
 * Builds the mutant named `name` for a process that runs seeds with it (the sim CLI and its
 * worker threads): its Raft core or its OM code, whichever it plants a bug in, removed when
 * the process exits. `om`, when given, is whether the seeds run `--om`; a mutant of the other
 * kind is refused before anything is built.
 */
export async function buildNamedMutant(name: string, om?: boolean): Promise<{ raft?: RaftModule; om?: OmModules }> {
  const mutant = loadMutants().find((m) => m.name === name)
  if (mutant === undefined) throw new RangeError(`Cannot run sim: no mutant named ${name}`)
  if (om !== undefined && mutant.om === true !== om) throw new RangeError(`Cannot run sim: mutant ${name} ${mutant.om === true ? 'needs' : 'does not run with'} --om`)
  if (mutant.om === true) {
    const built = await buildOmMutant(mutant)
    process.on('exit', built.dispose)
    return { om: built.om }
  }
  const built = await buildMutant(mutant)
  process.on('exit', built.dispose)
  return { raft: built.raft }
}
