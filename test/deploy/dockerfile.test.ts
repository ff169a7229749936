// The Dockerfile, linted offline (issue 14 point 1): dockerfile-utils' validator and the house rules of
// dockerfile-lint.ts. The image itself is built and run in image.test.ts.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { PROJECT_ROOT } from '../../src/paths.js';
import { lintDockerfile } from './dockerfile-lint.js';

describe('Dockerfile lint', () => {
  it('finds nothing in the shipped Dockerfile', () => {
    expect(lintDockerfile(readFileSync(join(PROJECT_ROOT, 'Dockerfile'), 'utf8'))).toEqual([]);
  });

  it('flags a base pulled from a registry, ADD, shell forms, a secret in ENV, running as root and a deprecated instruction', () => {
    const bad = [
      'FROM node:latest AS build',
      'MAINTAINER someone',
      'ADD https://example.com/x.tgz /x',
      'RUN npm ci',
      'FROM build',
      'ENV REDIS_PASSWORD=hunter2',
      'USER root',
      'ENTRYPOINT node main.js',
      '',
    ].join('\n');
    expect(lintDockerfile(bad)).toEqual(expect.arrayContaining([
      expect.stringMatching(/^line 1: FROM node: only scratch or an earlier stage/),
      expect.stringMatching(/^line 2: MAINTAINER has been deprecated/),
      'line 3: ADD: use COPY',
      'line 4: RUN: use the exec (JSON) form; the image has no shell',
      'line 6: ENV REDIS_PASSWORD: secrets never go into an image',
      'line 7: USER root: a numeric non-root uid[:gid]',
      'line 8: ENTRYPOINT: use the exec (JSON) form; the image has no shell',
    ]));
  });

  it('flags a final stage without USER or ENTRYPOINT', () => {
    expect(lintDockerfile('FROM scratch\nCOPY app/ /app/\n')).toEqual([
      'final stage: no USER (it would run as root)',
      'final stage: 0 ENTRYPOINT instructions (one expected)',
    ]);
  });
});
