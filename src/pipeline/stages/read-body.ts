// Stage 'read-body': reads the request body under the route's byte cap (docs/specification.md §2.1 3 MB publish, §8) and
// keeps the client's exact bytes on ctx.body for parsing and forwarding. A declared Content-Length above the
// cap is refused before a single byte is read.
import type { Config } from '../../config/schema.js';
import { bodyLimitFor } from '../body-limits.js';
import { isPayloadTooLarge, PASS, reject, type RequestContext, type Stage, type StageResult } from '../types.js';

class BodyTimeout extends Error {}

export function createReadBodyStage(config: Config): Stage {
  const timeoutMs = config.server.limits.requestTimeoutMs;
  return {
    name: 'read-body',
    async run(ctx: RequestContext): Promise<StageResult> {
      const limit = bodyLimitFor(config, ctx.operation);
      const declared = ctx.headers['content-length'];
      if (declared !== undefined && /^\d+$/.test(declared) && Number(declared) > limit) {
        return reject('limits.body-size', `Content-Length: request body exceeds the ${limit}-byte limit for this operation`);
      }
      let body: Buffer;
      let timer: NodeJS.Timeout | undefined;
      try {
        // Time-boxed: a client trickling its body must not hold the request open past the request timeout.
        const timeout = new Promise<never>((_, rejectTimeout) => {
          timer = setTimeout(() => rejectTimeout(new BodyTimeout()), timeoutMs);
          timer.unref();
        });
        body = await Promise.race([ctx.source.readBody(limit), timeout]);
      } catch (error) {
        if (isPayloadTooLarge(error)) {
          return reject('limits.body-size', `request body exceeds the ${limit}-byte limit for this operation`);
        }
        if (error instanceof BodyTimeout) return reject('limits.body-time', 'request body was not received in time');
        return reject('body.unreadable', 'request body could not be read');
      } finally {
        if (timer) clearTimeout(timer);
      }
      // Defence in depth: a source that ignored the limit must not slip a larger body through.
      if (body.length > limit) return reject('limits.body-size', `request body exceeds the ${limit}-byte limit for this operation`);
      if (body.length === 0 && (ctx.operation === 'create' || ctx.operation === 'publish')) {
        return reject('body.required', 'request body: a FHIR resource is required');
      }
      ctx.body = body;
      ctx.audit['bodyBytes'] = body.length;
      return PASS;
    },
  };
}
