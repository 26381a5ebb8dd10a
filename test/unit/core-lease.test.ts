import { describe, expect, it } from 'vitest';
import { leaseTiming } from '../../node-service/src/core/lease.ts';
import { initMirror, stepMirror } from '../../node-service/src/core/mirror-step.ts';
import { isPrimary } from '../../node-service/src/core/types.ts';
import { drive, MirrorSim } from '../helpers/core-sim.ts';

const TTL = 3000;
const { marginMs: MARGIN } = leaseTiming(TTL);

/** node1 PRIM and node2 SECOND, with the lease store, and a watch of the one rule that matters. */
function started(): { sim: MirrorSim; serving: () => string[]; check: () => void; violations: string[] } {
  const sim = new MirrorSim({ defaultPrimary: 'node1', arbiter: { ttlMs: TTL } });
  const violations: string[] = [];
  const serving = () => ['node1', 'node2'].filter((n) => !sim.node(n).crashed && isPrimary(sim.node(n).core.state));
  // every node in a primary state holds a live lease at the store, so never two at once
  const check = () => {
    for (const n of serving()) if (sim.store!.holderAt(sim.now) !== n) violations.push(`t=${sim.now}: ${n} is ${sim.state(n)} but the store's lease is ${sim.store!.holderAt(sim.now) ?? 'free'}`);
  };
  sim.boot('node1');
  sim.boot('node2');
  sim.run(3000, check);
  return { sim, serving, check, violations };
}

const logs = (sim: MirrorSim, n: string) => [...sim.node(n).logs, ...sim.node(n).done.map((t) => t.reason)].join('\n');

describe('mirror core with an arbiter lease', () => {
  it('the first primary holds the lease before it serves, and keeps renewing it', () => {
    const { sim, violations } = started();
    expect([sim.state('node1'), sim.state('node2')]).toEqual(['PRIM', 'SECOND']);
    expect(sim.store!.grants.map((g) => g.node)).toEqual(['node1']);
    expect(sim.store!.holderAt(sim.now)).toBe('node1');
    // the generation the primary serves at is recorded in the lease (the fencing token)
    expect(sim.store!.fence).toBe(sim.node('node1').core.p.gen);
    expect(violations).toEqual([]);
  });

  it('node1 cut from the store only: it steps down before the lease can expire; node2 takes it after expiry; node1 resyncs as secondary', () => {
    const { sim, check, violations } = started();
    const cutAt = sim.now;
    sim.store!.cut.add('node1');
    let downAt: number | undefined;
    let upAt: number | undefined;
    sim.run(8000, () => {
      check();
      if (downAt === undefined && !isPrimary(sim.node('node1').core.state)) downAt = sim.now;
      if (upAt === undefined && isPrimary(sim.node('node2').core.state)) upAt = sim.now;
    });
    expect(violations).toEqual([]);
    // the last renewal was sent at most renewMs before the cut: node1 is down by then + ttl - margin (+ one round)
    expect(downAt! - cutAt).toBeLessThanOrEqual(TTL - MARGIN + 100);
    expect(upAt).toBeGreaterThan(downAt!);
    expect([sim.state('node1'), sim.state('node2')]).toEqual(['SECOND', 'PRIM']);
    expect(sim.node('node1').core.p.inSync).toBe(true);
    expect(logs(sim, 'node1')).toMatch(/arbiter lease not renewed \(arbiter unreachable \(store unreachable\)/);
  });

  it('node↔node cut only: the primary keeps the lease and serves ALONE; the secondary never serves; after the heal one primary, one resynced secondary', () => {
    const { sim, check, violations } = started();
    sim.link = false;
    sim.run(10_000, check);
    expect(violations).toEqual([]);
    expect(sim.state('node1')).toBe('ALONE');
    expect(isPrimary(sim.node('node2').core.state)).toBe(false);
    expect(logs(sim, 'node2')).toMatch(/the arbiter lease is held by node1: waiting for it to expire/);
    // waiting for the lease does not count against max_failovers
    expect(sim.node('node2').core.failovers).toEqual([]);
    sim.link = true;
    sim.run(3000, check);
    expect([sim.state('node1'), sim.state('node2')]).toEqual(['PRIM', 'SECOND']);
    expect(sim.node('node2').core.p.inSync).toBe(true);
    expect(violations).toEqual([]);
  });

  it('node1 cut from everything: it steps down on its own; node2 takes over once the lease expired', () => {
    const { sim, check, violations } = started();
    sim.link = false;
    sim.store!.cut.add('node1');
    const t0 = sim.now;
    let upAt: number | undefined;
    sim.run(8000, () => {
      check();
      if (upAt === undefined && isPrimary(sim.node('node2').core.state)) upAt = sim.now;
    });
    expect(violations).toEqual([]);
    expect(sim.state('node1')).toBe('WAIT');
    expect(sim.state('node2')).toBe('ALONE');
    expect(upAt! - t0).toBeGreaterThanOrEqual(TTL - leaseTiming(TTL).renewMs);
    sim.link = true;
    sim.store!.cut.delete('node1');
    sim.run(3000, check);
    expect([sim.state('node1'), sim.state('node2')]).toEqual(['SECOND', 'PRIM']);
    expect(violations).toEqual([]);
  });

  it('the store unreachable by both: the primary steps down at the margin and nobody serves, saying so; when it is back, one primary again', () => {
    const { sim, check, violations, serving } = started();
    sim.store!.cut.add('node1');
    sim.store!.cut.add('node2');
    sim.run(10_000, check);
    expect(serving()).toEqual([]);
    expect(violations).toEqual([]);
    expect(sim.node('node1').core.lease.view).toBe('unreachable');
    expect(sim.node('node1').core.waitingReason).toMatch(/arbiter unreachable .*nobody serves until it is back/);
    sim.store!.cut.clear();
    sim.run(6000, check);
    expect(serving()).toHaveLength(1);
    expect([sim.state('node1'), sim.state('node2')].sort()).toEqual(['PRIM', 'SECOND']);
    expect(violations).toEqual([]);
  });

  it('kill -9 of the primary: the secondary takes over only after the lease expired at the store', () => {
    const { sim, check, violations } = started();
    sim.crash('node1');
    const expiry = sim.store!.expiresAt;
    let upAt: number | undefined;
    sim.run(6000, () => {
      check();
      if (upAt === undefined && isPrimary(sim.node('node2').core.state)) upAt = sim.now;
    });
    expect(upAt).toBeGreaterThanOrEqual(expiry);
    expect(sim.store!.grants.at(-1)).toMatchObject({ node: 'node2' });
    expect(violations).toEqual([]);
  });

  it('a stale node never takes the lease over a newer generation (fencing); vigil prim --force overrides', () => {
    const { sim, check, violations } = started();
    sim.link = false; // node1 goes ALONE: a new generation, recorded in the lease at its next renewal
    sim.run(2000, check);
    expect(sim.state('node1')).toBe('ALONE');
    expect(sim.store!.fence).toBe(sim.node('node1').core.p.gen);
    sim.crash('node1');
    sim.run(8000, check);
    expect(isPrimary(sim.node('node2').core.state)).toBe(false);
    expect(sim.node('node2').core.lease.view).toBe('fenced');
    expect(logs(sim, 'node2')).toMatch(/last held with data generation \d+, ours is \d+: our data is older/);
    expect(sim.command('node2', { type: 'prim', force: true })).toMatchObject({ ok: true });
    sim.run(1000, check);
    expect(sim.state('node2')).toBe('ALONE');
    expect(violations).toEqual([]);
  });

  // Found by the soak (arbiter topology): node1 lost its secondary (one-way loss), acknowledged fsyncs
  // ALONE on a new generation, then lost the store before its next renewal; node2 (older generation,
  // not fenced yet) was granted the lease after expiry and served without those records.
  it('a primary answers no durability point alone until the store recorded its new generation; cut from the store as it goes ALONE, it acknowledges nothing alone and steps down', () => {
    const { sim, check, violations } = started();
    // every moment node1 is allowed to acknowledge alone, the store's fence holds its generation
    const unfenced: string[] = [];
    const watch = () => {
      check();
      const n1 = sim.node('node1').core;
      if (!sim.node('node1').crashed && n1.durableAlone && n1.state === 'ALONE' && sim.store!.fence < n1.p.gen) unfenced.push(`t=${sim.now}: ALONE on generation ${n1.p.gen}, fence ${sim.store!.fence}`);
    };
    sim.link = false;
    let aloneAt: number | undefined;
    sim.run(5000, () => {
      watch();
      if (aloneAt === undefined && sim.state('node1') === 'ALONE') {
        aloneAt = sim.now;
        // the new generation is claimed at once, not at the next renewal: acknowledgements wait one store round
        expect(sim.node('node1').core.durableAlone).toBe(false);
        expect(sim.node('node1').core.lease.inFlightGen).toBe(sim.node('node1').core.p.gen);
        sim.store!.cut.add('node1');
      }
    });
    expect(aloneAt).toBeDefined();
    expect(isPrimary(sim.node('node1').core.state)).toBe(false);
    // its claim of the new generation reached the store (only the answer was lost): node2's older data is refused
    expect(sim.store!.fence).toBe(sim.node('node1').core.p.gen);
    expect(sim.node('node2').core.lease.view).toBe('fenced');
    expect(unfenced).toEqual([]);
    expect(violations).toEqual([]);
  });

  it('once the store recorded the new generation, the primary answers alone; cut from the store afterwards, nobody with older data serves', () => {
    const { sim, check, violations } = started();
    sim.link = false;
    sim.run(2000, check);
    expect(sim.state('node1')).toBe('ALONE');
    expect(sim.node('node1').core.durableAlone).toBe(true);
    expect(sim.store!.fence).toBe(sim.node('node1').core.p.gen);
    sim.store!.cut.add('node1');
    sim.run(10_000, check);
    expect(isPrimary(sim.node('node1').core.state)).toBe(false);
    expect(isPrimary(sim.node('node2').core.state)).toBe(false);
    expect(sim.node('node2').core.lease.view).toBe('fenced');
    expect(violations).toEqual([]);
  });

  it('a node that takes over acknowledges alone only once its new generation is recorded', () => {
    const { sim, check, violations } = started();
    sim.crash('node1');
    let served = false;
    sim.run(8000, () => {
      check();
      const n2 = sim.node('node2').core;
      if (isPrimary(n2.state) && n2.durableAlone) {
        served = true;
        expect(sim.store!.fence).toBeGreaterThanOrEqual(n2.p.gen);
      }
    });
    expect(served).toBe(true);
    expect(violations).toEqual([]);
  });

  it('swap hands the lease over at once: the old primary releases it after stepping down', () => {
    const { sim, check, violations } = started();
    expect(sim.command('node1', { type: 'swap' })).toMatchObject({ ok: true });
    const t0 = sim.now;
    let upAt: number | undefined;
    sim.run(3000, () => {
      check();
      if (upAt === undefined && isPrimary(sim.node('node2').core.state)) upAt = sim.now;
    });
    expect([sim.state('node1'), sim.state('node2')]).toEqual(['SECOND', 'PRIM']);
    // well before the ttl: the lease was released, not left to expire
    expect(upAt! - t0).toBeLessThan(TTL);
    expect(violations).toEqual([]);
  });

  it('a lease running out while a start script hangs: the transition is abandoned and the node steps down', () => {
    const n = drive(initMirror({ self: 'node1', peerName: 'node2', defaultPrimary: 'node1', arbiterTtlMs: TTL, persisted: { gen: 3, primaryEpoch: 3, lastState: 'ALONE', inSync: false, stopped: false } }), stepMirror);
    const { feed, actions: all } = n;
    feed({ type: 'boot', now: 0 });
    const boot = all.find((a) => a.type === 'transition')!;
    feed({ type: 'transitionDone', id: boot.type === 'transition' ? boot.transition.id : 0, ok: true, detail: '', now: 10 });
    feed({ type: 'peerLost', node: 'node2', now: 2000 });
    expect(all).toContainEqual({ type: 'lease', op: 'claim', gen: 3, force: false });
    feed({ type: 'lease', outcome: 'held', sentAt: 2000, now: 2010 });
    expect(n.c.target).toBe('ALONE'); // start_prim now runs, and hangs
    feed({ type: 'tick', now: 2000 + TTL - MARGIN - 1 });
    expect(n.c.target).toBe('ALONE');
    feed({ type: 'tick', now: 2000 + TTL - MARGIN });
    expect(n.c.target).toBe('WAIT');
    expect(all).toContainEqual({ type: 'abort' });
    const down = all.filter((a) => a.type === 'transition').at(-1);
    expect(down?.type === 'transition' && down.transition.steps.map((s) => ('script' in s ? s.script : `${s.type}:${s.op}`))).toEqual(['vip:remove', 'replication:idle', 'stop_prim']);
  });
});
