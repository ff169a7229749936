// The CLI's option parsing: `--name value`, `--name=value`, boolean flags, positionals; a missing value is an error.
import { describe, expect, it } from 'vitest';
import { parseArgs } from '../../src/cli/args.js';

describe('parseArgs', () => {
  it('reads --name value and --name=value', () => {
    expect(parseArgs(['--config', 'a.yaml', '--data-dir=/tmp/x'])).toEqual({ options: { config: 'a.yaml', 'data-dir': '/tmp/x' }, positionals: [] });
  });

  it('keeps everything after the first = (values may contain =)', () => {
    expect(parseArgs(['--aud=https://x/?a=b']).options).toEqual({ aud: 'https://x/?a=b' });
  });

  it('reads declared boolean flags without a value, and positionals in order', () => {
    expect(parseArgs(['A83627MB001', '--follow', '--data-dir', 'd', 'extra'], ['follow'])).toEqual({
      options: { follow: true, 'data-dir': 'd' },
      positionals: ['A83627MB001', 'extra'],
    });
  });

  it('refuses an option without a value, naming it', () => {
    expect(() => parseArgs(['--config'])).toThrow('option --config needs a value');
    expect(() => parseArgs(['--config', '--follow'], ['follow'])).toThrow('option --config needs a value');
  });

  it('lets a later option win', () => {
    expect(parseArgs(['--port', '1', '--port', '2']).options).toEqual({ port: '2' });
  });

  it('accepts an empty value only in the --name= form', () => {
    expect(parseArgs(['--config=']).options).toEqual({ config: '' });
  });
});

describe('parseArgs with a list of known options', () => {
  it('refuses an unknown option, naming it', () => {
    expect(() => parseArgs(['--confg', 'a.yaml'], [], ['config'])).toThrow('unknown option --confg');
    expect(() => parseArgs(['--confg=a.yaml'], [], ['config'])).toThrow('unknown option --confg');
  });

  it('accepts the known options and the boolean flags', () => {
    expect(parseArgs(['--config', 'a', '--keep-data'], ['keep-data'], ['config']).options).toEqual({ config: 'a', 'keep-data': true });
  });
});
