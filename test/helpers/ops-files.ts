// Operations tests that replace files under a running gateway: a PKI whose CA can issue more (certificate
// rotation, new CRLs), private copies of the registry and local PDS data, atomic file replacement, and a config
// file for the CLI.
import { copyFileSync, mkdtempSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { generateExampleCertificates, issueClientCertificate, issueServerCertificate, writeExampleCrl, type CrlValidity } from '../../certs-example/generate.js';
import { PROJECT_ROOT } from '../../src/paths.js';
import type { Pki } from './e2e.js';

export interface OpsPki extends Pki {
  /** Issues `<name>.pem`/`<name>-key.pem`, a server certificate from the same CA; returns its serial (hex, upper case, no leading zeros). */
  issueServer(name: string): string;
  /**
   * A new CRL revoking the named certificates, as PEM (written only as `crl-<n>.pem`); `opts` moves its dates or
   * has the untrusted CA sign it.
   */
  crlRevoking(names: readonly string[], crlNumber: number, opts?: CrlValidity & { issuer?: 'ca' | 'untrusted-ca' }): string;
  /** Issues `<name>.pem`/`<name>-key.pem`, a client certificate for `fqdn` from the same CA (RSA `keyBits`, default 2048). */
  issueClient(name: string, fqdn: string, opts?: { keyBits?: number }): void;
}

/** The example PKI plus the CA key, in a fresh temporary folder. */
export function createOpsPki(extraClients?: Record<string, string>): OpsPki {
  const dir = mkdtempSync(join(tmpdir(), 'nems-ops-pki-'));
  generateExampleCertificates(dir, { keepCaKey: true, ...(extraClients ? { extraClients } : {}) });
  return {
    dir,
    file: (name) => join(dir, name),
    read: (name) => readFileSync(join(dir, name)),
    cleanup: () => rmSync(dir, { recursive: true, force: true }),
    issueServer: (name) => issueServerCertificate(dir, name).toUpperCase().replace(/^0+/, ''),
    crlRevoking: (names, crlNumber, opts = {}) => writeExampleCrl(dir, names, `crl-${crlNumber}.pem`, crlNumber, opts),
    issueClient: (name, fqdn, opts = {}) => issueClientCertificate(dir, name, fqdn, opts),
  };
}

/** Replaces a file the way certificate tooling does: write a sibling, then rename over the original. */
export function replaceFile(path: string, content: string | Buffer): void {
  const temp = `${path}.tmp-${process.pid}-${Date.now()}`;
  writeFileSync(temp, content);
  renameSync(temp, path);
}

export interface ConfigFiles {
  readonly dir: string;
  readonly registry: string;
  readonly pdsLocal: string;
  cleanup(): void;
}

/** Private copies of config/endpoints.yaml and config/pds-local.yaml, so a test can replace them. */
export function copyConfigFiles(): ConfigFiles {
  const dir = mkdtempSync(join(tmpdir(), 'nems-ops-config-'));
  const registry = join(dir, 'endpoints.yaml');
  const pdsLocal = join(dir, 'pds-local.yaml');
  copyFileSync(join(PROJECT_ROOT, 'config', 'endpoints.yaml'), registry);
  copyFileSync(join(PROJECT_ROOT, 'config', 'pds-local.yaml'), pdsLocal);
  return { dir, registry, pdsLocal, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}

/** A registry entry (YAML) for an extra endpoint with one ASID allowed to read subscriptions. */
export function extraEndpointYaml(fqdn: string, asid: string, ods: string): string {
  return `
  - fqdn: ${fqdn}
    asids:
      - asid: "${asid}"
        odsCodes: [${ods}]
        interactions:
          - urn:nhs:names:services:clinicals-sync:SubscriptionsApiGet
        subscriptionTypes: [explicit]
        mailboxes:
          - id: ${ods}MB001
            odsCode: ${ods}
            workflowIds: [VACCINATIONS_1]
`;
}
