// The Authorization header of a NEMS request: `Bearer <JWT>` (docs/specification.md §2.1, §3.3). Spine's pages
// write the scheme `Bearer`; RFC 7235 §2.1 makes schemes case-insensitive. The headers stage decides what another
// spelling means (a catalogued rule); the JWT stage only needs to find the token behind it.

/** The Authorization scheme as the Spine pages write it. */
export const BEARER_SCHEME = 'Bearer';

/** The Authorization scheme as sent: `Bearer` exactly, another spelling of it, or another scheme. */
export function bearerScheme(scheme: string): 'exact' | 'other-case' | 'not-bearer' {
  if (scheme === BEARER_SCHEME) return 'exact';
  return scheme.toLowerCase() === 'bearer' ? 'other-case' : 'not-bearer';
}
