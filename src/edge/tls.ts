// TLS material for the mTLS edge: OpenSSL (node:tls) verifies the client chain and the CRL; nothing else does.
import { readFileSync } from 'node:fs';
import { createSecureContext, type SecureContext, type SecureContextOptions } from 'node:tls';
import type { Config } from '../config/schema.js';

export interface EdgeTlsMaterial {
  readonly options: SecureContextOptions;
  readonly context: SecureContext;
  readonly pem: { readonly cert: string; readonly ca: string; readonly crl?: string };
}

/** Reads the server certificate, key, CA bundle and CRL and builds a secure context. Throws on any bad file. */
export function loadEdgeTls(config: Config): EdgeTlsMaterial {
  const tls = config.server.tls;
  const read = (key: string, path: string): string => {
    try {
      return readFileSync(path, 'utf8');
    } catch (err) {
      throw new Error(`server.tls.${key}: cannot read ${path} (${(err as NodeJS.ErrnoException).code ?? 'error'})`);
    }
  };
  const cert = read('cert', tls.cert);
  const key = read('key', tls.key);
  const ca = read('ca', tls.ca);
  const crl = tls.crl ? read('crl', tls.crl) : undefined;
  const options: SecureContextOptions = {
    cert,
    key,
    ca,
    ...(crl ? { crl } : {}),
    minVersion: tls.minVersion,
    ...(tls.ciphers ? { ciphers: tls.ciphers } : {}),
    honorCipherOrder: true,
  };
  let context: SecureContext;
  try {
    context = createSecureContext(options);
  } catch (err) {
    // OpenSSL's message names the problem (bad PEM, key mismatch); it goes to the operator, never to a client.
    throw new Error(`server.tls: ${(err as Error).message}`);
  }
  return { options, context, pem: { cert, ca, ...(crl ? { crl } : {}) } };
}
