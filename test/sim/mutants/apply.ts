/** @module
 * Builds a planted-bug copy of the compiled Raft core: copies dist/core/raft (and the
 * assert module it imports) to a temporary folder, applies one search/replace patch from
 * mutants.json (whitespace runs in `search` match any whitespace, since the patch is
 * applied to tsc's output) and imports the copy. The copy is removed afterwards.
 * An OM mutant (`om: true`) or a pipeline mutant (`pipeline: true`), its file a path under
 * dist/, is planted in a copy of that file's folder made beside it, so that its imports of
 * the rest of dist/ stay as they are.
 */
import { cpSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { basename, dirname, join } from 'node:path'
import { pathToFileURL } from 'node:url'
import { assert } from '../../../core/assert.ts'
import type { RaftModule } from '../simulator.ts'
import { realOm, type OmModules } from '../om.ts'
import type { PipelineModules } from '../pipeline-replica.ts'

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
  /** A bug in a pipeline's state machine (datapath/datanode/pipeline or the simulator's replica model, `file` relative to dist/): its seeds run `--pipeline`. */
  readonly pipeline?: boolean
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

/**
 * Copies the folder of the mutant's file (under dist/) beside it and plants the bug there; the
 * loader imports a module of dist/ from the copy when it is in that folder, so that its
 * imports of the rest of dist/ stay as they are.
 */
function plantInCopy(mutant: Mutant): { load: <T>(path: string) => Promise<T>; dispose: () => void } {
  const folder = dirname(new URL(mutant.file, distRoot).pathname)
  const copy = mkdtempSync(`${folder}-mutant-`)
  // Not the test files: a test run that walks dist/test meanwhile must not find a copy.
  for (const name of readdirSync(folder)) if (name.endsWith('.js') && !name.endsWith('.test.js')) cpSync(join(folder, name), join(copy, name))
  plant(mutant, join(copy, basename(mutant.file)))
  const load = async <T>(path: string): Promise<T> => {
    const inCopy = dirname(new URL(path, distRoot).pathname) === folder
    return (await import(pathToFileURL(inCopy ? join(copy, basename(path)) : new URL(path, distRoot).pathname).href)) as T
  }
  return { load, dispose: () => rmSync(copy, { recursive: true, force: true }) }
}

/** Copies the folder of the OM mutant's file beside it, plants the bug there, and returns the OM code with it. */
export async function buildOmMutant(mutant: Mutant): Promise<{ om: OmModules; dispose: () => void }> {
  assert(mutant.om === true, `mutant ${mutant.name} is an OM mutant`)
  const { load, dispose } = plantInCopy(mutant)
  const requests = await load<{ omRequests: OmModules['omRequests'] }>('control/om/requests/index.js')
  const ha = await load<{ applyEntry: OmModules['applyEntry']; refuseEntry: OmModules['refuseEntry']; encodeEntry: OmModules['encodeEntry']; RetryCache: OmModules['RetryCache'] }>('control/ha/replicated-service.js')
  const om: OmModules = { ...realOm, omRequests: requests.omRequests, applyEntry: ha.applyEntry, refuseEntry: ha.refuseEntry, encodeEntry: ha.encodeEntry, RetryCache: ha.RetryCache }
  return { om, dispose }
}

/** Plants a pipeline mutant (the commit rule, the entry codec or the simulator's replica model) and returns the pipeline modules with it. */
export async function buildPipelineMutant(mutant: Mutant): Promise<{ pipeline: PipelineModules; dispose: () => void }> {
  assert(mutant.pipeline === true, `mutant ${mutant.name} is a pipeline mutant`)
  const { load, dispose } = plantInCopy(mutant)
  const chunks = await load<Pick<PipelineModules, 'blockChunks'>>('datapath/datanode/pipeline/block-chunks.js')
  const entries = await load<Pick<PipelineModules, 'encodeEntry' | 'decodeEntry'>>('datapath/datanode/pipeline/entries.js')
  const replica = await load<{ PipelineReplica: PipelineModules['Replica'] }>('test/sim/pipeline-replica.js')
  return { pipeline: { blockChunks: chunks.blockChunks, encodeEntry: entries.encodeEntry, decodeEntry: entries.decodeEntry, Replica: replica.PipelineReplica }, dispose }
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
export async function buildNamedMutant(name: string, om?: boolean, pipeline?: boolean): Promise<{ raft?: RaftModule; om?: OmModules; pipeline?: PipelineModules }> {
  const mutant = loadMutants().find((m) => m.name === name)
  if (mutant === undefined) throw new RangeError(`Cannot run sim: no mutant named ${name}`)
  if (om !== undefined && mutant.om === true !== om) throw new RangeError(`Cannot run sim: mutant ${name} ${mutant.om === true ? 'needs' : 'does not run with'} --om`)
  if (pipeline !== undefined && mutant.pipeline === true !== pipeline) throw new RangeError(`Cannot run sim: mutant ${name} ${mutant.pipeline === true ? 'needs' : 'does not run with'} --pipeline`)
  if (mutant.pipeline === true) {
    const built = await buildPipelineMutant(mutant)
    process.on('exit', built.dispose)
    return { pipeline: built.pipeline }
  }
  if (mutant.om === true) {
    const built = await buildOmMutant(mutant)
    process.on('exit', built.dispose)
    return { om: built.om }
  }
  const built = await buildMutant(mutant)
  process.on('exit', built.dispose)
  return { raft: built.raft }
}
