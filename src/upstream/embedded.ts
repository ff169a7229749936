// The embedded reference NEMS core as an Upstream: the request goes to NemsCore.handle in-process, and its answer is
// written to the client exactly as a remote NEMS's would be. The pipeline cannot tell it from Spine.
import type { IncomingMessage, ServerResponse } from 'node:http';
import { performance } from 'node:perf_hooks';
import type { NemsCore } from '../nems-core/core.js';
import { endToEndResponseHeaders } from './response-headers.js';
import { UpstreamError, type ForwardRequest, type ForwardResult, type Upstream, type UpstreamReadiness } from './types.js';

export class EmbeddedUpstream implements Upstream {
  readonly kind = 'embedded';

  constructor(readonly core: NemsCore) {}

  async forward(request: ForwardRequest, clientRequest: IncomingMessage, res: ServerResponse): Promise<ForwardResult> {
    const started = performance.now();
    // The client left while the request was being checked: the core never sees it.
    if (res.destroyed) throw new UpstreamError('aborted', 'client went away');
    let clientGone = false;
    const onClose = () => {
      if (!res.writableFinished) clientGone = true;
    };
    res.once('close', onClose);
    clientRequest.once('error', onClose);
    try {
      let response;
      try {
        response = await this.core.handle({
          method: request.method,
          url: request.url,
          headers: { ...request.headers, 'x-request-id': request.requestId },
          ...(request.body ? { body: request.body } : {}),
        });
      } catch (err) {
        throw new UpstreamError('unreachable', 'embedded NEMS core failed', { cause: err });
      }
      // A create or publish already took effect; the client leaving only means nobody reads the answer.
      if (clientGone || res.destroyed) throw new UpstreamError('aborted', 'client went away');
      res.cork(); // head and body in one write (see undici-forwarder.ts)
      res.writeHead(response.status, endToEndResponseHeaders(response.headers));
      res.end(response.body);
      return { status: response.status, upstreamMs: performance.now() - started };
    } finally {
      res.off('close', onClose);
      clientRequest.off('error', onClose);
    }
  }

  async ready(): Promise<UpstreamReadiness> {
    return this.core.isOpen
      ? { ok: true, reason: `embedded NEMS core (${this.core.dataDir})` }
      : { ok: false, reason: 'embedded NEMS core store is closed' };
  }

  close(): Promise<void> {
    return this.core.close();
  }
}
