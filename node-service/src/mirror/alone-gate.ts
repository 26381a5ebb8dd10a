import { monotonic } from '../clock.ts';

const RESOLVED = Promise.resolve();

/**
 * The primary's durability points that the secondary does not hold (ALONE, or the secondary lost while
 * they waited) are answered only while the core allows it (its `durableAlone` action: the arbiter
 * recorded our generation) and before the lease's serve-until, read at the moment of answering. The
 * others wait here; leaving the primary role fails them with EIO (never acknowledged).
 */
export class AloneGate {
  private allowed = true;
  private until = Infinity;
  private waiters: { resolve: () => void; reject: (e: Error) => void }[] = [];

  set(allowed: boolean, until: number): void {
    this.allowed = allowed;
    this.until = until;
    if (this.open()) for (const w of this.waiters.splice(0)) w.resolve();
  }

  /** resolves when the point may be answered: at once when `held` (the secondary holds it) or the gate is open */
  pass(held: boolean): Promise<void> {
    if (held || this.open()) return RESOLVED;
    return new Promise((resolve, reject) => this.waiters.push({ resolve, reject }));
  }

  /** the primary role ends: what waits is never acknowledged */
  fail(): void {
    for (const w of this.waiters.splice(0)) w.reject(Object.assign(new Error('stepped down before the arbiter recorded this generation'), { errno: -5 }));
  }

  private open(): boolean {
    return this.allowed && monotonic() < this.until;
  }
}
