/**
 * Replay protection for signed events: remembers event ids for the tolerance window (after which the
 * timestamp check alone rejects them). In memory, per function instance: a replay reaching another
 * instance is acted upon, which is harmless, because an event only triggers a look at the nodes'
 * own state (observe.ts) and never says by itself where traffic goes.
 */
export class ReplayGuard {
  private readonly seen = new Map<string, number>();

  constructor(private readonly windowMs: number, private readonly maxEntries = 10_000) {}

  /** false when `id` was already accepted within the window; records it otherwise */
  accept(id: string, now: number): boolean {
    this.expire(now);
    if (this.seen.has(id)) return false;
    if (this.seen.size >= this.maxEntries) {
      const oldest = this.seen.keys().next().value;
      if (oldest !== undefined) this.seen.delete(oldest);
    }
    this.seen.set(id, now);
    return true;
  }

  /** undo accept() for an event whose actions failed, so the sender's retry is acted upon */
  forget(id: string): void {
    this.seen.delete(id);
  }

  private expire(now: number): void {
    // ids were inserted in time order: stop at the first that is still inside the window
    for (const [id, t] of this.seen) {
      if (now - t <= 2 * this.windowMs) break;
      this.seen.delete(id);
    }
  }
}
