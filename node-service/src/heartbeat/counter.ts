import { mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { writeFileAtomic } from '../persist/atomic-file.ts';

/**
 * The first heartbeat counter of this daemon run. Receivers accept only increasing counters, so a
 * restarted sender must start above everything it sent before: above the previous run's base by more
 * than any run can send, and above the wall clock in microseconds for a state dir that was wiped.
 */
export function nextCounterBase(stateDir: string, nowMs = Date.now()): number {
  const file = join(stateDir, 'heartbeat-counter');
  let previous = 0;
  try {
    previous = Number(readFileSync(file, 'utf8').trim()) || 0;
  } catch {
    /* first run */
  }
  const base = Math.max(nowMs * 1000, previous + 1e9);
  mkdirSync(stateDir, { recursive: true });
  writeFileAtomic(file, String(base));
  return base;
}
