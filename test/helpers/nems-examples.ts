// The NEMS example event messages kept in the repository (test/fixtures/nems-examples, Apache-2.0, from
// nhsconnect/Events-Management). A missing file is an error, never an empty input: a test cannot pass vacuously.
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { PROJECT_ROOT } from '../../src/paths.js';

// From the project root, not this file: the fuzz runner runs this module compiled, from dist/.
export const NEMS_EXAMPLES_DIR = join(PROJECT_ROOT, 'test', 'fixtures', 'nems-examples');

/** The example files every test may rely on (the folder must hold at least these). */
const EXPECTED_COUNT = 20;

/** Every example event message (.xml), failing when the folder is missing or incomplete. */
export function nemsExampleFiles(): string[] {
  if (!existsSync(NEMS_EXAMPLES_DIR)) throw new Error(`NEMS example folder missing: ${NEMS_EXAMPLES_DIR}`);
  const files = readdirSync(NEMS_EXAMPLES_DIR).filter((f) => f.endsWith('.xml')).sort();
  if (files.length < EXPECTED_COUNT) throw new Error(`expected at least ${EXPECTED_COUNT} NEMS examples in ${NEMS_EXAMPLES_DIR}, found ${files.length}`);
  return files;
}

/** One example's bytes; throws (failing the test) when the file is missing. */
export function readNemsExample(file: string): Buffer {
  const path = join(NEMS_EXAMPLES_DIR, file);
  if (!existsSync(path)) throw new Error(`NEMS example missing: ${path}`);
  return readFileSync(path);
}

/**
 * Official examples that break a FHIR rule themselves, with the element at fault: they are refused (422
 * INVALID_RESOURCE naming it) until issue 12's report mode lets a conformance rule report rather than refuse.
 * nipe-outcome-1-update.xml: MessageHeader.timestamp 2017-11-01T16:02:04+58:00, an offset beyond ±14:00
 * (rule fhir.datetime-format).
 */
export const INVALID_NEMS_EXAMPLES: Readonly<Record<string, string>> = {
  'nipe-outcome-1-update.xml': 'Bundle.entry.resource.MessageHeader.timestamp',
};
