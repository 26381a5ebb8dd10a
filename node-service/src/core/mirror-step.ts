import {
  type Base,
  checkerDown,
  checkerUp,
  countFailover,
  type FailoverLimit,
  forceStop,
  isDropped,
  maxLoopStop,
  stopStart,
  enterPrimarySteps,
  enterSecondarySteps,
  enterStopSteps,
  enterWaitSteps,
  persist,
  queue,
  initBase,
  restartInPlaceSteps,
  stepDownIsolatedSteps,
  leaseLostSteps,
} from './transitions.ts';
import { heard, DEFAULT_LIVENESS, type Liveness, type LivenessConfig, livenessBoot, livenessTick, initLiveness, newsAction, type PeerNews } from './liveness.ts';
import { claimDue, claimSent, leaseAnswered, leaseDropped, leaseHeld, type LeaseAnswer, type LeaseState, type LeaseTiming, leaseTiming, leaseWaitReason, NO_LEASE } from './lease.ts';
import { type Action, type CoreEvent, FRESH, isPrimary, type ModuleState, type OnFailure, type Persisted, type PeerView, type StepResult } from './types.ts';

/**
 * The mirror module's decision state. Everything the decisions need is here, and nothing else:
 * no clock, socket or file. The daemon feeds events and performs the returned actions.
 */
export interface MirrorCore extends Base {
  readonly mode: 'mirror';
  readonly self: string;
  readonly peerName: string;
  readonly defaultPrimary?: string;
  readonly witnessConfigured: boolean;
  readonly witnessGraceMs: number;
  readonly now: number;
  readonly peer?: PeerView;
  readonly peerAlive: boolean;
  /** the heartbeat monitor declared the peer lost (or never saw it within timeout of boot) */
  readonly peerGone: boolean;
  /** we watched the peer die while our copy was in sync (in memory only: a restarted node cannot know
   *  what the peer did while it was down) */
  readonly lostWhileInSync: boolean;
  /** when the heartbeat monitor declared the peer lost (the grace for a cut-off primary runs from it) */
  readonly peerLostAt?: number;
  /** primary: the secondary is a synchronous copy; secondary: our resync is complete */
  readonly synced: boolean;
  /** secondary: the resync completed before the returning primary's heartbeats were believed (the
   *  monitor waits a pulse for them): our generation is the one its next heartbeat advertises */
  readonly syncAwaitsPeer?: boolean;
  /** we are releasing primary to the peer (advertised in heartbeats) */
  readonly handover: boolean;
  /** we ask the primary to swap (advertised) */
  readonly swapRequest: boolean;
  /** since when both nodes are settled SECOND with nobody handing over (see decide: SECOND) */
  readonly bothSecondSince?: number;
  /** do not promote on our own (operator `second`, stopstart, failed start) until the peer is primary or gone */
  readonly hold: boolean;
  /** checkers that are down and forbid being primary */
  readonly down: Readonly<Record<string, OnFailure>>;
  readonly restarts: Readonly<Record<string, readonly number[]>>;
  readonly witnessReachable?: boolean;
  readonly witnessUnreachableSince?: number;
  /** since when the witnesses answer without a break (heartbeats from a live peer arrive well within it) */
  readonly witnessReachableSince?: number;
  readonly fullSyncNext: boolean;
  /** the last "waiting because ..." explanation, so it is logged once rather than on every tick */
  readonly waitingReason: string;
  /** config `failover`: take over when the peer is lost (the operator's `vigil failover` overrides it, in p) */
  readonly failoverConfig: boolean;
  /** config `swap_back`: hand primary back to default_primary once it is back and in sync */
  readonly swapBack: boolean;
  /** we became primary because the peer failed or stopped (not by an operator or a handover): swap_back applies */
  readonly tookOver: boolean;
  /** config `arbiter`: serve only while holding the lease (core/lease.ts) */
  readonly arbiter?: LeaseTiming;
  readonly lease: LeaseState;
  /** who is alive, from the heartbeats heard (core/liveness.ts) */
  readonly live: Liveness;
  /** why this node wants the lease now (it would become primary); recomputed on every decision */
  readonly leaseWant?: string;
  /** an operator's `prim` that waits for the lease: it is carried out once the lease is held */
  readonly operatorPrim?: { readonly reason: string; readonly tookOver: boolean; readonly force: boolean };
  /** what the edge was last told (durableAlone action): writes may be acknowledged without the secondary */
  readonly durableAlone: boolean;
  /** and until when (the lease's serveUntil) */
  readonly durableUntil: number;
}

export interface MirrorInit {
  readonly self: string;
  readonly peerName: string;
  readonly defaultPrimary?: string;
  readonly witnessConfigured?: boolean;
  readonly witnessGraceMs?: number;
  readonly onStartFailure?: 'wait' | 'stop' | 'failover';
  readonly persisted?: Persisted;
  /** @default true */
  readonly failover?: boolean;
  /** @default false */
  readonly swapBack?: boolean;
  /** @default 3 within 24 h */
  readonly maxFailovers?: FailoverLimit;
  /** the `arbiter:` lease time to live, when one is configured */
  readonly arbiterTtlMs?: number;
  /** heartbeat pulse and timeout @default 100 ms / 1 s */
  readonly heartbeat?: LivenessConfig;
}

export function initMirror(i: MirrorInit): MirrorCore {
  return {
    mode: 'mirror',
    self: i.self,
    peerName: i.peerName,
    defaultPrimary: i.defaultPrimary,
    witnessConfigured: i.witnessConfigured ?? false,
    witnessGraceMs: i.witnessGraceMs ?? 700,
    ...initBase(i),
    peerAlive: false,
    peerGone: false,
    lostWhileInSync: false,
    synced: false,
    handover: false,
    swapRequest: false,
    hold: false,
    fullSyncNext: false,
    failoverConfig: i.failover ?? true,
    swapBack: i.swapBack ?? false,
    tookOver: false,
    arbiter: i.arbiterTtlMs === undefined ? undefined : leaseTiming(i.arbiterTtlMs),
    lease: NO_LEASE,
    durableAlone: true,
    durableUntil: Infinity,
    live: initLiveness([i.peerName], i.heartbeat ?? DEFAULT_LIVENESS),
  };
}

/** Automatic failover is allowed: the operator's `vigil failover on|off` wins over the config. */
export const failoverEnabled = (c: MirrorCore): boolean => c.p.failover ?? c.failoverConfig;

type R = StepResult<MirrorCore>;

export function stepMirror(core: MirrorCore, ev: CoreEvent): R {
  const c: MirrorCore = { ...core, now: ev.now };
  switch (ev.type) {
    case 'boot':
      return bootMirror({ ...c, live: livenessBoot(c.live, ev.now) }, ev.now);
    case 'heard': {
      const r = heard(c.live, ev.view, ev.now);
      return onNews({ ...c, live: r.l }, r.news);
    }
    case 'tick': {
      const r = livenessTick(c.live, ev.now);
      return r.news.length > 0 ? onNews({ ...c, live: r.l }, r.news) : settle({ ...c, live: r.l }, []);
    }
    case 'carrier':
      return { state: c, actions: [] };
    case 'peer':
      return onPeer(c, ev.peer);
    case 'peerLost':
      return onPeerLost(c);
    case 'replication':
      return onReplication(c, ev.status, ev.reason);
    case 'transitionDone':
      if (isDropped(c, ev.id)) return { state: c, actions: [] };
      return onTransitionDone(c, ev.ok, ev.detail);
    case 'checker':
      return onChecker(c, ev);
    case 'witness':
      return settle(
        {
          ...c,
          witnessReachable: ev.reachable,
          witnessUnreachableSince: ev.reachable ? undefined : (c.witnessUnreachableSince ?? ev.now),
          witnessReachableSince: ev.reachable ? (c.witnessReachable === true ? c.witnessReachableSince : ev.now) : undefined,
        },
        [],
      );
    case 'command':
      return onCommand(c, ev.command);
    case 'lease':
      return onLease(c, ev);
  }
}

/** The arbiter answered a claim. A lease held while nothing wants it is given back by settle. */
function onLease(c: MirrorCore, a: LeaseAnswer): R {
  if (!c.arbiter) return { state: c, actions: [] };
  const lease = leaseAnswered(c.lease, a, c.arbiter, c.now);
  const actions: Action[] = [];
  if (a.outcome !== c.lease.view) {
    if (a.outcome === 'held') actions.push({ type: 'log', level: 'info', msg: 'arbiter: lease held' });
    else if (isPrimary(c.target)) actions.push({ type: 'log', level: 'warn', msg: `arbiter: ${leaseWaitReason(lease, c.arbiter, c.p.gen)}; stepping down ${Math.max(0, Math.round(lease.serveUntil - c.now))} ms before the lease can expire` });
  }
  if (a.outcome === 'held' && c.operatorPrim?.force) return settle({ ...c, lease, operatorPrim: { ...c.operatorPrim, force: false } }, actions);
  return settle({ ...c, lease }, [...actions, ...(a.outcome !== c.lease.view ? [{ type: 'publish' } as const] : [])]);
}

/** What liveness decided, in order, each also told to the edge (replication, metrics, the log). */
function onNews(c: MirrorCore, news: readonly PeerNews[]): R {
  let state = c;
  const actions: Action[] = [];
  for (const n of news) {
    actions.push(newsAction(n));
    const r = n.type === 'peer' ? onPeer(state, n.view) : onPeerLost(state);
    state = r.state;
    actions.push(...r.actions);
  }
  return { state, actions };
}

function onPeerLost(c: MirrorCore): R {
  const lostWhileInSync = c.peerAlive && c.p.inSync && !isPrimary(c.target);
  // Witness answers from before this silence say nothing about it: ask again.
  const next = { ...c, peerAlive: false, peerGone: true, peerLostAt: c.now, witnessReachable: undefined, witnessUnreachableSince: undefined, witnessReachableSince: undefined, lostWhileInSync, handover: false, swapRequest: false, hold: false, synced: isPrimary(c.target) ? false : c.synced };
  return settle(next, [{ type: 'witness', poll: c.witnessConfigured }, { type: 'publish' }]);
}

function onPeer(c: MirrorCore, peer: PeerView): R {
  const actions: Action[] = [];
  const wasGone = !c.peerAlive;
  let next: MirrorCore = { ...c, peer, peerAlive: true, peerGone: false, lostWhileInSync: false };
  if (wasGone && c.witnessConfigured) actions.push({ type: 'witness', poll: false });
  if (peerIsPrimary(peer)) next = { ...next, hold: false, handover: false };
  if (!isPrimary(peer.state) || peer.state !== 'PRIM') next = { ...next, swapRequest: next.swapRequest && isPrimary(peer.state) };
  if (c.target === 'SECOND' && c.syncAwaitsPeer && peerIsPrimary(peer)) {
    const p: Persisted = { ...next.p, inSync: true, gen: Math.max(next.p.gen, peer.gen), lastState: 'SECOND' };
    next = { ...next, p, syncAwaitsPeer: false };
    actions.push(persist(p), { type: 'publish' }, { type: 'log', level: 'info', msg: 'resync complete: in sync with the primary' });
  }
  // A secondary whose primary moved on without it (ALONE, newer generation) no longer holds a copy.
  if (c.target === 'SECOND' && next.p.inSync && peer.gen > next.p.gen) {
    next = { ...next, synced: false, p: { ...next.p, inSync: false } };
    actions.push(persist(next.p), { type: 'publish' });
    // The stream may have outlived the silence (heartbeats lost, replication not): then nothing ends it
    // and no resync ever runs (found by the soak). Entering the role again starts the stream over: the
    // primary reconnects and compares checksums.
    if (c.busy === 0 && c.state === 'SECOND') {
      const r = queue(next, 'SECOND', `${peer.node} moved on to generation ${peer.gen}: resync`, [{ type: 'replication', op: 'secondary', fullSync: false, divergent: false }]);
      next = r.state;
      actions.push(...r.actions);
    }
  }
  return settle(next, actions);
}

function onReplication(c: MirrorCore, status: 'synced' | 'lost', reason: string): R {
  if (status === 'synced') {
    if (c.target === 'SECOND') {
      // c.peer is what the primary was before it went silent: its generation may since have moved on
      if (!c.peerAlive) return settle({ ...c, synced: true, syncAwaitsPeer: true }, [{ type: 'log', level: 'info', msg: 'resync complete: in sync once the primary is heard again' }]);
      const p: Persisted = { ...c.p, inSync: true, gen: Math.max(c.p.gen, c.peer?.gen ?? 0), lastState: 'SECOND' };
      return settle({ ...c, synced: true, p }, [persist(p), { type: 'publish' }, { type: 'log', level: 'info', msg: 'resync complete: in sync with the primary' }]);
    }
    return settle({ ...c, synced: true }, []);
  }
  // On a secondary, losing the stream changes nothing by itself: every acknowledged write is here.
  // We become stale only when the primary advertises a newer generation (see onPeer).
  return settle({ ...c, synced: isPrimary(c.target) ? false : c.synced, syncAwaitsPeer: false }, [{ type: 'log', level: 'warn', msg: `replication lost: ${reason}` }]);
}

function onTransitionDone(c: MirrorCore, ok: boolean, detail: string): R {
  const done: MirrorCore = { ...c, busy: Math.max(0, c.busy - 1) };
  if (ok) {
    const stateNow = done.busy === 0 ? done.target : done.state;
    return settle({ ...done, state: stateNow }, [{ type: 'publish' }]);
  }
  // A start step failed: never a silent PRIM. Apply the configured policy from a clean WAIT or STOP.
  const failedInto = c.target;
  const actions: Action[] = [{ type: 'log', level: 'error', msg: `transition to ${failedInto} failed: ${detail}` }];
  // Published state stays what it was (the failed role was never reached); cleanup starts from the failed role.
  const cleared: MirrorCore = { ...done, busy: 0, state: c.state, target: failedInto };
  if (c.onStartFailure === 'stop') {
    const p = { ...cleared.p, stopped: true };
    const r = queue({ ...cleared, p }, 'STOP', `start failed (${detail}); on_start_failure: stop`, enterStopSteps(failedInto), [persist(p)]);
    return { state: r.state, actions: [...actions, ...r.actions] };
  }
  const r = queue({ ...cleared, hold: true }, 'WAIT', `start failed (${detail}); on_start_failure: ${c.onStartFailure}`, enterWaitSteps(failedInto));
  return { state: r.state, actions: [...actions, ...r.actions, { type: 'publish' }] };
}

function onChecker(c: MirrorCore, ev: Extract<CoreEvent, { type: 'checker' }>): R {
  if (ev.up) {
    const { next, log } = checkerUp(c, ev);
    return settle(next, [log]);
  }
  const { next, policy, log } = checkerDown(c, ev, isPrimary(c.target));
  if (!isPrimary(next.target)) {
    // Not serving: remember that this node must not become primary until the checker is up again.
    return settle(policy === 'restart' ? next : { ...next, down: { ...next.down, [ev.checker]: policy } }, [log]);
  }
  const peerCanTakeOver = next.peerAlive && next.peer?.state === 'SECOND' && next.peer.inSync;
  if (policy === 'restart' || (!peerCanTakeOver && policy !== 'wait')) {
    const why = policy === 'restart' ? `restart in place: checker ${ev.checker} down` : `checker ${ev.checker} down, no in-sync secondary to fail over to: restart in place`;
    // Queued even while a transition runs: a checker reports a failure once, so dropping it would
    // leave the application down for good.
    const r = queue(next, next.target, why, restartInPlaceSteps(next.target));
    return { state: r.state, actions: [log, ...r.actions] };
  }
  const reason = `checker ${ev.checker} down (${policy}): ${ev.reason}`;
  let counted = next;
  if (policy !== 'wait') {
    const n = countFailover(next, c.now, peerCanTakeOver ? `handing over to ${c.peerName}` : 'restarting');
    if (!n.ok) {
      const r = maxLoopStop(next, n.reason);
      return { state: r.state, actions: [log, ...r.actions] };
    }
    counted = n.next;
  }
  const held: MirrorCore = { ...counted, down: policy === 'wait' ? { ...counted.down, [ev.checker]: policy } : counted.down };
  if (peerCanTakeOver) return handOver(held, reason, [log]);
  const r = queue({ ...held, hold: true }, 'WAIT', reason, enterWaitSteps(held.target));
  return { state: r.state, actions: [log, ...r.actions, { type: 'publish' }] };
}

function onCommand(core: MirrorCore, cmd: Extract<CoreEvent, { type: 'command' }>['command']): R {
  // these end an operator prim that waits for the arbiter lease
  const c = ['stop', 'shutdown', 'second', 'forcestop', 'stopstart'].includes(cmd.type) ? { ...core, operatorPrim: undefined } : core;
  const refuse = (message: string): R => ({ state: c, actions: [], reply: { ok: false, message } });
  const accept = (r: { state: MirrorCore; actions: readonly Action[] }, message: string): R => ({ ...r, reply: { ok: true, message } });
  switch (cmd.type) {
    case 'start': {
      if (!c.p.stopped && c.target !== 'STOP') return refuse(`already started (${c.target})`);
      const p = { ...c.p, stopped: false };
      const r = queue({ ...c, p }, 'WAIT', 'operator start', enterWaitSteps(c.target), [persist(p)]);
      return accept(settle(r.state, r.actions), 'starting');
    }
    case 'stop': {
      if (c.p.stopped && c.target === 'STOP') return refuse('already stopped');
      const p = { ...c.p, stopped: true, lastState: c.target === 'STOP' ? c.p.lastState : c.target };
      return accept(queue({ ...c, p, handover: false, swapRequest: false }, 'STOP', 'operator stop', enterStopSteps(c.target), [persist(p)]), 'stopping');
    }
    case 'shutdown': {
      if (c.target === 'STOP') return accept({ state: c, actions: [] }, 'already stopped');
      const p = { ...c.p, lastState: c.target };
      return accept(queue({ ...c, p, handover: false, swapRequest: false }, 'STOP', 'daemon shutdown', enterStopSteps(c.target), [persist(p)]), 'stopping');
    }
    case 'restart': {
      if (c.target === 'STOP') return onCommand(c, { type: 'start' });
      if (c.busy > 0) return refuse(`a transition to ${c.target} is in progress; retry when it is done`);
      return accept(queue(c, c.target, 'operator restart: application restarted in place', restartInPlaceSteps(c.target)), 'restarting the application in place');
    }
    case 'prim': {
      if (isPrimary(c.target)) {
        if (!cmd.fullSync) return refuse(`already primary (${c.target})`);
        if (c.busy > 0) return refuse(`a transition to ${c.target} is in progress; retry when it is done`);
        // the role stays; the replication engine restarts its resync with a checksum comparison
        return accept(queue(c, c.target, 'operator prim --fullsync', [{ type: 'replication', op: 'primary', fullSync: true }]), 'full resync');
      }
      if (c.p.stopped || c.target === 'STOP') return refuse('the module is stopped: run vigil start first');
      if (c.peerAlive && c.peer && isPrimary(c.peer.state)) return refuse(`${c.peerName} is primary (${c.peer.state}): use vigil swap`);
      if (c.busy > 0) return refuse(`a transition to ${c.target} is in progress; retry when it is done`);
      const fresh = c.p.gen === 0 && !c.p.inSync && (!c.peer || c.peer.fresh);
      if (!cmd.force && !fresh) {
        // lostWhileInSync: we watched the peer die with our copy in sync (failover off, or no witness)
        if (!c.peerAlive && !c.lostWhileInSync) return refuse(`${c.peerName} is not reachable, so this node cannot know its data is the latest: use --force if you are sure`);
        if (c.peerAlive && !ranksAbove(c, c.peer!)) return refuse(`${c.peerName} holds newer data (generation ${c.peer!.gen} > ${c.p.gen}): use --force to accept losing it`);
      }
      const why = cmd.force ? 'operator forced prim' : fresh ? 'operator prim on first start' : 'operator prim';
      // prim on a node whose peer is gone is a manual failover: swap_back applies to it as to an automatic one
      const operatorPrim = c.arbiter ? { reason: why, tookOver: !c.peerAlive, force: cmd.force } : undefined;
      const r = promote({ ...c, hold: false, fullSyncNext: cmd.fullSync ?? false, operatorPrim }, why, !c.peerAlive);
      if (isPrimary(r.state.target)) return accept(r, 'becoming primary');
      return accept(withClaims(r), `becoming primary once this node holds the arbiter lease (now: ${leaseWaitReason(c.lease, c.arbiter!, c.p.gen)})`);
    }
    case 'second': {
      if (isPrimary(c.target)) {
        if (!(c.peerAlive && c.peer?.state === 'SECOND' && c.peer.inSync)) {
          return refuse(`${c.peerName} is not an in-sync secondary, so it cannot take over without losing data: use vigil stop if you mean it`);
        }
        return accept(handOver({ ...c, fullSyncNext: cmd.fullSync }, 'operator second', []), `handing primary over to ${c.peerName}`);
      }
      if (c.target === 'STOP') return refuse('the module is stopped: run vigil start first');
      if (c.target === 'SECOND') {
        if (!cmd.fullSync) return refuse('already secondary');
        return accept(queue({ ...c, synced: false }, 'SECOND', 'operator second --fullsync', enterSecondarySteps('SECOND', { fullSync: true })), 'full resync');
      }
      return accept(settle({ ...c, hold: true, fullSyncNext: cmd.fullSync }, []), 'will join as secondary');
    }
    case 'swap': {
      if (c.target === 'PRIM' && c.peerAlive && c.peer?.state === 'SECOND' && c.peer.inSync) {
        return accept(handOver(c, 'swap', []), `swapping: ${c.peerName} becomes primary`);
      }
      if (c.target === 'SECOND' && c.peerAlive && c.peer?.state === 'PRIM' && c.p.inSync) {
        return accept({ state: { ...c, swapRequest: true }, actions: [{ type: 'publish' }] }, `asked ${c.peerName} to swap`);
      }
      return refuse(`swap needs a PRIM and an in-sync SECOND; now ${c.self}=${c.target}, ${c.peerName}=${c.peerAlive ? (c.peer?.state ?? '?') : 'unreachable'}`);
    }
    case 'forcestop': {
      if (c.target === 'STOP' && c.busy === 0) return refuse('already stopped');
      return accept(forceStop({ ...c, handover: false, swapRequest: false, tookOver: false }, 'mirror'), 'force-stopping (no script runs)');
    }
    case 'stopstart': {
      if (c.p.stopped || c.target === 'STOP') return refuse('the module is stopped: run vigil start');
      if (c.busy > 0) return refuse(`a transition to ${c.target} is in progress; retry when it is done`);
      // A primary with an in-sync secondary lets it take over while it restarts, and waits for it.
      const letPeerTakeOver = isPrimary(c.target) && c.peerAlive && c.peer?.state === 'SECOND' && c.peer.inSync;
      return accept(stopStart({ ...c, handover: false, swapRequest: false, tookOver: false }, (s) => ({ ...s, hold: letPeerTakeOver })), letPeerTakeOver ? `stopping and starting again; ${c.peerName} takes over` : 'stopping and starting again');
    }
    case 'failover': {
      const p: Persisted = { ...c.p, failover: cmd.on };
      const msg = cmd.on ? 'automatic failover on' : 'automatic failover off: a lost peer leaves this node waiting for an operator';
      return accept(settle({ ...c, p }, [persist(p), { type: 'log', level: 'info', msg: `operator: ${msg}` }]), msg);
    }
  }
}

/** Take over from a peer that failed: counted against max_failovers, refused while failover is off. */
function failOver(c: MirrorCore, reason: string): R {
  if (!failoverEnabled(c)) {
    const why = `${reason}, but failover is off: waiting for an operator (vigil prim to take over here, or vigil failover on)`;
    return c.target === 'WAIT' ? waiting(c, why) : toWait(c, why);
  }
  // waiting for the lease is not a failover yet: count it only once it can happen
  if (!mayServe(c)) return awaitLease(c, reason);
  const n = countFailover(c, c.now, 'taking over');
  if (!n.ok) return maxLoopStop(c, n.reason);
  return promote(n.next, reason, true);
}

/** swap_back: we took over from default_primary, which is back as an in-sync secondary. */
function swapBackDue(c: MirrorCore, peer: PeerView | undefined): boolean {
  return c.swapBack && c.tookOver && c.target === 'PRIM' && c.synced && peer !== undefined && peer.node === c.defaultPrimary && peer.state === 'SECOND' && peer.target === 'SECOND' && peer.inSync;
}

/** Release primary to an in-sync peer: become SECOND and advertise the handover. No write is lost:
 *  the view turns read-only before the peer is told to take over. */
function handOver(c: MirrorCore, reason: string, pre: Action[]): R {
  const p: Persisted = { ...c.p, inSync: true, lastState: 'SECOND' };
  const r = queue({ ...c, p, handover: true, hold: true, synced: true, tookOver: false }, 'SECOND', reason, enterSecondarySteps(c.target, { fullSync: c.fullSyncNext }), [persist(p)]);
  return { state: { ...r.state, fullSyncNext: false }, actions: [...pre, ...r.actions, { type: 'publish' }] };
}

/** `tookOver`: the peer failed or stopped (swap_back may later hand the role back to default_primary). */
function promote(c: MirrorCore, reason: string, tookOver = false): R {
  if (!mayServe(c)) return awaitLease(c, reason);
  const gen = Math.max(c.p.gen, c.peer?.gen ?? 0) + 1;
  const p: Persisted = { ...c.p, gen, primaryEpoch: gen, lastState: 'ALONE', inSync: false, stopped: false };
  const r = queue({ ...c, p, synced: false, swapRequest: false, handover: false, waitingReason: '', tookOver, operatorPrim: undefined }, 'ALONE', reason, enterPrimarySteps(c.target, { fullSync: c.fullSyncNext }), [persist(p)]);
  return { state: { ...r.state, fullSyncNext: false }, actions: [...r.actions, { type: 'publish' }] };
}

function demote(c: MirrorCore, reason: string, opts: { divergent: boolean }): R {
  const p: Persisted = { ...c.p, inSync: false, lastState: 'SECOND' };
  const r = queue({ ...c, p, synced: false, waitingReason: '' }, 'SECOND', reason, enterSecondarySteps(c.target, { fullSync: c.fullSyncNext, divergent: opts.divergent }), [persist(p)]);
  return { state: { ...r.state, fullSyncNext: false }, actions: [...r.actions, { type: 'publish' }] };
}

function toWait(c: MirrorCore, reason: string): R {
  const r = queue({ ...c, waitingReason: reason }, 'WAIT', reason, enterWaitSteps(c.target));
  return { state: r.state, actions: [...r.actions, { type: 'publish' }] };
}

/** Is our data at least as new as the peer's (ties broken the same way on both nodes)? */
function ranksAbove(c: MirrorCore, peer: PeerView): boolean {
  if (c.p.gen !== peer.gen) return c.p.gen > peer.gen;
  const mine = c.p.inSync || isPrimary(c.p.lastState) ? 1 : 0;
  const theirs = peer.inSync || isPrimary(peer.state) ? 1 : 0;
  if (mine !== theirs) return mine > theirs;
  return c.self < peer.node;
}

/** A node that reached no witness while its peer was silent was the one cut off from the network. */
export function isolated(c: MirrorCore): boolean {
  return c.witnessConfigured && c.witnessReachable === false;
}

interface Rank {
  readonly node: string;
  readonly gen: number;
  readonly primaryEpoch: number;
  readonly isolated: boolean;
}

/** After a split, both primaries see each other. The node that reached a witness (the one clients
 *  could reach) stays; then the higher generation; on a tie, the older primary (lower epoch: it was
 *  primary before the split); then the lower node name. Both nodes compute the same answer. */
export function keepsPrimary(self: Rank, peer: Rank): boolean {
  if (self.isolated !== peer.isolated) return !self.isolated;
  if (self.gen !== peer.gen) return self.gen > peer.gen;
  if (self.primaryEpoch !== peer.primaryEpoch) return self.primaryEpoch < peer.primaryEpoch;
  return self.node < peer.node;
}

/** The peer is primary and staying so: a primary that is stepping down is not one to follow or fight. */
const peerIsPrimary = (peer: PeerView | undefined): boolean => peer !== undefined && isPrimary(peer.state) && isPrimary(peer.target);

const canPromote = (c: MirrorCore): boolean => !c.hold && Object.keys(c.down).length === 0;

/** May we take over from a silent peer? With witnesses: only if they answer, and only once they have
 *  answered for `grace` since the peer went silent: a primary that is merely cut off has had that
 *  long to notice it reaches none and step down, and a link that just came back has had that long
 *  to bring the peer's heartbeats. */
function witnessAllows(c: MirrorCore): 'yes' | 'no' | 'unknown' {
  if (!c.witnessConfigured) return 'yes';
  if (c.witnessReachable === undefined) return 'unknown';
  if (!c.witnessReachable) return 'no';
  const since = Math.max(c.peerLostAt ?? c.now, c.witnessReachableSince ?? c.now);
  return c.now - since >= c.witnessGraceMs ? 'yes' : 'unknown';
}

/** Without an arbiter a node may always serve; with one, only while it holds the lease. */
const mayServe = (c: MirrorCore): boolean => !c.arbiter || leaseHeld(c.lease, c.now);

/** We would become primary, but hold no lease: ask for it (withClaims) and say why we wait. */
function awaitLease(c: MirrorCore, reason: string): R {
  return waiting({ ...c, leaseWant: reason }, `${reason}; ${leaseWaitReason(c.lease, c.arbiter!, c.p.gen)}`);
}

/**
 * The lease could not be renewed in time (or the store says another node holds it): stop serving
 * now, the margin before it can expire at the store. Whatever transition runs is abandoned (its
 * script killed): a start script that hangs must not keep the address past the deadline.
 */
function leaseLost(c: MirrorCore): R {
  const unanswered = c.lease.view === 'held';
  const lease: LeaseState = { ...leaseDropped(c.lease), view: unanswered ? 'unreachable' : c.lease.view, reason: unanswered ? 'no renewal answered in time' : c.lease.reason };
  const reason = `arbiter lease not renewed (${leaseWaitReason(lease, c.arbiter!, c.p.gen)}): stepping down ${c.arbiter!.marginMs} ms before it can expire at the store`;
  const pre: Action[] = c.busy > 0 ? [{ type: 'abort' }] : [];
  const cleared: MirrorCore = c.busy > 0 ? { ...c, busy: 0, liveFrom: c.nextId, target: c.state } : c;
  const r = queue({ ...cleared, waitingReason: reason, lease, tookOver: false }, 'WAIT', reason, leaseLostSteps(), [...pre, { type: 'log', level: 'warn', msg: reason }]);
  return { state: r.state, actions: [...r.actions, { type: 'publish' }] };
}

/**
 * Renewals while primary, claims while wanting to be, and the lease given back once nothing wants it.
 * A primary on a generation the store has not recorded yet (it just took over, or lost its secondary)
 * claims at once, and acknowledges nothing alone until the store holds it (durableAlone): otherwise a
 * peer holding older data could be granted the lease once ours lapses, and what we acknowledged alone
 * would be lost (found by the soak: the primary lost its secondary, then the arbiter).
 */
function withClaims(r: R): R {
  const s = r.state;
  if (!s.arbiter) return r;
  const want = isPrimary(s.target) || s.leaseWant !== undefined || s.operatorPrim !== undefined;
  const behind = s.lease.recordedGen < s.p.gen;
  let out = r;
  if (want && claimDue(s.lease, s.arbiter, s.now, isPrimary(s.target) && behind)) {
    const claim: Action = { type: 'lease', op: 'claim', gen: s.p.gen, force: s.operatorPrim?.force ?? false };
    out = { ...r, state: { ...s, lease: claimSent(s.lease, s.now, s.p.gen) }, actions: [...r.actions, claim] };
  } else if (!want && s.busy === 0 && !isPrimary(s.state) && leaseHeld(s.lease, s.now)) {
    // Only once the step-down ran (idle, not primary): the peer may be granted it the moment we let go.
    out = { ...r, state: { ...s, lease: leaseDropped(s.lease) }, actions: [...r.actions, { type: 'lease', op: 'release' }] };
  }
  const allowed = !behind;
  const until = out.state.lease.serveUntil;
  if (allowed === out.state.durableAlone && (!allowed || until === out.state.durableUntil)) return out;
  return { ...out, state: { ...out.state, durableAlone: allowed, durableUntil: until }, actions: [...out.actions, { type: 'durableAlone', allowed, until }] };
}

/** Level-triggered decisions: given everything we know now, where should this node be? */
function settle(c: MirrorCore, pre: Action[]): R {
  if (c.arbiter && isPrimary(c.target) && !leaseHeld(c.lease, c.now)) {
    const r = leaseLost(c);
    return withClaims({ state: r.state, actions: [...pre, ...r.actions] });
  }
  const fresh: MirrorCore = c.leaseWant === undefined ? c : { ...c, leaseWant: undefined };
  if (fresh.busy > 0 || fresh.target === 'STOP') return withClaims({ state: fresh, actions: pre });
  const r = decide(fresh);
  return withClaims({ state: r.state, actions: [...pre, ...r.actions], reply: r.reply });
}

function waiting(c: MirrorCore, reason: string): R {
  if (c.waitingReason === reason) return { state: c, actions: [] };
  return { state: { ...c, waitingReason: reason }, actions: [{ type: 'log', level: 'info', msg: `${c.target}: ${reason}` }] };
}

/**
 * The split brain's winner: the peer announced the address during the split, so clients' ARP caches
 * may point at it; the address is taken again (idempotent) with a new burst of gratuitous ARP, once.
 */
function stayPrimary(c: MirrorCore, reason: string): R {
  if (c.waitingReason === reason) return { state: c, actions: [] };
  const r = queue({ ...c, waitingReason: reason }, c.target, reason, [{ type: 'vip', op: 'add' }]);
  return { state: r.state, actions: [{ type: 'log', level: 'info', msg: `${c.target}: ${reason}` }, ...r.actions] };
}

/** how many heartbeat pulses two secondaries wait before the first-ranked one takes primary */
const BOTH_SECOND_PULSES = 3;

function decide(core: MirrorCore): R {
  const peer = core.peerAlive ? core.peer : undefined;
  let c: MirrorCore = core.target === 'SECOND' || core.bothSecondSince === undefined ? core : { ...core, bothSecondSince: undefined };
  if (c.operatorPrim && !isPrimary(c.target)) {
    if (!peerIsPrimary(peer)) return promote(c, c.operatorPrim.reason, c.operatorPrim.tookOver);
    c = { ...c, operatorPrim: undefined };
  }
  switch (c.target) {
    case 'ALONE':
    case 'PRIM': {
      if (peer && peerIsPrimary(peer)) {
        const mine = { node: c.self, gen: c.p.gen, primaryEpoch: c.p.primaryEpoch, isolated: isolated(c) };
        if (keepsPrimary(mine, peer)) return stayPrimary(c, `split brain healed: ${peer.node} is also primary; we stay (${peer.isolated ? `${peer.node} reached no witness; ` : ''}generation ${c.p.gen}/${peer.gen}, epoch ${c.p.primaryEpoch}/${peer.primaryEpoch})`);
        return demote(c, `split brain healed: ${peer.node} stays primary (${mine.isolated ? 'we reached no witness during the split; ' : ''}generation ${peer.gen} vs ours ${c.p.gen}, epoch ${peer.primaryEpoch} vs ${c.p.primaryEpoch}); our divergent files are moved aside`, { divergent: true });
      }
      if (!peer && c.peerGone && c.witnessConfigured && c.witnessReachable === false) {
        // At once: the secondary, if it reaches a witness, takes over only after `grace`, which is
        // the time we have to give the address and the data up.
        const reason = 'peer and every witness unreachable: our network is the one cut, stepping down';
        const r = queue({ ...c, hold: false, waitingReason: reason }, 'WAIT', reason, stepDownIsolatedSteps());
        return { state: r.state, actions: [...r.actions, { type: 'publish' }] };
      }
      if (peer?.swapRequest && c.target === 'PRIM' && peer.state === 'SECOND' && peer.inSync) return handOver(c, `swap requested by ${peer.node}`, []);
      if (swapBackDue(c, peer)) return handOver(c, `swap_back: default_primary ${peer!.node} is back and in sync`, []);
      const sub: ModuleState = c.synced && peer !== undefined && peer.state === 'SECOND' ? 'PRIM' : 'ALONE';
      if (sub === c.target) return { state: c, actions: [] };
      if (sub === 'ALONE') {
        // Writes from now on are not mirrored: a new generation marks our data as newer than the peer's.
        const p: Persisted = { ...c.p, gen: Math.max(c.p.gen, peer?.gen ?? 0) + 1, lastState: 'ALONE' };
        return { state: { ...c, p, state: 'ALONE', target: 'ALONE' }, actions: [persist(p), { type: 'publish' }, { type: 'log', level: 'warn', msg: `PRIM -> ALONE: ${peer ? 'replication to ' + peer.node + ' lost' : 'peer lost'}; changes are tracked for resync` }] };
      }
      const p: Persisted = { ...c.p, lastState: 'PRIM' };
      return { state: { ...c, p, state: 'PRIM', target: 'PRIM' }, actions: [persist(p), { type: 'publish' }, { type: 'log', level: 'info', msg: `ALONE -> PRIM: ${c.peerName} is an in-sync secondary` }] };
    }
    case 'SECOND': {
      if (!peer) {
        if (!c.peerGone) return { state: c, actions: [] };
        if (!c.p.inSync) return toWait(c, `peer ${c.peerName} lost while we were not in sync: our data may be stale`);
        if (!canPromote(c)) return toWait(c, `peer ${c.peerName} lost; a checker forbids taking over (${Object.keys(c.down).join(', ')})`);
        const w = witnessAllows(c);
        if (w === 'unknown') return waiting(c, `peer lost: asking the witnesses, then giving a cut-off primary ${c.witnessGraceMs}ms to step down`);
        if (w === 'no') return toWait(c, `peer ${c.peerName} lost and no witness reachable: not taking over (we may be the one cut off)`);
        return failOver(c, `peer ${c.peerName} lost; our data is in sync`);
      }
      if (!isPrimary(peer.state) && c.p.inSync && canPromote(c)) {
        if (peer.handover) return promote({ ...c, hold: false }, `${peer.node} handed primary over`);
        if (peer.state === 'STOP' || peer.state === 'WAIT') return promote(c, `${peer.node} is ${peer.state} and our data is in sync`, true);
        // Both settled SECOND, nobody handing over: a handover whose signal was lost (the releasing
        // node lost our heartbeats as it stepped down, which clears its flag). Each would wait for the
        // other for good; the node whose data ranks first (the same order on both) takes primary, once
        // the peer has said so for a few pulses (a view of it from before it took the handover is gone).
        if (peer.state === 'SECOND' && peer.target === 'SECOND' && !peer.handover && !c.handover && c.state === 'SECOND' && c.busy === 0 && ranksAbove(c, peer)) {
          const since = c.bothSecondSince ?? c.now;
          if (c.now - since >= BOTH_SECOND_PULSES * c.live.cfg.pulseMs) return promote(c, `${peer.node} is SECOND too and nobody hands over (a handover that did not reach it): our data ranks first`);
          return { state: since === c.bothSecondSince ? c : { ...c, bothSecondSince: since }, actions: [] };
        }
      }
      return { state: c.bothSecondSince === undefined ? c : { ...c, bothSecondSince: undefined }, actions: [] };
    }
    case 'WAIT': {
      if (peer && peerIsPrimary(peer)) {
        const divergent = c.p.lastState === 'ALONE' && (peer.gen !== c.p.gen || peer.primaryEpoch !== c.p.primaryEpoch);
        return demote({ ...c, hold: false }, `${peer.node} is primary (${peer.state})${divergent ? '; we were ALONE, our divergent files are moved aside' : ''}`, { divergent });
      }
      if (!canPromote(c)) return waiting(c, c.hold ? `held: waiting for ${c.peerName} to become primary` : `checker down: ${Object.keys(c.down).join(', ')}`);
      if (peer) {
        if (peer.handover) return waiting(c, `${peer.node} is handing over`);
        const fresh = c.p.gen === 0 && !c.p.inSync && peer.fresh;
        if (fresh) {
          if (c.defaultPrimary === c.self) return promote(c, 'first start: default_primary');
          return waiting(c, `first start: waiting for vigil prim on the node with good data${c.defaultPrimary ? ` (default_primary: ${c.defaultPrimary})` : ''}`);
        }
        if (ranksAbove(c, peer)) return promote(c, `${peer.node} is ${peer.state} with generation ${peer.gen}; ours (${c.p.gen}) is the latest`);
        return waiting(c, `${peer.node} holds newer data (generation ${peer.gen} vs ${c.p.gen}): waiting for it to become primary`);
      }
      if (!c.peerGone) return { state: c, actions: [] };
      if (c.p.lastState === 'ALONE' || c.lostWhileInSync) {
        const w = witnessAllows(c);
        if (w === 'unknown') return waiting(c, 'restarted without peer: asking the witnesses');
        if (w === 'no') return waiting(c, 'restarted without peer and no witness reachable');
        if (c.lostWhileInSync) return failOver(c, `${c.peerName} lost while our data was in sync`);
        return promote(c, `restarted without ${c.peerName}; we were ALONE, so our data is the latest`);
      }
      return waiting(c, `${c.peerName} not seen and our data may be stale (last state ${c.p.lastState}): start ${c.peerName}, or run vigil prim --force on the node with good data`);
    }
    default:
      return { state: c, actions: [] };
  }
}

/** Start-up: from STOP to WAIT unless an operator stopped the module. */
export function bootMirror(c: MirrorCore, now: number): R {
  if (c.p.stopped) return { state: { ...c, now }, actions: [{ type: 'log', level: 'info', msg: 'module was stopped by an operator: staying STOP (vigil start to start it)' }] };
  const r = queue({ ...c, now }, 'WAIT', 'daemon start', enterWaitSteps('STOP'));
  return { state: r.state, actions: [...r.actions, { type: 'publish' }] };
}
