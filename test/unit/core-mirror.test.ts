import { describe, expect, it } from 'vitest';
import { keepsPrimary } from '../../node-service/src/core/mirror-step.ts';
import { isReady, type ModuleState } from '../../node-service/src/core/types.ts';
import { MirrorSim } from '../helpers/core-sim.ts';

function started(opts: { defaultPrimary?: string; witness?: boolean } = { defaultPrimary: 'node1' }): MirrorSim {
  const sim = new MirrorSim(opts);
  sim.boot('node1');
  sim.boot('node2');
  sim.settle();
  return sim;
}

const roles = (sim: MirrorSim) => [sim.state('node1'), sim.state('node2')];
const allLogs = (sim: MirrorSim, n: string) => sim.node(n).logs.join('\n') + '\n' + sim.node(n).done.map((t) => t.reason).join('\n');

describe('mirror core: first start', () => {
  it('both nodes WAIT until an operator runs prim on the node with good data', () => {
    const sim = started({});
    expect(roles(sim)).toEqual(['WAIT', 'WAIT']);
    expect(sim.node('node1').logs.join()).toMatch(/first start: waiting for vigil prim/);
    expect(sim.command('node2', { type: 'prim', force: false })).toMatchObject({ ok: true });
    sim.settle();
    expect(roles(sim)).toEqual(['SECOND', 'PRIM']);
  });

  it('default_primary starts primary once both nodes are seen fresh', () => {
    const sim = started({ defaultPrimary: 'node1' });
    expect(roles(sim)).toEqual(['PRIM', 'SECOND']);
    expect(sim.node('node2').persisted).toMatchObject({ inSync: true, gen: 1 });
  });

  it('default_primary alone does not promote: the peer may hold data', () => {
    const sim = new MirrorSim({ defaultPrimary: 'node1' });
    sim.link = false;
    sim.boot('node1');
    sim.settle();
    expect(sim.state('node1')).toBe('WAIT');
  });

  it('the start of the primary role orders data, address, application', () => {
    const sim = started();
    const t = sim.node('node1').done.find((x) => x.to === 'ALONE')!;
    expect(t.steps.map((s) => (s.type === 'script' ? s.script : `${s.type}:${'op' in s ? s.op : ''}`))).toEqual([
      'replication:primary',
      'vip:add',
      'start_prim',
    ]);
  });
});

describe('mirror core: failover', () => {
  it('in-sync secondary takes over when the primary is lost', () => {
    const sim = started();
    sim.crash('node1');
    sim.settle();
    expect(sim.state('node2')).toBe('ALONE');
    expect(allLogs(sim, 'node2')).toMatch(/peer node1 lost; our data is in sync/);
    expect(sim.node('node2').persisted).toMatchObject({ lastState: 'ALONE', gen: 2 });
  });

  it('a secondary that is not in sync waits instead of promoting stale data', () => {
    const sim = started();
    sim.replicationUp = false;
    // Replication to node2 breaks while heartbeats continue: node1 goes ALONE with a new generation.
    sim.feed('node1', { type: 'replication', status: 'lost', reason: 'send timeout' });
    sim.settle();
    expect(roles(sim)).toEqual(['ALONE', 'SECOND']);
    expect(sim.node('node2').persisted.inSync).toBe(false);
    sim.crash('node1');
    sim.settle();
    expect(sim.state('node2')).toBe('WAIT');
    expect(allLogs(sim, 'node2')).toMatch(/not in sync: our data may be stale/);
  });

  it('the failed primary returns as SECOND, resyncs, and the survivor becomes PRIM', () => {
    const sim = started();
    sim.crash('node1');
    sim.settle();
    sim.boot('node1');
    sim.settle();
    expect(roles(sim)).toEqual(['SECOND', 'PRIM']);
    const t = sim.node('node1').done.find((x) => x.to === 'SECOND')!;
    expect(t.steps).toContainEqual(expect.objectContaining({ type: 'replication', op: 'secondary', divergent: false }));
  });

  it('after both stop, the node that was ALONE restarts alone; the other waits', () => {
    const sim = started();
    sim.crash('node2');
    sim.settle();
    expect(sim.state('node1')).toBe('ALONE');
    sim.crash('node1');
    sim.link = false;
    sim.boot('node2');
    sim.boot('node1');
    sim.settle();
    expect(roles(sim)).toEqual(['ALONE', 'WAIT']);
    expect(allLogs(sim, 'node2')).toMatch(/may be stale/);
    expect(allLogs(sim, 'node1')).toMatch(/we were ALONE/);
  });

  it('a node whose last state was PRIM does not restart alone (the peer may have taken over)', () => {
    const sim = started();
    sim.crash('node1');
    sim.crash('node2');
    sim.link = false;
    sim.boot('node1');
    sim.settle();
    expect(sim.state('node1')).toBe('WAIT');
  });

  it('later start with both up: the node with the newer generation becomes primary', () => {
    const sim = started();
    sim.crash('node2');
    sim.settle(); // node1 ALONE, gen 2
    sim.crash('node1');
    sim.boot('node2');
    sim.boot('node1');
    sim.settle();
    expect(roles(sim)).toEqual(['PRIM', 'SECOND']);
  });

  it('prim --fullsync on the primary keeps the role and asks the engine for a checksum resync', () => {
    const sim = started();
    const before = roles(sim);
    expect(isReady(sim.state('node1') as ModuleState)).toBe(true);
    expect(sim.command('node1', { type: 'prim', force: false })).toMatchObject({ ok: false, message: expect.stringMatching(/already primary/) });
    expect(sim.command('node1', { type: 'prim', force: false, fullSync: true })).toMatchObject({ ok: true });
    sim.settle();
    expect(roles(sim)).toEqual(before);
    const last = sim.node('node1').done.at(-1)!;
    expect(last.steps).toEqual([{ type: 'replication', op: 'primary', fullSync: true }]);
  });

  it('prim without --force on a stale node is refused, with --force it is obeyed', () => {
    const sim = started();
    sim.crash('node2');
    sim.settle();
    sim.crash('node1');
    sim.link = false;
    sim.boot('node2');
    sim.settle();
    expect(sim.state('node2')).toBe('WAIT');
    expect(sim.command('node2', { type: 'prim', force: false })).toMatchObject({ ok: false, message: expect.stringMatching(/--force/) });
    expect(sim.command('node2', { type: 'prim', force: true })).toMatchObject({ ok: true });
    sim.settle();
    expect(sim.state('node2')).toBe('ALONE');
  });

  it('a cleanly stopped primary hands over at once, without waiting for the heartbeat timeout', () => {
    const sim = started();
    sim.command('node1', { type: 'stop' });
    sim.runTransitions('node1');
    sim.exchange();
    sim.runTransitions('node2');
    expect(sim.state('node2')).toBe('ALONE');
    expect(sim.node('node2').core.peerAlive).toBe(true);
  });
});

describe('mirror core: swap', () => {
  it('swap from the primary exchanges roles; the new primary promotes only once the old one is SECOND', () => {
    const sim = started();
    expect(sim.command('node1', { type: 'swap' })).toMatchObject({ ok: true });
    // node1 still finishing its transition: node2 must not promote yet.
    sim.exchange();
    sim.runTransitions('node2');
    expect(sim.state('node2')).toBe('SECOND');
    sim.settle();
    expect(roles(sim)).toEqual(['SECOND', 'PRIM']);
  });

  it('swap asked on the secondary is carried out by the primary', () => {
    const sim = started();
    expect(sim.command('node2', { type: 'swap' })).toMatchObject({ ok: true, message: /asked node1/ });
    sim.settle();
    expect(roles(sim)).toEqual(['SECOND', 'PRIM']);
    expect(allLogs(sim, 'node1')).toMatch(/swap requested by node2/);
  });

  it('a swap whose handover signal is lost (the old primary loses our heartbeats as it steps down) does not leave both SECOND', () => {
    // found by the soak (seed 7, episode #98: one-way loss into the primary, then a swap): the old
    // primary's handover flag was cleared by the peer loss, its heartbeats came back before its step
    // down had finished, node2 never saw a handover, and two in-sync secondaries waited for each
    // other for good: nobody served
    const sim = started();
    expect(sim.command('node1', { type: 'swap' })).toMatchObject({ ok: true });
    sim.feed('node1', { type: 'peerLost', node: 'node2' });
    sim.exchange();
    expect(sim.node('node1').core.handover).toBe(false);
    sim.runTransitions('node1');
    sim.exchange();
    sim.feed('node1', { type: 'tick' });
    expect(roles(sim)).toEqual(['SECOND', 'SECOND']); // not at once: the peer's view may be a pulse old
    sim.run(500);
    sim.settle();
    expect(roles(sim)).toEqual(['PRIM', 'SECOND']);
    expect(allLogs(sim, 'node1')).toMatch(/node2 is SECOND too/);
    // only the node whose data ranks first (same generation, both in sync: the name) took primary
    expect(sim.node('node2').done.filter((t) => t.to === 'ALONE')).toHaveLength(0);
    expect(sim.node('node2').persisted).toMatchObject({ inSync: true });
  });

  it('swap is refused while the secondary is not in sync', () => {
    const sim = started();
    sim.replicationUp = false;
    sim.feed('node1', { type: 'replication', status: 'lost', reason: 'x' });
    sim.settle();
    expect(sim.command('node1', { type: 'swap' })).toMatchObject({ ok: false, message: /PRIM and an in-sync SECOND/ });
  });
});

describe('mirror core: split brain', () => {
  it('when heartbeats return, the older primary stays and the other moves its divergent files aside', () => {
    const sim = started();
    sim.link = false;
    sim.settle();
    expect(roles(sim)).toEqual(['ALONE', 'ALONE']);
    sim.link = true;
    sim.replicationUp = true;
    sim.settle();
    expect(roles(sim)).toEqual(['PRIM', 'SECOND']);
    const t = sim.node('node2').done.at(-1)!;
    expect(t.reason).toMatch(/split brain healed: node1 stays primary/);
    expect(t.steps).toContainEqual(expect.objectContaining({ type: 'replication', op: 'secondary', divergent: true }));
  });

  it('the keep rule is deterministic and antisymmetric', () => {
    const a = { node: 'node1', gen: 5, primaryEpoch: 3, isolated: false };
    const b = { node: 'node2', gen: 5, primaryEpoch: 5, isolated: false };
    expect(keepsPrimary(a, b)).toBe(true);
    expect(keepsPrimary(b, a)).toBe(false);
    expect(keepsPrimary({ ...b, gen: 6 }, a)).toBe(true);
    expect(keepsPrimary({ ...a, primaryEpoch: 5 }, b)).toBe(true);
    expect(keepsPrimary(b, { ...a, primaryEpoch: 5 })).toBe(false);
    expect(keepsPrimary(b, { ...a, isolated: true })).toBe(true);
    expect(keepsPrimary({ ...a, isolated: true }, b)).toBe(false);
  });

  it('a cut-off primary steps down at its first failed witness answer; the secondary waits out the grace first', () => {
    const sim = started({ defaultPrimary: 'node1', witness: true });
    sim.link = false;
    sim.exchange();
    sim.feed('node1', { type: 'witness', reachable: false });
    sim.feed('node2', { type: 'witness', reachable: true });
    sim.runTransitions('node1');
    sim.runTransitions('node2');
    expect(roles(sim)).toEqual(['WAIT', 'SECOND']);
    expect(sim.node('node2').logs.join()).toMatch(/giving a cut-off primary 700ms to step down/);
    sim.now += 1100;
    sim.settle();
    expect(roles(sim)).toEqual(['WAIT', 'ALONE']);
    sim.link = true;
    sim.settle();
    expect(roles(sim)).toEqual(['SECOND', 'PRIM']);
  });

  it('a cut-off primary that stepped down does not promote itself when only the witness comes back', () => {
    const sim = started({ defaultPrimary: 'node1', witness: true });
    sim.link = false;
    sim.exchange();
    sim.feed('node1', { type: 'witness', reachable: false });
    sim.feed('node2', { type: 'witness', reachable: true });
    sim.now += 1100;
    sim.settle();
    expect(roles(sim)).toEqual(['WAIT', 'ALONE']);
    // the witness answers node1 again a moment before node2's heartbeats get through
    sim.feed('node1', { type: 'witness', reachable: true });
    sim.runTransitions('node1');
    expect(sim.state('node1')).toBe('WAIT');
    sim.link = true;
    sim.settle();
    expect(roles(sim)).toEqual(['SECOND', 'PRIM']);
  });

  it('with a witness, a node that reaches no witness does not take over', () => {
    const sim = started({ defaultPrimary: 'node1', witness: true });
    sim.link = false;
    sim.settle();
    expect(sim.node('node2').witnessPolling).toBe(true);
    sim.feed('node2', { type: 'witness', reachable: false });
    sim.feed('node1', { type: 'witness', reachable: true });
    sim.settle();
    expect(roles(sim)).toEqual(['ALONE', 'WAIT']);
  });

  it('a primary that loses its peer and every witness steps down after the grace period', () => {
    const sim = started({ defaultPrimary: 'node1', witness: true });
    sim.link = false;
    sim.settle();
    sim.feed('node1', { type: 'witness', reachable: false });
    sim.feed('node2', { type: 'witness', reachable: true });
    sim.now += 3100;
    sim.settle();
    expect(sim.state('node1')).toBe('WAIT');
    expect(sim.state('node2')).toBe('ALONE');
    expect(allLogs(sim, 'node1')).toMatch(/our network is the one cut/);
  });
});

describe('mirror core: checkers and scripts', () => {
  const down = (checker = 'app') => ({ type: 'checker' as const, checker, up: false, reason: 'no process', onFailure: 'restart' as const, maxRestarts: 3, restartWindow: 60_000 });

  it('a checker down with on_failure restart restarts the application in place', () => {
    const sim = started();
    sim.feed('node1', down());
    const t = sim.node('node1').pending[0];
    expect(t.to).toBe('PRIM');
    expect(t.steps.map((s) => (s.type === 'script' ? s.script : s.type))).toEqual(['stop_prim', 'start_prim']);
    sim.settle();
    expect(roles(sim)).toEqual(['PRIM', 'SECOND']);
  });

  it('the fourth failure within the window fails over to the in-sync secondary', () => {
    const sim = started();
    for (let i = 0; i < 4; i++) {
      sim.feed('node1', down());
      sim.settle();
    }
    expect(roles(sim)).toEqual(['SECOND', 'PRIM']);
    expect(allLogs(sim, 'node1')).toMatch(/checker app down \(stopstart\)/);
  });

  it('failures spread wider than the window keep restarting in place', () => {
    const sim = started();
    for (let i = 0; i < 6; i++) {
      sim.feed('node1', down());
      sim.settle();
      sim.now += 30_000;
    }
    expect(roles(sim)).toEqual(['PRIM', 'SECOND']);
  });

  it('a failing start_prim never leaves the node PRIM', () => {
    const sim = new MirrorSim({ defaultPrimary: 'node1' });
    sim.node('node1').failing.add('start_prim');
    sim.boot('node1');
    sim.boot('node2');
    sim.settle();
    expect(sim.state('node1')).not.toMatch(/ALONE|PRIM/);
    expect(sim.node('node1').logs.join()).toMatch(/start_prim exited 1/);
  });

  it('checker wait on the primary hands over and blocks promotion until it is up', () => {
    const sim = started();
    sim.feed('node1', { ...down('db'), onFailure: 'wait' });
    sim.settle();
    expect(roles(sim)).toEqual(['SECOND', 'PRIM']);
    sim.crash('node2');
    sim.settle();
    expect(sim.state('node1')).toBe('WAIT');
    sim.feed('node1', { ...down('db'), up: true, onFailure: 'wait' });
    sim.settle();
    expect(sim.state('node1')).toBe('ALONE');
  });
});

describe('mirror core: operator stop/start survives restarts', () => {
  it('a stopped module stays STOP across a daemon restart until started', () => {
    const sim = started();
    sim.command('node2', { type: 'stop' });
    sim.settle();
    expect(roles(sim)).toEqual(['ALONE', 'STOP']);
    sim.crash('node2');
    sim.boot('node2');
    sim.settle();
    expect(sim.state('node2')).toBe('STOP');
    sim.command('node2', { type: 'start' });
    sim.settle();
    expect(roles(sim)).toEqual(['PRIM', 'SECOND']);
  });
});

describe('ready.txt mapping (contract)', () => {
  it.each<[ModuleState, boolean]>([
    ['STOP', false], ['WAIT', false], ['ALONE', true], ['PRIM', true], ['SECOND', false], ['UP', true],
  ])('%s → %s', (s, ready) => expect(isReady(s)).toBe(ready));
});
