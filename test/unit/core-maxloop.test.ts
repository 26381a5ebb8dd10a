import { describe, expect, it } from 'vitest';
import { initFarm, stepFarm, type FarmCore } from '../../node-service/src/core/farm-step.ts';
import type { CoreEvent, UntimedEvent } from '../../node-service/src/core/types.ts';
import { MirrorSim } from '../helpers/core-sim.ts';

const H = 3_600_000;
const roles = (sim: MirrorSim) => [sim.state('node1'), sim.state('node2')];

function started(maxFailovers = { count: 3, windowMs: 24 * H }): MirrorSim {
  const sim = new MirrorSim({ defaultPrimary: 'node1', init: { maxFailovers } });
  sim.boot('node1');
  sim.boot('node2');
  sim.settle();
  return sim;
}

/** node1 is the primary: it dies and comes back; node2 (which never restarts) takes over, then hands the role back. */
function loseNode1(sim: MirrorSim): void {
  sim.crash('node1');
  sim.settle();
}
function bringNode1Back(sim: MirrorSim): void {
  sim.boot('node1');
  sim.settle();
  sim.command('node2', { type: 'swap' });
  sim.settle();
}

describe('max_failovers (SafeKit maxloop)', () => {
  it('the 4th automatic takeover within 24 h stops the module instead, with a clear log line', () => {
    const sim = started();
    for (let i = 1; i <= 3; i++) {
      loseNode1(sim);
      expect(sim.state('node2'), `takeover ${i}`).toBe('ALONE');
      sim.now += H;
      bringNode1Back(sim);
      expect(roles(sim)).toEqual(['PRIM', 'SECOND']);
    }
    loseNode1(sim);
    expect(sim.state('node2')).toBe('STOP');
    expect(sim.node('node2').logs.join('\n')).toMatch(
      /max_failovers reached: 3 automatic failovers or restarts within 24h; stopping the module instead of taking over\. Find the cause, then run vigil start/,
    );
    // stopped like an operator stop: it stays STOP across a restart until `vigil start`
    expect(sim.node('node2').persisted.stopped).toBe(true);
    sim.crash('node2');
    sim.boot('node2');
    sim.settle();
    expect(sim.state('node2')).toBe('STOP');
    expect(sim.command('node2', { type: 'start' })).toMatchObject({ ok: true });
  });

  it('takeovers spread wider than the window never stop the module', () => {
    const sim = started();
    for (let i = 1; i <= 6; i++) {
      loseNode1(sim);
      expect(sim.state('node2'), `takeover ${i}`).toBe('ALONE');
      sim.now += 9 * H; // three per 27 h: never more than 3 within any 24 h
      bringNode1Back(sim);
    }
  });

  it('the window and count come from the config', () => {
    const sim = started({ count: 1, windowMs: 10 * 60_000 });
    loseNode1(sim);
    expect(sim.state('node2')).toBe('ALONE');
    sim.now += 5 * 60_000;
    bringNode1Back(sim);
    loseNode1(sim);
    expect(sim.state('node2')).toBe('STOP');
    expect(sim.node('node2').logs.join('\n')).toMatch(/1 automatic failovers or restarts within 10m/);
  });

  it('a module bounced between the nodes by a failing checker stops on the node that would bounce it once more', () => {
    const sim = started();
    const fail = (n: string) => {
      sim.feed(n, { type: 'checker', checker: 'app', up: false, reason: 'exit 1', onFailure: 'failover' });
      sim.settle();
      sim.feed(n, { type: 'checker', checker: 'app', up: true, reason: 'up', onFailure: 'failover' });
      sim.settle();
    };
    const history: string[][] = [];
    for (let i = 0; i < 8; i++) {
      const primary = sim.state('node1') === 'PRIM' ? 'node1' : 'node2';
      fail(primary);
      history.push(roles(sim));
      sim.now += 60_000;
    }
    // each node handed over 3 times; the 4th failure on node1 stops it (node2 then takes over, as after a stop)
    expect(history.slice(0, 6)).toEqual([
      ['SECOND', 'PRIM'],
      ['PRIM', 'SECOND'],
      ['SECOND', 'PRIM'],
      ['PRIM', 'SECOND'],
      ['SECOND', 'PRIM'],
      ['PRIM', 'SECOND'],
    ]);
    expect(history[6]).toEqual(['STOP', 'ALONE']);
    expect(sim.node('node1').logs.join('\n')).toMatch(/max_failovers reached: 3 .* instead of handing over to node2/);
  });

  it('operator commands (swap, stopstart) do not count', () => {
    const sim = started({ count: 1, windowMs: 24 * H });
    for (let i = 0; i < 4; i++) {
      sim.command(sim.state('node1') === 'PRIM' ? 'node1' : 'node2', { type: 'swap' });
      sim.settle();
      sim.command(sim.state('node1') === 'PRIM' ? 'node1' : 'node2', { type: 'stopstart' });
      sim.settle();
    }
    expect(roles(sim).sort()).toEqual(['PRIM', 'SECOND']);
    loseNode1(sim);
    expect(sim.state('node2')).toMatch(/ALONE/);
  });
});

describe('max_failovers on a farm module', () => {
  const ev = (e: UntimedEvent, now: number) => ({ ...e, now }) as CoreEvent;
  const settle = (c: FarmCore, now: number): FarmCore => {
    let x = c;
    while (x.busy > 0) x = stepFarm(x, ev({ type: 'transitionDone', id: x.nextId - x.busy, ok: true, detail: '' }, now)).state;
    return x;
  };
  it('a checker that keeps failing makes the node leave and rejoin 3 times, then stops it', () => {
    let c = settle(stepFarm(initFarm({ self: 'n1' }), ev({ type: 'boot' }, 0)).state, 0);
    const logs: string[] = [];
    for (let i = 0; i < 4; i++) {
      const now = i * 60_000;
      const down = stepFarm(c, ev({ type: 'checker', checker: 'web', up: false, reason: 'refused', onFailure: 'stopstart' }, now));
      for (const a of down.actions) if (a.type === 'log') logs.push(a.msg);
      c = settle(down.state, now);
      if (i < 3) {
        expect(c.state).toBe('WAIT');
        c = settle(stepFarm(c, ev({ type: 'checker', checker: 'web', up: true, reason: 'ok', onFailure: 'stopstart' }, now + 1000)).state, now + 1000);
        expect(c.state).toBe('UP');
      }
    }
    expect(c.state).toBe('STOP');
    expect(c.p.stopped).toBe(true);
    expect(logs.join('\n')).toMatch(/max_failovers reached: 3 .*instead of leaving the farm/);
  });
});
