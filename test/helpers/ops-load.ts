// A bounded background load for reload and cluster tests: several keep-alive connections plus a loop that opens
// a new TLS connection per request, all sending the same valid request, recording every status and error.
import { Agent } from 'node:https';
import { send, type ClientName, type Pki } from './e2e.js';

export interface LoadReport {
  readonly sent: number;
  readonly statuses: Readonly<Record<number, number>>;
  readonly errors: readonly string[];
  /** Requests sent on the keep-alive connections, and how many distinct connections carried them. */
  readonly keepAliveRequests: number;
  readonly keepAliveSockets: number;
}

export interface LoadOptions {
  readonly client: ClientName;
  readonly path: string;
  /** Fresh headers for each request (e.g. a newly minted JWT). */
  readonly headers: () => Record<string, string>;
  readonly keepAliveConnections?: number;
  /** Hard cap on requests, whatever happens. */
  readonly maxRequests?: number;
  /** Pause between requests on one loop. */
  readonly pauseMs?: number;
}

export interface RunningLoad {
  /** Requests answered so far. */
  readonly sent: number;
  /** Stops the loops and waits for the requests in progress. */
  stop(): Promise<LoadReport>;
}

export function startLoad(pki: Pki, port: number, opts: LoadOptions): RunningLoad {
  const maxRequests = opts.maxRequests ?? 400;
  const pauseMs = opts.pauseMs ?? 5;
  const statuses: Record<number, number> = {};
  const errors: string[] = [];
  let sent = 0;
  let keepAliveRequests = 0;
  const sockets = new Set<unknown>();
  let started = 0;
  let stopping = false;
  const agents = Array.from({ length: opts.keepAliveConnections ?? 3 }, () => new Agent({ keepAlive: true, maxSockets: 1 }));

  const loop = async (agent: Agent | false) => {
    while (!stopping && started < maxRequests) {
      started++;
      try {
        const res = await send(pki, port, { client: opts.client, path: opts.path, headers: opts.headers(), ...(agent ? { agent } : {}) });
        statuses[res.status] = (statuses[res.status] ?? 0) + 1;
        if (agent) keepAliveRequests++;
      } catch (err) {
        errors.push((err as NodeJS.ErrnoException).code ?? (err as Error).message);
      }
      sent++;
      await new Promise((r) => setTimeout(r, pauseMs));
    }
  };
  // Keep-alive reuse is observed on the agents' sockets.
  for (const agent of agents) agent.on('free', (socket: unknown) => sockets.add(socket));
  const loops = [...agents.map((a) => loop(a)), loop(false)];
  return {
    get sent() {
      return sent;
    },
    async stop() {
      stopping = true;
      await Promise.all(loops);
      for (const agent of agents) agent.destroy();
      return { sent, statuses, errors, keepAliveRequests, keepAliveSockets: sockets.size };
    },
  };
}
