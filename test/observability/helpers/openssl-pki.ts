// A throw-away PKI made with the openssl command line in a temp dir: a CA, a second (untrusted) CA, server and
// client certificates (good, expired, revoked, from the untrusted CA) and a CRL in PEM and DER.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface TestPki {
  readonly dir: string;
  readonly caPem: string;
  readonly otherCaPem: string;
  readonly server: { readonly cert: string; readonly key: string };
  readonly clients: Readonly<Record<'good' | 'expired' | 'revoked' | 'untrusted', { readonly cert: string; readonly key: string }>>;
  readonly crlPem: string;
  readonly crlDer: Buffer;
  /** Path of a file in the PKI dir. */
  file(name: string): string;
  /** Runs openssl in the PKI dir and returns stdout. */
  openssl(args: readonly string[]): string;
  remove(): void;
}

const CA_CONFIG = `[ ca ]
default_ca = ca_default
[ ca_default ]
dir = .
database = ./index.txt
crlnumber = ./crlnumber
serial = ./serial
new_certs_dir = .
default_md = sha256
default_crl_days = 30
policy = policy_any
[ policy_any ]
commonName = supplied
`;

export function createTestPki(opensslPath: string): TestPki {
  const dir = mkdtempSync(join(tmpdir(), 'nems-pki-'));
  const openssl = (args: readonly string[]) =>
    execFileSync(opensslPath, args, { cwd: dir, encoding: 'utf8', timeout: 20_000, stdio: ['ignore', 'pipe', 'pipe'] });
  const file = (name: string) => join(dir, name);
  const read = (name: string) => readFileSync(file(name), 'utf8');
  writeFileSync(file('ca.cnf'), CA_CONFIG);
  writeFileSync(file('index.txt'), '');
  writeFileSync(file('crlnumber'), '01\n');
  writeFileSync(file('serial'), '1000\n');
  writeFileSync(file('san.ext'), 'subjectAltName=DNS:localhost,IP:127.0.0.1\n');

  const ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes'];
  openssl(['req', '-x509', ...ec, '-keyout', 'ca.key', '-out', 'ca.pem', '-days', '30', '-subj', '/CN=Test NEMS CA']);
  openssl(['req', '-x509', ...ec, '-keyout', 'other-ca.key', '-out', 'other-ca.pem', '-days', '30', '-subj', '/CN=Untrusted CA']);
  const issue = (name: string, ca: string, extra: readonly string[]) => {
    openssl(['req', ...ec, '-keyout', `${name}.key`, '-out', `${name}.csr`, '-subj', `/CN=${name}.example.nhs.uk`]);
    openssl(['ca', '-batch', '-config', 'ca.cnf', '-keyfile', `${ca}.key`, '-cert', `${ca}.pem`, '-in', `${name}.csr`, '-out', `${name}.pem`, '-notext', ...extra]);
  };
  issue('server', 'ca', ['-days', '10', '-extfile', 'san.ext']);
  issue('good', 'ca', ['-days', '10']);
  issue('revoked', 'ca', ['-days', '10']);
  issue('expired', 'ca', ['-startdate', '20200101000000Z', '-enddate', '20200201000000Z']);
  // The untrusted CA issues with `x509 -req`, which needs no database of its own.
  openssl(['req', ...ec, '-keyout', 'untrusted.key', '-out', 'untrusted.csr', '-subj', '/CN=untrusted.example.nhs.uk']);
  openssl(['x509', '-req', '-in', 'untrusted.csr', '-CA', 'other-ca.pem', '-CAkey', 'other-ca.key', '-set_serial', '77', '-days', '10', '-out', 'untrusted.pem']);
  openssl(['ca', '-config', 'ca.cnf', '-keyfile', 'ca.key', '-cert', 'ca.pem', '-revoke', 'revoked.pem']);
  openssl(['ca', '-config', 'ca.cnf', '-keyfile', 'ca.key', '-cert', 'ca.pem', '-gencrl', '-out', 'crl.pem']);
  openssl(['crl', '-in', 'crl.pem', '-outform', 'DER', '-out', 'crl.der']);

  const pair = (name: string) => ({ cert: read(`${name}.pem`), key: read(`${name}.key`) });
  return {
    dir,
    caPem: read('ca.pem'),
    otherCaPem: read('other-ca.pem'),
    server: pair('server'),
    clients: { good: pair('good'), expired: pair('expired'), revoked: pair('revoked'), untrusted: pair('untrusted') },
    crlPem: read('crl.pem'),
    crlDer: readFileSync(file('crl.der')),
    file,
    openssl,
    remove: () => rmSync(dir, { recursive: true, force: true }),
  };
}
