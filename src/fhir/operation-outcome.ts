// Spine-shaped OperationOutcome (docs/specification.md §3.1) rendered as FHIR STU3 XML or JSON.
// Rendering never throws: every input is a catalogue code plus gateway-written diagnostics.
import { SPINE_CODES, SPINE_CODE_SYSTEM, SPINE_OO_PROFILE, type IssueSeverity, type SpineCode } from './errors.js';
import type { FhirMimeType } from './mime.js';

export type FhirFormat = 'xml' | 'json';

export interface OutcomeIssue {
  code: SpineCode;
  /** Human-readable detail written by the gateway. Never a claim value, NHS number or library message. */
  diagnostics?: string;
  /** Overrides the catalogue's severity/issue type, e.g. NO_LONGER_SUPPORTED as a warning on a 202 (docs/specification.md §2.6). */
  severity?: IssueSeverity;
  issueType?: string;
}

export const XML_CONTENT_TYPE = 'application/xml+fhir;charset=utf-8';
export const JSON_CONTENT_TYPE = 'application/json+fhir;charset=utf-8';

export function outcomeContentType(format: FhirFormat): string {
  return format === 'json' ? JSON_CONTENT_TYPE : XML_CONTENT_TYPE;
}

/** How an OperationOutcome (or a resource) is written: its format and the Content-Type it is labelled with. */
export interface OutcomeMedia {
  readonly format: FhirFormat;
  readonly contentType: string;
}

/**
 * Rule `mime.response-type`: a response is labelled with the very one of the 8 FHIR types the client asked for
 * (Accept or `_format`) when it asked for one in this format — `Accept: application/fhir+json` is answered as
 * `application/fhir+json`, not `application/json+fhir;charset=utf-8` — else with the NEMS default spelling.
 */
export function outcomeMedia(format: FhirFormat, requested?: FhirMimeType): OutcomeMedia {
  return { format, contentType: requested && requested.format === format ? requested.spelling : outcomeContentType(format) };
}

export function renderOperationOutcome(id: string, issues: readonly OutcomeIssue[], format: FhirFormat): string {
  return format === 'json' ? renderJson(id, issues) : renderXml(id, issues);
}

function renderJson(id: string, issues: readonly OutcomeIssue[]): string {
  return JSON.stringify({
    resourceType: 'OperationOutcome',
    id,
    meta: { profile: [SPINE_OO_PROFILE] },
    issue: issues.map((issue) => {
      const entry = SPINE_CODES[issue.code];
      return {
        severity: issue.severity ?? entry.severity,
        code: issue.issueType ?? entry.issueType,
        details: { coding: [{ system: SPINE_CODE_SYSTEM, code: issue.code, display: entry.display }] },
        ...(issue.diagnostics ? { diagnostics: issue.diagnostics } : {}),
      };
    }),
  });
}

function renderXml(id: string, issues: readonly OutcomeIssue[]): string {
  const parts: string[] = [
    '<OperationOutcome xmlns="http://hl7.org/fhir">',
    `<id value="${escapeXmlAttribute(id)}"/>`,
    `<meta><profile value="${SPINE_OO_PROFILE}"/></meta>`,
  ];
  for (const issue of issues) {
    const entry = SPINE_CODES[issue.code];
    parts.push(
      '<issue>',
      `<severity value="${issue.severity ?? entry.severity}"/>`,
      `<code value="${escapeXmlAttribute(issue.issueType ?? entry.issueType)}"/>`,
      '<details><coding>',
      `<system value="${SPINE_CODE_SYSTEM}"/>`,
      `<code value="${issue.code}"/>`,
      `<display value="${escapeXmlAttribute(entry.display)}"/>`,
      '</coding></details>',
    );
    if (issue.diagnostics) parts.push(`<diagnostics value="${escapeXmlAttribute(issue.diagnostics)}"/>`);
    parts.push('</issue>');
  }
  parts.push('</OperationOutcome>');
  return parts.join('');
}

const XML_ESCAPES: Record<string, string> = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&apos;' };

export function escapeXmlAttribute(value: string): string {
  // Control characters other than tab/newline are not legal XML 1.0; drop them rather than fail to render.
  // eslint-disable-next-line no-control-regex
  return value.replace(/[\u0000-\u0008\u000b\u000c\u000e-\u001f\ufffe\uffff]/g, '').replace(/[&<>"']/g, (c) => XML_ESCAPES[c]!);
}
