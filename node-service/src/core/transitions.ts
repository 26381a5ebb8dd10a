import { type Action, type CoreEvent, FRESH, type ModuleState, type OnFailure, type Persisted, type Step, type Transition } from './types.ts';

/**
 * The orderings of entering and leaving a role, in one place (keepalived's become_master/leave_master):
 * becoming primary takes the data first, then the address, then starts the application; leaving does
 * the reverse, so clients never reach an application whose data is read-only.
 */
export function enterPrimarySteps(from: ModuleState, opts: { fullSync?: boolean }): Step[] {
  const steps: Step[] = [];
  if (from === 'SECOND') steps.push({ type: 'script', script: 'stop_second', stop: true });
  steps.push({ type: 'replication', op: 'primary', fullSync: opts.fullSync });
  steps.push({ type: 'vip', op: 'add' });
  steps.push({ type: 'script', script: 'start_prim', stop: false });
  return steps;
}

export function leavePrimarySteps(): Step[] {
  return [
    { type: 'script', script: 'stop_prim', stop: true },
    { type: 'vip', op: 'remove' },
  ];
}

/** A primary cut off from everything gives the address up first: the secondary takes over after
 *  `grace`, and the application cannot be reached from here anyway. */
export function stepDownIsolatedSteps(): Step[] {
  return [{ type: 'vip', op: 'remove' }, { type: 'script', script: 'stop_prim', stop: true }, { type: 'replication', op: 'idle' }];
}

/** A primary whose arbiter lease runs out stops serving in the order that fences it soonest: the
 *  address first (clients stop arriving), then the view turns read-only (a write still in flight
 *  fails instead of diverging), then the application stops. All must be done within the margin. */
export function leaseLostSteps(): Step[] {
  return [{ type: 'vip', op: 'remove' }, { type: 'replication', op: 'idle' }, { type: 'script', script: 'stop_prim', stop: true }];
}

export function enterSecondarySteps(from: ModuleState, opts: { fullSync?: boolean; divergent?: boolean }): Step[] {
  const steps: Step[] = from === 'ALONE' || from === 'PRIM' ? leavePrimarySteps() : [];
  if (from === 'SECOND') steps.push({ type: 'script', script: 'stop_second', stop: true });
  steps.push({ type: 'replication', op: 'secondary', fullSync: opts.fullSync, divergent: opts.divergent });
  steps.push({ type: 'script', script: 'start_second', stop: false });
  return steps;
}

export function enterWaitSteps(from: ModuleState): Step[] {
  if (from === 'ALONE' || from === 'PRIM') return [...leavePrimarySteps(), { type: 'replication', op: 'idle' }];
  if (from === 'SECOND') return [{ type: 'script', script: 'stop_second', stop: true }, { type: 'replication', op: 'idle' }];
  if (from === 'UP') return [{ type: 'farm', op: 'leave' }, { type: 'script', script: 'stop_both', stop: true }];
  if (from === 'STOP') return [{ type: 'script', script: 'prestart', stop: false }, { type: 'replication', op: 'idle' }];
  return [];
}

export function enterStopSteps(from: ModuleState): Step[] {
  const steps: Step[] = [];
  if (from === 'ALONE' || from === 'PRIM') steps.push(...leavePrimarySteps());
  if (from === 'SECOND') steps.push({ type: 'script', script: 'stop_second', stop: true });
  if (from === 'UP') steps.push({ type: 'farm', op: 'leave' }, { type: 'script', script: 'stop_both', stop: true });
  steps.push({ type: 'replication', op: 'stop' });
  steps.push({ type: 'script', script: 'poststop', stop: true });
  return steps;
}

export function restartInPlaceSteps(state: ModuleState): Step[] {
  if (state === 'ALONE' || state === 'PRIM') {
    return [{ type: 'script', script: 'stop_prim', stop: true }, { type: 'script', script: 'start_prim', stop: false }];
  }
  if (state === 'SECOND') return [{ type: 'script', script: 'stop_second', stop: true }, { type: 'script', script: 'start_second', stop: false }];
  if (state === 'UP') return [{ type: 'script', script: 'stop_both', stop: true }, { type: 'script', script: 'start_both', stop: false }];
  return [];
}

/** SafeKit's maxloop: at most `count` automatic failovers or restarts within `windowMs`. */
export interface FailoverLimit {
  readonly count: number;
  readonly windowMs: number;
}

export const DEFAULT_MAX_FAILOVERS: FailoverLimit = { count: 3, windowMs: 24 * 3_600_000 };

/** Shared bookkeeping of both modes' cores. */
export interface Base {
  readonly state: ModuleState;
  /** where the queued transitions lead; equal to state when idle */
  readonly target: ModuleState;
  readonly busy: number;
  readonly nextId: number;
  /** transitions with a lower id were dropped by a forcestop: their transitionDone is ignored */
  readonly liveFrom: number;
  readonly p: Persisted;
  readonly onStartFailure: 'wait' | 'stop' | 'failover';
  readonly maxFailovers: FailoverLimit;
  /** when the automatic failovers and restarts counted against maxFailovers happened (in memory) */
  readonly failovers: readonly number[];
}

/** The bookkeeping every core starts with: stopped, nothing queued, the persisted decision state. */
export function initBase(i: { onStartFailure?: 'wait' | 'stop' | 'failover'; persisted?: Persisted; maxFailovers?: FailoverLimit }): Base & { now: number; waitingReason: string; restarts: Record<string, number[]>; down: Record<string, never> } {
  return { onStartFailure: i.onStartFailure ?? 'wait', state: 'STOP', target: 'STOP', busy: 0, nextId: 1, liveFrom: 1, p: i.persisted ?? FRESH, maxFailovers: i.maxFailovers ?? DEFAULT_MAX_FAILOVERS, failovers: [], now: 0, waitingReason: '', restarts: {}, down: {} };
}

/** A transitionDone that belongs to a transition a forcestop dropped. */
export const isDropped = (c: Base, id: number): boolean => id < c.liveFrom;

/**
 * max_failovers (SafeKit's maxloop): an automatic failover or restart of the module is about to
 * happen at `now`. Counts it, or, when `count` of them already happened within the window, refuses
 * it: the caller stops the module (maxLoopStop) instead of bouncing it between nodes for ever.
 */
export function countFailover<S extends Base>(c: S, now: number, what: string): { ok: true; next: S } | { ok: false; reason: string } {
  const recent = c.failovers.filter((t) => now - t < c.maxFailovers.windowMs);
  if (recent.length >= c.maxFailovers.count) {
    return { ok: false, reason: `max_failovers reached: ${recent.length} automatic failovers or restarts within ${formatWindow(c.maxFailovers.windowMs)}; stopping the module instead of ${what}. Find the cause, then run vigil start` };
  }
  return { ok: true, next: { ...c, failovers: [...recent, now] } };
}

/** The module stops for good (until `vigil start`) because max_failovers was reached. */
export function maxLoopStop<S extends Base>(c: S, reason: string): { state: S; actions: Action[] } {
  const p: Persisted = { ...c.p, stopped: true, lastState: c.target === 'STOP' || c.target === 'WAIT' ? c.p.lastState : c.target };
  const r = queue({ ...c, p }, 'STOP', reason, enterStopSteps(c.target), [persist(p), { type: 'log', level: 'error', msg: reason }]);
  return { state: r.state, actions: [...r.actions, { type: 'publish' }] };
}

function formatWindow(ms: number): string {
  if (ms % 3_600_000 === 0) return `${ms / 3_600_000}h`;
  if (ms % 60_000 === 0) return `${ms / 60_000}m`;
  return `${ms / 1000}s`;
}

/**
 * forcestop: whatever runs is abandoned (the daemon kills the running script) and the module stops
 * without running any script: the address is given up and replication (or farm membership) stopped,
 * whatever state the abandoned transition had reached. The application itself is left to the operator.
 */
export function forceStop<S extends Base>(c: S, mode: 'mirror' | 'farm'): { state: S; actions: Action[] } {
  const keep = c.state === 'STOP' || c.state === 'WAIT' ? c.p.lastState : c.state;
  const p: Persisted = { ...c.p, stopped: true, lastState: keep };
  const steps: Step[] = mode === 'farm' ? [{ type: 'farm', op: 'leave' }] : [{ type: 'vip', op: 'remove' }, { type: 'replication', op: 'stop' }];
  const cleared: S = { ...c, p, busy: 0, liveFrom: c.nextId, target: c.state };
  const r = queue(cleared, 'STOP', 'operator forcestop: running scripts killed, no script run', steps, [persist(p), { type: 'abort' }]);
  return { state: r.state, actions: [...r.actions, { type: 'publish' }] };
}

/** stopstart: a full stop (scripts run), then a start from STOP, queued as two transitions. */
export function stopStart<S extends Base>(c: S, hold: (s: S) => S): { state: S; actions: Action[] } {
  const p: Persisted = { ...c.p, lastState: c.target };
  const stop = queue({ ...c, p }, 'STOP', 'operator stopstart: stopping', enterStopSteps(c.target), [persist(p)]);
  const start = queue(hold(stop.state), 'WAIT', 'operator stopstart: starting again', enterWaitSteps('STOP'));
  return { state: start.state, actions: [...stop.actions, ...start.actions, { type: 'publish' }] };
}

export function queue<S extends Base>(core: S, to: ModuleState, reason: string, steps: Step[], extra: Action[] = []): { state: S; actions: Action[] } {
  const transition: Transition = { id: core.nextId, from: core.target, to, reason, steps };
  return {
    state: { ...core, target: to, busy: core.busy + 1, nextId: core.nextId + 1 },
    actions: [...extra, { type: 'transition', transition }],
  };
}

export function persist(p: Persisted): Action {
  return { type: 'persist', data: p };
}

type CheckerEvent = Extract<CoreEvent, { type: 'checker' }>;

const DEFAULT_MAX_RESTARTS = 3;
const DEFAULT_RESTART_WINDOW_MS = 60_000;

/**
 * A checker went down: the log line, and the policy to apply. `restart` escalates to `stopstart` once
 * the checker failed more than max_restarts times within restart_window, so a crashing application
 * fails over instead of looping; the restart times are kept in `restarts`.
 */
export function checkerDown<S extends { readonly restarts: Readonly<Record<string, readonly number[]>> }>(
  c: S,
  ev: CheckerEvent,
  serving: boolean,
): { next: S; policy: OnFailure; log: Action } {
  const log: Action = { type: 'log', level: 'warn', msg: `checker ${ev.checker} down: ${ev.reason} (on_failure: ${ev.onFailure})` };
  // An application that is not started yet (WAIT, SECOND) is not a failure to count towards max_restarts.
  if (ev.onFailure !== 'restart' || !serving) return { next: c, policy: ev.onFailure, log };
  const window = ev.restartWindow ?? DEFAULT_RESTART_WINDOW_MS;
  const recent = [...(c.restarts[ev.checker] ?? []).filter((t) => ev.now - t < window), ev.now];
  const next = { ...c, restarts: { ...c.restarts, [ev.checker]: recent } };
  return { next, policy: recent.length > (ev.maxRestarts ?? DEFAULT_MAX_RESTARTS) ? 'stopstart' : 'restart', log };
}

/** A checker came back up: it no longer blocks the module. */
export function checkerUp<S extends { readonly down: Readonly<Record<string, OnFailure>> }>(c: S, ev: CheckerEvent): { next: S; log: Action } {
  const { [ev.checker]: _gone, ...down } = c.down;
  return { next: { ...c, down }, log: { type: 'log', level: 'info', msg: `checker ${ev.checker} up: ${ev.reason}` } };
}
