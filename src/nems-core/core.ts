// The embedded reference NEMS core: Subscription create/read/delete and event publish as NEMS documents them
// (docs/specification.md §1, §2, §3), with an in-process request/response API so it can sit behind the gateway as an
// Upstream or behind its own HTTP server. It trusts nothing: it can run standalone, so it re-checks its input,
// with the gateway's own rule functions (src/nems/ for the vocabulary, fhir/subscription.ts and
// fhir/event-message.ts for the resources); only the rules that need the endpoint registry are left out.
import { createHash, randomBytes, randomUUID } from 'node:crypto';
import { bodyFailureCode } from '../fhir/body-text.js';
import { SPINE_CODE_SYSTEM, SPINE_CODES, type SpineCode } from '../fhir/errors.js';
import { validateEventMessage } from '../fhir/event-message.js';
import { parseFhirJson } from '../fhir/json.js';
import { matchFhirMimeType, responseMedia } from '../fhir/mime.js';
import { outcomeContentType, renderOperationOutcome, type FhirFormat, type OutcomeIssue, type OutcomeMedia } from '../fhir/operation-outcome.js';
import { validateSubscriptionCreate } from '../fhir/subscription.js';
import { parseFhirXml } from '../fhir/xml.js';
import { EVENT_TYPE_SYSTEM, eventTypeByCode, type NemsEventType } from '../nems/events.js';
import { isAsid, ISSUED_SUBSCRIPTION_ID_PATTERN, NHS_NUMBER_SYSTEM, pickRequestId } from '../nems/identifiers.js';
import { resolveInteraction } from '../nems/interactions.js';
import { nhsNumberProblem } from '../nems/nhs-number.js';
import { createRouteMatcher, NEMS_ROUTES } from '../nems/operations.js';
import type { NhsNumberRef, Rejection } from '../pipeline/types.js';
import { RulePolicy } from '../rules/policy.js';
import {
  eventFromXml,
  renderSubscriptionJson,
  renderSubscriptionXml,
  subscriptionFromJson,
  subscriptionFromXml,
  type EventDocument,
  type SubscriptionModel,
} from './documents.js';
import { DEFAULT_GEOGRAPHY, type GeographyTables } from './geography.js';
import { publishVerdict, subscribeVerdict, type LifecycleTable } from './lifecycle.js';
import { resolvePatient, selectDeliveries, type EventFacts, type PatientDirectory, type PatientRecord } from './matching.js';
import { writeMeshMessage, type MeshControl } from './outbox.js';
import { CoreStore, type DeliveryRecord, type StoredPublication, type StoreStats } from './store.js';

/** Minimal logger shape (pino's Logger satisfies it). Never given NHS numbers or bodies. */
export interface CoreLogger {
  info(obj: object, msg?: string): void;
  warn(obj: object, msg?: string): void;
  error(obj: object, msg?: string): void;
}

export interface NemsCoreOptions {
  /** Absolute data directory: `nems-core.sqlite` and `mesh/<mailbox>/` live here. */
  readonly dataDir: string;
  /**
   * Base URL for Location headers, e.g. `https://localhost:8443/STU3`; its path is the route prefix unless
   * `pathPrefix` is given. A function is read per response (the embedded core learns the gateway's port late).
   */
  readonly baseUrl: string | (() => string);
  readonly lifecycle?: LifecycleTable;
  /** Local PDS data for generic rules (registered GP, postcode, birth date). */
  readonly patientDirectory?: PatientDirectory;
  readonly geography?: GeographyTables;
  readonly logger?: CoreLogger;
  /** Overrides the route prefix taken from `baseUrl`'s path. */
  readonly pathPrefix?: string;
  readonly maxSubscriptionBytes?: number;
  readonly maxPublishBytes?: number;
  /** Accept the pre-2020 publish InteractionID forms, as `nems.acceptLegacyPublishInteractionIds` (default off). */
  readonly acceptLegacyPublishInteractionIds?: boolean;
  /**
   * Refuse a create that duplicates an active subscription (same owner ASID and MESH mailbox, criteria with the same
   * meaning; store.ts sameCriteria) with 422 DUPLICATE_REJECTED naming the existing id, as NEMS does. On by default;
   * false stores duplicates (only tests of matching want that).
   */
  readonly rejectDuplicateSubscriptions?: boolean;
  readonly rejectRepeatedDigitNhsNumbers?: boolean;
  /**
   * What each conformance rule does (config.policy): the core judges bodies with the gateway's rule functions, so a
   * rule the gateway reports must not make the core refuse what the gateway forwarded. Strict when not given.
   */
  readonly policy?: RulePolicy;
  /** Upper bound on one patient-directory lookup during matching; a slow directory counts as no data. */
  readonly directoryTimeoutMs?: number;
  /** Injectable clock (ms since the epoch) for ages, `end` and timestamps. */
  readonly now?: () => number;
  /**
   * Where each matched (event, mailbox) goes: the MESH-style folder by default, or a durable queue (core.delivery
   * mesh). Called before the publication is marked delivered and again if a crash interrupts: must be idempotent
   * per `control.messageId`, and throw when it cannot record the message.
   */
  readonly deliver?: (control: MeshControl, body: Buffer, publicationId: string) => void;
  /** How long a claim on a publication's delivery lasts before another process (or a restart) may take it over. */
  readonly deliveryLeaseMs?: number;
  /**
   * How often the delivery loop looks for pending publications nobody holds a live claim on, besides running after
   * each publish: claims left by a process that died, and publications another process sharing the data
   * directory accepted.
   */
  readonly deliverySweepMs?: number;
}

export type HeaderValue = string | string[] | number | undefined;

export interface CoreRequest {
  readonly method: string;
  /** Path and query as received. */
  readonly url: string;
  readonly headers: Readonly<Record<string, HeaderValue>>;
  readonly body?: Buffer;
}

export interface CoreResponse {
  readonly status: number;
  readonly headers: Record<string, string>;
  readonly body?: Buffer;
}

/** ASID recorded for events the core publishes itself (PDS events come from Spine, not the Publication API). */
export const SPINE_PUBLISHER_ASID = '000000000000';
export const DEFAULT_SUBSCRIPTION_MAX_BYTES = 256 * 1024;
export const DEFAULT_PUBLISH_MAX_BYTES = 3 * 1024 * 1024;
const MAX_URL_LENGTH = 2048;
/** How long one process may hold a publication before another may take its delivery over. */
export const DEFAULT_DELIVERY_LEASE_MS = 60_000;
/** How often the delivery loop sweeps for publications whose claim has expired. */
export const DEFAULT_DELIVERY_SWEEP_MS = 5_000;
const matchRoute = createRouteMatcher(NEMS_ROUTES);

class Reply {
  constructor(readonly status: number, readonly issues: readonly OutcomeIssue[], readonly headers: Record<string, string> = {}) {}
}

function fail(code: SpineCode, diagnostics: string, status?: number, headers?: Record<string, string>): Reply {
  return new Reply(status ?? SPINE_CODES[code].status, [{ code, diagnostics }], headers);
}

function fromRejection(rejection: Rejection): Reply {
  return fail(rejection.code, rejection.diagnostics, rejection.status, rejection.headers ? { ...rejection.headers } : undefined);
}

interface RequestScope {
  readonly requestId: string;
  readonly format: FhirFormat;
  /** The response's Content-Type: the FHIR type the client asked for when it named one (mime.response-type). */
  readonly contentType: string;
  readonly headers: ReadonlyMap<string, string | string[]>;
}

export class NemsCore {
  private readonly resolveBaseUrl: () => string;

  /** The base URL Location headers use now. */
  get baseUrl(): string {
    return this.resolveBaseUrl();
  }
  readonly dataDir: string;
  readonly pathPrefix: string;
  private readonly store: CoreStore;
  private readonly lifecycle: LifecycleTable;
  private readonly geography: GeographyTables;
  private readonly maxSubscriptionBytes: number;
  private readonly maxPublishBytes: number;
  private readonly now: () => number;
  private readonly policy: RulePolicy;
  private draining: Promise<void> | undefined;
  private dirty = false;
  private closed = false;
  /** Lease owner name for this process's delivery loop. */
  private readonly instanceId = `${process.pid}-${randomUUID()}`;
  private readonly deliveryLeaseMs: number;
  /** Runs the delivery loop on its own, so an expired claim is taken over without waiting for a publish. */
  private readonly sweep: NodeJS.Timeout;

  constructor(private readonly options: NemsCoreOptions) {
    this.policy = options.policy ?? RulePolicy.STRICT;
    const baseUrl = options.baseUrl;
    this.resolveBaseUrl = typeof baseUrl === 'string' ? () => baseUrl.replace(/\/+$/, '') : () => baseUrl().replace(/\/+$/, '');
    this.dataDir = options.dataDir;
    this.pathPrefix = (options.pathPrefix ?? new URL(this.resolveBaseUrl()).pathname).replace(/\/+$/, '');
    this.lifecycle = options.lifecycle ?? {};
    this.geography = options.geography ?? DEFAULT_GEOGRAPHY;
    this.maxSubscriptionBytes = options.maxSubscriptionBytes ?? DEFAULT_SUBSCRIPTION_MAX_BYTES;
    this.maxPublishBytes = options.maxPublishBytes ?? DEFAULT_PUBLISH_MAX_BYTES;
    this.now = options.now ?? Date.now;
    this.deliveryLeaseMs = options.deliveryLeaseMs ?? DEFAULT_DELIVERY_LEASE_MS;
    this.store = CoreStore.open(options.dataDir);
    // Publications accepted (202) before a restart but not yet delivered resume now; those a dead process still
    // holds a claim on resume at the first sweep after the claim expires.
    this.schedule();
    this.sweep = setInterval(() => this.schedule(), options.deliverySweepMs ?? DEFAULT_DELIVERY_SWEEP_MS);
    this.sweep.unref();
  }

  get isOpen(): boolean {
    return !this.closed && this.store.isOpen;
  }

  /** Handles one NEMS request. Never rejects: every failure is a Spine OperationOutcome response. */
  async handle(request: CoreRequest): Promise<CoreResponse> {
    const { scope, path } = scopeFor(request);
    try {
      if (this.closed) return this.render(scope, fail('SERVICE_UNAVAILABLE', 'The NEMS core is shutting down'));
      const result = await this.dispatch(request.method.toUpperCase(), path, request.body, scope);
      return result instanceof Reply ? this.render(scope, result) : result;
    } catch (err) {
      this.options.logger?.error({ requestId: scope.requestId, err: errorName(err) }, 'NEMS core request failed');
      return this.render(scope, fail('INTERNAL_SERVER_ERROR', 'The NEMS core could not process the request'));
    }
  }

  private async dispatch(method: string, path: string, body: Buffer | undefined, scope: RequestScope): Promise<CoreResponse | Reply> {
    const match = matchRoute(method, path, this.pathPrefix);
    switch (match.kind) {
      case 'unknown-path':
        return fail('NO_RECORD_FOUND', 'No NEMS resource at this path');
      case 'not-supported':
        return fail('NOT_IMPLEMENTED', `${match.what} is not supported by NEMS`);
      case 'method-not-allowed':
        return fail('BAD_REQUEST', 'HTTP method not allowed for this path', undefined, { allow: match.allowed.join(', ') });
      case 'matched':
        break;
    }
    const route = match.route;
    const fromAsid = single(scope.headers, 'fromasid');
    if (!fromAsid || !isAsid(fromAsid)) return fail('MISSING_OR_INVALID_HEADER', 'fromASID header is missing or is not a 12-digit ASID');
    const interactionId = single(scope.headers, 'interactionid');
    if (!interactionId) return fail('MISSING_OR_INVALID_HEADER', 'InteractionID header is missing');
    const interaction = resolveInteraction(route.interactionId, interactionId, this.options.acceptLegacyPublishInteractionIds ?? false);
    if (!interaction) {
      return fail('MISSING_OR_INVALID_HEADER', route.operation === 'publish'
        ? 'InteractionID header does not name a publishable NEMS event'
        : 'InteractionID header does not match the operation');
    }
    switch (route.operation) {
      case 'create':
        return this.create(fromAsid, body, scope);
      case 'read':
        return this.read(fromAsid, match.subscriptionId!, scope);
      case 'delete':
        return this.remove(fromAsid, match.subscriptionId!);
      case 'publish':
        return this.publish(fromAsid, interaction.publishEventType, body, scope);
    }
  }

  /** A Spine OperationOutcome response for a failure found outside handle() (e.g. the HTTP server's body cap). */
  errorResponse(code: SpineCode, diagnostics: string, request: Pick<CoreRequest, 'url' | 'headers'>): CoreResponse {
    return this.render(scopeFor(request).scope, fail(code, diagnostics));
  }

  /** Largest body any NEMS operation accepts (the publish cap, 3 MB by default). */
  get maxBodyBytes(): number {
    return Math.max(this.maxPublishBytes, this.maxSubscriptionBytes);
  }

  // -------------------------------------------------------------------------------------------------------------
  // Subscriptions

  private create(fromAsid: string, body: Buffer | undefined, scope: RequestScope): CoreResponse | Reply {
    const contentType = single(scope.headers, 'content-type');
    const mime = contentType === undefined ? undefined : matchFhirMimeType(contentType, 'fhir');
    if (contentType !== undefined && !mime) return fail('UNSUPPORTED_MEDIA_TYPE', 'Content-Type is not a supported FHIR media type');
    const requestFormat: FhirFormat = mime?.format ?? 'xml';
    if (!body || body.length === 0) return fail('INVALID_REQUEST_MESSAGE', 'Subscription body is missing');
    if (body.length > this.maxSubscriptionBytes) return fail('PAYLOAD_TOO_LARGE', `Subscription body exceeds ${this.maxSubscriptionBytes} bytes`);

    let model: SubscriptionModel;
    let checked: ReturnType<typeof validateSubscriptionCreate>;
    if (requestFormat === 'json') {
      const parsed = parseFhirJson(body, this.maxSubscriptionBytes);
      if (!parsed.ok) return fail(bodyFailureCode(parsed.reason), `Subscription JSON: ${parsed.detail}`);
      checked = validateSubscriptionCreate(parsed.value, 'json', undefined, this.now(), this.policy);
      model = subscriptionFromJson(parsed.value);
    } else {
      const parsed = parseFhirXml(body, this.maxSubscriptionBytes);
      if (!parsed.ok) return fail(bodyFailureCode(parsed.reason), `Subscription XML: ${parsed.detail}`);
      checked = validateSubscriptionCreate(parsed.root, 'xml', undefined, this.now(), this.policy);
      model = subscriptionFromXml(parsed.root);
    }
    // The gateway's Subscription rules; the registry-bound ones (registered ODS codes and mailboxes) need a registry.
    if (!checked.ok) return fromRejection(checked.rejection);
    const invalidNumber = this.invalidNhsNumber(checked.nhsNumbers);
    if (invalidNumber) return invalidNumber;
    const { criteria, endAt } = checked;
    const { contactOds: ownerOds, mailboxId } = checked.subscription;

    const verdict = subscribeVerdict(this.lifecycle, criteria.eventCodes);
    if (verdict.errors.length > 0) return new Reply(SPINE_CODES[verdict.errors[0]!.code].status, verdict.errors);

    const now = this.now();
    const id = randomBytes(16).toString('hex');
    const meta = { id, versionId: '1', lastUpdated: new Date(now).toISOString() };
    const outcome = this.store.insertSubscription(
      {
        id, ownerAsid: fromAsid, ownerOds, mailboxId, criteria: model.criteria!, parsed: criteria,
        ...(endAt !== undefined ? { endAt } : {}),
        resourceXml: renderSubscriptionXml(model, meta), resourceJson: renderSubscriptionJson(model, meta),
        versionId: meta.versionId, lastUpdated: meta.lastUpdated, createdAt: now,
      },
      { rejectDuplicate: this.options.rejectDuplicateSubscriptions ?? true, now },
    );
    // core.duplicate-subscription. The diagnostics carry the existing id in the shape NHSDigital's Cohort Manager NEMS
    // client parses from a DUPLICATE_REJECTED answer (regex `subscription already exists\s*:\s*"?([a-zA-Z0-9-_]+)"?`,
    // dtos-cohort-manager, ManageNemsSubscription/NemsSubscriptionManager.cs, SendSubscriptionToNemsAsync).
    if (outcome !== 'created') return fail('DUPLICATE_REJECTED', `An identical subscription already exists : ${outcome.duplicateOf}`);
    this.options.logger?.info({ requestId: scope.requestId, subscriptionId: id, fromAsid, mailboxId, type: criteria.subscriptionType }, 'subscription created');
    const headers: Record<string, string> = {
      location: `${this.baseUrl}/Subscription/${id}`,
      etag: `W/"${meta.versionId}"`,
      'last-modified': new Date(now).toUTCString(),
    };
    if (verdict.warnings.length === 0) return { status: 201, headers };
    return this.render(scope, new Reply(201, verdict.warnings, headers));
  }

  /** Modulus 11 for every NHS number a request carries: the core has no PDS to trace them (the gateway does). */
  private invalidNhsNumber(refs: readonly NhsNumberRef[]): Reply | undefined {
    for (const ref of refs) {
      if (nhsNumberProblem(ref.value, this.options.rejectRepeatedDigitNhsNumbers ?? true)) {
        return fail('INVALID_NHS_NUMBER', `${ref.element} is not a valid NHS number`);
      }
    }
    return undefined;
  }

  private read(fromAsid: string, id: string, scope: RequestScope): CoreResponse | Reply {
    const sub = ISSUED_SUBSCRIPTION_ID_PATTERN.test(id) ? this.store.findSubscription(id, fromAsid) : undefined;
    // Another organisation's subscription is indistinguishable from an unknown one.
    if (!sub) return fail('NO_RECORD_FOUND', 'No subscription with this id');
    const body = Buffer.from(scope.format === 'json' ? sub.resourceJson : sub.resourceXml, 'utf8');
    return {
      status: 200,
      headers: {
        'content-type': scope.contentType,
        'content-length': String(body.length),
        etag: `W/"${sub.versionId}"`,
        'last-modified': new Date(Date.parse(sub.lastUpdated)).toUTCString(),
      },
      body,
    };
  }

  private remove(fromAsid: string, id: string): CoreResponse | Reply {
    const deleted = ISSUED_SUBSCRIPTION_ID_PATTERN.test(id) && this.store.deleteSubscription(id, fromAsid, this.now());
    if (!deleted) return fail('NO_RECORD_FOUND', 'No subscription with this id');
    this.options.logger?.info({ subscriptionId: id, fromAsid }, 'subscription deleted');
    return { status: 200, headers: {} };
  }

  // -------------------------------------------------------------------------------------------------------------
  // Publish

  /**
   * Publishes an event as Spine itself does for the PDS events (birth, death, change of GP/address, record
   * change), which the Publication API does not accept. Same checks and delivery otherwise; for tests and demos.
   */
  async publishAsSpine(body: Buffer): Promise<CoreResponse> {
    const scope: RequestScope = { requestId: randomUUID(), format: 'xml', contentType: outcomeContentType('xml'), headers: new Map() };
    const result = this.publish(SPINE_PUBLISHER_ASID, undefined, body, scope);
    return result instanceof Reply ? this.render(scope, result) : result;
  }

  /** `publishType`: the event the InteractionID names; undefined when Spine itself publishes (publishAsSpine). */
  private publish(fromAsid: string, publishType: NemsEventType | undefined, body: Buffer | undefined, scope: RequestScope): CoreResponse | Reply {
    if (publishType) {
      const contentType = single(scope.headers, 'content-type');
      if (contentType !== undefined && !matchFhirMimeType(contentType, 'fhir-xml')) {
        return fail('UNSUPPORTED_MEDIA_TYPE', 'Content-Type must be a FHIR XML media type: events are published as XML only');
      }
    }
    if (!body || body.length === 0) return fail('INVALID_REQUEST_MESSAGE', 'Event message body is missing');
    if (body.length > this.maxPublishBytes) return fail('PAYLOAD_TOO_LARGE', `Event message exceeds ${this.maxPublishBytes} bytes`);
    const parsed = parseFhirXml(body, this.maxPublishBytes);
    if (!parsed.ok) return fail(bodyFailureCode(parsed.reason), `Event message XML: ${parsed.detail}`);
    // Publication API messages get exactly the gateway's event-message rules (one place per rule).
    if (publishType) {
      const validated = validateEventMessage(parsed.root, publishType, { policy: this.policy });
      if (!validated.ok) return fromRejection(validated.rejection);
      const invalidNumber = this.invalidNhsNumber(validated.nhsNumbers);
      if (invalidNumber) return invalidNumber;
    }
    const doc = eventFromXml(parsed.root);
    if (!doc.ok) return fail('INVALID_RESOURCE', `${doc.element} ${doc.problem}`);
    const checked = this.checkEvent(doc.event);
    if (checked instanceof Reply) return checked;

    const verdict = publishVerdict(this.lifecycle, checked.code);
    if (verdict.errors.length > 0) return new Reply(SPINE_CODES[verdict.errors[0]!.code].status, verdict.errors);

    const publicationId = randomUUID();
    // Durable before the 202: a crash after this line still delivers on restart.
    this.store.enqueuePublication({
      id: publicationId, receivedAt: this.now(), fromAsid, eventCode: checked.code,
      ...(doc.event.messageHeaderId ? { messageHeaderId: doc.event.messageHeaderId } : {}), body,
    });
    this.options.logger?.info({ requestId: scope.requestId, publicationId, fromAsid, eventCode: checked.code }, 'event accepted');
    this.schedule();
    if (verdict.warnings.length === 0) return { status: 202, headers: {} };
    return this.render(scope, new Reply(202, verdict.warnings));
  }

  /** The routing facts the core relies on, for API and Spine-published events alike (docs/specification.md §2.3, §2.4). */
  private checkEvent(event: EventDocument): NemsEventType | Reply {
    if (event.eventSystem !== EVENT_TYPE_SYSTEM || !event.eventCode) {
      return fail('INVALID_RESOURCE', 'MessageHeader.event must be a code from the EventType-1 code system');
    }
    const type = eventTypeByCode(event.eventCode);
    if (!type) return fail('INVALID_RESOURCE', 'MessageHeader.event is not a known NEMS event type');
    // The same rules as event.header-id and event.message-event-type: not refused here when the policy lets them pass.
    if (!event.messageHeaderId && this.policy.action('event.header-id') === 'enforce') return fail('INVALID_RESOURCE', 'MessageHeader.id is required');
    if ((!event.messageEventType || !(type.messageEventTypes as readonly string[]).includes(event.messageEventType)) && this.policy.action('event.message-event-type') === 'enforce') {
      return fail('INVALID_RESOURCE', 'MessageHeader messageEventType extension is missing or not allowed for this event');
    }
    if (!event.hasRoutingDemographics) return fail('INVALID_RESOURCE', 'MessageHeader routingDemographics extension is required');
    // Only a birth notification may omit the routing NHS number (mother's number unknown, docs/specification.md §2.3, §1.6).
    if (event.routingNhsNumber === undefined) {
      if (type.code !== 'pds-birth-notification-1') return fail('INVALID_RESOURCE', 'MessageHeader routingDemographics nhsNumber is required');
    } else {
      if (event.routingNhsNumberSystem !== NHS_NUMBER_SYSTEM) {
        return fail('INVALID_IDENTIFIER_SYSTEM', 'MessageHeader routingDemographics nhsNumber must use the NHS number system');
      }
      if (nhsNumberProblem(event.routingNhsNumber, this.options.rejectRepeatedDigitNhsNumbers ?? true)) {
        return fail('INVALID_NHS_NUMBER', 'MessageHeader routingDemographics nhsNumber is not a valid NHS number');
      }
    }
    return type;
  }

  // -------------------------------------------------------------------------------------------------------------
  // Asynchronous matching and delivery

  /** Resolves once every accepted publication has been matched and delivered (for tests and the demo). */
  async idle(): Promise<void> {
    while (this.draining) await this.draining;
  }

  private schedule(): void {
    this.dirty = true;
    if (this.draining || this.closed) return;
    this.draining = new Promise<void>((resolve) => setImmediate(resolve))
      .then(() => this.drain())
      .catch((err: unknown) => this.options.logger?.error({ err: errorName(err) }, 'NEMS core delivery loop failed'))
      .finally(() => {
        this.draining = undefined;
        if (this.dirty && !this.closed) this.schedule();
      });
  }

  private async drain(): Promise<void> {
    while (this.dirty && !this.closed) {
      this.dirty = false;
      for (;;) {
        if (this.closed) return;
        const batch = this.store.pendingPublications(50, this.now());
        if (batch.length === 0) break;
        for (const publication of batch) {
          if (this.closed) return;
          if (this.store.claimPublication(publication.id, this.instanceId, this.now(), this.deliveryLeaseMs)) await this.deliver(publication);
        }
      }
    }
  }

  private async deliver(publication: StoredPublication): Promise<void> {
    const log = this.options.logger;
    const parsed = parseFhirXml(publication.body, this.maxPublishBytes);
    const doc = parsed.ok ? eventFromXml(parsed.root) : undefined;
    if (!doc?.ok || !doc.event.eventCode) {
      this.store.failPublication(publication.id, 'stored event could not be re-read', this.now());
      log?.error({ publicationId: publication.id }, 'stored event could not be re-read');
      return;
    }
    const event: EventFacts = {
      eventCode: doc.event.eventCode,
      ...(doc.event.messageHeaderId ? { messageHeaderId: doc.event.messageHeaderId } : {}),
      ...(doc.event.routingNhsNumber ? { routingNhsNumber: doc.event.routingNhsNumber } : {}),
      ...(doc.event.routingBirthDateTime ? { routingBirthDateTime: doc.event.routingBirthDateTime } : {}),
      ...(doc.event.subjectPatient ? { subjectPatient: doc.event.subjectPatient } : {}),
    };
    const now = this.now();
    const candidates = this.store.candidateSubscriptions(event.eventCode, event.routingNhsNumber, now);
    const record = candidates.length > 0 && event.routingNhsNumber ? await this.lookupPatient(event.routingNhsNumber) : undefined;
    const deliveries = selectDeliveries(candidates, { event, patient: resolvePatient(event, record), geography: this.geography, now });
    const workflowId = eventTypeByCode(event.eventCode)?.workflowId ?? 'UNKNOWN';
    const records: DeliveryRecord[] = [];
    try {
      for (const d of deliveries) {
        const messageId = meshMessageId(publication, d.mailboxId);
        const deliveredAt = this.now();
        const control: MeshControl = {
          messageId, mailboxId: d.mailboxId, workflowId,
          ...(d.mexPartnerId ? { mexPartnerId: d.mexPartnerId } : {}),
          subscriptionIds: d.subscriptionIds,
          ...(event.messageHeaderId ? { localId: event.messageHeaderId } : {}),
          timestamp: new Date(deliveredAt).toISOString(), eventCode: event.eventCode, fromAsid: publication.fromAsid,
        };
        if (this.options.deliver) this.options.deliver(control, publication.body, publication.id);
        else writeMeshMessage(this.dataDir, control, publication.body);
        records.push({ messageId, mailboxId: d.mailboxId, workflowId, ...(d.mexPartnerId ? { mexPartnerId: d.mexPartnerId } : {}), subscriptionIds: d.subscriptionIds, deliveredAt });
      }
    } catch (err) {
      this.store.failPublication(publication.id, 'outbox write failed', this.now());
      log?.error({ publicationId: publication.id, err: errorName(err) }, 'MESH outbox write failed');
      return;
    }
    this.store.completePublication(publication.id, records, this.now());
    log?.info({ publicationId: publication.id, eventCode: event.eventCode, candidates: candidates.length, mailboxes: records.length }, 'event delivered');
  }

  private async lookupPatient(nhsNumber: string): Promise<PatientRecord | undefined> {
    const directory = this.options.patientDirectory;
    if (!directory) return undefined;
    const timeoutMs = this.options.directoryTimeoutMs ?? 2_000;
    let timer: NodeJS.Timeout | undefined;
    try {
      return await Promise.race([
        Promise.resolve(directory.lookupPatient(nhsNumber)),
        new Promise<undefined>((resolve) => { timer = setTimeout(() => resolve(undefined), timeoutMs); }),
      ]);
    } catch (err) {
      this.options.logger?.warn({ err: errorName(err) }, 'patient directory lookup failed; matching without PDS data');
      return undefined;
    } finally {
      clearTimeout(timer);
    }
  }

  // -------------------------------------------------------------------------------------------------------------

  stats(): StoreStats {
    return this.store.stats(this.now());
  }

  /** The underlying store, for tests and tooling in this folder. */
  get storage(): CoreStore {
    return this.store;
  }

  /** Finishes in-flight deliveries, then closes the store. Idempotent. */
  async close(): Promise<void> {
    if (this.closed) return;
    clearInterval(this.sweep);
    await this.idle();
    this.closed = true;
    this.store.close();
  }

  private render(scope: RequestScope, reply: Reply): CoreResponse {
    // The catalogue entry for NO_LONGER_SUPPORTED is the subscribe rejection; on a 2xx it is an informational warning.
    const issues = reply.status < 300
      ? reply.issues.map((i) => (i.code === 'NO_LONGER_SUPPORTED' ? { ...i, severity: 'information' as const, issueType: 'informational' } : i))
      : reply.issues;
    const text = renderOperationOutcome(scope.requestId, issues, scope.format);
    const body = Buffer.from(text, 'utf8');
    return {
      status: reply.status,
      headers: { ...reply.headers, 'content-type': scope.contentType, 'content-length': String(body.length) },
      body,
    };
  }
}

/** Opens a core on `dataDir` (created if missing) with the gateway's config.core values. */
export function createNemsCore(options: NemsCoreOptions): NemsCore {
  return new NemsCore(options);
}

// ---------------------------------------------------------------------------------------------------------------

/** Request id (the caller's X-Request-ID when well formed), response format and headers, plus the bare path. */
function scopeFor(request: Pick<CoreRequest, 'url' | 'headers'>): { scope: RequestScope; path: string } {
  const headers = normaliseHeaders(request.headers);
  const rawUrl = request.url.length > MAX_URL_LENGTH ? '' : request.url;
  const q = rawUrl.indexOf('?');
  const path = q === -1 ? rawUrl : rawUrl.slice(0, q);
  const query = new URLSearchParams(q === -1 ? '' : rawUrl.slice(q + 1));
  const requestId = pickRequestId(single(headers, 'x-request-id'));
  const media = responseMediaOf(headers, query);
  return { scope: { requestId, format: media.format, contentType: media.contentType, headers }, path };
}

function normaliseHeaders(headers: Readonly<Record<string, HeaderValue>>): Map<string, string | string[]> {
  const out = new Map<string, string | string[]>();
  for (const [name, value] of Object.entries(headers)) {
    if (value === undefined) continue;
    out.set(name.toLowerCase(), Array.isArray(value) ? value.map(String) : String(value));
  }
  return out;
}

/** A header that must appear once; a repeated one counts as absent so it is rejected rather than guessed. */
function single(headers: ReadonlyMap<string, string | string[]>, name: string): string | undefined {
  const value = headers.get(name);
  if (Array.isArray(value)) return value.length === 1 ? value[0] : undefined;
  return value;
}

/** `_format` wins over Accept (docs/specification.md §7); JSON only when asked for, otherwise the NEMS XML default; the gateway's own rule. */
function responseMediaOf(headers: ReadonlyMap<string, string | string[]>, query: URLSearchParams): OutcomeMedia {
  const raw = headers.get('accept');
  const accept = Array.isArray(raw) ? raw.join(', ') : raw;
  return responseMedia(accept || undefined, query.get('_format') ?? undefined);
}

/** MESH-like, sortable and deterministic per publication and mailbox, so a resumed delivery overwrites itself. */
function meshMessageId(publication: StoredPublication, mailboxId: string): string {
  const stamp = new Date(publication.receivedAt).toISOString().replace(/[-:TZ.]/g, '');
  const digest = createHash('sha256').update(`${publication.id}|${mailboxId}`).digest('hex').slice(0, 12).toUpperCase();
  return `${stamp}_${digest}`;
}

/** Rewrites NO_LONGER_SUPPORTED issues to severity information / informational (SC-gh: 202 warning). */
/** Error name and code only: library messages may quote input, and logs never carry patient data. */
function errorName(err: unknown): string {
  if (!(err instanceof Error)) return 'unknown';
  const code = (err as NodeJS.ErrnoException).code;
  return code ? `${err.name}:${code}` : err.name;
}
