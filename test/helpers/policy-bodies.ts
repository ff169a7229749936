// The request bodies the policy cases stand for (PolicyBody is symbolic so cases can name real fixtures), for the
// in-process lifecycle run and the end-to-end run alike.
import { readNemsExample } from './nems-examples.js';
import type { PolicyBody, PolicyCase } from '../pipeline/policy-cases.js';
import { EXPLICIT_SUBSCRIPTION, ODS_URL, subscriptionJson, subscriptionXml } from './bodies.js';
import { CHILD_HEALTH_MAILBOX, CHILD_HEALTH_ODS } from './endpoints.js';
import type { InjectRequest } from './inject.js';

const EVENT_FIXTURE: Record<string, string> = {
  'vaccinations-1': 'vaccinations-1-new.xml',
  'blood-spot-test-outcome-1': 'blood-spot-test-outcome-1-new.xml',
  'newborn-hearing-1': 'newborn-hearing-1-new.xml',
  // nipe-outcome-1-update.xml breaks FHIR itself (timestamp +58:00, INVALID_NEMS_EXAMPLES): the delete is valid.
  'nipe-outcome-1': 'nipe-outcome-1-delete.xml',
  'professional-contacts-1': 'Professional-Contacts-1-new.xml',
};

export function policyBody(c: PolicyCase, body: PolicyBody): Buffer {
  switch (body.kind) {
    case 'raw':
      return Buffer.from(body.text);
    case 'event':
      return readNemsExample(EVENT_FIXTURE[body.eventCode] ?? 'vaccinations-1-new.xml');
    case 'subscription': {
      const model = c.endpoint === 'child-health'
        ? { ...EXPLICIT_SUBSCRIPTION, contacts: [{ system: 'url', value: `${ODS_URL}${CHILD_HEALTH_ODS}`, use: 'work' }], channel: { type: 'message', endpoint: CHILD_HEALTH_MAILBOX } }
        : EXPLICIT_SUBSCRIPTION;
      return Buffer.from(body.format === 'json' ? subscriptionJson(model) : subscriptionXml(model));
    }
  }
}

/** A policy case as the in-process request inject() sends: the same bytes the end-to-end run sends over TLS. */
export function policyRequest(c: PolicyCase): InjectRequest {
  return {
    endpoint: c.endpoint,
    method: c.method,
    target: c.path,
    headers: c.headers,
    ...(c.body ? { body: policyBody(c, c.body) } : {}),
  };
}
