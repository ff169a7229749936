// Loading config/gateway.yaml (issue 2 point 3): YAML → documented environment overrides → schema → absolute paths.
// A bad file stops start-up with an error naming the key and the problem.
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ConfigError, ENV_OVERRIDES, configPathFromEnv, loadConfig, parseConfig } from '../../src/config/load.js';
import type { Config } from '../../src/config/schema.js';
import { DEFAULT_CONFIG_PATH, PROJECT_ROOT } from '../../src/paths.js';

const MINIMAL = `
server:
  tls: { cert: tls/server.pem, key: tls/server-key.pem, ca: tls/ca.pem }
registry: { path: endpoints.yaml }
`;

let dir: string;
let counter = 0;

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'nems-config-'));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** Writes `text` to a fresh file in its own folder and returns its path. */
function configFile(text: string): string {
  const folder = join(dir, `c${counter++}`);
  mkdirSync(folder);
  const file = join(folder, 'gateway.yaml');
  writeFileSync(file, text);
  return file;
}

/** The problems a bad file produces (the test fails if it loads). */
function problemsOf(text: string, env: NodeJS.ProcessEnv = {}): string[] {
  try {
    loadConfig(configFile(text), env);
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigError);
    return [...(err as ConfigError).problems];
  }
  throw new Error('the configuration loaded but should have been refused');
}

describe('the shipped config/gateway.yaml', () => {
  it('validates and carries the documented defaults: 127.0.0.1:8443, admin 127.0.0.1:9464, toASID 200000000306, embedded upstream', () => {
    const { config, file } = loadConfig(DEFAULT_CONFIG_PATH, {});
    expect(file).toBe(DEFAULT_CONFIG_PATH);
    expect(config.server).toMatchObject({ host: '127.0.0.1', port: 8443 });
    expect(config.admin).toMatchObject({ host: '127.0.0.1', port: 9464, enabled: true });
    expect(config.nems.toAsid).toBe('200000000306');
    expect(config.nems.publishMaxBytes).toBe(3 * 1024 * 1024);
    expect(config.upstream.kind).toBe('embedded');
    expect(config.logging.level).toBe('info');
    expect(config.lifecycle.workers).toBe(1);
  });

  it('sets readinessGraceMs 0 (a laptop), where the default is 5 s for Kubernetes endpoints to notice a stopping pod', () => {
    expect(loadConfig(DEFAULT_CONFIG_PATH, {}).config.lifecycle.readinessGraceMs).toBe(0);
    expect(parseConfig({ server: { tls: { cert: 'c', key: 'k', ca: 'a' } }, registry: { path: 'r' } }, '/x/gateway.yaml').lifecycle.readinessGraceMs).toBe(5000);
  });

  it('resolves the Redis password file and CA against the config folder', () => {
    const config = parseConfig({
      server: { tls: { cert: 'c', key: 'k', ca: 'a' } }, registry: { path: 'r' },
      rateLimits: { store: 'redis', redis: { url: 'rediss://redis:6380/0', passwordFile: 'redis/password', ca: '/etc/ssl/redis-ca.pem' } },
    }, '/etc/nems-gateway/gateway.yaml');
    expect(config.rateLimits.redis).toMatchObject({ passwordFile: '/etc/nems-gateway/redis/password', ca: '/etc/ssl/redis-ca.pem', commandTimeoutMs: 100 });
  });

  it('resolves every path relative to the config folder, not the working directory', () => {
    const { config } = loadConfig(DEFAULT_CONFIG_PATH, {});
    const generated = join(PROJECT_ROOT, 'certs-example', 'generated');
    expect(config.server.tls).toMatchObject({
      cert: join(generated, 'server.pem'),
      key: join(generated, 'server-key.pem'),
      ca: join(generated, 'ca.pem'),
      crl: join(generated, 'crl.pem'),
    });
    expect(config.registry.path).toBe(join(PROJECT_ROOT, 'config', 'endpoints.yaml'));
    expect(config.pds.local.path).toBe(join(PROJECT_ROOT, 'config', 'pds-local.yaml'));
    expect(config.core.dataDir).toBe(join(PROJECT_ROOT, 'data'));
  });
});

describe('path resolution', () => {
  it('makes every file path in the file absolute against the file’s folder and keeps absolute ones', () => {
    const file = configFile(`
server:
  tls: { cert: tls/server.pem, key: /etc/nems/server-key.pem, ca: ../ca.pem, crl: crl.pem }
registry: { path: endpoints.yaml }
upstream:
  kind: http
  url: https://nems.example:4443
  tls: { ca: up/ca.pem, cert: up/client.pem, key: up/client-key.pem, servername: nems.example }
pds:
  kind: fhir
  local: { path: pds.yaml }
  fhir:
    baseUrl: https://pds.example/FHIR/R4
    auth: { kind: application-restricted, tokenUrl: https://pds.example/oauth2/token, apiKey: k, privateKeyPath: keys/pds.pem, kid: test-1 }
nems:
  jwt:
    signed: { enabled: true, keys: [{ path: keys/jwt.pem, alg: RS256 }] }
core: { dataDir: state }
`);
    const base = resolve(file, '..');
    const { config } = loadConfig(file, {});
    expect(config.server.tls).toMatchObject({
      cert: join(base, 'tls/server.pem'), key: '/etc/nems/server-key.pem', ca: resolve(base, '../ca.pem'), crl: join(base, 'crl.pem'),
    });
    expect(config.registry.path).toBe(join(base, 'endpoints.yaml'));
    expect(config.upstream.tls).toEqual({
      ca: join(base, 'up/ca.pem'), cert: join(base, 'up/client.pem'), key: join(base, 'up/client-key.pem'), servername: 'nems.example',
    });
    expect(config.pds.local.path).toBe(join(base, 'pds.yaml'));
    expect(config.pds.fhir?.auth).toMatchObject({ privateKeyPath: join(base, 'keys/pds.pem') });
    expect(config.nems.jwt.signed.keys[0]!.path).toBe(join(base, 'keys/jwt.pem'));
    expect(config.core.dataDir).toBe(join(base, 'state'));
  });

  it('parseConfig resolves a plain object against the folder of the file it names', () => {
    const config = parseConfig(
      { server: { tls: { cert: 'a.pem', key: 'b.pem', ca: 'c.pem' } }, registry: { path: 'r.yaml' } },
      '/opt/nems/config/gateway.yaml',
    );
    expect(config.server.tls.cert).toBe('/opt/nems/config/a.pem');
    expect(config.registry.path).toBe('/opt/nems/config/r.yaml');
    expect(config.core.dataDir).toBe('/opt/nems/data');
  });
});

describe('which file is loaded', () => {
  it('takes --config first, then NEMS_GATEWAY_CONFIG, then config/gateway.yaml; relative to the working directory', () => {
    expect(configPathFromEnv('/x/explicit.yaml', { NEMS_GATEWAY_CONFIG: '/y/env.yaml' })).toBe('/x/explicit.yaml');
    expect(configPathFromEnv(undefined, { NEMS_GATEWAY_CONFIG: '/y/env.yaml' })).toBe('/y/env.yaml');
    expect(configPathFromEnv(undefined, {})).toBe(DEFAULT_CONFIG_PATH);
    expect(configPathFromEnv('rel/gateway.yaml', {})).toBe(resolve(process.cwd(), 'rel/gateway.yaml'));
    expect(configPathFromEnv(undefined, { NEMS_GATEWAY_CONFIG: 'rel/env.yaml' })).toBe(resolve(process.cwd(), 'rel/env.yaml'));
  });
});

describe('environment overrides', () => {
  it('documents exactly the nine NEMS_GATEWAY_* variables', () => {
    expect(Object.keys(ENV_OVERRIDES).sort()).toEqual([
      'NEMS_GATEWAY_ADMIN_HOST', 'NEMS_GATEWAY_ADMIN_PORT', 'NEMS_GATEWAY_CONFIG', 'NEMS_GATEWAY_DATA_DIR', 'NEMS_GATEWAY_HOST',
      'NEMS_GATEWAY_LOG_LEVEL', 'NEMS_GATEWAY_PORT', 'NEMS_GATEWAY_UPSTREAM_URL', 'NEMS_GATEWAY_WORKERS',
    ]);
  });

  const withValues = `
server:
  host: 127.0.0.1
  port: 8443
  tls: { cert: s.pem, key: k.pem, ca: ca.pem }
admin: { port: 9464 }
registry: { path: endpoints.yaml }
upstream: { kind: embedded }
logging: { level: info }
lifecycle: { workers: 1 }
core: { dataDir: ../data }
`;

  it.each([
    ['NEMS_GATEWAY_HOST', '0.0.0.0', (c: Config) => c.server.host, '0.0.0.0'],
    ['NEMS_GATEWAY_PORT', '9443', (c: Config) => c.server.port, 9443],
    ['NEMS_GATEWAY_PORT', '0', (c: Config) => c.server.port, 0],
    ['NEMS_GATEWAY_ADMIN_PORT', '19464', (c: Config) => c.admin.port, 19464],
    // Kubernetes: the pod address (status.podIP), so the kubelet's probes and Prometheus reach the admin port.
    ['NEMS_GATEWAY_ADMIN_HOST', '10.1.2.3', (c: Config) => c.admin.host, '10.1.2.3'],
    ['NEMS_GATEWAY_LOG_LEVEL', 'debug', (c: Config) => c.logging.level, 'debug'],
    ['NEMS_GATEWAY_WORKERS', '0', (c: Config) => c.lifecycle.workers, 0],
    ['NEMS_GATEWAY_WORKERS', '4', (c: Config) => c.lifecycle.workers, 4],
    ['NEMS_GATEWAY_DATA_DIR', '/var/lib/nems', (c: Config) => c.core.dataDir, '/var/lib/nems'],
  ] as const)('%s=%s overrides the file', (variable, value, read, expected) => {
    const file = configFile(withValues);
    expect(read(loadConfig(file, {}).config)).not.toEqual(expected);
    expect(read(loadConfig(file, { [variable]: value }).config)).toEqual(expected);
  });

  it('NEMS_GATEWAY_UPSTREAM_URL sets upstream.url and switches upstream.kind to http', () => {
    const { config } = loadConfig(configFile(withValues), { NEMS_GATEWAY_UPSTREAM_URL: 'https://msg.int.spine2.ncrs.nhs.uk' });
    expect(config.upstream.kind).toBe('http');
    expect(config.upstream.url).toBe('https://msg.int.spine2.ncrs.nhs.uk');
  });

  it('NEMS_GATEWAY_DATA_DIR is relative to the working directory (a command-line path), not the config folder', () => {
    const { config } = loadConfig(configFile(withValues), { NEMS_GATEWAY_DATA_DIR: 'var/nems' });
    expect(config.core.dataDir).toBe(resolve(process.cwd(), 'var/nems'));
  });

  it('creates the section an override needs when the file leaves it out', () => {
    const { config } = loadConfig(configFile(MINIMAL), { NEMS_GATEWAY_ADMIN_PORT: '0', NEMS_GATEWAY_LOG_LEVEL: 'warn', NEMS_GATEWAY_WORKERS: '2' });
    expect(config.admin).toMatchObject({ host: '127.0.0.1', port: 0 });
    expect(config.logging.level).toBe('warn');
    expect(config.lifecycle.workers).toBe(2);
  });

  it('ignores empty variables and every variable it does not document', () => {
    const { config } = loadConfig(configFile(withValues), { NEMS_GATEWAY_PORT: '', NEMS_GATEWAY_TO_ASID: '999999999999', PORT: '1' });
    expect(config.server.port).toBe(8443);
    expect(config.nems.toAsid).toBe('200000000306');
  });

  it('does not change the object it was given (the file stays as read)', () => {
    const file = configFile(withValues);
    loadConfig(file, { NEMS_GATEWAY_PORT: '1' });
    expect(loadConfig(file, {}).config.server.port).toBe(8443);
  });

  it.each([
    ['NEMS_GATEWAY_PORT', 'abc', 'NEMS_GATEWAY_PORT: must be a whole number'],
    ['NEMS_GATEWAY_PORT', '-1', 'NEMS_GATEWAY_PORT: must be a whole number'],
    ['NEMS_GATEWAY_ADMIN_PORT', '9464x', 'NEMS_GATEWAY_ADMIN_PORT: must be a whole number'],
    ['NEMS_GATEWAY_WORKERS', 'many', 'NEMS_GATEWAY_WORKERS: must be a whole number'],
  ])('%s=%s is refused naming the variable', (variable, value, problem) => {
    expect(problemsOf(withValues, { [variable]: value })).toEqual([problem]);
  });

  it.each([
    ['NEMS_GATEWAY_PORT', '70000', /^server\.port \(set by NEMS_GATEWAY_PORT\): .*65535/],
    ['NEMS_GATEWAY_ADMIN_PORT', '65536', /^admin\.port \(set by NEMS_GATEWAY_ADMIN_PORT\): .*65535/],
    ['NEMS_GATEWAY_WORKERS', '65', /^lifecycle\.workers \(set by NEMS_GATEWAY_WORKERS\): .*64/],
    ['NEMS_GATEWAY_LOG_LEVEL', 'loud', /^logging\.level \(set by NEMS_GATEWAY_LOG_LEVEL\): .*"info"/],
    ['NEMS_GATEWAY_UPSTREAM_URL', 'not a url', /^upstream\.url \(set by NEMS_GATEWAY_UPSTREAM_URL\): must be an http/],
    ['NEMS_GATEWAY_UPSTREAM_URL', 'file:///etc/passwd', /^upstream\.url \(set by NEMS_GATEWAY_UPSTREAM_URL\): must be an http/],
  ])('%s=%s is refused naming the key and the variable that set it', (variable, value, problem) => {
    const problems = problemsOf(withValues, { [variable]: value });
    expect(problems).toHaveLength(1);
    expect(problems[0]).toMatch(problem);
  });
});

describe('a bad file stops start-up with an error naming the key and the problem', () => {
  it.each([
    ['an unknown key in a section', `${MINIMAL}admin: { prot: 1 }\n`, "admin: unknown key(s) 'prot'"],
    ['an unknown top-level key', `${MINIMAL}sever: {}\n`, "(root): unknown key(s) 'sever'"],
    ['a misspelt nested key', MINIMAL.replace('ca: tls/ca.pem', 'cas: tls/ca.pem'), /^server\.tls/],
  ])('%s', (_name, text, problem) => {
    const problems = problemsOf(text);
    expect(problems.some((p) => (typeof problem === 'string' ? p === problem : problem.test(p)))).toBe(true);
  });

  it('names both problems of a misspelt key: the unknown one and the missing one', () => {
    const problems = problemsOf(MINIMAL.replace('ca: tls/ca.pem', 'cas: tls/ca.pem'));
    expect(problems).toContain("server.tls: unknown key(s) 'cas'");
    expect(problems.some((p) => p.startsWith('server.tls.ca: '))).toBe(true);
  });

  it.each([
    ['a port given as text', `${MINIMAL}admin: { port: "abc" }\n`, /^admin\.port: .*expected number, received string/],
    ['a boolean given as text', `${MINIMAL}lifecycle: { watchFiles: "yes" }\n`, /^lifecycle\.watchFiles: .*expected boolean/],
    ['a section given as a list', `${MINIMAL}nems: [a, b]\n`, /^nems: .*expected object/],
    ['a list given as a scalar', `${MINIMAL}nems: { jwt: { allowedReasonsForRequest: directcare } }\n`, /^nems\.jwt\.allowedReasonsForRequest: .*expected array/],
    ['an ASID that is not 12 digits', `${MINIMAL}nems: { toAsid: "12345" }\n`, 'nems.toAsid: must be a 12-digit ASID'],
    ['an ASID given as a number', `${MINIMAL}nems: { toAsid: 200000000306 }\n`, /^nems\.toAsid: .*expected string/],
    ['a negative timeout', `${MINIMAL}upstream: { timeoutMs: -5 }\n`, /^upstream\.timeoutMs: .*>0/],
    ['an unknown log level', `${MINIMAL}logging: { level: loud }\n`, /^logging\.level: Invalid option/],
    ['an unknown upstream kind', `${MINIMAL}upstream: { kind: spine }\n`, /^upstream\.kind: Invalid option/],
  ])('wrong type or value: %s', (_name, text, problem) => {
    const problems = problemsOf(text);
    expect(problems).toHaveLength(1);
    if (typeof problem === 'string') expect(problems[0]).toBe(problem);
    else expect(problems[0]).toMatch(problem);
  });

  it.each([
    ['70000', /^server\.port: .*<=65535/],
    ['-1', /^server\.port: .*>=0/],
    ['8443.5', /^server\.port: .*expected int/],
  ])('a bad port %s', (port, problem) => {
    const problems = problemsOf(MINIMAL.replace('server:\n', `server:\n  port: ${port}\n`));
    expect(problems).toHaveLength(1);
    expect(problems[0]).toMatch(problem);
  });

  it('an admin port equal to the mTLS port', () => {
    expect(problemsOf(MINIMAL.replace('server:\n', 'server:\n  port: 9000\n') + 'admin: { port: 9000 }\n')).toEqual(['admin.port: must differ from server.port (9000)']);
    expect(problemsOf(MINIMAL, { NEMS_GATEWAY_PORT: '9464' })).toEqual(['admin.port: must differ from server.port (9464, set by NEMS_GATEWAY_PORT)']);
    // Both ephemeral, or the admin listener off: no clash.
    expect(loadConfig(configFile(`${MINIMAL}admin: { port: 0 }\n`), { NEMS_GATEWAY_PORT: '0' }).config.server.port).toBe(0);
    expect(loadConfig(configFile(`${MINIMAL}admin: { port: 9464, enabled: false }\n`), { NEMS_GATEWAY_PORT: '9464' }).config.server.port).toBe(9464);
  });

  it('upstream kind http without a url', () => {
    expect(problemsOf(`${MINIMAL}upstream: { kind: http }\n`)).toEqual(['upstream.url: is required when kind is http']);
  });

  it('an upstream url that is not http(s)', () => {
    expect(problemsOf(`${MINIMAL}upstream: { kind: http, url: "ftp://nems.example" }\n`)).toEqual(['upstream.url: must be an http:// or https:// URL']);
  });

  it('rate-limit store redis without its redis section, or with a URL that is not redis:// or rediss://', () => {
    expect(problemsOf(`${MINIMAL}rateLimits: { store: redis }\n`)).toEqual(['rateLimits.redis: is required when store is redis']);
    expect(problemsOf(`${MINIMAL}rateLimits: { store: redis, redis: { url: "http://redis:6379" } }\n`)).toEqual(['rateLimits.redis.url: must be a redis:// or rediss:// URL']);
  });

  it('pds kind fhir without its fhir section', () => {
    expect(problemsOf(`${MINIMAL}pds: { kind: fhir }\n`)).toEqual(['pds.fhir: is required when kind is fhir']);
  });

  it('a missing required section or key', () => {
    expect(problemsOf('registry: { path: endpoints.yaml }\n')).toEqual([expect.stringMatching(/^server: .*expected object/)]);
    expect(problemsOf(MINIMAL.replace('registry: { path: endpoints.yaml }', 'registry: {}'))).toEqual([expect.stringMatching(/^registry\.path: /)]);
  });

  it('reports every problem of the file at once', () => {
    const problems = problemsOf(`${MINIMAL}admin: { port: 99999, colour: blue }\nlogging: { level: 7 }\n`);
    expect(problems).toHaveLength(3);
    expect(problems.join('\n')).toMatch(/admin\.port/);
    expect(problems.join('\n')).toMatch(/admin: unknown key\(s\) 'colour'/);
    expect(problems.join('\n')).toMatch(/logging\.level/);
  });

  it('never echoes the bad value (it may be a secret)', () => {
    const problems = problemsOf(`${MINIMAL}pds:
  kind: fhir
  fhir:
    baseUrl: https://pds.example
    auth: { kind: application-restricted, tokenUrl: https://pds.example/t, apiKey: 73519024861357, privateKeyPath: k.pem, kid: k }
`);
    expect(problems).toEqual([expect.stringMatching(/^pds\.fhir\.auth\.apiKey: .*expected string/)]);
    expect(problems.join('')).not.toContain('73519024861357');
  });

  it('bad YAML: the syntax problem with its line, and not the file’s text', () => {
    const problems = problemsOf('server:\n  tls: { cert: a\n  port: : :\n');
    expect(problems).toHaveLength(1);
    expect(problems[0]).toMatch(/^YAML syntax: .*line \d+, column \d+/);
    expect(problems[0]).not.toContain('\n');
  });

  it('bad YAML: a key given twice', () => {
    expect(problemsOf(`${MINIMAL}logging: { level: info }\nlogging: { level: debug }\n`)).toEqual([expect.stringMatching(/^YAML syntax: Map keys must be unique/)]);
  });

  it.each([
    ['an empty file', ''],
    ['a list', '- server\n- registry\n'],
    ['a scalar', 'just text\n'],
  ])('a document that is not a mapping: %s', (_name, text) => {
    expect(problemsOf(text)).toEqual(['(root): must be a mapping']);
  });

  it('a missing file names the file and ENOENT', () => {
    const missing = join(dir, 'does-not-exist.yaml');
    let error: unknown;
    try {
      loadConfig(missing, {});
    } catch (err) {
      error = err;
    }
    expect(error).toBeInstanceOf(ConfigError);
    expect((error as ConfigError).file).toBe(missing);
    expect((error as ConfigError).problems).toEqual(['cannot read file (ENOENT)']);
    expect((error as ConfigError).message).toBe(`${missing}: invalid configuration:\n  - cannot read file (ENOENT)`);
  });

  it('a folder instead of a file', () => {
    expect(() => loadConfig(dir, {})).toThrow(/cannot read file \(EISDIR\)/);
  });
});
