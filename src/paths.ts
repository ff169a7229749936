// Locates the project root (the folder with package.json) from compiled (dist/) or source (tsx/vitest) code.
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

function findProjectRoot(start: string): string {
  let dir = start;
  for (let i = 0; i < 8; i++) {
    if (existsSync(join(dir, 'package.json')) && existsSync(join(dir, 'config'))) return dir;
    const parent = dirname(dir);
    if (parent === dir) break;
    dir = parent;
  }
  return process.cwd();
}

export const PROJECT_ROOT = findProjectRoot(dirname(fileURLToPath(import.meta.url)));
export const DEFAULT_CONFIG_PATH = join(PROJECT_ROOT, 'config', 'gateway.yaml');
export const DEFAULT_CERTS_DIR = join(PROJECT_ROOT, 'certs-example', 'generated');
