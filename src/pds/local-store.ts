// The embedded traced-number store (docs/specification.md §6): a YAML file standing in for PDS, hot-reloadable.
//
// File format (version 1). Keys are quoted 10-digit NHS numbers that pass modulus 11; numbers absent from the
// file are "not found" on PDS. Every scalar is read as a string (YAML failsafe schema), so leading zeros survive.
//
//   version: 1
//   patients:
//     "9912003888":
//       status: traced            # traced | restricted | superseded | invalidated
//       gpOdsCode: A83627         # traced only: ODS code of the registered GP practice
//       postcode: LS1 4HR         # traced only: home address postcode (generic subscription matching)
//       name: { family: DAWKINS, given: [Jack] }   # traced/restricted: routing demographics must match it
//       birthDate: "2017-10-02"   # traced/restricted: YYYY-MM-DD; must match too (absent: not compared)
//     "9000000025":
//       status: restricted        # S-flag: PDS withholds location data, so no gpOdsCode/postcode
//     "9990000018":
//       status: superseded
//       supersededBy: "9990000026"   # must be a traced or restricted entry in this file
//     "9990000034":
//       status: invalidated
//
// A bad file throws a message naming the entry and field; reload() keeps the previous data when that happens.
import { readFile, stat } from 'node:fs/promises';
import { parseDocument } from 'yaml';
import { z } from 'zod';
import { isCanonicalOdsCode } from '../nems/identifiers.js';
import { NHS_NUMBER_PATTERN, nhsNumberProblem } from '../nems/nhs-number.js';
import { PdsUnavailableError, type PdsDemographics, type PdsLookup, type PdsOutcome } from './types.js';

/** A local file bigger than this is a mistake, not a patient list; refuse it before parsing. */
export const MAX_LOCAL_PDS_BYTES = 64 * 1024 * 1024;

const odsCode = z.string().refine(isCanonicalOdsCode, 'must be an upper-case ODS code (1 to 9 letters or digits)');
const postcode = z.string().regex(/^[A-Z]{1,2}[0-9][A-Z0-9]? ?[0-9][A-Z]{2}$/i, 'must be a UK postcode');
const birthDate = z.string().regex(/^\d{4}-\d{2}-\d{2}$/, 'must be YYYY-MM-DD');
const name = z.strictObject({ family: z.string().min(1).max(100), given: z.array(z.string().min(1).max(100)).max(10).optional() });
const tenDigits = z.string().regex(NHS_NUMBER_PATTERN, 'must be a 10-digit NHS number');

const entrySchema = z.discriminatedUnion('status', [
  z.strictObject({ status: z.literal('traced'), gpOdsCode: odsCode.optional(), postcode: postcode.optional(), name: name.optional(), birthDate: birthDate.optional() }),
  z.strictObject({ status: z.literal('restricted'), name: name.optional(), birthDate: birthDate.optional() }),
  z.strictObject({ status: z.literal('superseded'), supersededBy: tenDigits }),
  z.strictObject({ status: z.literal('invalidated') }),
]);

const fileSchema = z.strictObject({
  version: z.literal('1'),
  patients: z.record(z.string(), z.unknown()),
});

export type LocalPdsRecord = z.infer<typeof entrySchema>;

/** A loaded, validated snapshot; swapped as a whole on reload. */
export interface LocalPdsSnapshot {
  readonly records: ReadonlyMap<string, LocalPdsRecord>;
}

export class LocalPdsStoreError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'LocalPdsStoreError';
  }
}

export class LocalPdsStore implements PdsLookup {
  private snapshot: LocalPdsSnapshot | undefined;
  private loading: Promise<void> = Promise.resolve();
  private generationCount = 0;

  constructor(readonly path: string) {}

  /** Creates a store and loads it; throws LocalPdsStoreError when the file is unusable. */
  static async open(path: string): Promise<LocalPdsStore> {
    const store = new LocalPdsStore(path);
    await store.reload();
    return store;
  }

  /** Bumped on every successful (re)load, so caches in front of the store know to drop what they hold. */
  get generation(): number {
    return this.generationCount;
  }

  /** Number of NHS numbers in the current snapshot. */
  get size(): number {
    return this.snapshot?.records.size ?? 0;
  }

  /** Re-reads the file and swaps atomically. On a bad file, keeps the old data and throws. Serialised. */
  reload(): Promise<void> {
    const next = this.loading.then(async () => {
      const snapshot = await readSnapshot(this.path);
      this.snapshot = snapshot;
      this.generationCount++;
    });
    // A failed reload must not poison the next one.
    this.loading = next.catch(() => undefined);
    return next;
  }

  /** The full local record (e.g. for the embedded core's patient directory); undefined when absent. */
  record(nhsNumber: string): LocalPdsRecord | undefined {
    return this.snapshot?.records.get(nhsNumber);
  }

  lookup(nhsNumber: string, _requestId: string): Promise<PdsOutcome> {
    const snapshot = this.snapshot;
    if (!snapshot) return Promise.reject(new PdsUnavailableError('unreachable', 'local PDS store is not loaded'));
    return Promise.resolve(outcomeOf(snapshot.records.get(nhsNumber)));
  }

  ready(): Promise<{ ok: boolean; reason: string }> {
    if (!this.snapshot) return Promise.resolve({ ok: false, reason: 'local PDS store not loaded' });
    return Promise.resolve({ ok: true, reason: `local PDS store loaded (${this.snapshot.records.size} numbers, generation ${this.generationCount})` });
  }

  close(): Promise<void> {
    return Promise.resolve();
  }
}

function outcomeOf(record: LocalPdsRecord | undefined): PdsOutcome {
  if (!record) return { result: 'not-found' };
  switch (record.status) {
    case 'traced': {
      const { gpOdsCode, postcode: pc } = record;
      const demographics = demographicsOf(record);
      return { result: 'traced', restricted: false, ...(gpOdsCode ? { gpOdsCode } : {}), ...(pc ? { postcode: pc } : {}), ...(demographics ? { demographics } : {}) };
    }
    case 'restricted': {
      const demographics = demographicsOf(record);
      return { result: 'restricted', restricted: true, ...(demographics ? { demographics } : {}) };
    }
    case 'superseded':
      return { result: 'superseded' };
    case 'invalidated':
      return { result: 'invalidated' };
  }
}

function demographicsOf(record: { name?: { family: string; given?: string[] } | undefined; birthDate?: string | undefined }): PdsDemographics | undefined {
  if (!record.name && !record.birthDate) return undefined;
  return {
    ...(record.name ? { names: [{ family: record.name.family, given: record.name.given ?? [] }] } : {}),
    ...(record.birthDate ? { birthDate: record.birthDate } : {}),
  };
}

async function readSnapshot(path: string): Promise<LocalPdsSnapshot> {
  const where = `local PDS store ${path}`;
  let text: string;
  try {
    const info = await stat(path);
    if (!info.isFile()) throw new LocalPdsStoreError(`${where}: not a regular file`);
    if (info.size > MAX_LOCAL_PDS_BYTES) throw new LocalPdsStoreError(`${where}: larger than ${MAX_LOCAL_PDS_BYTES} bytes`);
    const bytes = await readFile(path);
    if (bytes.length > MAX_LOCAL_PDS_BYTES) throw new LocalPdsStoreError(`${where}: larger than ${MAX_LOCAL_PDS_BYTES} bytes`);
    text = new TextDecoder('utf-8', { fatal: true }).decode(bytes);
  } catch (err) {
    if (err instanceof LocalPdsStoreError) throw err;
    throw new LocalPdsStoreError(`${where}: cannot be read (${(err as NodeJS.ErrnoException).code ?? 'not UTF-8'})`, { cause: err });
  }
  return parseLocalPds(text, where);
}

/** Parses and validates the file text; exported for tests and `check-config`. */
export function parseLocalPds(text: string, where = 'local PDS store'): LocalPdsSnapshot {
  // Failsafe schema: every scalar stays a string, so "0123456789" is not turned into a number.
  const doc = parseDocument(text, { schema: 'failsafe', uniqueKeys: true });
  if (doc.errors.length > 0) {
    const first = doc.errors[0]!;
    const line = first.linePos?.[0]?.line;
    throw new LocalPdsStoreError(`${where}: YAML error${line ? ` at line ${line}` : ''}: ${first.code}`);
  }
  let plain: unknown;
  try {
    plain = doc.toJS({ maxAliasCount: 0 });
  } catch (err) {
    // Aliases could multiply the data (billion laughs); a patient list never needs them.
    throw new LocalPdsStoreError(`${where}: YAML aliases are not allowed`, { cause: err });
  }
  const top = fileSchema.safeParse(plain);
  if (!top.success) throw new LocalPdsStoreError(`${where}: ${describeIssue(top.error.issues[0], '')}`);

  const records = new Map<string, LocalPdsRecord>();
  for (const [nhsNumber, raw] of Object.entries(top.data.patients)) {
    const at = `patients["${nhsNumber}"]`;
    const problem = nhsNumberProblem(nhsNumber, false);
    if (problem === 'format') throw new LocalPdsStoreError(`${where}: ${at}: key must be a quoted 10-digit NHS number`);
    if (problem) throw new LocalPdsStoreError(`${where}: ${at}: key fails the modulus 11 check`);
    const entry = entrySchema.safeParse(raw);
    if (!entry.success) throw new LocalPdsStoreError(`${where}: ${at}: ${describeIssue(entry.error.issues[0], '')}`);
    records.set(nhsNumber, entry.data);
  }
  // Superseded entries must point at a current record in the same file (catches typos, forbids chains).
  for (const [nhsNumber, record] of records) {
    if (record.status !== 'superseded') continue;
    const target = records.get(record.supersededBy);
    const at = `patients["${nhsNumber}"].supersededBy`;
    if (record.supersededBy === nhsNumber) throw new LocalPdsStoreError(`${where}: ${at}: must differ from the entry's own number`);
    if (!target || (target.status !== 'traced' && target.status !== 'restricted')) {
      throw new LocalPdsStoreError(`${where}: ${at}: must name a traced or restricted entry in this file`);
    }
  }
  return { records };
}

function describeIssue(issue: z.core.$ZodIssue | undefined, prefix: string): string {
  if (!issue) return 'invalid';
  const path = issue.path.map(String).join('.');
  const field = [prefix, path].filter(Boolean).join('.');
  return field ? `${field}: ${issue.message}` : issue.message;
}
