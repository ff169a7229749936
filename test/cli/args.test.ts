// The CLI's option parsing (node:util parseArgs, strict): `--name value`, `--name=value`, flags, positionals; an
// unknown option, a missing value, a value on a flag, a repeated option or an unexpected argument is a usage error.
import { describe, expect, it } from 'vitest';
import { parseCommand, readCommandArgs, type CommandSpec, type OptionSpecs } from '../../src/cli/args.js';

const SPEC = {
  name: 'demo',
  usage: 'usage: nems-gateway demo [--config F] [--keep-data]\n',
  options: { config: { type: 'string' }, 'data-dir': { type: 'string' }, 'keep-data': { type: 'boolean' } },
} as const satisfies CommandSpec<OptionSpecs>;

const WITH_POSITIONAL = { ...SPEC, name: 'mailbox', positionals: { min: 1, max: 1, name: 'mailbox-id' } } as const;

describe('parseCommand', () => {
  it('reads --name value, --name=value and flags', () => {
    expect(parseCommand(SPEC, ['--config', 'a.yaml', '--data-dir=/tmp/x', '--keep-data'])).toEqual({
      values: { config: 'a.yaml', 'data-dir': '/tmp/x', 'keep-data': true },
      positionals: [],
    });
  });

  it('keeps everything after the first = (values may contain =)', () => {
    expect(parseCommand({ ...SPEC, options: { aud: { type: 'string' } } }, ['--aud=https://x/?a=b'])).toEqual({ values: { aud: 'https://x/?a=b' }, positionals: [] });
  });

  it('takes the declared positionals, and a value starting with - in the --name=value form', () => {
    expect(parseCommand(WITH_POSITIONAL, ['A83627MB001', '--config=-odd.yaml'])).toEqual({ values: { config: '-odd.yaml' }, positionals: ['A83627MB001'] });
  });

  it.each([
    [['--confg', 'a.yaml'], 'unknown option --confg'],
    [['--confg=a.yaml'], 'unknown option --confg'],
    [['-x'], 'unknown option -x'],
    [['--config'], 'option --config needs a value'],
    [['--config='], 'option --config needs a value'],
    [['--config', '--keep-data'], 'option --config needs a value'],
    [['--keep-data=yes'], 'option --keep-data takes no value'],
    [['--config', 'a', '--config', 'b'], 'option --config given twice'],
    [['stray'], "unexpected argument 'stray'"],
  ])('refuses %j: %s', (argv, message) => {
    expect(() => parseCommand(SPEC, argv)).toThrow(message);
  });

  it('refuses a missing or an extra positional', () => {
    expect(() => parseCommand(WITH_POSITIONAL, [])).toThrow('missing <mailbox-id>');
    expect(() => parseCommand(WITH_POSITIONAL, ['a', 'b'])).toThrow("unexpected argument 'b'");
  });

  it('answers help for --help or -h anywhere, even beside a bad option', () => {
    expect(parseCommand(SPEC, ['--help'])).toBe('help');
    expect(parseCommand(SPEC, ['--config', 'a', '-h'])).toBe('help');
    expect(parseCommand(WITH_POSITIONAL, ['--bogus', '--help'])).toBe('help');
  });
});

describe('readCommandArgs', () => {
  const run = (argv: string[]) => {
    let out = '';
    let err = '';
    const result = readCommandArgs(SPEC, argv, { out: (t) => (out += t), err: (t) => (err += t) });
    return { result, out, err };
  };

  it('prints the usage to stdout and gives exit code 0 for --help', () => {
    expect(run(['--help'])).toEqual({ result: 0, out: SPEC.usage, err: '' });
  });

  it('prints the problem and the usage to stderr and gives exit code 2 for a usage error', () => {
    expect(run(['--confg', 'x'])).toEqual({ result: 2, out: '', err: `nems-gateway demo: unknown option --confg\n${SPEC.usage}` });
  });

  it('returns the parsed arguments otherwise', () => {
    expect(run(['--config', 'x']).result).toEqual({ values: { config: 'x' }, positionals: [] });
  });
});
