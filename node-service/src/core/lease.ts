/**
 * The arbiter lease, as the pure core sees it (issue 16). A mirror node with an `arbiter:` serves as
 * primary only while it holds a lease on an external consensus store (etcd, DynamoDB, Azure Blob,
 * Cloud Storage). The store is asked by the edge (node-service/src/arbiter/); this file only decides
 * when to ask, and until when an answer lets the node serve.
 *
 * The safety argument, on one clock. A claim sent at `sentAt` (our monotonic clock) and granted makes
 * the lease valid at the store until at least `sentAt + ttl`: the store starts counting the TTL when
 * it handles the request, which is after we sent it. We stop serving at `sentAt + ttl - margin`, so
 * the margin is what we have to give the address up, turn the view read-only and stop the
 * application before the peer can possibly be granted the lease. The margin covers the step-down
 * itself, the granularity of the ticks that check the deadline (the heartbeat pulse) and a stalled
 * event loop; the rate difference between two monotonic clocks (parts per million) is negligible
 * beside it. The peer never computes anything: the store refuses it until our lease expired there.
 */

export interface LeaseTiming {
  readonly ttlMs: number;
  /** stop serving this long before the earliest moment the lease can expire at the store */
  readonly marginMs: number;
  /** renew (or retry a claim) this often */
  readonly renewMs: number;
}

/** margin = ttl/3 (at least 500 ms), renewal every ttl/6: a renewal can fail twice, each after the
 *  store's answer timeout of ttl/3 (arbiter/), and still be in time. */
export function leaseTiming(ttlMs: number): LeaseTiming {
  return { ttlMs, marginMs: Math.max(500, Math.round(ttlMs / 3)), renewMs: Math.max(100, Math.round(ttlMs / 6)) };
}

/** The last answer of the store, as shown in `vigil state` and the metrics. */
export type LeaseView = 'none' | 'held' | 'taken' | 'fenced' | 'unreachable';

export interface LeaseState {
  /** monotonic ms: this node may serve until then (-Infinity: it holds no lease) */
  readonly serveUntil: number;
  /** when the claim now in flight was asked for (a claim is never pipelined) */
  readonly inFlightSince?: number;
  /** the data generation that claim carries */
  readonly inFlightGen?: number;
  /**
   * the highest data generation a granted claim carried: the store's fence is at least this, so a
   * peer with older data is refused the lease from now on, even after ours expires
   */
  readonly recordedGen: number;
  readonly lastTryAt: number;
  readonly view: LeaseView;
  /** taken: who holds it; fenced: the generation recorded by the last holder */
  readonly holder?: string;
  readonly holderGen?: number;
  readonly reason?: string;
  /** since when every claim failed to reach the store */
  readonly unreachableSince?: number;
}

export const NO_LEASE: LeaseState = { serveUntil: -Infinity, lastTryAt: -Infinity, view: 'none', recordedGen: 0 };

export type LeaseOutcome = 'held' | 'taken' | 'fenced' | 'unreachable';

export interface LeaseAnswer {
  readonly outcome: LeaseOutcome;
  /** when the claim was sent (monotonic ms): the lease is valid at the store from then for ttl */
  readonly sentAt: number;
  readonly holder?: string;
  readonly gen?: number;
  readonly reason?: string;
}

export const leaseHeld = (l: LeaseState, now: number): boolean => now < l.serveUntil;

/**
 * A claim may be sent: none in flight (one older than the ttl is given up), and renewMs since the last
 * unless `urgent` (a new generation the store must record before we acknowledge writes alone).
 */
export function claimDue(l: LeaseState, t: LeaseTiming, now: number, urgent = false): boolean {
  const inFlight = l.inFlightSince !== undefined && now - l.inFlightSince < t.ttlMs;
  return !inFlight && (urgent || now - l.lastTryAt >= t.renewMs);
}

export function claimSent(l: LeaseState, now: number, gen: number): LeaseState {
  return { ...l, inFlightSince: now, inFlightGen: gen, lastTryAt: now };
}

/** Folds the store's answer into what we know. Another holder, or a fence, ends our own lease at once. */
export function leaseAnswered(l: LeaseState, a: LeaseAnswer, t: LeaseTiming, now: number): LeaseState {
  const base = { ...l, inFlightSince: undefined, inFlightGen: undefined, view: a.outcome, holder: a.holder, holderGen: a.gen, reason: a.reason };
  switch (a.outcome) {
    case 'held':
      return { ...base, serveUntil: Math.max(l.serveUntil, a.sentAt + t.ttlMs - t.marginMs), unreachableSince: undefined, recordedGen: Math.max(l.recordedGen, l.inFlightGen ?? 0) };
    case 'taken':
    case 'fenced':
      return { ...base, serveUntil: -Infinity, unreachableSince: undefined };
    case 'unreachable':
      return { ...base, unreachableSince: l.unreachableSince ?? now };
  }
}

/** We gave the lease up (release sent, or the step-down ran): it no longer lets us serve. */
export const leaseDropped = (l: LeaseState): LeaseState => ({ ...l, serveUntil: -Infinity, view: l.view === 'held' ? 'none' : l.view });

/** Why a node that wants to be primary does not hold the lease, for the log and `vigil state`. */
export function leaseWaitReason(l: LeaseState, t: LeaseTiming, gen: number): string {
  switch (l.view) {
    case 'taken':
      return `the arbiter lease is held by ${l.holder ?? 'another node'}: waiting for it to expire (ttl ${t.ttlMs} ms) or be released`;
    case 'fenced':
      return `the arbiter lease was last held with data generation ${l.holderGen ?? '?'}, ours is ${gen}: our data is older, so this node does not serve (vigil prim --force overrides, losing the newer data)`;
    case 'unreachable':
      return `arbiter unreachable (${l.reason ?? 'no answer'}): not serving without the lease; if the peer cannot reach it either, nobody serves until it is back`;
    default:
      return 'asking the arbiter for the lease';
  }
}
