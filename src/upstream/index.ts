// Picks the Upstream implementation named by config.upstream.kind. The pipeline never sees which one it got.
import type { Logger } from 'pino';
import type { Config } from '../config/schema.js';
import { startEchoServer, type EchoServer } from './echo-server.js';
import { HttpProxyForwarder } from './http-proxy-forwarder.js';
import type { Upstream } from './types.js';
import { UndiciForwarder } from './undici-forwarder.js';

export interface UpstreamHandle {
  readonly upstream: Upstream;
  /** Extra things to stop with the upstream (e.g. the in-process echo server). */
  close(): Promise<void>;
}

export function createHttpForwarder(config: Config['upstream']): Upstream {
  return config.engine === 'http-proxy' ? new HttpProxyForwarder(config) : new UndiciForwarder(config);
}

export async function createUpstream(config: Config, logger: Logger, embedded?: () => Promise<UpstreamHandle>): Promise<UpstreamHandle> {
  switch (config.upstream.kind) {
    case 'http': {
      const upstream = createHttpForwarder(config.upstream);
      logger.info({ upstream: redactUrl(config.upstream.url!), engine: config.upstream.engine }, 'forwarding to a remote NEMS');
      return { upstream, close: () => upstream.close() };
    }
    case 'echo': {
      const echo: EchoServer = await startEchoServer('127.0.0.1', 0);
      const upstream = createHttpForwarder({ ...config.upstream, url: echo.url });
      logger.info({ upstream: echo.url }, 'forwarding to the in-process loopback echo upstream');
      return {
        upstream,
        close: async () => {
          await upstream.close();
          await echo.close();
        },
      };
    }
    case 'embedded': {
      if (!embedded) throw new Error('upstream.kind embedded needs the embedded NEMS core');
      return embedded();
    }
  }
}

/** Never log credentials that may be embedded in a URL (user info, query parameters such as API keys). */
export function redactUrl(url: string): string {
  try {
    const u = new URL(url);
    u.username = '';
    u.password = '';
    u.search = '';
    u.hash = '';
    return u.toString();
  } catch {
    return '[invalid url]';
  }
}
