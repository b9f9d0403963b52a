// Notices changes to the config and policy files. Watches each file's directory rather than
// the file: editors replace files by rename, and Kubernetes updates a ConfigMap by swapping
// the `..data` symlink in the mounted directory, neither of which a watch on the old inode
// sees. Bursts of events are coalesced into one call.
import { watch, type FSWatcher } from 'node:fs';
import { basename, dirname } from 'node:path';

export interface FileWatch {
  close(): void;
}

export function watchFiles(paths: readonly string[], onChange: (why: string) => void, debounceMs = 200): FileWatch {
  const byDir = new Map<string, Set<string>>();
  for (const p of paths) {
    const dir = dirname(p);
    let names = byDir.get(dir);
    if (names === undefined) byDir.set(dir, (names = new Set()));
    names.add(basename(p));
  }
  let timer: NodeJS.Timeout | undefined;
  let reason = '';
  const fire = (why: string): void => {
    reason = why;
    clearTimeout(timer);
    timer = setTimeout(() => onChange(reason), debounceMs);
    timer.unref();
  };
  const watchers: FSWatcher[] = [];
  for (const [dir, names] of byDir) {
    try {
      const w = watch(dir, { persistent: false }, (_event, name) => {
        // `..data` and friends: a ConfigMap swap changes every file at once.
        if (name === null || names.has(name.toString()) || name.toString().startsWith('..')) fire(`${dir}/${name ?? ''} changed`);
      });
      w.on('error', () => {}); // a vanished directory must not crash the proxy; SIGHUP still works
      watchers.push(w);
    } catch {
      // Unwatchable (e.g. missing directory): reload stays available through SIGHUP.
    }
  }
  return {
    close() {
      clearTimeout(timer);
      for (const w of watchers) w.close();
    },
  };
}
