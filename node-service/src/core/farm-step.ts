import { type Base, checkerDown, checkerUp, countFailover, enterStopSteps, type FailoverLimit, forceStop, initBase, enterWaitSteps, isDropped, maxLoopStop, persist, queue, restartInPlaceSteps, stopStart } from './transitions.ts';
import { type Action, type CoreEvent, FRESH, type OnFailure, type Persisted, type StepResult } from './types.ts';

/**
 * The farm module's decision state: STOP, WAIT, UP. Membership (who is UP) and the bucket plan are
 * computed by the daemon from heartbeats; this core only decides whether this node serves.
 */
export interface FarmCore extends Base {
  readonly mode: 'farm';
  readonly self: string;
  readonly now: number;
  readonly down: Readonly<Record<string, OnFailure>>;
  readonly restarts: Readonly<Record<string, readonly number[]>>;
  readonly waitingReason: string;
}

export function initFarm(i: { self: string; onStartFailure?: 'wait' | 'stop' | 'failover'; persisted?: Persisted; maxFailovers?: FailoverLimit }): FarmCore {
  return { ...initBase(i), mode: 'farm', self: i.self };
}

type R = StepResult<FarmCore>;

export function stepFarm(core: FarmCore, ev: CoreEvent): R {
  const c: FarmCore = { ...core, now: ev.now };
  switch (ev.type) {
    case 'boot': {
      if (c.p.stopped) return { state: c, actions: [{ type: 'log', level: 'info', msg: 'module was stopped by an operator: staying STOP (vigil start to start it)' }] };
      const r = queue(c, 'WAIT', 'daemon start', enterWaitSteps('STOP'));
      return { state: r.state, actions: [...r.actions, { type: 'publish' }] };
    }
    case 'tick':
    case 'peer':
    case 'peerLost':
    case 'replication':
    case 'witness':
    case 'lease':
      return settle(c, []);
    case 'transitionDone': {
      if (isDropped(c, ev.id)) return { state: c, actions: [] };
      const done = { ...c, busy: Math.max(0, c.busy - 1) };
      if (ev.ok) return settle({ ...done, state: done.busy === 0 ? done.target : done.state }, [{ type: 'publish' }]);
      const failed = c.target;
      const cleared: FarmCore = { ...done, busy: 0, state: failed, target: failed, down: { ...done.down, 'start script': 'wait' } };
      const log: Action = { type: 'log', level: 'error', msg: `transition to ${failed} failed: ${ev.detail}` };
      if (c.onStartFailure === 'stop') {
        const p = { ...cleared.p, stopped: true };
        const r = queue({ ...cleared, p }, 'STOP', `start failed (${ev.detail}); on_start_failure: stop`, enterStopSteps(failed), [persist(p)]);
        return { state: r.state, actions: [log, ...r.actions] };
      }
      const r = queue(cleared, 'WAIT', `start failed (${ev.detail}): leaving the farm until an operator restarts the module`, enterWaitSteps(failed));
      return { state: r.state, actions: [log, ...r.actions, { type: 'publish' }] };
    }
    case 'checker': {
      if (ev.up) {
        const { next, log } = checkerUp(c, ev);
        return settle(next, [log]);
      }
      const { next, policy, log } = checkerDown(c, ev, c.target === 'UP');
      if (policy === 'restart') {
        if (next.target !== 'UP') return { state: next, actions: [log] };
        const r = queue(next, 'UP', `restart in place: checker ${ev.checker} down`, restartInPlaceSteps('UP'));
        return { state: r.state, actions: [log, ...r.actions] };
      }
      // Any other policy: this node leaves the farm (its buckets move) until the checker is up again.
      // Leaving while serving is an automatic restart of the module: counted against max_failovers.
      if (next.target === 'UP' && !next.down[ev.checker]) {
        const n = countFailover(next, c.now, 'leaving the farm');
        if (!n.ok) {
          const r = maxLoopStop(next, n.reason);
          return { state: r.state, actions: [log, ...r.actions] };
        }
        return settle({ ...n.next, down: { ...n.next.down, [ev.checker]: policy } }, [log]);
      }
      return settle({ ...next, down: { ...next.down, [ev.checker]: policy } }, [log]);
    }
    case 'command': {
      const cmd = ev.command;
      if (cmd.type === 'prim' || cmd.type === 'second' || cmd.type === 'swap' || cmd.type === 'failover') {
        return { state: c, actions: [], reply: { ok: false, message: `a farm module has no primary: ${cmd.type} applies to mirror modules` } };
      }
      if (cmd.type === 'forcestop') {
        if (c.target === 'STOP' && c.busy === 0) return { state: c, actions: [], reply: { ok: false, message: 'already stopped' } };
        return { ...forceStop(c, 'farm'), reply: { ok: true, message: 'force-stopping (no script runs)' } };
      }
      if (cmd.type === 'stopstart') {
        if (c.p.stopped || c.target === 'STOP') return { state: c, actions: [], reply: { ok: false, message: 'the module is stopped: run vigil start' } };
        if (c.busy > 0) return { state: c, actions: [], reply: { ok: false, message: `a transition to ${c.target} is in progress; retry when it is done` } };
        const { ['start script']: _cleared, ...down } = c.down;
        const r = stopStart({ ...c, down }, (s) => s);
        return { ...settle(r.state, r.actions), reply: { ok: true, message: 'stopping and starting again' } };
      }
      if (cmd.type === 'shutdown') {
        if (c.target === 'STOP') return { state: c, actions: [], reply: { ok: true, message: 'already stopped' } };
        const r = queue(c, 'STOP', 'daemon shutdown', enterStopSteps(c.target));
        return { ...r, reply: { ok: true, message: 'stopping' } };
      }
      if (cmd.type === 'stop') {
        if (c.p.stopped && c.target === 'STOP') return { state: c, actions: [], reply: { ok: false, message: 'already stopped' } };
        const p = { ...c.p, stopped: true };
        const r = queue({ ...c, p }, 'STOP', 'operator stop', enterStopSteps(c.target), [persist(p)]);
        return { ...r, reply: { ok: true, message: 'stopping' } };
      }
      if (cmd.type === 'start' || (cmd.type === 'restart' && c.target === 'STOP')) {
        if (!c.p.stopped && c.target !== 'STOP') return { state: c, actions: [], reply: { ok: false, message: `already started (${c.target})` } };
        const p = { ...c.p, stopped: false };
        const { ['start script']: _cleared, ...down } = c.down;
        const r = queue({ ...c, p, down }, 'WAIT', 'operator start', enterWaitSteps('STOP'), [persist(p)]);
        return { ...settle(r.state, r.actions), reply: { ok: true, message: 'starting' } };
      }
      if (c.busy > 0) return { state: c, actions: [], reply: { ok: false, message: `a transition to ${c.target} is in progress; retry when it is done` } };
      if (c.target === 'WAIT' && c.down['start script']) {
        const { ['start script']: _cleared, ...down } = c.down;
        return { ...settle({ ...c, down }, []), reply: { ok: true, message: 'retrying the start' } };
      }
      const r = queue(c, c.target, 'operator restart: application restarted in place', restartInPlaceSteps(c.target));
      return { ...r, reply: { ok: true, message: 'restarting the application in place' } };
    }
  }
}

function settle(c: FarmCore, pre: Action[]): R {
  if (c.busy > 0 || c.target === 'STOP') return { state: c, actions: pre };
  const blockers = Object.keys(c.down);
  if (c.target === 'WAIT' && blockers.length === 0) {
    const r = queue({ ...c, waitingReason: '' }, 'UP', 'joining the farm', [
      { type: 'script', script: 'start_both', stop: false },
      { type: 'farm', op: 'join' },
    ]);
    return { state: r.state, actions: [...pre, ...r.actions, { type: 'publish' }] };
  }
  if (c.target === 'UP' && blockers.length > 0) {
    const reason = `leaving the farm: ${blockers.join(', ')} down`;
    const r = queue({ ...c, waitingReason: reason }, 'WAIT', reason, enterWaitSteps('UP'));
    return { state: r.state, actions: [...pre, ...r.actions, { type: 'publish' }] };
  }
  return { state: c, actions: pre };
}
