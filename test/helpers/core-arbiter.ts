import type { LeaseAnswer } from '../../node-service/src/core/lease.ts';

/**
 * The arbiter store for core scenario tests, with etcd's semantics on the simulator's clock: a lease
 * expires `ttl` after the store last granted or renewed it, a free or expired lease goes to the first
 * claim whose generation is not older than the one recorded by the last holder (the fence outlives
 * the lease), and a node the store cannot reach gets `unreachable` after the client's timeout.
 */
export class FakeLeaseStore {
  holder?: string;
  expiresAt = -Infinity;
  /** the fencing token: the highest generation any holder recorded; kept after expiry */
  fence = 0;
  /** nodes cut from the store */
  readonly cut = new Set<string>();
  /** every grant, for asserting who held the lease when */
  readonly grants: { node: string; at: number; gen: number }[] = [];

  constructor(readonly ttlMs: number) {}

  /** the answer, and when the node gets it (at once, or after the client timeout when cut) */
  claim(node: string, gen: number, force: boolean, now: number): { answer: LeaseAnswer; at: number } {
    if (this.cut.has(node)) return { answer: { outcome: 'unreachable', sentAt: now, reason: 'store unreachable' }, at: now + Math.round(this.ttlMs / 3) };
    const live = now < this.expiresAt;
    if (live && this.holder !== node) return { answer: { outcome: 'taken', sentAt: now, holder: this.holder }, at: now };
    if (!live && !force && this.fence > gen) return { answer: { outcome: 'fenced', sentAt: now, gen: this.fence }, at: now };
    if (!live) this.grants.push({ node, at: now, gen });
    this.holder = node;
    this.expiresAt = now + this.ttlMs;
    this.fence = force ? gen : Math.max(this.fence, gen);
    return { answer: { outcome: 'held', sentAt: now }, at: now };
  }

  release(node: string, now: number): void {
    if (this.cut.has(node) || this.holder !== node) return;
    if (now < this.expiresAt) this.expiresAt = now;
  }

  /** who holds a live lease at `now` */
  holderAt(now: number): string | undefined {
    return now < this.expiresAt ? this.holder : undefined;
  }
}
