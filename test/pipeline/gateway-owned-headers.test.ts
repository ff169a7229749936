// The gateway-owned header set: names compared with case, `-` and `_` ignored; exact names and prefix families.
import { describe, expect, it } from 'vitest';
import { GATEWAY_OWNED_HEADER_NAMES, GATEWAY_OWNED_HEADER_PREFIXES, headerNameKey, isGatewayOwnedHeader } from '../../src/pipeline/gateway-owned-headers.js';

describe('isGatewayOwnedHeader', () => {
  it.each([
    'X-Forwarded-Client-Cert', 'x_forwarded_client_cert', 'X_Forwarded_Client_Cert', 'XForwardedClientCert', 'x-forwarded_client-cert',
    'X-Forwarded-For', 'X-Forwarded-Proto', 'X-Forwarded-Host', 'X-Forwarded-Tls-Client-Cert-Info', 'Forwarded', 'X-Real-IP', 'X_REAL_IP',
    'True-Client-IP', 'CF-Connecting-IP', 'Fastly-Client-IP', 'X-Client-IP', 'X-Cluster-Client-IP',
    'X-SSL', 'X-SSL-Client-Verify', 'X-SSL-Client-S-DN', 'X-SSL-Issuer', 'ssl-client-cert', 'SSL_CLIENT_S_DN', 'SSL_CLIENT_VERIFY',
    'X-Client-DN', 'X-Client-Verify', 'X-Client-Cert', 'X-Client-Cert-Chain-Verified', 'Client-Cert', 'Client-Cert-Chain',
    'X-Amzn-Mtls-Clientcert', 'CloudFront-Viewer-Cert-Sha256', 'cf-cert-verified', 'X-ARR-ClientCert', 'X-Envoy-External-Address',
    'X-NEMS-Gateway-ASID', 'x-request-id', 'X_Request_ID', 'Host', 'Content-Length', 'content_length',
    // The W3C trace context of this hop replaces the client's (observability/trace-context.ts).
    'traceparent', 'tracestate', 'TraceParent',
  ])('owns %s', (name) => {
    expect(isGatewayOwnedHeader(name)).toBe(true);
  });

  it.each(['fromASID', 'toASID', 'InteractionID', 'Authorization', 'Content-Type', 'Accept', 'X-Client-Header', 'X-Custom', 'Prefer', 'If-Match'])(
    'leaves the client header %s alone',
    (name) => {
      expect(isGatewayOwnedHeader(name)).toBe(false);
    },
  );

  it('compares every listed name and prefix in the folded form', () => {
    for (const name of GATEWAY_OWNED_HEADER_NAMES) expect(isGatewayOwnedHeader(name.toUpperCase().replace(/-/g, '_'))).toBe(true);
    for (const prefix of GATEWAY_OWNED_HEADER_PREFIXES) expect(isGatewayOwnedHeader(`${prefix}Anything`)).toBe(true);
    expect(headerNameKey('X_Forwarded-Client_Cert')).toBe('xforwardedclientcert');
  });
});
