// Durations as the original reads them: humantime first (`30s`, `10m`, `1h 30m`, `2d`,
// `500ms`), then ISO-8601 (`PT10M`, `P2D`, `P1W`). Returns whole milliseconds.

const MS_PER: Readonly<Record<string, number>> = {
  nanos: 1e-6, nsec: 1e-6, ns: 1e-6,
  usec: 1e-3, us: 1e-3, 'µs': 1e-3,
  millis: 1, msec: 1, ms: 1,
  seconds: 1e3, second: 1e3, secs: 1e3, sec: 1e3, s: 1e3,
  minutes: 6e4, minute: 6e4, min: 6e4, mins: 6e4, m: 6e4,
  hours: 36e5, hour: 36e5, hr: 36e5, hrs: 36e5, h: 36e5,
  days: 864e5, day: 864e5, d: 864e5,
  weeks: 6048e5, week: 6048e5, w: 6048e5,
  // humantime's calendar approximations: 30.44 and 365.25 days
  months: 2_630_016e3, month: 2_630_016e3, M: 2_630_016e3,
  years: 31_557_600e3, year: 31_557_600e3, y: 31_557_600e3,
};

const HUMAN_PART = /\s*(\d+)\s*([A-Za-zµ]+)/y;

function humantime(text: string): number | undefined {
  let total = 0;
  let at = 0;
  let parts = 0;
  for (;;) {
    HUMAN_PART.lastIndex = at;
    const m = HUMAN_PART.exec(text);
    if (m === null) break;
    const unit = Object.hasOwn(MS_PER, m[2]!) ? MS_PER[m[2]!] : undefined;
    if (unit === undefined) return undefined;
    total += Number(m[1]) * unit;
    at = HUMAN_PART.lastIndex;
    parts++;
  }
  if (parts === 0 || text.slice(at).trim() !== '') return undefined;
  return total;
}

const NUM = String.raw`(\d+(?:[.,]\d+)?|\d*\.\d+)`;
const ISO_WEEK = new RegExp(`^P${NUM}W$`);
const ISO = new RegExp(`^P(?:${NUM}Y)?(?:${NUM}M)?(?:${NUM}D)?(?:T(?:${NUM}H)?(?:${NUM}M)?(?:${NUM}S)?)?$`);
const num = (s: string | undefined): number => (s === undefined ? 0 : Number(s.replace(',', '.')));

function iso8601(text: string): number | undefined {
  const week = ISO_WEEK.exec(text);
  if (week !== null) return num(week[1]) * 6048e5;
  const m = ISO.exec(text);
  if (m === null || m.slice(1).every((g) => g === undefined)) return undefined;
  // like iso8601_duration's to_std: years and months have no fixed length
  if (num(m[1]) > 0 || num(m[2]) > 0) return undefined;
  return num(m[3]) * 864e5 + num(m[4]) * 36e5 + num(m[5]) * 6e4 + num(m[6]) * 1e3;
}

/** Milliseconds (floored), or undefined when `text` is neither humantime nor ISO-8601. */
export function parseDuration(text: string): number | undefined {
  const ms = humantime(text) ?? iso8601(text.trim());
  if (ms === undefined || !Number.isFinite(ms) || ms > Number.MAX_SAFE_INTEGER) return undefined;
  return Math.floor(ms + 1e-9);
}
