// Builds the one set of stages the route table refers to by name.
import type { Config } from '../../config/schema.js';
import type { PdsLookup } from '../../pds/types.js';
import { RulePolicy } from '../../rules/policy.js';
import type { StageSet } from '../types.js';
import { createBodyStage } from './body.js';
import { createHeadersStage } from './headers.js';
import { createJwtStage } from './jwt.js';
import { createMimeStage } from './mime.js';
import { createNhsNumbersStage } from './nhs-numbers.js';
import { createRateLimitStage, type TokenBucketStore } from './rate-limit.js';
import { createReadBodyStage } from './read-body.js';
import { createRouteStage } from './route.js';

export interface StageDeps {
  readonly pds: PdsLookup;
  readonly now?: () => number;
  readonly onRateLimited?: (operation: string) => void;
  /** Shared rate-limit buckets (rateLimits.store: redis); the stage's own memory store otherwise. */
  readonly rateLimitStore?: TokenBucketStore;
  /** The rule policy (compiled from config.policy when not given). */
  readonly policy?: RulePolicy;
}

export function createStages(config: Config, deps: StageDeps): StageSet {
  const policy = deps.policy ?? RulePolicy.fromConfig(config);
  return {
    route: createRouteStage(config),
    'rate-limit': createRateLimitStage(config, {
      ...(deps.now ? { now: deps.now } : {}),
      ...(deps.onRateLimited ? { onLimited: deps.onRateLimited } : {}),
      ...(deps.rateLimitStore ? { store: deps.rateLimitStore } : {}),
    }),
    headers: createHeadersStage(config, policy),
    jwt: createJwtStage(config, policy),
    mime: createMimeStage(config, policy),
    'read-body': createReadBodyStage(config),
    body: createBodyStage(config, policy),
    'nhs-numbers': createNhsNumbersStage(config, deps.pds),
  };
}
