/** @module
 * From argv to the command to run: walks the command table (usage.ts) to a command, answers
 * -h/--help with its help text, and checks its options (node:util parseArgs, strict) and
 * positional arguments, so that no flag is ever ignored. Also the typed usage error and the
 * /volume/bucket/key path parser the client commands share. Loads no command module.
 */
import { parseArgs, type ParseArgsConfig } from 'node:util'
import { COMMANDS, HELP_OPTION, helpText, isGroup, type Command, type LeafCommand, type OptionSpec } from './usage.ts'

/** Bad command-line input: printed as one line that points to `command --help`, exit code 2. */
export class UsageError extends Error {
  override name = 'UsageError'
  constructor(message: string, public command?: string) {
    super(message)
  }
}

/** A command to run: its path (['o3', 'sh', 'key', 'put']), checked options and arguments. */
export interface Invocation {
  path: string[]
  command: LeafCommand
  values: Record<string, string | boolean | undefined>
  positionals: string[]
}

export type Resolved = { help: string } | Invocation

function isHelp(word: string | undefined): boolean {
  return word === '--help' || word === '-h'
}

function names(c: Command & { commands: Record<string, Command> }): string {
  const all = Object.keys(c.commands)
  return all.length === 1 ? all[0] : `${all.slice(0, -1).join(', ')} or ${all[all.length - 1]}`
}

/** Finds the command argv names, or the help text it asks for. Throws UsageError. */
export function resolveCommand(argv: string[]): Resolved {
  const path = ['o3']
  let c: Command = COMMANDS
  let i = 0
  // `o3 help sh key` is `o3 sh key --help`.
  const askedHelp = argv[0] === 'help'
  if (askedHelp) i++
  while (isGroup(c)) {
    const word = argv[i]
    const here = path.join(' ')
    if (word === undefined) {
      if (path.length === 1 || askedHelp) return { help: helpText(path, c) }
      throw new UsageError(`missing command for ${here}: ${names(c)}`, here)
    }
    if (isHelp(word)) return { help: helpText(path, c) }
    if (word.startsWith('-')) throw new UsageError(`unknown option ${word} for ${here} (options go after the command)`, here)
    if (!Object.hasOwn(c.commands, word)) throw new UsageError(`unknown command ${JSON.stringify(word)} for ${here}: ${names(c)}`, here)
    c = c.commands[word]
    path.push(word)
    i++
  }
  if (askedHelp) {
    if (i < argv.length) throw new UsageError(`unexpected argument ${JSON.stringify(argv[i])} for o3 help`, 'o3')
    return { help: helpText(path, c) }
  }
  return parseLeaf(path, c, argv.slice(i))
}

function parseLeaf(path: string[], c: LeafCommand, args: string[]): Resolved {
  const here = path.join(' ')
  const specs: Record<string, OptionSpec> = { ...c.options, ...HELP_OPTION }
  const options: NonNullable<ParseArgsConfig['options']> = {}
  for (const [name, o] of Object.entries(specs)) {
    // parseArgs rejects a `short` or `default` key that is present but undefined.
    options[name] = {
      type: o.type,
      ...(o.short === undefined ? {} : { short: o.short }),
      ...(o.default === undefined ? {} : { default: o.default }),
    } as NonNullable<ParseArgsConfig['options']>[string]
  }
  // A lenient pass first: --help wins over any other mistake on the line, and an unknown
  // flag is named as it was typed (strict parseArgs names it inside a long hint).
  const { tokens } = parseArgs({ args, options, strict: false, allowPositionals: true, tokens: true })
  // Only a -h or --help of its own: in a group of short flags (`-dash`, a name with a dash
  // typed without `--`) its h is no request for help, and the group's unknown flag is named.
  if (tokens.some((t) => t.kind === 'option' && t.name === 'help' && isHelp(args[t.index]))) return { help: helpText(path, c) }
  const unknown = tokens.find((t) => t.kind === 'option' && !Object.hasOwn(specs, t.name))
  if (unknown?.kind === 'option') throw new UsageError(`unknown option ${unknown.rawName} for ${here}`, here)
  let parsed
  try {
    parsed = parseArgs({ args, options, strict: true, allowPositionals: true })
  } catch (err) {
    // parseArgs' first line says what is wrong ("Option '--user <value>' argument missing"),
    // except for a value that starts with a dash, which it calls ambiguous.
    const ambiguous = /^Option '(--?[\w-]+)' argument is ambiguous/.exec((err as Error).message)
    if (ambiguous !== null) {
      const name = ambiguous[1]
      const given = args[args.indexOf(name) + 1] ?? ''
      const joined = name.startsWith('--') ? `${name}=-VALUE` : `${name}-VALUE`
      throw new UsageError(/^-\d/.test(given) ? `${name} ${given}: a negative value is not allowed for ${here}` : `${name} needs a value for ${here} (one that starts with a dash is written ${joined})`, here)
    }
    throw new UsageError(`${(err as Error).message.split('\n')[0].replace(/\.$/, '')} for ${here}`, here)
  }
  const { values, positionals } = parsed
  // An h in a group of short flags (`-fh`, `-h-vol`) is neither help nor ignored.
  if (values.help === true) {
    const group = args.find((a) => /^-[^-]/.test(a) && a.length > 2 && a.includes('h')) ?? '-h'
    throw new UsageError(`unexpected argument ${JSON.stringify(group)} for ${here}: -h asks for help on its own, and a name that starts with - goes after --`, here)
  }
  const required = c.args.filter((a) => !a.optional).length
  if (positionals.length < required) throw new UsageError(`missing ${c.args[positionals.length].name} for ${here}`, here)
  if (positionals.length > c.args.length && c.args.at(-1)?.repeats !== true) throw new UsageError(`unexpected argument ${JSON.stringify(positionals[c.args.length])} for ${here}`, here)
  return { path, command: c, values: values as Invocation['values'], positionals }
}

/** The value of a string option (its default if it has one). */
export function stringOption(inv: Invocation, name: string): string | undefined {
  const v = inv.values[name]
  return typeof v === 'string' ? v : undefined
}

/** The value of a string option the command table gives a default (--om, --data). */
export function option(inv: Invocation, name: string): string {
  const v = stringOption(inv, name)
  if (v === undefined) throw new Error(`--${name} of ${inv.path.join(' ')} has no default in the command table`)
  // An option with a default (an address, a port) is never meant empty: `--om ""` is a usage error.
  if (v.trim() === '') throw new UsageError(`--${name} needs a value`)
  if (ADDRESS_LIST_OPTIONS.has(name)) checkAddressList(name, v)
  return v
}

/** Options naming a service's addresses (a Raft group's members, comma-separated). */
const ADDRESS_LIST_OPTIONS = new Set(['om', 'scm'])
const HOST_PORT = /^(?:[\w.-]+|\[[0-9A-Fa-f:.]+\]):(\d{1,5})$/

/** host:port[,host:port...] with ports 1-65535: anything else is a usage error, not an unreachable server. */
function checkAddressList(name: string, value: string): void {
  for (const a of value.split(',').map((x) => x.trim()).filter((x) => x.length > 0)) {
    const m = HOST_PORT.exec(a)
    const port = m === null ? 0 : Number(m[1])
    if (port < 1 || port > 65535) throw new UsageError(`bad --${name} ${JSON.stringify(value)}: ${JSON.stringify(a)} is not host:port (port 1-65535); a group is host:port,host:port,...`)
  }
}

/** The range of a whole number on the command line (an id, a count): past it none is exact. */
export const SAFE_RANGE = `at most 2^53 - 1, ${Number.MAX_SAFE_INTEGER}`

export function flag(inv: Invocation, name: string): boolean {
  return inv.values[name] === true
}

/** Splits /volume/bucket/key (the key may hold slashes) into its parts. */
export function parsePath(path: string | undefined, want: 'volume' | 'bucket' | 'key'): { volume: string; bucket: string; key: string } {
  if (path === undefined) throw new UsageError(`missing path: expected /volume${want === 'volume' ? '' : '/bucket'}${want === 'key' ? '/key' : ''}`)
  const trimmed = path.replace(/^o3:\/\//, '').replace(/^\/+/, '')
  const first = trimmed.indexOf('/')
  const volume = first < 0 ? trimmed : trimmed.slice(0, first)
  const rest = first < 0 ? '' : trimmed.slice(first + 1)
  const second = rest.indexOf('/')
  const bucket = second < 0 ? rest : rest.slice(0, second)
  const key = second < 0 ? '' : rest.slice(second + 1)
  const expected = `/volume${want === 'volume' ? '' : '/bucket'}${want === 'key' ? '/key' : ''}`
  if (volume === '' || (want !== 'volume' && bucket === '') || (want === 'key' && key === '')) {
    throw new UsageError(`bad path ${JSON.stringify(path)}: expected ${expected}`)
  }
  // A path longer than the command takes names something else: `bucket delete /v/b/k` must
  // not delete /v/b (Ozone refuses it too: "Delimiters (/) not allowed in bucket name").
  const extra = want === 'volume' ? rest.replace(/\/+$/, '') : want === 'bucket' ? key.replace(/\/+$/, '') : ''
  if (extra !== '') throw new UsageError(`bad path ${JSON.stringify(path)}: expected ${expected}, not a ${want === 'volume' ? 'bucket or key' : 'key'} inside it`)
  return { volume, bucket, key }
}
