import { describe, expect, it } from 'vitest';
import { initFarm, stepFarm } from '../../node-service/src/core/farm-step.ts';
import type { CoreEvent, UntimedEvent } from '../../node-service/src/core/types.ts';
import { MirrorSim } from '../helpers/core-sim.ts';

type Init = ConstructorParameters<typeof MirrorSim>[0];

function started(opts: Init = { defaultPrimary: 'node1' }): MirrorSim {
  const sim = new MirrorSim(opts);
  sim.boot('node1');
  sim.boot('node2');
  sim.settle();
  return sim;
}

const roles = (sim: MirrorSim) => [sim.state('node1'), sim.state('node2')];
const allLogs = (sim: MirrorSim, n: string) => sim.node(n).logs.join('\n') + '\n' + sim.node(n).done.map((t) => t.reason).join('\n');

describe('failover off (config `failover: off` or `vigil failover off`)', () => {
  it('a lost primary leaves the in-sync secondary waiting for an operator; prim (no --force) takes over', () => {
    // GIVEN a pair with failover off in the config
    const sim = started({ defaultPrimary: 'node1', init: { failover: false } });
    expect(roles(sim)).toEqual(['PRIM', 'SECOND']);
    // WHEN the primary dies
    sim.crash('node1');
    sim.settle();
    // THEN the survivor waits, says why and what to do
    expect(sim.state('node2')).toBe('WAIT');
    expect(allLogs(sim, 'node2')).toMatch(/peer node1 lost; our data is in sync, but failover is off: waiting for an operator \(vigil prim to take over here, or vigil failover on\)/);
    sim.now += 3_600_000;
    sim.settle();
    expect(sim.state('node2')).toBe('WAIT');
    // the operator knows the peer is dead: prim needs no --force, the data was in sync when it was lost
    expect(sim.command('node2', { type: 'prim', force: false })).toMatchObject({ ok: true });
    sim.settle();
    expect(sim.state('node2')).toBe('ALONE');
  });

  it('`failover on` lets the waiting survivor take over at once', () => {
    const sim = started();
    expect(sim.command('node2', { type: 'failover', on: false })).toMatchObject({ ok: true, message: expect.stringMatching(/failover off/) });
    sim.crash('node1');
    sim.settle();
    expect(sim.state('node2')).toBe('WAIT');
    expect(sim.command('node2', { type: 'failover', on: true })).toMatchObject({ ok: true });
    sim.settle();
    expect(sim.state('node2')).toBe('ALONE');
    expect(allLogs(sim, 'node2')).toMatch(/node1 lost while our data was in sync/);
  });

  it('the operator\'s choice is persisted and wins over the config across a restart', () => {
    const sim = started({ defaultPrimary: 'node1', init: { failover: true } });
    sim.command('node2', { type: 'failover', on: false });
    expect(sim.node('node2').persisted.failover).toBe(false);
    sim.crash('node2');
    sim.boot('node2');
    sim.settle();
    expect(roles(sim)).toEqual(['PRIM', 'SECOND']);
    sim.crash('node1');
    sim.settle();
    expect(sim.state('node2')).toBe('WAIT');
  });

  it('a primary that loses its secondary keeps serving (ALONE): failover off concerns only taking over', () => {
    const sim = started({ defaultPrimary: 'node1', init: { failover: false } });
    sim.crash('node2');
    sim.settle();
    expect(sim.state('node1')).toBe('ALONE');
  });

  it('a clean handover (swap) still works with failover off', () => {
    const sim = started({ defaultPrimary: 'node1', init: { failover: false } });
    expect(sim.command('node1', { type: 'swap' })).toMatchObject({ ok: true });
    sim.settle();
    expect(roles(sim)).toEqual(['SECOND', 'PRIM']);
  });
});

describe('default_primary with swap_back', () => {
  it('after a failover, the default primary returns, resyncs, and the roles swap back by themselves', () => {
    const sim = started({ defaultPrimary: 'node1', init: { swapBack: true } });
    sim.crash('node1');
    sim.settle();
    expect(sim.state('node2')).toBe('ALONE');
    sim.boot('node1');
    sim.settle();
    expect(roles(sim)).toEqual(['PRIM', 'SECOND']);
    expect(allLogs(sim, 'node2')).toMatch(/swap_back: default_primary node1 is back and in sync/);
    // the default primary passed through SECOND (resync) before it got the role back
    expect(sim.node('node1').done.map((t) => t.to)).toEqual(expect.arrayContaining(['SECOND', 'ALONE']));
    const tos = sim.node('node1').done.map((t) => t.to);
    expect(tos.indexOf('SECOND')).toBeLessThan(tos.lastIndexOf('ALONE'));
  });

  it('the swap back waits until the returning node is in sync', () => {
    const sim = started({ defaultPrimary: 'node1', init: { swapBack: true } });
    sim.crash('node1');
    sim.settle();
    sim.replicationUp = false; // the resync does not finish
    sim.boot('node1');
    sim.settle();
    expect(roles(sim)).toEqual(['SECOND', 'ALONE']);
    sim.replicationUp = true;
    sim.settle();
    expect(roles(sim)).toEqual(['PRIM', 'SECOND']);
  });

  it('without swap_back the survivor stays primary', () => {
    const sim = started({ defaultPrimary: 'node1' });
    sim.crash('node1');
    sim.settle();
    sim.boot('node1');
    sim.settle();
    expect(roles(sim)).toEqual(['SECOND', 'PRIM']);
  });

  it('an operator swap is not undone', () => {
    const sim = started({ defaultPrimary: 'node1', init: { swapBack: true } });
    sim.command('node1', { type: 'swap' });
    sim.settle();
    expect(roles(sim)).toEqual(['SECOND', 'PRIM']);
    sim.now += 60_000;
    sim.settle();
    expect(roles(sim)).toEqual(['SECOND', 'PRIM']);
  });
});

describe('forcestop', () => {
  it('drops what is queued or running, runs no script, and stops for good', () => {
    const sim = started();
    // a restart whose scripts would hang: queued, never completed
    sim.command('node1', { type: 'restart' });
    const hung = sim.node('node1').pending[0];
    expect(hung.steps.some((s) => s.type === 'script')).toBe(true);
    expect(sim.command('node1', { type: 'forcestop' })).toMatchObject({ ok: true });
    const pending = sim.node('node1').pending;
    expect(pending).toHaveLength(1);
    expect(pending[0].to).toBe('STOP');
    expect(pending[0].steps).toEqual([{ type: 'vip', op: 'remove' }, { type: 'replication', op: 'stop' }]);
    // the dropped transition reports late: ignored
    sim.feed('node1', { type: 'transitionDone', id: hung.id, ok: true, detail: '' });
    expect(sim.node('node1').core.target).toBe('STOP');
    sim.settle();
    expect(roles(sim)).toEqual(['STOP', 'ALONE']);
    expect(sim.node('node1').persisted.stopped).toBe(true);
    expect(sim.command('node1', { type: 'forcestop' })).toMatchObject({ ok: false, message: 'already stopped' });
  });

  it('a stop that hangs can be forced', () => {
    const sim = started();
    sim.command('node2', { type: 'stop' }); // stop_second hangs: never completed
    expect(sim.command('node2', { type: 'forcestop' })).toMatchObject({ ok: true });
    sim.settle();
    expect(sim.state('node2')).toBe('STOP');
  });
});

describe('stopstart', () => {
  it('on the primary with an in-sync secondary: the peer takes over, the node comes back SECOND', () => {
    const sim = started();
    expect(sim.command('node1', { type: 'stopstart' })).toMatchObject({ ok: true, message: expect.stringMatching(/node2 takes over/) });
    sim.settle();
    expect(roles(sim)).toEqual(['SECOND', 'PRIM']);
    expect(sim.node('node1').done.map((t) => t.to).slice(-3)).toEqual(['STOP', 'WAIT', 'SECOND']);
    expect(sim.node('node1').persisted.stopped).toBe(false);
  });

  it('a lone primary restarts as primary (its data is the latest)', () => {
    const sim = started();
    sim.crash('node2');
    sim.settle();
    sim.command('node1', { type: 'stopstart' });
    sim.settle();
    expect(sim.state('node1')).toBe('ALONE');
    expect(sim.node('node1').done.map((t) => t.to).slice(-3)).toEqual(['STOP', 'WAIT', 'ALONE']);
  });

  it('is refused on a stopped module, naming what to do', () => {
    const sim = started();
    sim.command('node2', { type: 'stop' });
    sim.settle();
    expect(sim.command('node2', { type: 'stopstart' })).toMatchObject({ ok: false, message: 'the module is stopped: run vigil start' });
  });
});

describe('farm verbs', () => {
  const t = (ev: UntimedEvent, now = 0) => ({ ...ev, now }) as CoreEvent;
  it('forcestop and stopstart on a farm module; failover is a mirror verb', () => {
    let c = stepFarm(initFarm({ self: 'n1' }), t({ type: 'boot' })).state;
    const done = (s: typeof c) => {
      let x = s;
      while (x.busy > 0) x = stepFarm(x, t({ type: 'transitionDone', id: x.nextId - x.busy, ok: true, detail: '' })).state;
      return x;
    };
    c = done(c);
    expect(c.state).toBe('UP');
    const ss = stepFarm(c, t({ type: 'command', command: { type: 'stopstart' } }));
    expect(ss.reply?.ok).toBe(true);
    expect(ss.actions.filter((a) => a.type === 'transition').map((a) => a.type === 'transition' && a.transition.to)).toEqual(['STOP', 'WAIT']);
    c = done(ss.state);
    expect(c.state).toBe('UP');
    expect(stepFarm(c, t({ type: 'command', command: { type: 'failover', on: false } })).reply).toMatchObject({ ok: false, message: expect.stringMatching(/mirror modules/) });
    const fs = stepFarm(c, t({ type: 'command', command: { type: 'forcestop' } }));
    expect(fs.actions.map((a) => a.type)).toContain('abort');
    c = done(fs.state);
    expect(c.state).toBe('STOP');
  });
});
