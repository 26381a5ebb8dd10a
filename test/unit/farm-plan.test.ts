import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { BUCKETS, bucketCounts, bucketsOf, handoverPlan, movedBuckets, needsHandover, planBuckets } from '../../node-service/src/farm/index.ts';

// A farm of 1..6 nodes with powers 1..4 and any live subset.
const farm = fc
  .integer({ min: 1, max: 6 })
  .chain((n) =>
    fc.record({
      nodes: fc.constant(Array.from({ length: n }, (_, i) => `node${i + 1}`)),
      powers: fc.array(fc.integer({ min: 1, max: 4 }), { minLength: n, maxLength: n }),
      mask: fc.integer({ min: 0, max: (1 << n) - 1 }),
      other: fc.integer({ min: 0, max: (1 << n) - 1 }),
    }),
  )
  .map(({ nodes, powers, mask, other }) => ({
    nodes,
    power: Object.fromEntries(nodes.map((n, i) => [n, powers[i]])),
    alive: new Set(nodes.filter((_, i) => mask & (1 << i))),
    alive2: new Set(nodes.filter((_, i) => other & (1 << i))),
  }));

const share = (power: Record<string, number>, alive: Iterable<string>, n: string) => {
  const tot = [...alive].reduce((s, x) => s + (power[x] ?? 1), 0);
  return (BUCKETS * (power[n] ?? 1)) / tot;
};

describe('planBuckets', () => {
  it('gives every bucket to exactly one live node, or to nobody when none is alive', () => {
    fc.assert(fc.property(farm, ({ nodes, power, alive }) => {
      const p = planBuckets({ nodes, power, alive });
      expect(p.owners).toHaveLength(BUCKETS);
      for (const o of p.owners) {
        if (alive.size === 0) expect(o).toBeNull();
        else expect(alive.has(o!)).toBe(true);
      }
      expect(p.alive).toEqual(nodes.filter((n) => alive.has(n)));
      expect(p.responder).toBe(p.owners[0]);
    }));
  });

  it('is a deterministic function of the live set (insertion order and history do not matter)', () => {
    fc.assert(fc.property(farm, ({ nodes, power, alive }) => {
      const a = planBuckets({ nodes, power, alive });
      const b = planBuckets({ nodes, power: { ...power }, alive: new Set([...alive].reverse()) });
      expect(b).toEqual(a);
    }));
  });

  it('is exactly proportional to power when all nodes are up (±1 bucket)', () => {
    fc.assert(fc.property(farm, ({ nodes, power }) => {
      const p = planBuckets({ nodes, power, alive: new Set(nodes) });
      for (const [n, c] of bucketCounts(p)) expect(Math.abs(c - share(power, nodes, n))).toBeLessThan(1);
    }));
  });

  it('stays proportional to the live power after failures (within 3 buckets or 10 %)', () => {
    fc.assert(fc.property(farm, ({ nodes, power, alive }) => {
      const p = planBuckets({ nodes, power, alive });
      for (const [n, c] of bucketCounts(p)) {
        const ideal = share(power, alive, n);
        expect(Math.abs(c - ideal)).toBeLessThanOrEqual(Math.max(3, 0.1 * ideal));
      }
    }));
  });

  it('a node leaving gives away only its own buckets, in proportion to the survivors’ power', () => {
    fc.assert(fc.property(farm, ({ nodes, power, alive }) => {
      fc.pre(alive.size >= 2);
      for (const gone of alive) {
        const before = planBuckets({ nodes, power, alive });
        const rest = new Set([...alive].filter((n) => n !== gone));
        const after = planBuckets({ nodes, power, alive: rest });
        const moved = movedBuckets(before, after);
        expect(moved).toEqual(bucketsOf(before, gone));
        expect(needsHandover(before, after)).toBe(false);
      }
    }));
  });

  it('a node returning takes back exactly the buckets it had, and nothing else moves', () => {
    fc.assert(fc.property(farm, ({ nodes, power, alive }) => {
      for (const back of nodes.filter((n) => !alive.has(n))) {
        const before = planBuckets({ nodes, power, alive: new Set([...alive, back]) });
        const during = planBuckets({ nodes, power, alive });
        const after = planBuckets({ nodes, power, alive: new Set([...alive, back]) });
        expect(after).toEqual(before);
        expect(movedBuckets(during, after)).toEqual(bucketsOf(after, back));
      }
    }));
  });

  it('between any two memberships, only buckets of nodes that left or joined move', () => {
    fc.assert(fc.property(farm, ({ nodes, power, alive, alive2 }) => {
      const a = planBuckets({ nodes, power, alive });
      const b = planBuckets({ nodes, power, alive: alive2 });
      for (const bucket of movedBuckets(a, b)) {
        const from = a.owners[bucket];
        const to = b.owners[bucket];
        expect((from !== null && !alive2.has(from)) || (to !== null && !alive.has(to))).toBe(true);
      }
    }));
  });

  it('the handover plan never lets two live nodes own a bucket across the change', () => {
    fc.assert(fc.property(farm, ({ nodes, power, alive, alive2 }) => {
      const prev = planBuckets({ nodes, power, alive });
      const next = planBuckets({ nodes, power, alive: alive2 });
      const mid = handoverPlan(prev, next);
      for (let b = 0; b < BUCKETS; b += 1) {
        // prev -> mid: a bucket only changes hands from a node that is gone (or to nobody)
        if (mid.owners[b] !== null && mid.owners[b] !== prev.owners[b]) {
          expect(prev.owners[b] === null || !alive2.has(prev.owners[b]!)).toBe(true);
        }
        // mid -> next: only unowned buckets get an owner
        if (mid.owners[b] !== next.owners[b]) expect(mid.owners[b]).toBeNull();
      }
    }));
  });

  it('spreads each node’s buckets over the hash range (no long runs)', () => {
    const p = planBuckets({ nodes: ['a', 'b', 'c'], power: { a: 2 }, alive: new Set(['a', 'b', 'c']) });
    expect(bucketsOf(p, 'a')).toHaveLength(128);
    expect(bucketsOf(p, 'b').length + bucketsOf(p, 'c').length).toBe(128);
    let run = 1;
    let longest = 1;
    for (let b = 1; b < BUCKETS; b += 1) {
      run = p.owners[b] === p.owners[b - 1] ? run + 1 : 1;
      longest = Math.max(longest, run);
    }
    expect(longest).toBeLessThanOrEqual(2);
  });

  it('rejects impossible input', () => {
    expect(() => planBuckets({ nodes: ['a', 'b'], power: {}, alive: new Set(['z']) })).toThrow(/"z" is not one of/);
    expect(() => planBuckets({ nodes: ['a', 'a'], power: {}, alive: new Set() })).toThrow(/duplicate/);
    expect(() => planBuckets({ nodes: ['a'], power: { a: 0 }, alive: new Set() })).toThrow(/integer ≥ 1/);
  });
});
