// Route stage: matches the request line against the NEMS route table (docs/specification.md §1.2, §2.1) so nothing that
// is not a NEMS operation is forwarded.
//
// Decisions (issue 3 point 1, docs/specification.md §9.21):
// - Unknown path → 404 NO_RECORD_FOUND: Spine's answer for a resource it does not have; says nothing more.
// - Known path, method not in the table → 400 BAD_REQUEST with `Allow`: Spine Core lists BAD_REQUEST for a
//   "wrong HTTP verb" (docs/specification.md §3.2); 405 has no Spine code.
// - The removed subscription search (GET /Subscription, with or without a query) and update (PUT/PATCH) →
//   501 NOT_IMPLEMENTED: they are real FHIR interactions NEMS does not (or no longer) offer (docs/specification.md §1.2, §1.9).
// - A request target that is not a plain origin-form path (absolute-form, `*`, `//`, `.`/`..` segments, encoded
//   slashes, dots or backslashes, control or non-ASCII characters) → 404 NO_RECORD_FOUND. The gateway never
//   normalises a path: what it checks is exactly what it forwards.
import type { Config } from '../../config/schema.js';
import { matchRoute } from '../routes.js';
import { PASS, reject, type RequestContext, type Stage, type StageResult } from '../types.js';

/** Printable ASCII without space, `\`, `"`, `<`, `>`, `{`, `}`, `|`, `^` or backtick: what a NEMS path can hold. */
const SAFE_PATH = /^\/[A-Za-z0-9\-._~!$&'()*+,;=:@%/]*$/;
/** Dot segments and their encodings, empty segments, and encoded `/` or `\`. */
const SUSPICIOUS_PATH = /(^|\/)(\.|%2e){1,2}(\/|$)|\/\/|%2f|%5c|%2e/i;

function isSafePath(path: string): boolean {
  return path.length <= 2048 && SAFE_PATH.test(path) && !SUSPICIOUS_PATH.test(path);
}

export function createRouteStage(config: Config): Stage {
  const prefix = config.nems.pathPrefix;
  return {
    name: 'route',
    run(ctx: RequestContext): StageResult {
      if (!isSafePath(ctx.path)) return reject('route.safe-path', 'The request path is not a NEMS resource');
      const match = matchRoute(ctx.method, ctx.path, prefix);
      switch (match.kind) {
        case 'matched':
          ctx.route = match.route;
          ctx.operation = match.route.operation;
          if (match.subscriptionId !== undefined) ctx.subscriptionId = match.subscriptionId;
          ctx.audit['operation'] = match.route.operation;
          return PASS;
        case 'method-not-allowed':
          return reject('route.method', 'The HTTP method is not supported for this NEMS resource', {
            headers: { Allow: match.allowed.join(', ') },
          });
        case 'not-supported':
          return reject('route.unsupported-interaction', `${match.what} is not supported by NEMS`);
        case 'unknown-path':
          return reject('route.allowlist', 'The request path is not a NEMS resource');
      }
    },
  };
}
