import { describe, expect, it } from 'vitest';
import { createReadBodyStage } from '../../src/pipeline/stages/read-body.js';
import { EXPLICIT_SUBSCRIPTION_XML, VACCINATION_PUBLISH_XML } from '../helpers/bodies.js';
import { bodyContext, bodyTestConfig, ScriptedSource, wire } from './body-context.js';

const MB = 1024 * 1024;

describe("stage 'read-body'", () => {
  const config = bodyTestConfig();
  const stage = createReadBodyStage(config);

  it('is named read-body', () => {
    expect(stage.name).toBe('read-body');
  });

  it('reads a publish body under the 3 MB cap and keeps the exact bytes', async () => {
    const bytes = Buffer.from(VACCINATION_PUBLISH_XML);
    const source = new ScriptedSource(bytes);
    const ctx = bodyContext('publish', { source });
    expect(wire(await stage.run(ctx))).toBe('pass');
    expect(source.limits).toEqual([3 * MB]);
    expect(ctx.body).toBe(bytes);
    expect(ctx.audit['bodyBytes']).toBe(bytes.length);
  });

  it('asks for the subscription cap on create and the server default on other operations', async () => {
    const create = new ScriptedSource(Buffer.from(EXPLICIT_SUBSCRIPTION_XML));
    await stage.run(bodyContext('create', { source: create }));
    expect(create.limits).toEqual([config.nems.subscriptionMaxBytes]);
    const read = new ScriptedSource(Buffer.alloc(0));
    expect(wire(await stage.run(bodyContext('read', { source: read })))).toBe('pass');
    expect(read.limits).toEqual([config.server.limits.maxBodyBytes]);
  });

  it('rejects a declared Content-Length above the publish cap before reading → 413 PAYLOAD_TOO_LARGE', async () => {
    const source = new ScriptedSource(Buffer.from('<Bundle/>'));
    const result = wire(await stage.run(bodyContext('publish', { source, contentLength: String(3 * MB + 1) })));
    expect(result).toMatchObject({ status: 413, code: 'PAYLOAD_TOO_LARGE', diagnostics: expect.stringMatching(/^Content-Length:/) });
    expect(source.limits).toEqual([]);
  });

  it('rejects a declared Content-Length above the subscription cap → 413 PAYLOAD_TOO_LARGE', async () => {
    const source = new ScriptedSource(Buffer.from('{}'));
    const result = wire(await stage.run(bodyContext('create', { source, contentLength: String(config.nems.subscriptionMaxBytes + 1) })));
    expect(result).toMatchObject({ status: 413, code: 'PAYLOAD_TOO_LARGE' });
    expect(source.limits).toEqual([]);
  });

  it('rejects a streamed body that exceeds the cap (no Content-Length) → 413 PAYLOAD_TOO_LARGE', async () => {
    const small = createReadBodyStage(bodyTestConfig({ publishMaxBytes: 1024 }));
    const result = wire(await small.run(bodyContext('publish', { source: new ScriptedSource(Buffer.alloc(2048, 0x20)) })));
    expect(result).toMatchObject({ status: 413, code: 'PAYLOAD_TOO_LARGE' });
  });

  it('rejects a body larger than the cap even when the source ignored the limit → 413', async () => {
    const careless = { readBody: () => Promise.resolve(Buffer.alloc(4096, 0x20)) };
    const small = createReadBodyStage(bodyTestConfig({ subscriptionMaxBytes: 1024 }));
    expect(wire(await small.run(bodyContext('create', { source: careless })))).toMatchObject({ status: 413, code: 'PAYLOAD_TOO_LARGE' });
  });

  it('answers 400 BAD_REQUEST when the body cannot be read (client reset), without echoing the error', async () => {
    const result = wire(await stage.run(bodyContext('create', { source: new ScriptedSource(new Error('ECONNRESET secret-detail')) })));
    expect(result).toMatchObject({ status: 400, code: 'BAD_REQUEST' });
    expect(JSON.stringify(result)).not.toContain('secret-detail');
  });

  it('answers 400 BAD_REQUEST when the body does not arrive within the request timeout', async () => {
    const quick = createReadBodyStage(bodyTestConfig({ requestTimeoutMs: 50 }));
    const started = Date.now();
    const result = wire(await quick.run(bodyContext('publish', { source: new ScriptedSource('hang') })));
    expect(result).toMatchObject({ status: 400, code: 'BAD_REQUEST' });
    expect(Date.now() - started).toBeLessThan(2000);
  });

  it('rejects an empty create body → 400 INVALID_REQUEST_MESSAGE', async () => {
    expect(wire(await stage.run(bodyContext('create', { source: new ScriptedSource(Buffer.alloc(0)) })))).toMatchObject({ status: 400, code: 'INVALID_REQUEST_MESSAGE' });
  });

  it('rejects an empty publish body → 400 INVALID_REQUEST_MESSAGE', async () => {
    expect(wire(await stage.run(bodyContext('publish', { source: new ScriptedSource(Buffer.alloc(0)) })))).toMatchObject({ status: 400, code: 'INVALID_REQUEST_MESSAGE' });
  });
});
