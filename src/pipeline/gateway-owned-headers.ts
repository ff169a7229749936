// Headers the gateway owns: the identity it vouches for (client certificate, client address, scheme) and its own
// bookkeeping. Whatever a client sends under one of these names is dropped before the gateway adds its own, so an
// upstream that trusts the gateway can never be handed a client's claim about itself.
//
// Names are compared with case, `-` and `_` ignored (`X_Forwarded_Client_Cert`, `x-forwarded_client-cert` and
// `XForwardedClientCert` are one name): proxies and frameworks differ in how they fold `_` (Apache's CGI mapping,
// NGINX's underscores_in_headers, WSGI/Rack's HTTP_X_…), so a spelling one of them would read as ours must not pass.
// The variants are the ones the common edges write, so that an upstream configured for any of them is covered:
//   Envoy / Istio / F5 Distributed Cloud: x-forwarded-client-cert, x-forwarded-for/-proto, x-envoy-* (Envoy's own
//     sanitising list, https://www.envoyproxy.io/docs/envoy/latest/configuration/http/http_conn_man/header_sanitizing)
//   NGINX and ingress-nginx: X-Real-IP, X-SSL-Client-*, ssl-client-cert / -verify / -subject-dn / -issuer-dn
//   HAProxy: X-SSL, X-SSL-Client-Verify / -DN / -CN / -SHA1 / -NotBefore / -NotAfter, X-SSL-Issuer
//   Apache mod_ssl forwarded as headers: SSL_CLIENT_CERT, SSL_CLIENT_S_DN, SSL_CLIENT_VERIFY, …
//   Cloudflare: CF-Connecting-IP(v6), True-Client-IP, cf-cert-* (TLS client auth headers), RFC 9440 Client-Cert
//   Akamai: True-Client-IP, Akamai-Client-IP; Fastly: Fastly-Client-IP
//   F5 BIG-IP: X-Forwarded-For, True-Client-IP, X-Client-Cert / X-SSL-Client-Cert inserted by iRules
//   AWS: X-Amzn-Mtls-Clientcert-*, CloudFront-Viewer-Cert-* / -Address; Azure: X-ARR-ClientCert, X-Azure-ClientIP;
//   GCP load balancers: X-Client-Cert-* (custom header convention); Traefik: X-Forwarded-Tls-Client-Cert(-Info)
//   and the generic Forwarded (RFC 7239), X-Client-IP, X-Cluster-Client-IP, X-Client-DN, X-Client-Verify.

/** Lower case with every `-` and `_` removed: the form names are compared in. */
export function headerNameKey(name: string): string {
  return name.toLowerCase().replace(/[-_]/g, '');
}

/** Exact names (any spelling) the gateway owns. The README lists them. */
export const GATEWAY_OWNED_HEADER_NAMES: readonly string[] = [
  // The gateway's own bookkeeping; Host and Content-Length are set for the upstream by the forwarder, and the W3C
  // trace context of this hop by the edge (observability/trace-context.ts).
  'Host', 'Content-Length', 'X-Request-ID', 'traceparent', 'tracestate',
  // Client address and scheme.
  'Forwarded', 'X-Real-IP', 'True-Client-IP', 'X-Client-IP', 'Client-IP', 'X-Cluster-Client-IP', 'CF-Connecting-IP',
  'CF-Connecting-IPv6', 'Fastly-Client-IP', 'Akamai-Client-IP', 'X-Azure-ClientIP', 'X-Azure-SocketIP',
  'X-Originating-IP', 'X-Remote-IP', 'X-Remote-Addr', 'X-ProxyUser-IP', 'X-Original-Forwarded-For', 'X-Url-Scheme',
  'Front-End-Https',
  // Client certificate and its verification.
  'X-Client-DN', 'X-Client-S-DN', 'X-Client-I-DN', 'X-Client-Verify', 'X-Client-Serial', 'X-Client-Subject',
  'X-Client-Issuer', 'X-Client-Fingerprint', 'X-ARR-ClientCert', 'X-ARR-SSL',
];

/** Name prefixes (any spelling) the gateway owns: families of headers the edges above write. */
export const GATEWAY_OWNED_HEADER_PREFIXES: readonly string[] = [
  'X-Forwarded-', // -For, -Proto, -Host, -Port, -Prefix, -Server, -Ssl, -Client-Cert, -Tls-Client-Cert(-Info)
  'X-SSL', 'SSL-', // X-SSL, X-SSL-Client-*, X-SSL-Issuer (HAProxy, NGINX); ssl-client-* (ingress-nginx); SSL_* (mod_ssl)
  'X-Client-Cert', 'Client-Cert', // F5 / Kong / GCP conventions; RFC 9440 Client-Cert and Client-Cert-Chain
  'X-Amzn-Mtls-', 'CloudFront-Viewer-', 'CF-Cert-', 'X-Envoy-', 'X-NEMS-Gateway-',
];

const OWNED_KEYS: ReadonlySet<string> = new Set(GATEWAY_OWNED_HEADER_NAMES.map(headerNameKey));
const OWNED_PREFIX_KEYS: readonly string[] = GATEWAY_OWNED_HEADER_PREFIXES.map(headerNameKey);

/** Verdicts by raw header name: clients repeat the same few dozen spellings, so each is worked out once (bounded). */
const verdicts = new Map<string, boolean>();

/** True when a client header of this name must be dropped because the gateway owns it. */
export function isGatewayOwnedHeader(name: string): boolean {
  let owned = verdicts.get(name);
  if (owned === undefined) {
    const key = headerNameKey(name);
    owned = OWNED_KEYS.has(key) || OWNED_PREFIX_KEYS.some((prefix) => key.startsWith(prefix));
    if (name.length <= 64) {
      if (verdicts.size >= 512) verdicts.clear();
      verdicts.set(name, owned);
    }
  }
  return owned;
}
