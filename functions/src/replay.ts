/**
 * Replay protection for signed events: remembers event ids for the tolerance window (after which the
 * timestamp check alone rejects them), and the newest `at` acted upon per (cluster, module, node) so a
 * delayed retry of an older transition cannot undo a newer one.
 * In memory, per function instance: see cloud-adapters/README.md for what that does and does not cover.
 */
export class ReplayGuard {
  private readonly seen = new Map<string, number>();
  private readonly newest = new Map<string, { at: number; seq: number }>();

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

  /** true when (at, seq) is newer than anything accepted for `key`; records it then */
  newer(key: string, at: number, seq: number): boolean {
    const prev = this.newest.get(key);
    if (prev && (at < prev.at || (at === prev.at && seq <= prev.seq))) return false;
    this.newest.set(key, { at, seq });
    return true;
  }

  /** undo accept() and newer() for an event whose actions failed, so the sender's retry is acted upon */
  forget(id: string, key: string, previous: { at: number; seq: number } | undefined): void {
    this.seen.delete(id);
    if (previous) this.newest.set(key, previous);
    else this.newest.delete(key);
  }

  latest(key: string): { at: number; seq: number } | undefined {
    return this.newest.get(key);
  }

  private expire(now: number): void {
    // ids were inserted in time order: stop at the first that is still inside the window
    for (const [id, t] of this.seen) {
      if (now - t <= 2 * this.windowMs) break;
      this.seen.delete(id);
    }
  }
}
