import { describe, expect, it } from 'vitest';
import { formatCount, formatLatency, formatRate } from './metrics';

describe('dashboard number formats', () => {
  it('a missing or impossible number is a dash, never NaN or Infinity', () => {
    for (const value of [null, undefined, Number.NaN, Number.POSITIVE_INFINITY]) {
      expect(formatRate(value)).toBe('—');
      expect(formatLatency(value)).toBe('—');
      expect(formatCount(value)).toBe('—');
    }
  });

  it('rates are percentages with at most one decimal', () => {
    expect(formatRate(0)).toBe('0%');
    expect(formatRate(1 / 3)).toBe('33.3%');
    expect(formatRate(1)).toBe('100%');
  });

  it('latencies under a second are in milliseconds, longer ones in seconds', () => {
    expect(formatLatency(25)).toBe('25 ms');
    expect(formatLatency(1000)).toBe('1 s');
    expect(formatLatency(2500)).toBe('2.5 s');
  });
});
