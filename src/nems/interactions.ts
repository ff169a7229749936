// NEMS InteractionIDs (docs/specification.md §1.3, §2.1, §9.22): the three Subscription API interactions and the
// publish InteractionID of every publishable event, in its current form and in the pre-2020 forms some publishers
// still send. The headers stage, the registry loader and the embedded core all resolve an InteractionID here.
import { PUBLISHABLE_EVENT_TYPES, type NemsEventType } from './events.js';

export const SUBSCRIPTION_INTERACTIONS = {
  create: 'urn:nhs:names:services:clinicals-sync:SubscriptionsApiPost',
  read: 'urn:nhs:names:services:clinicals-sync:SubscriptionsApiGet',
  delete: 'urn:nhs:names:services:clinicals-sync:SubscriptionsApiDelete',
} as const;

const PUBLISH_PREFIX = 'urn:nhs:names:services:events:';

/** The current publish InteractionID of an event's publish interaction code: `…events:Vaccinations.Write`. */
export function publishInteractionId(publishInteractionCode: string): string {
  return `${PUBLISH_PREFIX}${publishInteractionCode}.Write`;
}

/** Current publish InteractionIDs → the event they publish. */
const CURRENT_PUBLISH_IDS: ReadonlyMap<string, NemsEventType> = new Map(
  PUBLISHABLE_EVENT_TYPES.map((e) => [publishInteractionId(e.publishInteractionCode!), e]),
);

/**
 * Pre-2020 publish forms (NEMS guide history, docs/specification.md §2.1, §9.22): the event code
 * (`vaccinations-1.Write`), and the spring-2019 `.write:1` / `.write:2` suffixes on either the event code or the
 * publish code. Only real publishable events: anything else is not an InteractionID.
 */
const LEGACY_PUBLISH_IDS: ReadonlyMap<string, NemsEventType> = new Map(
  PUBLISHABLE_EVENT_TYPES.flatMap((e) => {
    const ids: [string, NemsEventType][] = [[`${PUBLISH_PREFIX}${e.code}.Write`, e]];
    for (const name of [e.code, e.publishInteractionCode!]) {
      ids.push([`${PUBLISH_PREFIX}${name}.write:1`, e], [`${PUBLISH_PREFIX}${name}.write:2`, e]);
    }
    return ids;
  }),
);

/** Every current InteractionID the gateway knows. */
export const ALL_INTERACTION_IDS: readonly string[] = [...Object.values(SUBSCRIPTION_INTERACTIONS), ...CURRENT_PUBLISH_IDS.keys()];

/** What a registry entry may list: every current InteractionID and the legacy publish forms of real events. */
export const REGISTRABLE_INTERACTION_IDS: ReadonlySet<string> = new Set([...ALL_INTERACTION_IDS, ...LEGACY_PUBLISH_IDS.keys()]);

export interface ResolvedInteraction {
  /** The current-form InteractionID (a legacy publish form is translated). */
  readonly interactionId: string;
  /** The event a publish InteractionID names. */
  readonly publishEventType?: NemsEventType;
  /** The InteractionID was sent in a legacy publish form. */
  readonly legacy: boolean;
}

/**
 * Resolves the InteractionID sent for an operation whose fixed InteractionID is `expected` (undefined for publish,
 * whose InteractionID names the event). Legacy publish forms count only when `acceptLegacy`. Undefined: the
 * InteractionID does not name this operation.
 */
export function resolveInteraction(expected: string | undefined, sent: string, acceptLegacy: boolean): ResolvedInteraction | undefined {
  if (expected !== undefined) return sent === expected ? { interactionId: sent, legacy: false } : undefined;
  const current = CURRENT_PUBLISH_IDS.get(sent);
  if (current) return { interactionId: sent, publishEventType: current, legacy: false };
  const legacy = acceptLegacy ? LEGACY_PUBLISH_IDS.get(sent) : undefined;
  if (legacy) return { interactionId: publishInteractionId(legacy.publishInteractionCode!), publishEventType: legacy, legacy: true };
  return undefined;
}
