// A real redis-server (Debian package `redis-server`, installed by .ci/run) for the shared rate-limit tests:
// loopback only, an ephemeral port, no persistence, its own temporary folder. It can be killed and started again
// on the same port, as a Redis that went away and came back.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createConnection } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { findExternalTool } from '../observability/helpers/external-tool.js';
import { closedPort } from './ops-admin.js';

export const redisServerTool = findExternalTool('redis-server', 'apt-get install redis-server');

export interface TestRedis {
  readonly port: number;
  readonly url: string;
  /** SIGKILL: no goodbye to clients, as a crashed or partitioned Redis. */
  kill(): Promise<void>;
  /** Starts it again on the same port (empty: nothing was persisted). */
  restart(): Promise<void>;
  stop(): Promise<void>;
}

/** Resolves once a PING on the port is answered with PONG. */
async function waitForPong(port: number, child: ChildProcess, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (child.exitCode !== null) throw new Error(`redis-server exited with ${child.exitCode}`);
    const pong = await new Promise<boolean>((resolve) => {
      const socket = createConnection({ host: '127.0.0.1', port }, () => socket.write('PING\r\n'));
      socket.setTimeout(500, () => socket.destroy());
      socket.once('data', (data) => {
        socket.destroy();
        resolve(data.toString().startsWith('+PONG'));
      });
      socket.once('error', () => resolve(false));
      socket.once('close', () => resolve(false));
    });
    if (pong) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`redis-server did not answer on port ${port} within ${timeoutMs} ms`);
}

/** `debugCommand`: allow DEBUG SLEEP from loopback clients, to make Redis stall on purpose. */
export async function startTestRedis(opts: { debugCommand?: boolean } = {}): Promise<TestRedis> {
  const binary = redisServerTool.require();
  const dir = mkdtempSync(join(tmpdir(), 'nems-redis-'));
  let child: ChildProcess | undefined;
  let port = 0;
  let log = '';
  const launch = async () => {
    const proc = spawn(binary, [
      '--bind', '127.0.0.1', '--port', String(port), '--save', '', '--appendonly', 'no', '--dir', dir,
      '--protected-mode', 'yes', '--daemonize', 'no', '--loglevel', 'warning',
      ...(opts.debugCommand ? ['--enable-debug-command', 'local'] : []),
    ], { stdio: ['ignore', 'pipe', 'pipe'] });
    proc.stdout!.on('data', (c: Buffer) => (log = (log + c.toString()).slice(-4000)));
    proc.stderr!.on('data', (c: Buffer) => (log = (log + c.toString()).slice(-4000)));
    child = proc;
    try {
      await waitForPong(port, proc);
    } catch (err) {
      proc.kill('SIGKILL');
      throw new Error(`${(err as Error).message}; log: ${log}`);
    }
  };
  // The port is free when chosen; another process could take it before redis-server does, so try a few.
  for (let attempt = 0; ; attempt++) {
    port = await closedPort();
    try {
      await launch();
      break;
    } catch (err) {
      if (attempt >= 4) throw err;
    }
  }
  const killNow = () =>
    new Promise<void>((resolve) => {
      const proc = child;
      if (!proc || proc.exitCode !== null || proc.signalCode !== null) return resolve();
      proc.once('exit', () => resolve());
      proc.kill('SIGKILL');
    });
  return {
    port,
    url: `redis://127.0.0.1:${port}/0`,
    kill: killNow,
    restart: launch,
    async stop() {
      await killNow();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
