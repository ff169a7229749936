// The shared token-bucket store (rateLimits.store: redis): the rate-limit stage's buckets, with the same keys
// (ASID or endpoint FQDN, and the NEMS operation) and the same meaning as the memory store, kept in Redis so every
// worker and replica draws on one budget. One Lua script reads, refills, takes and writes a bucket atomically,
// with Redis's own clock (TIME), so processes whose clocks differ still agree.
//
// Failure is routine, not fatal: every call is time-boxed (commandTimeoutMs), nothing is queued while Redis is
// away (enableOfflineQueue: false answers at once), and a decision Redis cannot make is made by
// rateLimits.onStoreError — local (this process's own buckets), allow or deny — counted in
// nems_gateway_rate_limit_store_fallbacks_total and shown in /readyz. After a timeout Redis is not asked again for
// retryIntervalMs, so a slow Redis does not add its timeout to every request. Only bucket keys (registered ASIDs
// or endpoint FQDNs, and an operation name) and token counts are sent: never an NHS number, token or header value.
import { readFileSync } from 'node:fs';
import { Redis, type RedisOptions } from 'ioredis';
import type { Logger } from 'pino';
import type { RateLimitRule, RedisStoreConfig } from '../config/schema.js';
import type { BucketOutcome, TokenBucketStore } from './stages/rate-limit.js';

/**
 * KEYS[1] the bucket; ARGV[1] tokens per second, ARGV[2] burst. Returns {1, whole tokens left} or
 * {0, seconds until a token}. A bucket refilled to the burst is the same as no bucket, so it expires then.
 */
export const TAKE_TOKEN_SCRIPT = `
if redis.replicate_commands then redis.replicate_commands() end
local rate = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local time = redis.call('TIME')
local now = tonumber(time[1]) * 1000 + tonumber(time[2]) / 1000
local state = redis.call('HMGET', KEYS[1], 'tokens', 'at')
local tokens = tonumber(state[1])
local at = tonumber(state[2])
if tokens == nil or at == nil then
  tokens = burst
else
  local elapsed = now - at
  if elapsed < 0 then elapsed = 0 end
  tokens = math.min(burst, tokens + elapsed * rate / 1000)
end
local allowed = 0
if tokens >= 1 then
  tokens = tokens - 1
  allowed = 1
end
local fullInMs = math.ceil((burst - tokens) * 1000 / rate)
if fullInMs < 1 then
  redis.call('DEL', KEYS[1])
else
  redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'at', tostring(now))
  redis.call('PEXPIRE', KEYS[1], fullInMs)
end
if allowed == 1 then return {1, math.floor(tokens)} end
return {0, math.max(1, math.ceil((1 - tokens) / rate))}
`;

export type StoreErrorPolicy = 'local' | 'allow' | 'deny';

export interface RedisBucketStoreOptions {
  readonly redis: RedisStoreConfig;
  readonly onStoreError: StoreErrorPolicy;
  /** The buckets used under the `local` policy. */
  readonly local: TokenBucketStore;
  readonly logger: Logger;
  /** Called when Redis becomes usable (true) or stops being so (false). */
  readonly onAvailability?: (available: boolean) => void;
  /** Called for every decision made by the policy instead of Redis. */
  readonly onFallback?: (policy: StoreErrorPolicy) => void;
  /** Clock for the pause after a timeout (ms); Date.now by default. */
  readonly now?: () => number;
}

export interface RedisBucketStore extends TokenBucketStore {
  /** Resolves once connected, or after connectTimeoutMs (decisions fall back until Redis answers). */
  connected(): Promise<boolean>;
  /** For /readyz: always ok (the policy keeps answering), the reason says whether Redis or the policy decides. */
  status(): { ok: true; reason: string };
  close(): Promise<void>;
}

interface TakeTokenClient extends Redis {
  nemsTakeToken(key: string, ratePerSecond: string, burst: string): Promise<[number, number]>;
}

/** Where Redis is, for logs and /readyz: host and port only (the URL may carry a user name). */
function redisAddress(url: string): string {
  try {
    const parsed = new URL(url);
    return `${parsed.protocol}//${parsed.hostname}:${parsed.port || '6379'}`;
  } catch {
    return 'redis';
  }
}

export function createRedisBucketStore(opts: RedisBucketStoreOptions): RedisBucketStore {
  const cfg = opts.redis;
  const now = opts.now ?? Date.now;
  const address = redisAddress(cfg.url);
  const password = cfg.passwordFile ? readFileSync(cfg.passwordFile, 'utf8').replace(/\r?\n$/, '') : undefined;
  const options: RedisOptions = {
    connectTimeout: cfg.connectTimeoutMs,
    commandTimeout: cfg.commandTimeoutMs,
    // Fail at once while disconnected instead of queueing: the policy decides, no request waits for a reconnect.
    enableOfflineQueue: false,
    maxRetriesPerRequest: 0,
    retryStrategy: () => cfg.retryIntervalMs,
    // A replica that failed over answers READONLY: reconnect to whatever the address now points at.
    reconnectOnError: (err) => err.message.startsWith('READONLY'),
    ...(cfg.username ? { username: cfg.username } : {}),
    ...(password !== undefined ? { password } : {}),
    ...(cfg.url.startsWith('rediss:') ? { tls: cfg.ca ? { ca: readFileSync(cfg.ca) } : {} } : {}),
  };
  const client = new Redis(cfg.url, options) as TakeTokenClient;
  client.defineCommand('nemsTakeToken', { numberOfKeys: 1, lua: TAKE_TOKEN_SCRIPT });

  let available = false;
  let since = now();
  let lastProblem = 'not connected yet';
  /** After a timeout, Redis is not asked again before this instant. */
  let pausedUntil = 0;
  let closed = false;

  const setAvailable = (next: boolean, problem?: string) => {
    if (problem) lastProblem = problem;
    if (next === available) return;
    available = next;
    since = now();
    opts.onAvailability?.(next);
    if (next) opts.logger.info({ store: address }, 'rate-limit store connected: buckets shared');
    else opts.logger.warn({ store: address, problem: lastProblem, policy: opts.onStoreError }, 'rate-limit store unavailable: decisions fall back to rateLimits.onStoreError');
  };
  client.on('ready', () => setAvailable(true));
  // ioredis reports every failed attempt; only the change of state is logged.
  client.on('error', (err: Error) => setAvailable(false, err.message));
  client.on('close', () => setAvailable(false, 'connection closed'));
  opts.onAvailability?.(false);

  const fallback = (key: string, rule: RateLimitRule): BucketOutcome | Promise<BucketOutcome> => {
    opts.onFallback?.(opts.onStoreError);
    if (opts.onStoreError === 'allow') return { allowed: true, fallback: 'allow' };
    if (opts.onStoreError === 'deny') return { allowed: false, resetSeconds: 1, fallback: 'deny' };
    const local = opts.local.take(key, rule);
    return local instanceof Promise ? local.then((o) => ({ ...o, fallback: 'local' as const })) : { ...local, fallback: 'local' };
  };

  return {
    take(key, rule) {
      if (closed || !available || now() < pausedUntil) return fallback(key, rule);
      return client.nemsTakeToken(`${cfg.keyPrefix}${key}`, String(rule.ratePerSecond), String(rule.burst)).then(
        ([allowed, value]): BucketOutcome => (allowed === 1 ? { allowed: true, remaining: value } : { allowed: false, resetSeconds: value }),
        (err: Error) => {
          if (/timed out/i.test(err.message)) {
            pausedUntil = now() + cfg.retryIntervalMs;
            lastProblem = `no answer within ${cfg.commandTimeoutMs} ms`;
            opts.logger.warn({ store: address, pauseMs: cfg.retryIntervalMs }, 'rate-limit store slow: not asked again for a while');
          } else {
            lastProblem = err.message;
          }
          return fallback(key, rule);
        },
      );
    },
    connected() {
      if (available) return Promise.resolve(true);
      // The first attempt's outcome: ready, refused (error) or nothing within connectTimeoutMs.
      return new Promise<boolean>((resolve) => {
        const settle = (result: boolean) => {
          clearTimeout(timer);
          client.off('ready', onReady);
          client.off('error', onError);
          resolve(result);
        };
        const onReady = () => settle(true);
        const onError = () => settle(false);
        const timer = setTimeout(() => settle(false), cfg.connectTimeoutMs);
        client.once('ready', onReady);
        client.once('error', onError);
      });
    },
    status() {
      const at = new Date(since).toISOString();
      if (available && now() >= pausedUntil) return { ok: true, reason: `redis ${address}: buckets shared` };
      const why = available ? lastProblem : `unreachable since ${at} (${lastProblem})`;
      return { ok: true, reason: `redis ${address} ${why}: falling back to onStoreError ${opts.onStoreError}` };
    },
    async close() {
      closed = true;
      // disconnect, not quit: quit waits for an answer a lost Redis never gives.
      client.disconnect();
    },
  };
}
