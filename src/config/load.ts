// Loads config/gateway.yaml: YAML → documented environment overrides → schema validation → absolute paths.
// Every failure is a ConfigError whose message names the key and the problem, like `nginx -t`.
import { readFileSync } from 'node:fs';
import { dirname, isAbsolute, resolve } from 'node:path';
import { parse as parseYaml } from 'yaml';
import { z } from 'zod';
import { DEFAULT_CONFIG_PATH } from '../paths.js';
import { configSchema, type Config } from './schema.js';

export class ConfigError extends Error {
  constructor(readonly file: string, readonly problems: readonly string[]) {
    super(`${file}: invalid configuration:\n${problems.map((p) => `  - ${p}`).join('\n')}`);
    this.name = 'ConfigError';
  }
}

export interface LoadedConfig {
  readonly config: Config;
  readonly file: string;
}

/** Documented environment overrides (README "Configuration"). Nothing else in the environment is read. */
export const ENV_OVERRIDES = {
  NEMS_GATEWAY_CONFIG: 'path of the config file (default config/gateway.yaml)',
  NEMS_GATEWAY_HOST: 'server.host',
  NEMS_GATEWAY_PORT: 'server.port',
  NEMS_GATEWAY_ADMIN_PORT: 'admin.port',
  NEMS_GATEWAY_ADMIN_HOST: 'admin.host',
  NEMS_GATEWAY_UPSTREAM_URL: 'upstream.url (and upstream.kind = http)',
  NEMS_GATEWAY_LOG_LEVEL: 'logging.level',
  NEMS_GATEWAY_WORKERS: 'lifecycle.workers',
  NEMS_GATEWAY_DATA_DIR: 'core.dataDir',
} as const;

export function configPathFromEnv(explicit: string | undefined, env: NodeJS.ProcessEnv = process.env): string {
  return resolve(explicit ?? env.NEMS_GATEWAY_CONFIG ?? DEFAULT_CONFIG_PATH);
}

export function loadConfig(file: string, env: NodeJS.ProcessEnv = process.env): LoadedConfig {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    throw new ConfigError(file, [`cannot read file (${(err as NodeJS.ErrnoException).code ?? 'error'})`]);
  }
  let raw: unknown;
  try {
    raw = parseYaml(text, { maxAliasCount: 100 });
  } catch (err) {
    throw new ConfigError(file, [`YAML syntax: ${(err as Error).message.split('\n')[0]}`]);
  }
  if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) throw new ConfigError(file, ['(root): must be a mapping']);
  const { config: withEnv, sources } = applyEnvOverrides(raw as Record<string, unknown>, env, file);
  return { config: validate(withEnv, file, sources), file };
}

/** Validates a plain object (e.g. built by a test) and resolves its paths against `baseFile`'s folder. */
export function parseConfig(raw: unknown, baseFile: string): Config {
  return validate(raw, baseFile, new Map());
}

/** `sources` maps a key (e.g. `server.port`) to the environment variable that set it, so errors blame the right place. */
function validate(raw: unknown, baseFile: string, sources: ReadonlyMap<string, string>): Config {
  const result = configSchema.safeParse(raw);
  if (!result.success) throw new ConfigError(baseFile, formatIssues(result.error, sources));
  const problems = crossCheck(result.data, sources);
  if (problems.length) throw new ConfigError(baseFile, problems);
  return resolvePaths(result.data, dirname(resolve(baseFile)));
}

/** Rules that span sections; each would otherwise surface only at start-up as a bare EADDRINUSE. */
function crossCheck(config: Config, sources: ReadonlyMap<string, string>): string[] {
  const problems: string[] = [];
  if (config.admin.enabled && config.admin.port !== 0 && config.admin.port === config.server.port) {
    const adminFrom = sources.get('admin.port');
    const serverFrom = sources.get('server.port');
    problems.push(
      `admin.port${adminFrom ? ` (set by ${adminFrom})` : ''}: must differ from server.port (${config.server.port}${serverFrom ? `, set by ${serverFrom}` : ''})`,
    );
  }
  return problems;
}

function formatIssues(error: z.ZodError, sources: ReadonlyMap<string, string>): string[] {
  return error.issues.map((issue) => {
    const key = issue.path.length ? issue.path.map(String).join('.') : '(root)';
    const from = sources.get(key);
    const origin = from ? ` (set by ${from})` : '';
    if (issue.code === 'unrecognized_keys') return `${key}: unknown key(s) ${issue.keys.map((k) => `'${k}'`).join(', ')}`;
    return `${key}${origin}: ${issue.message}`;
  });
}

function setPath(target: Record<string, unknown>, path: string[], value: unknown): void {
  let node = target;
  for (const key of path.slice(0, -1)) {
    const next = node[key];
    if (next === null || typeof next !== 'object' || Array.isArray(next)) node[key] = {};
    node = node[key] as Record<string, unknown>;
  }
  node[path[path.length - 1]!] = value;
}

function applyEnvOverrides(
  raw: Record<string, unknown>,
  env: NodeJS.ProcessEnv,
  file: string,
): { config: Record<string, unknown>; sources: Map<string, string> } {
  const out = structuredClone(raw);
  const problems: string[] = [];
  const sources = new Map<string, string>();
  const set = (variable: string, path: string[], value: unknown) => {
    setPath(out, path, value);
    sources.set(path.join('.'), variable);
  };
  const int = (name: string, value: string): number | undefined => {
    if (!/^\d+$/.test(value)) {
      problems.push(`${name}: must be a whole number`);
      return undefined;
    }
    return Number(value);
  };
  if (env.NEMS_GATEWAY_HOST) set('NEMS_GATEWAY_HOST', ['server', 'host'], env.NEMS_GATEWAY_HOST);
  if (env.NEMS_GATEWAY_PORT) set('NEMS_GATEWAY_PORT', ['server', 'port'], int('NEMS_GATEWAY_PORT', env.NEMS_GATEWAY_PORT));
  if (env.NEMS_GATEWAY_ADMIN_HOST) set('NEMS_GATEWAY_ADMIN_HOST', ['admin', 'host'], env.NEMS_GATEWAY_ADMIN_HOST);
  if (env.NEMS_GATEWAY_ADMIN_PORT) set('NEMS_GATEWAY_ADMIN_PORT', ['admin', 'port'], int('NEMS_GATEWAY_ADMIN_PORT', env.NEMS_GATEWAY_ADMIN_PORT));
  if (env.NEMS_GATEWAY_WORKERS) set('NEMS_GATEWAY_WORKERS', ['lifecycle', 'workers'], int('NEMS_GATEWAY_WORKERS', env.NEMS_GATEWAY_WORKERS));
  if (env.NEMS_GATEWAY_LOG_LEVEL) set('NEMS_GATEWAY_LOG_LEVEL', ['logging', 'level'], env.NEMS_GATEWAY_LOG_LEVEL);
  // Relative to the working directory, like any path given on a command line (file paths are relative to the file).
  if (env.NEMS_GATEWAY_DATA_DIR) set('NEMS_GATEWAY_DATA_DIR', ['core', 'dataDir'], resolve(env.NEMS_GATEWAY_DATA_DIR));
  if (env.NEMS_GATEWAY_UPSTREAM_URL) {
    set('NEMS_GATEWAY_UPSTREAM_URL', ['upstream', 'url'], env.NEMS_GATEWAY_UPSTREAM_URL);
    set('NEMS_GATEWAY_UPSTREAM_URL', ['upstream', 'kind'], 'http');
  }
  if (problems.length) throw new ConfigError(file, problems);
  return { config: out, sources };
}

function resolvePaths(config: Config, base: string): Config {
  const abs = (p: string): string => (isAbsolute(p) ? p : resolve(base, p));
  const absOpt = (p: string | undefined): string | undefined => (p === undefined ? undefined : abs(p));
  const tls = config.server.tls;
  const upstreamTls = config.upstream.tls;
  const fhir = config.pds.fhir;
  const redis = config.rateLimits.redis;
  return {
    ...config,
    server: {
      ...config.server,
      tls: {
        ...tls, cert: abs(tls.cert), key: abs(tls.key), ca: abs(tls.ca), crl: absOpt(tls.crl),
        crlDistributionPoints: { ...tls.crlDistributionPoints, cacheDir: abs(tls.crlDistributionPoints.cacheDir) },
      },
    },
    registry: { ...config.registry, path: abs(config.registry.path), ...(config.registry.sds ? { sds: resolveSdsPaths(config.registry.sds, abs) } : {}) },
    upstream: upstreamTls
      ? { ...config.upstream, tls: { ...upstreamTls, ca: absOpt(upstreamTls.ca), cert: absOpt(upstreamTls.cert), key: absOpt(upstreamTls.key) } }
      : config.upstream,
    pds: {
      ...config.pds,
      local: { path: abs(config.pds.local.path) },
      fhir: fhir && fhir.auth.kind === 'application-restricted'
        ? { ...fhir, auth: { ...fhir.auth, privateKeyPath: abs(fhir.auth.privateKeyPath) } }
        : fhir,
    },
    nems: {
      ...config.nems,
      jwt: { ...config.nems.jwt, signed: { ...config.nems.jwt.signed, keys: config.nems.jwt.signed.keys.map((k) => ({ ...k, path: abs(k.path) })) } },
    },
    core: { ...config.core, dataDir: abs(config.core.dataDir), ...(config.core.mesh ? { mesh: resolveMeshPaths(config.core.mesh, abs) } : {}) },
    rateLimits: redis
      ? { ...config.rateLimits, redis: { ...redis, passwordFile: absOpt(redis.passwordFile), ca: absOpt(redis.ca) } }
      : config.rateLimits,
  };
}

function resolveSdsPaths(sds: NonNullable<Config['registry']['sds']>, abs: (p: string) => string): NonNullable<Config['registry']['sds']> {
  const auth = sds.auth.kind === 'api-key' ? { ...sds.auth, apiKeyFile: abs(sds.auth.apiKeyFile) } : { ...sds.auth, privateKeyPath: abs(sds.auth.privateKeyPath) };
  return { ...sds, auth };
}

function resolveMeshPaths(mesh: NonNullable<Config['core']['mesh']>, abs: (p: string) => string): NonNullable<Config['core']['mesh']> {
  const absOpt = (p: string | undefined): string | undefined => (p === undefined ? undefined : abs(p));
  const tls = mesh.tls ? { ...mesh.tls, ca: absOpt(mesh.tls.ca), cert: absOpt(mesh.tls.cert), key: absOpt(mesh.tls.key) } : undefined;
  return { ...mesh, passwordFile: abs(mesh.passwordFile), sharedKeyFile: abs(mesh.sharedKeyFile), ...(tls ? { tls } : {}) };
}
