// Finds an external tool (openssl, promtool) for tests that need one. Missing under CI=true is a failure; missing
// elsewhere skips the test with a message naming the package to install.
import { execFileSync } from 'node:child_process';

export interface ExternalTool {
  readonly name: string;
  readonly path?: string;
  /** True when tests using the tool should be skipped (missing, and not running under CI). */
  readonly skip: boolean;
  /** Throws when the tool is missing (the CI case: the test must fail, not pass vacuously). */
  require(): string;
}

export function findExternalTool(name: string, installHint: string): ExternalTool {
  let path: string | undefined;
  try {
    path = execFileSync('sh', ['-c', `command -v ${name}`], { encoding: 'utf8', timeout: 5000 }).trim() || undefined;
  } catch {
    path = undefined;
  }
  const ci = process.env['CI'] === 'true';
  if (!path && !ci) console.warn(`skipping tests that need ${name}: not installed (${installHint})`);
  return {
    name,
    ...(path ? { path } : {}),
    skip: !path && !ci,
    require() {
      if (!path) throw new Error(`${name} is required under CI=true but is not installed (${installHint})`);
      return path;
    },
  };
}
