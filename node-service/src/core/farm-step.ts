import { type Base, checkerDown, checkerUp, countFailover, enterStopSteps, type FailoverLimit, forceStop, initBase, enterWaitSteps, isDropped, maxLoopStop, persist, queue, restartInPlaceSteps, stopStart } from './transitions.ts';
import { alivePeers, DEFAULT_LIVENESS, heard, initLiveness, type Liveness, type LivenessConfig, livenessBoot, livenessTick, newsAction, type PeerNews } from './liveness.ts';
import { type Action, type CoreEvent, type OnFailure, type Persisted, type StepResult } from './types.ts';

/**
 * The farm module's decision state: STOP, WAIT, UP, and the membership: who serves, from the
 * heartbeats heard (core/liveness.ts) and the link of the VIP interfaces. The edge (farm/port.ts)
 * turns the membership into bucket plans.
 */
export interface FarmCore extends Base {
  readonly mode: 'farm';
  readonly self: string;
  /** every node of the module, self included */
  readonly nodes: readonly string[];
  readonly now: number;
  readonly down: Readonly<Record<string, OnFailure>>;
  readonly restarts: Readonly<Record<string, readonly number[]>>;
  readonly waitingReason: string;
  readonly live: Liveness;
  /** the VIP interfaces' link as last reported; `backAt`: when it came back */
  readonly carrier: { readonly up: boolean; readonly backAt?: number };
  /** the membership last handed to the edge */
  readonly members: readonly string[];
}

export function initFarm(i: { self: string; nodes?: readonly string[]; heartbeat?: LivenessConfig; onStartFailure?: 'wait' | 'stop' | 'failover'; persisted?: Persisted; maxFailovers?: FailoverLimit }): FarmCore {
  const nodes = i.nodes ?? [i.self];
  return { ...initBase(i), mode: 'farm', self: i.self, nodes, live: initLiveness(nodes.filter((n) => n !== i.self), i.heartbeat ?? DEFAULT_LIVENESS), carrier: { up: true }, members: [] };
}

/**
 * Who serves now: the peers alive and UP, and this node when it is UP. Alone with the link down,
 * this node is the one cut off, not the last survivor: it serves nothing, so that when the link
 * returns it does not answer the others' clients before it hears them; with the link back, it waits
 * one heartbeat timeout for them before concluding it is alone (then takes its buckets back after the
 * edge's grace, like a node that starts).
 */
export function farmMembers(c: FarmCore): string[] {
  const alive = alivePeers(c.live).filter((v) => v.state === 'UP').map((v) => v.node);
  if (c.state === 'UP') alive.push(c.self);
  const alone = alive.length === 1 && alive[0] === c.self && c.nodes.length > 1;
  const settling = c.carrier.backAt !== undefined && c.now - c.carrier.backAt < c.live.cfg.timeoutMs;
  return alone && (!c.carrier.up || settling) ? [] : alive.sort();
}

/** Hands a changed membership to the edge (once per change, with why when this node serves nothing). */
function withMembers(r: R): R {
  const c = r.state;
  const members = farmMembers(c);
  if (members.join() === c.members.join()) return r;
  const cutOff = members.length === 0 && c.state === 'UP';
  const log: Action[] = cutOff && !c.carrier.up ? [{ type: 'log', level: 'warn', msg: 'alone and the VIP interface has no link: serving nothing until the link or a peer returns' }] : [];
  return { ...r, state: { ...c, members }, actions: [...r.actions, ...log, { type: 'membership', nodes: members }] };
}

type R = StepResult<FarmCore>;

export function stepFarm(core: FarmCore, ev: CoreEvent): R {
  return withMembers(decideFarm({ ...core, now: ev.now }, ev));
}

/** Liveness news for the edge (metrics, the log); the membership follows in withMembers. */
const newsActions = (news: readonly PeerNews[]): Action[] => news.map(newsAction);

function decideFarm(c: FarmCore, ev: CoreEvent): R {
  switch (ev.type) {
    case 'heard': {
      const r = heard(c.live, ev.view, ev.now);
      return { state: { ...c, live: r.l }, actions: newsActions(r.news) };
    }
    case 'carrier':
      return { state: { ...c, carrier: ev.up ? { up: true, backAt: c.carrier.up ? c.carrier.backAt : ev.now } : { up: false } }, actions: [] };
    case 'boot': {
      c = { ...c, live: livenessBoot(c.live, ev.now) };
      if (c.p.stopped) return { state: c, actions: [{ type: 'log', level: 'info', msg: 'module was stopped by an operator: staying STOP (vigil start to start it)' }] };
      const r = queue(c, 'WAIT', 'daemon start', enterWaitSteps('STOP'));
      return { state: r.state, actions: [...r.actions, { type: 'publish' }] };
    }
    case 'tick': {
      const r = livenessTick(c.live, ev.now);
      return settle({ ...c, live: r.l }, newsActions(r.news));
    }
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
