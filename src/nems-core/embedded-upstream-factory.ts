// Builds the embedded NEMS core from config.core and wraps it as the gateway's Upstream (upstream.kind embedded).
import type { Logger } from 'pino';
import type { Config } from '../config/schema.js';
import type { LocalPdsStore } from '../pds/local-store.js';
import { EmbeddedUpstream } from '../upstream/embedded.js';
import type { UpstreamHandle } from '../upstream/index.js';
import { RulePolicy } from '../rules/policy.js';
import { createNemsCore } from './core.js';
import type { PatientDirectory } from './matching.js';
import { meshDeliveryHook } from './mesh-outbox.js';

/** The local traced-number store as the core's patient directory: GP, postcode and birth date of traced patients. */
export function patientDirectoryFromLocalPds(local: LocalPdsStore): PatientDirectory {
  return {
    lookupPatient(nhsNumber) {
      const record = local.record(nhsNumber);
      if (!record) return undefined;
      if (record.status === 'traced') {
        return {
          ...(record.gpOdsCode ? { gpOdsCode: record.gpOdsCode } : {}),
          ...(record.postcode ? { postcode: record.postcode } : {}),
          ...(record.birthDate ? { birthDate: record.birthDate } : {}),
        };
      }
      // S-flagged: PDS withholds location data, so generic geographic and GP rules cannot match.
      if (record.status === 'restricted') return record.birthDate ? { birthDate: record.birthDate } : {};
      return undefined;
    },
  };
}

/**
 * `gatewayPort` is read per response: with `server.port: 0` the gateway's port is known only once it listens.
 */
export async function createEmbeddedUpstream(config: Config, logger: Logger, local?: LocalPdsStore, gatewayPort: () => number = () => config.server.port): Promise<UpstreamHandle> {
  // core.delivery mesh: matched events queue in the store and a sender takes them to MESH (mesh-outbox.ts).
  const mesh = config.core.delivery === 'mesh' ? meshDeliveryHook(config.core.dataDir, config.core.mesh!, logger.child({ component: 'mesh-sender' })) : undefined;
  const core = createNemsCore({
    ...(mesh ? { deliver: mesh.deliver } : {}),
    dataDir: config.core.dataDir,
    // Location names the gateway, as Spine's names Spine: clients follow it back through the gateway.
    baseUrl: config.core.baseUrl ?? (() => `https://localhost:${gatewayPort()}${config.nems.pathPrefix}`),
    pathPrefix: config.nems.pathPrefix,
    lifecycle: config.core.lifecycle,
    maxPublishBytes: config.nems.publishMaxBytes,
    maxSubscriptionBytes: config.nems.subscriptionMaxBytes,
    rejectRepeatedDigitNhsNumbers: config.nems.rejectRepeatedDigitNhsNumbers,
    acceptLegacyPublishInteractionIds: config.nems.acceptLegacyPublishInteractionIds,
    deliveryLeaseMs: config.core.deliveryLeaseMs,
    deliverySweepMs: config.core.deliverySweepMs,
    // The core plays NEMS, which takes what the gateway's policy reports: the same policy, so it does not refuse it.
    policy: RulePolicy.fromConfig(config),
    ...(local ? { patientDirectory: patientDirectoryFromLocalPds(local) } : {}),
    logger: logger.child({ component: 'nems-core' }),
  });
  await mesh?.open().catch(async (err: unknown) => {
    await core.close();
    throw err;
  });
  logger.info({ dataDir: config.core.dataDir, delivery: config.core.delivery }, 'embedded reference NEMS core open');
  const upstream = new EmbeddedUpstream(core);
  return {
    upstream,
    close: async () => {
      await upstream.close();
      await mesh?.close();
    },
  };
}
