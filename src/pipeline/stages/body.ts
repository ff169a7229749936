// Stage 'body': parses the body once (XML or JSON, as the mime stage decided; publish is always XML), applies
// the Subscription-create or event-message rules, and records every NHS number found for the nhs-numbers stage.
// ctx.body is never modified: the bytes forwarded upstream are exactly the client's.
//
// Decision (fhir/body-text.ts bodyFailureCode): malformed content — not well-formed XML, not JSON, not UTF-8 —
// answers 400 BAD_REQUEST as Spine Core's error table has it (rule `body.malformed`); well-formed content refused
// as unsafe (DTD, entities, PIs, CDATA, depth and size limits, duplicate keys) answers 400 INVALID_REQUEST_MESSAGE
// (rule `body.unsafe-content`); the diagnostics say which rule tripped.
import type { Config } from '../../config/schema.js';
import { bodyFailureCode } from '../../fhir/body-text.js';
import { validateEventMessage } from '../../fhir/event-message.js';
import { parseFhirJson } from '../../fhir/json.js';
import type { FhirFormat } from '../../fhir/operation-outcome.js';
import { validateSubscriptionCreate } from '../../fhir/subscription.js';
import { parseFhirXml, type XmlElement, type XmlParserEngine } from '../../fhir/xml.js';
import { bodyLimitFor } from '../body-limits.js';
import type { RuleId } from '../../rules/catalogue.js';
import { RulePolicy } from '../../rules/policy.js';
import { PASS, reject, type RequestContext, type Stage, type StageResult } from '../types.js';

/** The rule a body the parser refused breaks, by the Spine code fhir/body-text.ts gives it. */
function bodyRule(code: ReturnType<typeof bodyFailureCode>): RuleId {
  return code === 'PAYLOAD_TOO_LARGE' ? 'limits.body-size' : code === 'BAD_REQUEST' ? 'body.malformed' : 'body.unsafe-content';
}

type Parsed = { ok: true; format: 'xml'; root: XmlElement } | { ok: true; format: 'json'; value: unknown } | { ok: false; result: StageResult };

function parseBody(body: Buffer, format: FhirFormat, maxBytes: number, xmlParser: XmlParserEngine): Parsed {
  if (format === 'xml') {
    const xml = parseFhirXml(body, maxBytes, undefined, xmlParser);
    if (xml.ok) return { ok: true, format: 'xml', root: xml.root };
    const code = bodyFailureCode(xml.reason);
    return { ok: false, result: reject(bodyRule(code), code === 'PAYLOAD_TOO_LARGE' ? `request body: ${xml.detail}` : `request body (XML): ${xml.detail}`, { code }) };
  }
  const json = parseFhirJson(body, maxBytes);
  if (json.ok) return { ok: true, format: 'json', value: json.value };
  const code = bodyFailureCode(json.reason);
  return { ok: false, result: reject(bodyRule(code), code === 'PAYLOAD_TOO_LARGE' ? `request body: ${json.detail}` : `request body (JSON): ${json.detail}`, { code }) };
}

export function createBodyStage(config: Config, policy: RulePolicy = RulePolicy.fromConfig(config)): Stage {
  return {
    name: 'body',
    run(ctx: RequestContext): StageResult {
      if (ctx.operation !== 'create' && ctx.operation !== 'publish') return PASS;
      // Fail closed if the pipeline was wired without the stages this one depends on.
      if (!ctx.body) return reject('gateway.internal', 'request body was not read before parsing');
      const format: FhirFormat = ctx.operation === 'publish' ? 'xml' : (ctx.mime?.requestFormat ?? 'xml');
      const started = performance.now();
      const parsed = parseBody(ctx.body, format, bodyLimitFor(config, ctx.operation), config.nems.xmlParser);
      ctx.audit['bodyParseMs'] = Math.round((performance.now() - started) * 100) / 100;
      if (!parsed.ok) return parsed.result;

      if (ctx.operation === 'create') {
        if (!ctx.asidRegistration) return reject('gateway.internal', 'requesting ASID was not resolved before the body');
        const resource = parsed.format === 'xml' ? parsed.root : parsed.value;
        const result = validateSubscriptionCreate(resource, parsed.format, ctx.asidRegistration, ctx.receivedAt, policy, ctx);
        if (!result.ok) return { ok: false, rejection: result.rejection };
        ctx.parsed = result.subscription;
        ctx.nhsNumbers.push(...result.nhsNumbers);
        ctx.audit['subscriptionType'] = result.subscription.subscriptionType;
        ctx.audit['eventCodes'] = result.subscription.eventCodes.join(',');
        return PASS;
      }

      if (!ctx.publishEventType) return reject('gateway.internal', 'publish event type was not resolved before the body');
      if (parsed.format !== 'xml') return reject('mime.publish-xml', 'request body: publish accepts XML only', { code: 'INVALID_REQUEST_MESSAGE' });
      const result = validateEventMessage(parsed.root, ctx.publishEventType, { policy, reports: ctx });
      if (!result.ok) return { ok: false, rejection: result.rejection };
      ctx.parsed = result.event;
      ctx.nhsNumbers.push(...result.nhsNumbers);
      ctx.audit['eventCode'] = result.event.eventType.code;
      if (result.event.messageEventType) ctx.audit['messageEventType'] = result.event.messageEventType;
      if (result.event.messageId) ctx.audit['messageId'] = result.event.messageId;
      return PASS;
    },
  };
}
