// The request path is a pipeline of separate stages (src/pipeline/stages/): each stage is one file that imports the
// shared vocabulary (src/nems/, src/rules/, src/fhir/) and the stage contract (src/pipeline/types.ts), never another
// stage, so each NEMS rule has one home and a stage can be tested on its own. Only index.ts composes them.
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { PROJECT_ROOT } from '../../src/paths.js';

const STAGES_DIR = join(PROJECT_ROOT, 'src', 'pipeline', 'stages');
const stageFiles = readdirSync(STAGES_DIR).filter((f) => f.endsWith('.ts') && f !== 'index.ts');

describe('pipeline stage layering', () => {
  it('finds the stage files', () => {
    expect(stageFiles.length).toBeGreaterThanOrEqual(8);
  });

  it.each(stageFiles)('%s imports no other stage', (file) => {
    const source = readFileSync(join(STAGES_DIR, file), 'utf8');
    const siblings = [...source.matchAll(/from\s+'\.\/([^']+)'/g)].map((m) => m[1]);
    expect(siblings).toEqual([]);
  });
});
