import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { silentLogger } from '../../node-service/src/log/logger.ts';
import { PollingChecker, type CheckResult, type ProbeOutcome } from '../../node-service/src/checkers/index.ts';

function scripted(outcomes: (boolean | 'hang')[]) {
  let i = 0;
  const calls: number[] = [];
  const probe = (signal: AbortSignal): Promise<ProbeOutcome> => {
    calls.push(Date.now());
    const o = outcomes[Math.min(i++, outcomes.length - 1)];
    if (o === 'hang') return new Promise((resolve) => signal.addEventListener('abort', () => resolve({ ok: false, reason: 'aborted' })));
    return Promise.resolve({ ok: o, reason: o ? 'fine' : 'broken' });
  };
  return { probe, calls };
}

describe('PollingChecker', () => {
  beforeEach(() => vi.useFakeTimers());
  afterEach(() => vi.useRealTimers());

  it('reports down at the failures-th consecutive failure and up at the first success, nothing else', async () => {
    // GIVEN up, fail, fail, fail, up, up
    const { probe } = scripted([true, false, false, false, true, true]);
    const c = new PollingChecker({ name: 'x', interval: 100, timeout: 50, failures: 2, log: silentLogger() }, probe);
    const reports: CheckResult[] = [];
    // WHEN
    c.start((r) => reports.push(r));
    await vi.advanceTimersByTimeAsync(150); // probes at 0 and 100
    expect(reports).toEqual([]); // first failure alone is not enough; the initial up is not reported
    await vi.advanceTimersByTimeAsync(100); // probe at 200: second failure
    expect(reports).toEqual([{ checker: 'x', up: false, reason: 'broken (2 consecutive failures)' }]);
    await vi.advanceTimersByTimeAsync(100); // 300: third failure, no repeat
    expect(reports).toHaveLength(1);
    await vi.advanceTimersByTimeAsync(200); // 400: success, 500: success
    // THEN
    expect(reports).toEqual([
      { checker: 'x', up: false, reason: 'broken (2 consecutive failures)' },
      { checker: 'x', up: true, reason: 'fine' },
    ]);
    c.stop();
  });

  it('a success in between resets the count', async () => {
    const { probe } = scripted([false, true, false, true, false, true]);
    const c = new PollingChecker({ name: 'x', interval: 100, timeout: 50, failures: 2, log: silentLogger() }, probe);
    const reports: CheckResult[] = [];
    c.start((r) => reports.push(r));
    await vi.advanceTimersByTimeAsync(1000);
    expect(reports).toEqual([]);
    c.stop();
  });

  it('a probe that hangs fails at the timeout and is aborted; probes never overlap', async () => {
    const { probe, calls } = scripted(['hang']);
    const c = new PollingChecker({ name: 'slow', interval: 100, timeout: 300, failures: 1, log: silentLogger() }, probe);
    const reports: CheckResult[] = [];
    c.start((r) => reports.push(r));
    await vi.advanceTimersByTimeAsync(299);
    expect(reports).toEqual([]);
    await vi.advanceTimersByTimeAsync(1);
    expect(reports).toEqual([{ checker: 'slow', up: false, reason: 'no answer within 300 ms' }]);
    await vi.advanceTimersByTimeAsync(1000);
    // each probe takes 300 ms, so the next starts right after: 0, 300, 600, 900, 1200
    expect(calls.length).toBe(5);
    c.stop();
  });

  it('stop() silences a checker, start() again begins from up', async () => {
    const { probe } = scripted([false]);
    const c = new PollingChecker({ name: 'x', interval: 100, timeout: 50, failures: 3, log: silentLogger() }, probe);
    const reports: CheckResult[] = [];
    c.start((r) => reports.push(r));
    await vi.advanceTimersByTimeAsync(150);
    c.stop();
    await vi.advanceTimersByTimeAsync(1000);
    expect(reports).toEqual([]);
    c.start((r) => reports.push(r));
    await vi.advanceTimersByTimeAsync(250);
    expect(reports.map((r) => r.up)).toEqual([false]);
    c.stop();
  });
});
