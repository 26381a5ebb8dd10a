import { describe, expect, it } from 'vitest';
import { MirrorSim } from '../helpers/core-sim.ts';

/** with an arbiter, so that a secondary cut from its primary stays SECOND (the primary keeps the lease) */
function started(): MirrorSim {
  const sim = new MirrorSim({ defaultPrimary: 'node1', arbiter: { ttlMs: 3000 } });
  sim.boot('node1');
  sim.boot('node2');
  sim.run(3000);
  return sim;
}

describe('mirror core: a returning peer', () => {
  it('a resync that completes before the returning primary is heard adopts the generation it then advertises', () => {
    const sim = started();
    sim.link = false;
    sim.run(2000);
    expect([sim.state('node1'), sim.state('node2')]).toEqual(['ALONE', 'SECOND']); // a new generation: node2 lacks its writes
    // the link is back: the replication stream reconnects and resyncs before the monitor believes
    // the returning peer's heartbeats (it waits a pulse for the burst queued during the cut)
    sim.feed('node2', { type: 'replication', status: 'synced', reason: '' });
    // the stream reports `synced` once per resync: the simulator must not report it again
    sim.replicationUp = false;
    sim.link = true;
    sim.run(2000);
    expect(sim.state('node2')).toBe('SECOND');
    expect(sim.node('node2').core.p).toMatchObject({ inSync: true, gen: sim.node('node1').core.p.gen });
  });
});
