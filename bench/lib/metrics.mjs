// Reads the proxy's Prometheus text (admin /metrics) so a suite can count what happened during
// one load run: scrape before and after, subtract. Only what the suites need: counters, and the
// _sum/_count of histograms.

/** Parses Prometheus text into [{ name, labels: {k: v}, value }]. */
export function parseProm(text) {
  const out = [];
  for (const line of text.split('\n')) {
    if (!line || line[0] === '#') continue;
    const m = /^([A-Za-z_:][\w:]*)(?:\{(.*)\})?\s+(\S+)/.exec(line);
    if (!m) continue;
    const labels = {};
    for (const [, k, v] of (m[2] ?? '').matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)) labels[k] = v;
    out.push({ name: m[1], labels, value: Number(m[3]) });
  }
  return out;
}

export async function scrape(metricsUrl) {
  const res = await fetch(metricsUrl);
  if (res.status !== 200) throw new Error(`GET ${metricsUrl}: HTTP ${res.status}`);
  return parseProm(await res.text());
}

/** Sum of the samples named `name` whose labels include every pair in `where`. */
export function total(samples, name, where = {}) {
  let sum = 0;
  for (const s of samples) {
    if (s.name !== name) continue;
    if (Object.entries(where).every(([k, v]) => s.labels[k] === v)) sum += s.value;
  }
  return sum;
}
