// Resident set size of another process, read from /proc (Linux only).
import { readFileSync } from 'node:fs';

/** VmRSS of `pid` in KiB, or NaN when /proc cannot tell (process gone, not Linux). */
export function rssKiB(pid) {
  try {
    const m = /^VmRSS:\s+(\d+)\s+kB/m.exec(readFileSync(`/proc/${pid}/status`, 'latin1'));
    return m ? Number(m[1]) : NaN;
  } catch {
    return NaN;
  }
}

export const KIB_PER_MIB = 1024;
export const kibToMB = (kib) => (kib * 1024) / 1e6;
export const kibToMiB = (kib) => kib / 1024;

/**
 * Samples VmRSS of `pid` every `everyMs` from this process's event loop until stop() is called;
 * stop() returns { peakKiB, samples }. Timers fire between I/O callbacks, so a transfer being read
 * here is sampled as it goes.
 */
export function rssSampler(pid, everyMs = 10) {
  let peakKiB = rssKiB(pid);
  let samples = 1;
  const timer = setInterval(() => {
    const v = rssKiB(pid);
    samples++;
    if (v > peakKiB || !Number.isFinite(peakKiB)) peakKiB = v;
  }, everyMs);
  return {
    stop() {
      clearInterval(timer);
      const v = rssKiB(pid);
      if (v > peakKiB) peakKiB = v;
      return { peakKiB, samples: samples + 1 };
    },
  };
}
