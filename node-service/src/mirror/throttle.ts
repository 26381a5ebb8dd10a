const RESOLVED = Promise.resolve();
/** the most a pause may be made up for at once: an idle moment does not turn into a burst */
const BURST_S = 0.2;
/** a waiter looks at the rate at least this often, so a live change applies within it */
const RECHECK_MS = 100;

/**
 * Paces the resync copy at `rate` bytes per second (replication.resync_bandwidth), changeable while
 * it runs. A token bucket that may go into debt: a chunk goes out as soon as the bucket is not
 * negative and its bytes are then owed, so every byte costs 1/rate seconds whatever the chunk size,
 * and a new rate applies to the very next chunk. Waiters are served in order. null: unlimited.
 */
export class Throttle {
  private tokens = 0;
  private last = performance.now();
  private readonly queue: { n: number; go: () => void }[] = [];
  private timer: NodeJS.Timeout | null = null;

  constructor(private bps: number | null) {}

  get rate(): number | null {
    return this.bps;
  }

  set(bps: number | null): void {
    this.refill();
    this.bps = bps;
    if (bps !== null) this.tokens = Math.min(this.tokens, bps * BURST_S);
    this.pump();
  }

  /** resolves when n more bytes may be sent */
  take(n: number): Promise<void> {
    if (this.bps === null) return RESOLVED;
    if (this.queue.length === 0) {
      this.refill();
      if (this.tokens >= 0) {
        this.tokens -= n;
        return RESOLVED;
      }
    }
    return new Promise((go) => {
      this.queue.push({ n, go });
      if (!this.timer) this.schedule();
    });
  }

  private refill(): void {
    const now = performance.now();
    if (this.bps !== null) this.tokens = Math.min(this.bps * BURST_S, this.tokens + ((now - this.last) / 1000) * this.bps);
    this.last = now;
  }

  private pump(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    this.refill();
    while (this.queue.length > 0 && (this.bps === null || this.tokens >= 0)) {
      const w = this.queue.shift()!;
      if (this.bps !== null) this.tokens -= w.n;
      w.go();
    }
    if (this.queue.length > 0) this.schedule();
  }

  private schedule(): void {
    const ms = this.bps === null ? 0 : Math.min(RECHECK_MS, Math.max(1, (-this.tokens / this.bps) * 1000));
    this.timer = setTimeout(() => this.pump(), ms);
  }
}
