// The buffered stdout destination (logging.bufferBytes / flushIntervalMs), in a real child process writing to a
// real pipe: lines held in the buffer reach stdout on the timer, on process.exit and on an uncaught exception.
import { spawn } from 'node:child_process';
import { resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { describe, expect, it } from 'vitest';

const LOGGER = pathToFileURL(resolve(import.meta.dirname, '../../dist/src/observability/logger.js')).href;

/** Runs `body` in a child with a logger on the buffered stdout; resolves with stdout, the times lines arrived and the exit code. */
function runChild(body: string, opts: { bufferBytes: number; flushIntervalMs: number }) {
  const script = `
    const { createLogger, stdoutDestination } = await import(${JSON.stringify(LOGGER)});
    const log = createLogger('info', stdoutDestination(${JSON.stringify(opts)}));
    const started = Date.now();
    ${body}`;
  const child = spawn(process.execPath, ['--input-type=module', '-e', script], { stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  const arrivals: number[] = [];
  const started = Date.now();
  child.stdout.on('data', (c: Buffer) => {
    stdout += c.toString();
    arrivals.push(Date.now() - started);
  });
  return new Promise<{ stdout: string; arrivals: number[]; exitedAt: number; code: number | null }>((done) => {
    const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
    child.on('close', (code) => {
      clearTimeout(timer);
      done({ stdout, arrivals, exitedAt: Date.now() - started, code });
    });
  });
}

const lines = (stdout: string) => stdout.split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as { msg: string });

describe('buffered stdout log destination', () => {
  it('holds lines below bufferBytes and writes them on the flush timer, while the process keeps running', async () => {
    const { stdout, arrivals, exitedAt, code } = await runChild(
      `log.info('first'); log.info('second');
       // Stay alive well past the flush interval.
       setTimeout(() => process.exit(0), 1500);`,
      { bufferBytes: 8000, flushIntervalMs: 200 },
    );
    expect(code).toBe(0);
    expect(lines(stdout).map((l) => l.msg)).toEqual(['first', 'second']);
    // Both lines came in one write, on the 200 ms timer: about 1.3 s before the process exited (however slowly the
    // child started).
    expect(arrivals.length).toBe(1);
    expect(exitedAt - arrivals[0]!).toBeGreaterThan(800);
  });

  it('writes what is held when the process exits, normally or on an uncaught exception', async () => {
    const exited = await runChild(`log.info('a'); log.info('b'); process.exit(3);`, { bufferBytes: 8000, flushIntervalMs: 60_000 });
    expect(exited.code).toBe(3);
    expect(lines(exited.stdout).map((l) => l.msg)).toEqual(['a', 'b']);
    const crashed = await runChild(`log.info('before the crash'); setTimeout(() => { throw new Error('boom'); }, 10);`, { bufferBytes: 8000, flushIntervalMs: 60_000 });
    expect(crashed.code).toBe(1);
    expect(lines(crashed.stdout).map((l) => l.msg)).toEqual(['before the crash']);
  });

  it('writes each line at once when bufferBytes is 0', async () => {
    const { stdout, code } = await runChild(
      `log.info('now'); setTimeout(() => { process.stdout.write('marker\\n'); process.exit(0); }, 100);`,
      { bufferBytes: 0, flushIntervalMs: 60_000 },
    );
    expect(code).toBe(0);
    expect(stdout.indexOf('"now"')).toBeGreaterThanOrEqual(0);
    expect(stdout.indexOf('"now"')).toBeLessThan(stdout.indexOf('marker'));
  });
});
