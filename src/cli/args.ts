// Option parsing for every nems-gateway command: node:util parseArgs in strict mode. An unknown option, an option
// without its value, a value on a flag, a repeated option or an unexpected argument is a usage error (exit 2) —
// a mistyped `--confg` must never fall back to the default configuration. Every command takes --help / -h.
import { parseArgs } from 'node:util';

export interface OptionSpec {
  readonly type: 'string' | 'boolean';
  readonly short?: string;
}

export type OptionSpecs = Readonly<Record<string, OptionSpec>>;

export interface CommandSpec<O extends OptionSpecs> {
  /** As typed after `nems-gateway`, e.g. `check-config`. */
  readonly name: string;
  /** The whole usage text, printed for --help and after a usage error. */
  readonly usage: string;
  readonly options: O;
  /** How many positional arguments the command takes (default: none). */
  readonly positionals?: { readonly min: number; readonly max: number; readonly name: string };
}

export type OptionValues<O extends OptionSpecs> = {
  -readonly [K in keyof O]?: O[K]['type'] extends 'boolean' ? true : string;
};

export interface ParsedCommand<O extends OptionSpecs> {
  readonly values: OptionValues<O>;
  readonly positionals: readonly string[];
}

/** A problem with the command line itself (as opposed to the files it names). */
export class UsageError extends Error {
  override readonly name = 'UsageError';
}

export interface CommandIo {
  readonly out: (text: string) => void;
  readonly err: (text: string) => void;
}

export const STDIO: CommandIo = {
  out: (text) => process.stdout.write(text),
  err: (text) => process.stderr.write(text),
};

const HELP = { help: { type: 'boolean', short: 'h' } } as const satisfies OptionSpecs;

/**
 * Parses `argv` for one command. Returns 'help' when --help / -h was given (anywhere); throws UsageError naming the
 * offending option otherwise.
 */
export function parseCommand<O extends OptionSpecs>(spec: CommandSpec<O>, argv: readonly string[]): ParsedCommand<O> | 'help' {
  const options = { ...spec.options, ...HELP };
  // A first, lenient pass only to word the errors (node's own messages differ between Node versions).
  const { tokens } = parseArgs({ args: [...argv], options, strict: false, allowPositionals: true, tokens: true });
  if (tokens.some((t) => t.kind === 'option' && t.name === 'help')) return 'help';
  const seen = new Set<string>();
  let positionals = 0;
  for (const token of tokens) {
    if (token.kind === 'positional') {
      positionals++;
      continue;
    }
    if (token.kind !== 'option') continue;
    const option = (options as OptionSpecs)[token.name];
    if (!option) throw new UsageError(`unknown option ${token.rawName}`);
    if (seen.has(token.name)) throw new UsageError(`option --${token.name} given twice`);
    seen.add(token.name);
    if (option.type === 'boolean') {
      if (token.inlineValue) throw new UsageError(`option --${token.name} takes no value`);
      continue;
    }
    const value = token.value;
    if (value === undefined || value === '') throw new UsageError(`option --${token.name} needs a value`);
    if (!token.inlineValue && value.startsWith('-')) {
      throw new UsageError(`option --${token.name} needs a value (write --${token.name}=${value} for a value that starts with -)`);
    }
  }
  const { min, max, name } = spec.positionals ?? { min: 0, max: 0, name: '' };
  if (positionals > max) {
    const extra = tokens.filter((t) => t.kind === 'positional')[max];
    throw new UsageError(`unexpected argument '${extra?.kind === 'positional' ? extra.value : ''}'`);
  }
  if (positionals < min) throw new UsageError(`missing <${name}>`);
  // The strict parse is the one whose result is used; anything the first pass let through still fails here.
  let parsed: ReturnType<typeof parseArgs>;
  try {
    parsed = parseArgs({ args: [...argv], options, strict: true, allowPositionals: max > 0 });
  } catch (err) {
    throw new UsageError((err as Error).message.split('\n')[0]!);
  }
  const { help: _help, ...values } = parsed.values;
  return { values: values as OptionValues<O>, positionals: parsed.positionals };
}

/**
 * Parses one command's arguments. --help prints the usage and gives exit code 0; a usage error prints
 * `nems-gateway <command>: <problem>` and the usage to stderr and gives exit code 2. A number means: return it.
 */
export function readCommandArgs<O extends OptionSpecs>(spec: CommandSpec<O>, argv: readonly string[], io: CommandIo = STDIO): ParsedCommand<O> | number {
  try {
    const parsed = parseCommand(spec, argv);
    if (parsed !== 'help') return parsed;
    io.out(spec.usage);
    return 0;
  } catch (err) {
    if (!(err instanceof UsageError)) throw err;
    return usageError(spec, err.message, io);
  }
}

/** Reports a bad command line (e.g. an option value out of range) the way a parse error is reported: exit code 2. */
export function usageError(spec: CommandSpec<OptionSpecs>, problem: string, io: CommandIo = STDIO): number {
  io.err(`nems-gateway ${spec.name}: ${problem}\n${spec.usage}`);
  return 2;
}
