// Notices when the files the gateway loaded (certificates, CRL, registry, local PDS data) change on disk.
// Folders are watched, not files: certificate tooling and editors replace files by rename, and Kubernetes swaps
// a `..data` symlink. Any event in a folder re-reads that folder's files, and only a file whose content changed
// (SHA-256) reports its component, so unrelated files and repeated events cause no reload.
import { createHash } from 'node:crypto';
import { readFileSync, watch, type FSWatcher } from 'node:fs';
import { dirname } from 'node:path';

export interface WatchedFile<C extends string> {
  readonly path: string;
  readonly component: C;
}

export interface FileWatchOptions {
  /** Quiet period after the last event before the files are compared: files are often written in steps. */
  readonly debounceMs?: number;
  /** Called for a folder that cannot be watched (SIGHUP still reloads). */
  readonly onWatchError?: (dir: string) => void;
}

function fingerprint(path: string): string {
  try {
    return createHash('sha256').update(readFileSync(path)).digest('hex');
  } catch (err) {
    return `unreadable:${(err as NodeJS.ErrnoException).code ?? 'error'}`;
  }
}

/** Starts watching; `onChange` receives the distinct components whose files changed. Returns a closer. */
export function watchFileChanges<C extends string>(
  files: readonly WatchedFile<C>[],
  onChange: (components: C[]) => void,
  options: FileWatchOptions = {},
): () => void {
  const debounceMs = options.debounceMs ?? 250;
  const seen = new Map<string, string>(files.map((f) => [f.path, fingerprint(f.path)]));
  const byDir = new Map<string, WatchedFile<C>[]>();
  for (const file of files) byDir.set(dirname(file.path), [...(byDir.get(dirname(file.path)) ?? []), file]);

  const timers = new Map<string, NodeJS.Timeout>();
  const watchers: FSWatcher[] = [];
  const check = (dir: string) => {
    timers.delete(dir);
    const changed = new Set<C>();
    for (const file of byDir.get(dir) ?? []) {
      const now = fingerprint(file.path);
      if (now === seen.get(file.path)) continue;
      seen.set(file.path, now);
      changed.add(file.component);
    }
    if (changed.size) onChange([...changed]);
  };

  for (const dir of byDir.keys()) {
    try {
      const watcher = watch(dir, { persistent: false }, () => {
        clearTimeout(timers.get(dir));
        timers.set(dir, setTimeout(() => check(dir), debounceMs));
      });
      watcher.on('error', () => {
        watcher.close();
        options.onWatchError?.(dir);
      });
      watchers.push(watcher);
    } catch {
      options.onWatchError?.(dir);
    }
  }
  return () => {
    for (const watcher of watchers) watcher.close();
    for (const timer of timers.values()) clearTimeout(timer);
    timers.clear();
  };
}
