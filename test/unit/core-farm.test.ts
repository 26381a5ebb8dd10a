import { describe, expect, it } from 'vitest';
import { type FarmCore, initFarm, stepFarm } from '../../node-service/src/core/farm-step.ts';
import type { Action, CoreEvent, Transition, UntimedEvent } from '../../node-service/src/core/types.ts';

/** Drives one farm core, completing its transitions as the daemon would. */
function drive(core: FarmCore, events: UntimedEvent[], failScript?: string) {
  let c = core;
  let now = 0;
  const done: Transition[] = [];
  const replies: { ok: boolean; message: string }[] = [];
  const pending: Transition[] = [];
  const apply = (actions: readonly Action[]) => {
    for (const a of actions) if (a.type === 'transition') pending.push(a.transition);
  };
  const feed = (ev: UntimedEvent) => {
    const r = stepFarm(c, { ...ev, now: (now += 10) } as CoreEvent);
    c = r.state;
    if (r.reply) replies.push(r.reply);
    apply(r.actions);
    while (pending.length > 0) {
      const t = pending.shift()!;
      const bad = t.steps.some((s) => s.type === 'script' && s.script === failScript && !s.stop);
      if (bad) pending.length = 0;
      else done.push(t);
      const r2 = stepFarm(c, { type: 'transitionDone', id: t.id, ok: !bad, detail: bad ? `${failScript} exited 1` : '', now: (now += 10) });
      c = r2.state;
      apply(r2.actions);
    }
  };
  for (const e of events) feed(e);
  return { core: c, done, replies };
}

const down = { type: 'checker' as const, checker: 'web', up: false, reason: 'connection refused', maxRestarts: 3, restartWindow: 60_000 };

describe('farm core', () => {
  it('boots into UP: prestart, then start_both and joining the farm', () => {
    const r = drive(initFarm({ self: 'node1' }), [{ type: 'boot' }]);
    expect(r.core.state).toBe('UP');
    expect(r.done.flatMap((t) => t.steps.map((s) => (s.type === 'script' ? s.script : `${s.type}:${(s as { op: string }).op}`)))).toEqual([
      'prestart', 'replication:idle', 'start_both', 'farm:join',
    ]);
  });

  it('a checker down with stopstart leaves the farm until it is up again', () => {
    const r = drive(initFarm({ self: 'node1' }), [{ type: 'boot' }, { ...down, onFailure: 'stopstart' }]);
    expect(r.core.state).toBe('WAIT');
    expect(r.done.at(-1)!.steps).toContainEqual({ type: 'farm', op: 'leave' });
    const back = drive(r.core, [{ ...down, up: true, onFailure: 'stopstart' }]);
    expect(back.core.state).toBe('UP');
  });

  it('restart in place, then the fourth failure in a minute leaves the farm', () => {
    const r = drive(initFarm({ self: 'node1' }), [{ type: 'boot' }, { ...down, onFailure: 'restart' }, { ...down, onFailure: 'restart' }, { ...down, onFailure: 'restart' }]);
    expect(r.core.state).toBe('UP');
    expect(r.done.filter((t) => t.reason.startsWith('restart in place')).length).toBe(3);
    const r4 = drive(r.core, [{ ...down, onFailure: 'restart' }]);
    expect(r4.core.state).toBe('WAIT');
  });

  it('a failing start_both keeps the node out of the farm', () => {
    const r = drive(initFarm({ self: 'node1' }), [{ type: 'boot' }], 'start_both');
    expect(r.core.state).toBe('WAIT');
    expect(r.done.some((t) => t.steps.some((s) => s.type === 'farm' && s.op === 'join'))).toBe(false);
  });

  it('refuses mirror-only commands with a reason', () => {
    const r = drive(initFarm({ self: 'node1' }), [{ type: 'boot' }, { type: 'command', command: { type: 'swap' } }]);
    expect(r.replies[0]).toEqual({ ok: false, message: expect.stringMatching(/farm module has no primary/) });
  });

  it('stop then start', () => {
    const r = drive(initFarm({ self: 'node1' }), [{ type: 'boot' }, { type: 'command', command: { type: 'stop' } }]);
    expect(r.core.state).toBe('STOP');
    expect(r.core.p.stopped).toBe(true);
    const s = drive(r.core, [{ type: 'command', command: { type: 'start' } }]);
    expect(s.core.state).toBe('UP');
  });
});
