// Every fuzz target, in the order `npm run fuzz` runs them. A new client-facing parser gets a file in targets/
// and a line here.
import type { AnyFuzzTarget } from './harness.js';
import { certTarget } from './targets/cert.js';
import { criteriaTarget } from './targets/criteria.js';
import { eventMessageTarget } from './targets/event-message.js';
import { jsonTarget } from './targets/json.js';
import { jwtTarget } from './targets/jwt.js';
import { mimeTarget } from './targets/mime.js';
import { nhsNumberTarget } from './targets/nhs-number.js';
import { subscriptionTarget } from './targets/subscription.js';
import { xmlTarget } from './targets/xml.js';

export const FUZZ_TARGETS: readonly AnyFuzzTarget[] = [xmlTarget, jsonTarget, criteriaTarget, mimeTarget, jwtTarget, nhsNumberTarget, certTarget, subscriptionTarget, eventMessageTarget];

export function fuzzTarget(name: string): AnyFuzzTarget {
  const target = FUZZ_TARGETS.find((t) => t.name === name);
  if (!target) throw new Error(`unknown fuzz target ${name} (known: ${FUZZ_TARGETS.map((t) => t.name).join(', ')})`);
  return target;
}
