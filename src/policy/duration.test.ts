import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { parseDuration } from './duration.js';

describe('parseDuration', () => {
  it('reads humantime', () => {
    const cases: [string, number][] = [
      ['30s', 30_000],
      ['10m', 600_000],
      ['5m', 300_000],
      ['1h 30m', 5_400_000],
      ['1h30m', 5_400_000],
      ['2d', 172_800_000],
      ['500ms', 500],
      ['1w', 604_800_000],
      ['10 min', 600_000],
      ['2hours 5secs', 7_205_000],
      ['  45s ', 45_000],
      ['1500us', 1],
      ['0s', 0],
      ['1M', 2_630_016_000],
      ['1y', 31_557_600_000],
    ];
    for (const [text, ms] of cases) assert.equal(parseDuration(text), ms, text);
  });

  it('then ISO-8601', () => {
    const cases: [string, number][] = [
      ['PT10M', 600_000],
      ['P2D', 172_800_000],
      ['PT1H30M', 5_400_000],
      ['PT1.5S', 1_500],
      ['PT0,5S', 500],
      ['P1DT12H', 129_600_000],
      ['P1W', 604_800_000],
    ];
    for (const [text, ms] of cases) assert.equal(parseDuration(text), ms, text);
  });

  it('rejects everything else', () => {
    for (const text of ['', '10', '1x', 'ten minutes', 'm5', '1.5h', '-5s', 'P', 'PT', 'P1Y', 'P2M', '5s garbage', 'pt10m']) {
      assert.equal(parseDuration(text), undefined, text);
    }
  });
});
