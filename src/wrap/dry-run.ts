// `wrap --dry-run`: what the rewrite would change, as a unified diff. Pure: it is handed both
// texts and never touches the file system (the original's dry run rewrote a real file).

import { createTwoFilesPatch, FILE_HEADERS_ONLY } from 'diff';

export interface DryRunOptions {
  /** strings to show as `<redacted>` (the per-run token, should a real one be used) */
  redact?: string[];
}

/** A unified diff (3 lines of context) labelled with the path; '' when nothing would change. */
export function dryRunDiff(path: string, before: string, after: string, opts: DryRunOptions = {}): string {
  if (before === after) return '';
  let patch = createTwoFilesPatch(path, path, before, after, 'current', 'rewritten by thoughtgate wrap', {
    context: 3,
    headerOptions: FILE_HEADERS_ONLY,
  });
  for (const secret of opts.redact ?? []) {
    if (secret) patch = patch.split(secret).join('<redacted>');
  }
  return patch;
}
