/**
 * Bucket ownership for a farm module: a PURE function of the configured nodes, their power and the
 * set of live nodes. Every node computes it from the same membership and gets the same answer, so no
 * leader and no message exchange are needed.
 *
 * How it works: every bucket gets a fixed preference order over all configured nodes (computed once
 * from `nodes` and `power`), and a bucket belongs to the first live node in its order. The orders are
 * built level by level so that the shares stay proportional to power:
 *   level 1: the 256 buckets are split among all nodes in proportion to power (largest remainder) —
 *            the "home" buckets, exact when everyone is up;
 *   level k: the buckets whose first k-1 choices are the same set of nodes are split among the
 *            remaining nodes in proportion to their power.
 * Consequences (checked by property tests):
 *   - a node leaving gives away exactly the buckets it owned, and only to survivors, spread in
 *     proportion to their power; nobody else's bucket moves;
 *   - a node returning takes back exactly the buckets it had before (the plan depends only on the
 *     live set, never on history), and nothing else moves;
 *   - the ARP responder (see BucketPlan.responder) is the owner of bucket 0, so it moves only when
 *     that node dies and comes back with it.
 */

export const BUCKETS = 256;

export interface PlanInput {
  /** the module's nodes, config order */
  readonly nodes: readonly string[];
  /** relative capacity per node (integer ≥ 1); a node missing from the record has power 1 */
  readonly power: Readonly<Record<string, number>>;
  /** the nodes currently UP in the farm (must be a subset of `nodes`) */
  readonly alive: ReadonlySet<string>;
}

export interface BucketPlan {
  /** owners[b] = the node that accepts packets whose hash is b, or null when no node is alive */
  readonly owners: readonly (string | null)[];
  /** the live nodes, config order */
  readonly alive: readonly string[];
  /** the node that answers ARP for the VIPs (with the virtual MAC) and takes the VIP traffic no rule
   *  balances (other ports, ICMP, fragments): the owner of bucket 0; null when no node is alive */
  readonly responder: string | null;
}

const prefCache = new Map<string, readonly (readonly string[])[]>();

/** The plan for a live membership. Throws on impossible input (unknown live node, bad power). */
export function planBuckets(input: PlanInput): BucketPlan {
  const { nodes, power, alive } = input;
  checkNodes(nodes, power);
  for (const n of alive) {
    if (!nodes.includes(n)) throw new Error(`planBuckets: live node "${n}" is not one of the module's nodes (${nodes.join(', ')})`);
  }
  const pref = preferences(nodes, power);
  const owners = pref.map((order) => order.find((n) => alive.has(n)) ?? null);
  return { owners, alive: nodes.filter((n) => alive.has(n)), responder: owners[0] };
}

/** The buckets a node owns in a plan, ascending. */
export function bucketsOf(plan: BucketPlan, node: string): number[] {
  const out: number[] = [];
  plan.owners.forEach((o, b) => { if (o === node) out.push(b); });
  return out;
}

/** Bucket count per live node. */
export function bucketCounts(plan: BucketPlan): Map<string, number> {
  const m = new Map<string, number>(plan.alive.map((n) => [n, 0]));
  for (const o of plan.owners) if (o !== null) m.set(o, (m.get(o) ?? 0) + 1);
  return m;
}

/** The buckets whose owner differs between two plans. */
export function movedBuckets(prev: BucketPlan, next: BucketPlan): number[] {
  const out: number[] = [];
  for (let b = 0; b < BUCKETS; b += 1) if (prev.owners[b] !== next.owners[b]) out.push(b);
  return out;
}

/**
 * The safe intermediate step from `prev` to `next`: like `next`, except that a bucket moving away from
 * a node that is still alive in `next` is owned by nobody. Each node applies it at once, then `next`
 * after a grace period that covers the skew between nodes seeing the membership change (a couple of
 * heartbeat pulses). So a live node always stops accepting a bucket before another one starts: two
 * nodes never both answer the same new connection. When only nodes left (the usual failover), the
 * handover plan equals `next` and there is no grace to wait.
 */
export function handoverPlan(prev: BucketPlan, next: BucketPlan): BucketPlan {
  const stillAlive = new Set(next.alive);
  const owners = next.owners.map((o, b) => {
    const before = prev.owners[b];
    return before !== o && before !== null && stillAlive.has(before) ? null : o;
  });
  const responderMoves = prev.responder !== next.responder && prev.responder !== null && stillAlive.has(prev.responder);
  return { owners, alive: next.alive, responder: responderMoves ? null : next.responder };
}

/** True when handoverPlan(prev, next) differs from next, i.e. the caller has to wait a grace period. */
export function needsHandover(prev: BucketPlan, next: BucketPlan): boolean {
  const h = handoverPlan(prev, next);
  return h.responder !== next.responder || h.owners.some((o, b) => o !== next.owners[b]);
}

function checkNodes(nodes: readonly string[], power: Readonly<Record<string, number>>): void {
  if (new Set(nodes).size !== nodes.length) throw new Error(`planBuckets: duplicate node in ${nodes.join(', ')}`);
  for (const n of nodes) {
    const p = power[n] ?? 1;
    if (!Number.isInteger(p) || p < 1) throw new Error(`planBuckets: power of "${n}" is ${p}; must be an integer ≥ 1`);
  }
}

function powerOf(power: Readonly<Record<string, number>>, n: string): number {
  return power[n] ?? 1;
}

/** Per bucket, the full preference order over `nodes` (memoised: it depends only on nodes and power). */
function preferences(nodes: readonly string[], power: Readonly<Record<string, number>>): readonly (readonly string[])[] {
  const key = JSON.stringify(nodes.map((n) => [n, powerOf(power, n)]));
  const hit = prefCache.get(key);
  if (hit) return hit;
  const pref: string[][] = Array.from({ length: BUCKETS }, () => []);
  // Level by level. A pool holds the buckets whose choices so far are the same SET of nodes (in any
  // order): pooling them before splitting keeps every (set, next choice) count within one bucket of
  // its exact share, which is what the balance after failures depends on.
  let pools = new Map<string, { remaining: string[]; buckets: number[] }>([
    ['', { remaining: [...nodes], buckets: Array.from({ length: BUCKETS }, (_, b) => b) }],
  ]);
  while (pools.size > 0) {
    const next = new Map<string, { remaining: string[]; buckets: number[] }>();
    for (const pool of [...pools.values()]) {
      if (pool.remaining.length === 0 || pool.buckets.length === 0) continue;
      const chosen = nodes.filter((n) => !pool.remaining.includes(n));
      for (const [node, part] of splitProportional([...pool.buckets].sort((x, y) => x - y), pool.remaining, power)) {
        if (part.length === 0) continue;
        for (const b of part) pref[b].push(node);
        const key = nodes.filter((n) => n === node || chosen.includes(n)).join('\u0000');
        const into = next.get(key) ?? { remaining: pool.remaining.filter((n) => n !== node), buckets: [] };
        into.buckets.push(...part);
        next.set(key, into);
      }
    }
    pools = next;
  }
  if (prefCache.size > 64) prefCache.clear();
  prefCache.set(key, pref);
  return pref;
}

/**
 * Splits `buckets` among `candidates` in proportion to power: quotas by largest remainder, then the
 * buckets are dealt out interleaved (smooth weighted round robin over the quotas) so that each node's
 * share is spread over the group rather than one contiguous run. Ties are broken by a hash of the
 * group and the node name, not by config order, so rounding does not always favour the first node.
 */
function splitProportional(
  buckets: readonly number[],
  candidates: readonly string[],
  power: Readonly<Record<string, number>>,
): Map<string, number[]> {
  const total = candidates.reduce((s, n) => s + powerOf(power, n), 0);
  const size = buckets.length;
  const salt = `${buckets[0]}/${size}`;
  const quota = candidates.map((n) => {
    const exact = (size * powerOf(power, n)) / total;
    return { n, exact, q: Math.floor(exact), rem: exact - Math.floor(exact), tie: fnv1a(`${salt}/${n}`) };
  });
  let left = size - quota.reduce((s, x) => s + x.q, 0);
  for (const x of [...quota].sort((a, b) => b.rem - a.rem || a.tie - b.tie)) {
    if (left === 0) break;
    x.q += 1;
    left -= 1;
  }
  const out = new Map<string, number[]>(candidates.map((n) => [n, []]));
  const current = quota.map(() => 0);
  for (const b of buckets) {
    let best = -1;
    for (let i = 0; i < quota.length; i += 1) {
      current[i] += quota[i].q;
      if (quota[i].q > 0 && (best < 0 || current[i] > current[best] || (current[i] === current[best] && quota[i].tie < quota[best].tie))) best = i;
    }
    current[best] -= size;
    out.get(quota[best].n)!.push(b);
  }
  return out;
}

/** 32-bit FNV-1a (deterministic, the same on every node). */
export function fnv1a(s: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i += 1) {
    h ^= s.charCodeAt(i);
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return h >>> 0;
}

export interface TransitionInput extends PlanInput {
  /** this node */
  readonly self: string;
  /** the plan this node enforces now; null right after install() */
  readonly prev: BucketPlan | null;
}

export interface Transition {
  /** apply this first, then wait a grace period (a couple of heartbeat pulses); null: no wait needed */
  readonly handover: BucketPlan | null;
  /** then apply this */
  readonly next: BucketPlan;
}

/**
 * What one node applies when the live membership changes. A node that enforced no plan yet, or one
 * computed while it was alone (it was cut off and served everything, or it just started), cannot
 * trust its own view of who owned what: it assumes the others run the plan without it, so it takes
 * its buckets only after the grace — the others release them as soon as they see it. Every other node
 * uses its real previous plan: it releases at once what moves to a live node and takes what comes from
 * dead ones at once (a failover never waits).
 */
export function planTransition(input: TransitionInput): Transition {
  const next = planBuckets(input);
  const { prev, self } = input;
  const base = prev === null || (prev.alive.length <= 1 && next.alive.some((n) => n !== self))
    ? planBuckets({ ...input, alive: new Set(next.alive.filter((n) => n !== self)) })
    : prev;
  return { handover: needsHandover(base, next) ? handoverPlan(base, next) : null, next };
}
