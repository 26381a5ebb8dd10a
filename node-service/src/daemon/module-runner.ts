import { existsSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { ClusterConfig, ModuleConfig, NodeConfig } from '../config/types.ts';
import { initFarm } from '../core/farm-step.ts';
import { failoverEnabled, initMirror, isolated } from '../core/mirror-step.ts';
import { type ModuleCore, step } from '../core/step.ts';
import type { ModuleStatus } from '../contract/module-status.ts';
import { type Action, type Command, type CoreEvent, isReady, type ModuleState, type PeerView, type Persisted, type ScriptName, type Step, type Transition } from '../core/types.ts';
import type { LeaseStore } from '../arbiter/index.ts';
import { leaseHeld, type LeaseState } from '../core/lease.ts';
import { alivePeers } from '../core/liveness.ts';
import type { HeartbeatMonitor } from '../heartbeat/monitor.ts';
import type { Logger } from '../log/logger.ts';
import type { Metrics } from '../metrics/metrics.ts';
import { StateStore } from '../persist/state-store.ts';
import { runScript, type ScriptRun } from '../scripts/runner.ts';
import { EventLog, type LogRecord } from './event-log.ts';
import type { FarmPort, ReplicationPort, VipPort } from './ports.ts';
import { monotonic } from '../clock.ts';

export interface Edge {
  readonly vip: VipPort;
  readonly replication: ReplicationPort;
  readonly farm: FarmPort;
  readonly monitor: HeartbeatMonitor;
  /** checker adapters: started after boot, report into the core */
  readonly startCheckers: (report: (e: { checker: string; up: boolean; reason: string }) => void) => () => void;
  readonly witness?: { reachable(): Promise<boolean> };
  /** the `arbiter:` lease store (arbiter/), when the module has one */
  readonly arbiter?: LeaseStore;
  /** state-change notifications outside the node (cloud functions) */
  readonly notify?: (e: { module: string; from: ModuleState; to: ModuleState; reason: string }) => void;
}

/** the `vigil state --json` object (contract/module-status.ts) */
export type { ModuleStatus } from '../contract/module-status.ts';

/**
 * The thin shell around one module's pure core: turns sockets, timers and script exits into events,
 * and performs the actions the core returns. Transitions run one at a time, in order.
 */
export class ModuleRunner {
  private core: ModuleCore;
  private readonly store: StateStore;
  readonly events: EventLog;
  private readonly queue: Transition[] = [];
  /** aborts the transition that runs now (forcestop): kills its script, skips its remaining steps */
  private current?: { readonly t: Transition; readonly abort: AbortController };
  private running = false;
  private tickTimer?: NodeJS.Timeout;
  private witnessTimer?: NodeJS.Timeout;
  private stopCheckers: () => void = () => {};
  private lastReason = '';
  private readonly checkerUp: Record<string, boolean> = {};
  private idleWaiters: (() => void)[] = [];
  private published: ModuleState = 'STOP';
  private carrierUp = true;
  /** the lease release in flight (awaited at shutdown) */
  private releasing: Promise<void> = Promise.resolve();
  /** peers the core last said are alive (for the log: heard again vs lost) */
  private readonly peersAlive = new Set<string>();
  private started = false;
  /**
   * The core's persisted state is written off the event loop, one write after the other: 64 modules
   * deciding at once used to stall the loop on their fsyncs in turn (seconds, and every later
   * module's heartbeat timeout and decision with it). Nothing acts on a decision before it is on
   * disk: a transition's steps (VIP, scripts, replication role) wait for the writes queued before it.
   * The heartbeat advert changes with the state, as before: a crash before the write leaves the disk
   * behind what the peer heard, never ahead of what this node did.
   */
  private saved: Promise<void> = Promise.resolve();
  private saveError: Error | undefined;
  /** present while this runner runs (pid inside), removed at a clean shutdown: found at start, the run before crashed */
  private readonly runningMarker: string;
  /** the role the persisted state says this node had when the previous run ended */
  private readonly lastState: ModuleState;

  constructor(
    readonly cluster: ClusterConfig,
    readonly module: ModuleConfig,
    readonly self: NodeConfig,
    private readonly edge: Edge,
    private readonly log: Logger,
    private readonly metrics: Metrics,
  ) {
    const dir = join(cluster.state_dir, module.name);
    this.store = new StateStore(dir);
    this.events = new EventLog(dir);
    this.runningMarker = join(dir, 'running');
    const persisted = this.store.load();
    this.lastState = persisted.lastState;
    if (module.mode === 'mirror') {
      const peerName = module.nodes.find((n) => n !== self.name)!;
      this.core = initMirror({
        self: self.name,
        peerName,
        defaultPrimary: module.default_primary,
        witnessConfigured: (module.witness?.ping.length ?? 0) + (module.witness?.http.length ?? 0) > 0,
        witnessGraceMs: module.witness?.grace,
        onStartFailure: module.on_start_failure,
        persisted,
        failover: module.failover,
        swapBack: module.swap_back,
        maxFailovers: { count: module.max_failovers.count, windowMs: module.max_failovers.window },
        arbiterTtlMs: module.arbiter?.ttl,
        heartbeat: { pulseMs: module.heartbeat.pulse, timeoutMs: module.heartbeat.timeout },
      });
    } else {
      this.core = initFarm({ self: self.name, nodes: module.nodes, heartbeat: { pulseMs: module.heartbeat.pulse, timeoutMs: module.heartbeat.timeout }, onStartFailure: module.on_start_failure, persisted, maxFailovers: { count: module.max_failovers.count, windowMs: module.max_failovers.window } });
    }
    this.updateMetrics();
  }

  get state(): ModuleState {
    return this.core.state;
  }

  /** ready.txt: serving, and not on the way out (a node that decided to step down answers 404 at once) */
  get ready(): boolean {
    return isReady(this.core.state) && isReady(this.core.target);
  }

  async start(): Promise<void> {
    const { monitor, replication, vip, farm } = this.edge;
    await vip.removeLeftovers();
    await farm.removeLeftovers();
    await this.stopLeftoverApplication();
    await replication.prepare();
    replication.onEvent((e) => {
      if (e.type === 'progress') return;
      this.feed({ type: 'replication', status: e.type, reason: e.type === 'lost' ? e.reason : '', now: monotonic() });
    });
    // the edges report what they observe; the core decides who is alive and who serves
    monitor.onHeard((view) => this.feed({ type: 'heard', view, now: monotonic() }));
    this.advertise();
    await monitor.start();
    this.feed({ type: 'boot', now: monotonic() });
    this.started = true;
    this.armCheckers();
    // Ticks bring the time: heartbeat timeouts, returning peers, the arbiter deadline. Each runs after
    // the poll phase (setImmediate), so the datagrams that arrived during a stall of ours are heard first.
    const every = Math.max(10, Math.min(this.module.heartbeat.pulse / 2, this.module.heartbeat.timeout / 10));
    let last = monotonic();
    this.tickTimer = setInterval(
      () =>
        setImmediate(() => {
          const now = monotonic();
          this.metrics.loopLag.set(Math.max(0, now - last - every) / 1000);
          last = now;
          this.feed({ type: 'tick', now });
          this.reportCarrier(now);
        }),
      every,
    );
  }

  /**
   * A daemon killed while primary (kill -9, OOM, power of the daemon only) leaves its application
   * running: stop_prim runs once at start, after its VIPs were removed and before any role is taken,
   * so that a node coming back as SECOND does not keep the old application serving. A clean shutdown
   * ran stop_prim already and removed the marker, so a plain restart runs nothing more.
   */
  private async stopLeftoverApplication(): Promise<void> {
    const crashed = existsSync(this.runningMarker);
    writeFileSync(this.runningMarker, `${process.pid}\n`);
    if (!crashed || this.module.mode !== 'mirror' || !isReady(this.lastState)) return;
    const why = `the previous run ended without stopping while ${this.lastState}: stop_prim runs for the application it left`;
    this.log.warn(why);
    this.events.add({ kind: 'note', level: 'warn', msg: why });
    await this.script(this.lastState, 'STOP', 'stop_prim', true);
  }

  /** farm: the VIP interfaces' link, reported to the core when it changes */
  private reportCarrier(now: number): void {
    const up = this.edge.farm.carrier?.();
    if (up === undefined || up === this.carrierUp) return;
    this.carrierUp = up;
    this.feed({ type: 'carrier', up, now });
  }

  /**
   * (Re)starts the checkers. Checkers report changes only, so after the application was (re)started
   * they are re-armed: a failure that was already reported, or that happens before the next probe,
   * is reported again instead of being missed.
   */
  private armCheckers(): void {
    this.stopCheckers();
    for (const [checker, up] of Object.entries(this.checkerUp)) {
      if (!up) {
        this.checkerUp[checker] = true;
        const cfg = this.module.checkers.find((c, i) => (c.name ?? `${c.type}${i}`) === checker);
        this.feed({ type: 'checker', checker, up: true, reason: 're-armed after the application started', onFailure: cfg?.on_failure ?? 'restart', now: monotonic() });
      }
    }
    this.stopCheckers = this.edge.startCheckers((r) => {
      const cfg = this.module.checkers.find((c, i) => (c.name ?? `${c.type}${i}`) === r.checker);
      this.checkerUp[r.checker] = r.up;
      this.metrics.checkerUp.set({ module: this.module.name, checker: r.checker }, r.up ? 1 : 0);
      this.feed({
        type: 'checker',
        checker: r.checker,
        up: r.up,
        reason: r.reason,
        onFailure: cfg?.on_failure ?? 'restart',
        maxRestarts: cfg?.type === 'process' ? cfg.max_restarts : undefined,
        restartWindow: cfg?.type === 'process' ? cfg.restart_window : undefined,
        now: monotonic(),
      });
    });
  }

  /** Daemon shutdown: stop the module (scripts, VIP, mounts) without marking it stopped by an operator. */
  async shutdown(): Promise<void> {
    this.started = false;
    this.stopCheckers();
    clearInterval(this.tickTimer);
    this.pollWitness(false);
    this.feed({ type: 'command', command: { type: 'shutdown' }, now: monotonic() });
    await this.idle();
    await this.saved;
    rmSync(this.runningMarker, { force: true });
    // the stopped primary's lease goes back before the daemon exits: the peer need not wait for the ttl
    await this.releasing;
    this.edge.monitor.sendNow();
    await this.edge.monitor.stop();
  }

  command(command: Command): { ok: boolean; message: string } {
    const reply = this.feed({ type: 'command', command, now: monotonic() });
    const r = reply ?? { ok: true, message: 'done' };
    this.events.add({ kind: 'note', level: r.ok ? 'info' : 'warn', msg: `command ${command.type}: ${r.message}` });
    return r;
  }

  /** resolves when no transition is queued or running */
  idle(): Promise<void> {
    if (!this.running && this.queue.length === 0) return Promise.resolve();
    return new Promise((r) => this.idleWaiters.push(r));
  }

  status(): ModuleStatus {
    const c = this.core;
    const peers = this.module.nodes
      .filter((n) => n !== this.self.name)
      .map((node) => ({ node, state: (alivePeers(c.live).find((p) => p.node === node)?.state ?? 'UNKNOWN') as ModuleState | 'UNKNOWN' }));
    const rep = this.edge.replication.status();
    return {
      module: this.module.name,
      node: this.self.name,
      mode: this.module.mode,
      state: c.state,
      ready: this.ready,
      target: c.target,
      peers,
      resync: { ...(rep?.resync ?? {}), ...(rep?.trackedBytes !== undefined ? { trackedBytes: rep.trackedBytes } : {}) },
      gen: c.p.gen,
      inSync: c.p.inSync,
      reason: this.lastReason,
      checkers: { ...this.checkerUp },
      ...(this.module.mode === 'farm' ? { buckets: this.edge.farm.status()?.buckets ?? {} } : {}),
      ...(c.mode === 'mirror' ? { failover: failoverEnabled(c) ? ('on' as const) : ('off' as const) } : {}),
      ...(c.mode === 'mirror' && c.arbiter && this.module.arbiter ? { arbiter: this.arbiterStatus(c.lease, this.module.arbiter.type) } : {}),
    };
  }

  private arbiterStatus(l: LeaseState, type: string): NonNullable<ModuleStatus['arbiter']> {
    const now = monotonic();
    return {
      type,
      lease: leaseHeld(l, now) ? 'held' : l.view === 'held' ? 'none' : l.view,
      ...(l.holder ? { holder: l.holder } : {}),
      ...(l.holderGen !== undefined ? { holderGen: l.holderGen } : {}),
      ...(l.reason ? { reason: l.reason } : {}),
      ...(leaseHeld(l, now) ? { servesForMs: Math.round(l.serveUntil - now) } : {}),
      ...(l.unreachableSince !== undefined ? { unreachableForMs: Math.round(now - l.unreachableSince) } : {}),
    };
  }

  private feed(ev: CoreEvent): { ok: boolean; message: string } | undefined {
    const r = step(this.core, ev);
    this.core = r.state;
    for (const a of r.actions) this.perform(a);
    if (this.core.state !== this.published) this.publish();
    this.updateArbiterMetrics();
    return r.reply;
  }

  private perform(a: Action): void {
    switch (a.type) {
      case 'persist':
        this.persist(a.data);
        return;
      case 'publish':
        this.publish();
        return;
      case 'log':
        this.log[a.level](a.msg);
        this.events.add({ kind: 'note', level: a.level, msg: a.msg });
        if (a.msg) this.lastReason = a.msg;
        return;
      case 'witness':
        this.pollWitness(a.poll);
        return;
      case 'lease':
        this.lease(a);
        return;
      case 'durableAlone':
        this.edge.replication.durableAlone(a.allowed, a.until);
        return;
      case 'peerView':
        this.peerView(a);
        return;
      case 'membership':
        this.edge.farm.membership(a.nodes).catch((e: Error) => this.log.error({ err: e.message }, 'farm rebalance failed'));
        return;
      case 'abort':
        this.queue.length = 0;
        this.current?.abort.abort();
        return;
      case 'transition':
        this.queue.push(a.transition);
        this.log.info({ from: a.transition.from, to: a.transition.to }, `${a.transition.from} -> ${a.transition.to}: ${a.transition.reason}`);
        this.events.add({ kind: 'transition', from: a.transition.from, to: a.transition.to, reason: a.transition.reason, phase: 'begin' });
        this.lastReason = a.transition.reason;
        // leaving a ready state: ready.txt answers 404 from now on; tell the cloud function at once, so
        // the load balancer stops sending to this node while it is still primary (handing over)
        if (isReady(a.transition.from) && !isReady(a.transition.to)) this.edge.notify?.({ module: this.module.name, from: a.transition.from, to: a.transition.to, reason: a.transition.reason });
        void this.drain();
        return;
    }
  }

  private persist(data: Persisted): void {
    this.saved = this.saved
      .then(() => this.store.save(data))
      .then(
        () => {
          this.saveError = undefined;
        },
        (e: Error) => {
          this.saveError = e;
          this.log.error({ err: e.message, file: this.store.file }, 'state not saved: the transitions that depend on it fail until a save succeeds (check the state_dir filesystem)');
        },
      );
  }

  private advertise(): void {
    const c = this.core;
    this.edge.monitor.setAdvert({
      state: c.state,
      target: c.target,
      gen: c.p.gen,
      primaryEpoch: c.p.primaryEpoch,
      inSync: c.p.inSync,
      handover: c.mode === 'mirror' ? c.handover : false,
      swapRequest: c.mode === 'mirror' ? c.swapRequest : false,
      isolated: c.mode === 'mirror' ? isolated(c) : false,
    });
  }

  private publish(): void {
    const before = this.published;
    this.published = this.core.state;
    this.advertise();
    this.edge.monitor.sendNow();
    this.updateMetrics();
    if (before !== this.core.state) {
      this.metrics.transitions.inc({ module: this.module.name, from: before, to: this.core.state });
      this.metrics.stateChanged(this.module.name, before, this.core.state, monotonic());
      this.log.info({ from: before, to: this.core.state }, `state ${this.core.state}`);
      this.edge.notify?.({ module: this.module.name, from: before, to: this.core.state, reason: this.lastReason });
    }
  }

  private updateMetrics(): void {
    for (const s of ['STOP', 'WAIT', 'ALONE', 'PRIM', 'SECOND', 'UP'] as const) {
      this.metrics.moduleState.set({ module: this.module.name, state: s }, this.core.state === s ? 1 : 0);
    }
    this.metrics.ready.set({ module: this.module.name }, this.ready ? 1 : 0);
  }

  /** the lease changes with time as well as with events: refreshed after every event (ticks included) */
  private updateArbiterMetrics(): void {
    const c = this.core;
    if (c.mode !== 'mirror' || !c.arbiter) return;
    this.metrics.arbiterLeaseHeld.set({ module: this.module.name }, leaseHeld(c.lease, monotonic()) ? 1 : 0);
    this.metrics.arbiterReachable.set({ module: this.module.name }, c.lease.view === 'unreachable' ? 0 : 1);
  }

  /** The core decided a peer is alive (or changed), or lost: replication, metrics and the log follow. */
  private peerView(a: Extract<Action, { type: 'peerView' }>): void {
    const m = this.module.name;
    this.edge.replication.peerChanged(a.view);
    if (a.view) {
      if (!this.peersAlive.has(a.node)) this.log.info({ module: m, peer: a.node, state: a.view.state }, 'peer heartbeats received');
      this.peersAlive.add(a.node);
      this.metrics.peerAlive.set({ module: m, peer: a.node }, 1);
      return;
    }
    this.metrics.peerLostAt(m, monotonic());
    this.metrics.peerAlive.set({ module: m, peer: a.node }, 0);
    if (this.peersAlive.delete(a.node) || a.everHeard) {
      this.metrics.peerLost.inc({ module: m, peer: a.node });
      this.log.warn({ module: m, peer: a.node, silentMs: a.silentMs }, 'peer lost: no valid heartbeat on any network');
    } else {
      this.log.info({ module: m, peer: a.node }, 'peer not heard since start');
    }
  }

  /** Claims go to the store and come back as lease events; a release is fire-and-forget. */
  private lease(a: Extract<Action, { type: 'lease' }>): void {
    const store = this.edge.arbiter;
    if (!store) return;
    if (a.op === 'release') {
      this.releasing = store.release();
      return;
    }
    void store.claim(a.gen, a.force).then((answer) => {
      this.metrics.arbiterClaims.inc({ module: this.module.name, outcome: answer.outcome });
      if (answer.outcome === 'unreachable') this.log.debug({ reason: answer.reason }, 'arbiter claim unanswered');
      if (this.started || this.core.state !== 'STOP') this.feed({ type: 'lease', ...answer, now: monotonic() });
    });
  }

  private pollWitness(on: boolean): void {
    clearInterval(this.witnessTimer);
    this.witnessTimer = undefined;
    const w = this.edge.witness;
    if (!on || !w) return;
    const ask = () => {
      w.reachable()
        .then((reachable) => this.feed({ type: 'witness', reachable, now: monotonic() }))
        .catch(() => this.feed({ type: 'witness', reachable: false, now: monotonic() }));
    };
    ask();
    this.witnessTimer = setInterval(ask, Math.max(250, this.module.heartbeat.pulse * 5));
  }

  private async drain(): Promise<void> {
    if (this.running) return;
    this.running = true;
    try {
      while (this.queue.length > 0) {
        const t = this.queue.shift()!;
        const abort = new AbortController();
        this.current = { t, abort };
        const began = monotonic();
        const failure = await this.runSteps(t, abort.signal).finally(() => (this.current = undefined));
        this.metrics.transitionSeconds.observe({ module: this.module.name, from: t.from, to: t.to }, (monotonic() - began) / 1000);
        if (abort.signal.aborted) {
          // forcestop dropped it: the core ignores its outcome; what follows in the queue is the stop
          this.events.add({ kind: 'transition', from: t.from, to: t.to, reason: t.reason, phase: 'failed', detail: 'abandoned by forcestop' });
          this.feed({ type: 'transitionDone', id: t.id, ok: false, detail: 'abandoned by forcestop', now: monotonic() });
        } else if (failure) {
          // Every queued transition assumed this one would succeed: drop them; the core re-plans.
          this.queue.length = 0;
          this.events.add({ kind: 'transition', from: t.from, to: t.to, reason: t.reason, phase: 'failed', detail: failure });
          this.feed({ type: 'transitionDone', id: t.id, ok: false, detail: failure, now: monotonic() });
        } else {
          this.events.add({ kind: 'transition', from: t.from, to: t.to, reason: t.reason, phase: 'done' });
          this.feed({ type: 'transitionDone', id: t.id, ok: true, detail: '', now: monotonic() });
          if (this.started && t.steps.some((s) => s.type === 'script' && !s.stop)) this.armCheckers();
        }
      }
    } finally {
      this.running = false;
      const waiters = this.idleWaiters.splice(0);
      for (const w of waiters) w();
    }
  }

  /** runs one of the module's scripts (a stop script a second time, forced, if the first fails) and logs each run */
  private async script(from: ModuleState, to: ModuleState, script: ScriptName, stop: boolean, signal?: AbortSignal): Promise<ScriptRun> {
    const runs = await runScript(
      {
        dir: this.module.scripts_dir,
        module: this.module.name,
        node: this.self.name,
        state: from,
        nextState: to,
        timeoutMs: this.module.scripts.timeout,
        stopTimeoutMs: this.module.scripts.stop_timeout,
        signal,
      },
      script,
      stop,
    );
    for (const r of runs) {
      if (!r.ran) continue;
      this.events.add({ kind: 'script', script: r.script, action: r.action, ok: r.ok, code: r.code, signal: r.signal, timedOut: r.timedOut, durationMs: r.durationMs, output: r.output });
      this.metrics.scriptRuns.inc({ module: this.module.name, script: r.script, result: r.ok ? 'ok' : r.timedOut ? 'timeout' : 'failed' });
      this.metrics.scriptSeconds.observe({ module: this.module.name, script: r.script }, r.durationMs / 1000);
      const line = { script: r.script, action: r.action, code: r.code, signal: r.signal, timedOut: r.timedOut, ms: r.durationMs, output: r.output.slice(-2000) };
      if (r.ok) this.log.info(line, `script ${r.script} ok`);
      else this.log.warn(line, `script ${r.script} failed`);
    }
    return runs.at(-1)!;
  }

  /** returns a failure description, or undefined when every step succeeded */
  private async runSteps(t: Transition, signal: AbortSignal): Promise<string | undefined> {
    // the decision this transition carries out is on disk first (the core queued its persist before it)
    await this.saved;
    if (this.saveError && !t.steps.every(isStopStep)) return `state not saved: ${this.saveError.message}`;
    for (const s of t.steps) {
      if (signal.aborted) return 'abandoned by forcestop';
      try {
        const failure = await this.runStep(t, s, signal);
        if (failure) return failure;
      } catch (e) {
        const msg = `${describe(s)} failed: ${(e as Error).message}`;
        if (isStopStep(s)) {
          this.log.error(`${msg} (continuing: a stop must complete)`);
          continue;
        }
        return msg;
      }
    }
    return undefined;
  }

  private async runStep(t: Transition, s: Step, signal: AbortSignal): Promise<string | undefined> {
    const { vip, replication, farm } = this.edge;
    switch (s.type) {
      case 'script': {
        const last = await this.script(t.from, t.to, s.script, s.stop, signal);
        if (!last.ok && !s.stop) return `${s.script} ${last.timedOut ? 'timed out' : `exited ${last.code ?? last.signal}`}`;
        return undefined;
      }
      case 'vip':
        if (s.op === 'add') await vip.takeover();
        else await vip.release();
        return undefined;
      case 'replication':
        if (s.op === 'primary') await replication.primary({ fullSync: s.fullSync });
        else if (s.op === 'secondary') await replication.secondary({ fullSync: s.fullSync, divergent: s.divergent });
        else if (s.op === 'idle') await replication.idle();
        else await replication.stop();
        return undefined;
      case 'farm':
        if (s.op === 'join') await farm.join();
        else await farm.leave();
        return undefined;
    }
  }
}

function isStopStep(s: Step): boolean {
  return (s.type === 'script' && s.stop) || (s.type === 'vip' && s.op === 'remove') || (s.type === 'replication' && (s.op === 'stop' || s.op === 'idle')) || (s.type === 'farm' && s.op === 'leave');
}

function describe(s: Step): string {
  return s.type === 'script' ? `script ${s.script}` : `${s.type} ${s.op}`;
}

export type { LogRecord };
