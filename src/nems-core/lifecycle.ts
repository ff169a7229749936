// Event-type lifecycle (docs/specification.md §2.6, §9.9): which event codes are deprecated, no longer supported or withdrawn,
// from config.core.lifecycle. Subscribe: deprecated → 201 + DEPRECATED warning; no-longer-supported → 400
// NO_LONGER_SUPPORTED; withdrawn → 400 WITHDRAWN. Publish: deprecated / no-longer-supported → 202 + warning
// (severity information); withdrawn → 400 WITHDRAWN. Codes absent from the table are active.
import type { Config, LifecycleState } from '../config/schema.js';
import type { OutcomeIssue } from '../fhir/operation-outcome.js';

export type LifecycleTable = Config['core']['lifecycle'];

export interface LifecycleVerdict {
  /** Issues that reject the request (empty when it may proceed). */
  readonly errors: readonly OutcomeIssue[];
  /** Informational issues returned with a success. */
  readonly warnings: readonly OutcomeIssue[];
}

export function lifecycleState(table: LifecycleTable, eventCode: string): LifecycleState {
  return Object.prototype.hasOwnProperty.call(table, eventCode) ? table[eventCode]!.state : 'active';
}

function describe(table: LifecycleTable, eventCode: string, what: string): string {
  const entry = table[eventCode];
  const since = entry?.since ? ` since ${entry.since}` : '';
  const info = entry?.info ? `; ${entry.info}` : '';
  return `Event type ${eventCode} ${what}${since}${info}`;
}

/** Verdict for creating a subscription to these event codes. */
export function subscribeVerdict(table: LifecycleTable, eventCodes: readonly string[]): LifecycleVerdict {
  const errors: OutcomeIssue[] = [];
  const warnings: OutcomeIssue[] = [];
  for (const code of eventCodes) {
    switch (lifecycleState(table, code)) {
      case 'withdrawn':
        errors.push({ code: 'WITHDRAWN', diagnostics: describe(table, code, 'has been withdrawn') });
        break;
      case 'no-longer-supported':
        errors.push({ code: 'NO_LONGER_SUPPORTED', diagnostics: describe(table, code, 'is no longer supported for new subscriptions') });
        break;
      case 'deprecated':
        warnings.push({ code: 'DEPRECATED', diagnostics: describe(table, code, 'has been deprecated') });
        break;
      default:
        break;
    }
  }
  // WITHDRAWN first so the catalogue status of the first issue decides the HTTP status predictably.
  errors.sort((a, b) => (a.code === b.code ? 0 : a.code === 'WITHDRAWN' ? -1 : 1));
  return { errors, warnings };
}

/** Verdict for publishing an event of this code. */
export function publishVerdict(table: LifecycleTable, eventCode: string): LifecycleVerdict {
  switch (lifecycleState(table, eventCode)) {
    case 'withdrawn':
      return { errors: [{ code: 'WITHDRAWN', diagnostics: describe(table, eventCode, 'has been withdrawn') }], warnings: [] };
    case 'no-longer-supported':
      return { errors: [], warnings: [{ code: 'NO_LONGER_SUPPORTED', diagnostics: describe(table, eventCode, 'is no longer supported') }] };
    case 'deprecated':
      return { errors: [], warnings: [{ code: 'DEPRECATED', diagnostics: describe(table, eventCode, 'has been deprecated') }] };
    default:
      return { errors: [], warnings: [] };
  }
}
