import { initMirror, isolated, type MirrorCore, type MirrorInit, stepMirror } from '../../node-service/src/core/mirror-step.ts';
import { FakeLeaseStore } from './core-arbiter.ts';
import type { Action, Command, CoreEvent, PeerView, Persisted, Step, Transition, UntimedEvent } from '../../node-service/src/core/types.ts';

/**
 * An in-memory two-node mirror cluster for scenario tests, in the manner of etcd raft's
 * interaction tests: the network can be cut and healed, transitions complete when told, and time
 * only moves when a test moves it.
 */
export interface SimNode {
  core: MirrorCore;
  pending: Transition[];
  done: Transition[];
  persisted: Persisted;
  logs: string[];
  replies: { ok: boolean; message: string }[];
  witnessPolling: boolean;
  /** scripts that fail when run */
  failing: Set<string>;
  crashed: boolean;
}

export function peerViewOf(c: MirrorCore): PeerView {
  return {
    node: c.self,
    state: c.state,
    target: c.target,
    gen: c.p.gen,
    primaryEpoch: c.p.primaryEpoch,
    inSync: c.p.inSync,
    handover: c.handover,
    swapRequest: c.swapRequest,
    isolated: isolated(c),
    fresh: c.p.gen === 0 && !c.p.inSync,
  };
}

/** The simulator decides liveness itself (peer, peerLost events): the core's own heartbeat timeout
 *  (core/liveness.ts, tested in core-liveness) never fires here. */
const DECIDED = { pulseMs: 100, timeoutMs: Infinity };

export class MirrorSim {
  readonly nodes = new Map<string, SimNode>();
  now = 0;
  link = true;
  replicationUp = true;
  /** with `arbiter`: the lease store both nodes claim from */
  readonly store?: FakeLeaseStore;
  /** store answers on their way back to the nodes */
  private answers: { node: string; at: number; ev: UntimedEvent }[] = [];

  constructor(private readonly opts: { defaultPrimary?: string; witness?: boolean; arbiter?: { ttlMs: number }; init?: Partial<Pick<MirrorInit, 'failover' | 'swapBack' | 'maxFailovers'>> } = {}) {
    if (opts.arbiter) this.store = new FakeLeaseStore(opts.arbiter.ttlMs);
    for (const [self, peer] of [['node1', 'node2'], ['node2', 'node1']] as const) this.add(self, peer);
  }

  private add(self: string, peerName: string, persisted?: Persisted): void {
    const init: MirrorInit = { ...this.opts.init, self, peerName, defaultPrimary: this.opts.defaultPrimary, witnessConfigured: this.opts.witness, persisted, arbiterTtlMs: this.opts.arbiter?.ttlMs, heartbeat: DECIDED };
    const core = initMirror(init);
    this.nodes.set(self, { core, pending: [], done: [], persisted: core.p, logs: [], replies: [], witnessPolling: false, failing: new Set(), crashed: true });
  }

  node(n: string): SimNode {
    return this.nodes.get(n)!;
  }

  state(n: string): string {
    return this.node(n).crashed ? 'DOWN' : this.node(n).core.state;
  }

  feed(n: string, ev: UntimedEvent): void {
    const node = this.node(n);
    if (node.crashed) return;
    const r = stepMirror(node.core, { ...ev, now: this.now } as CoreEvent);
    node.core = r.state;
    if (r.reply) node.replies.push(r.reply);
    this.apply(node, r.actions);
  }

  private apply(node: SimNode, actions: readonly Action[]): void {
    for (const a of actions) {
      if (a.type === 'transition') node.pending.push(a.transition);
      else if (a.type === 'persist') node.persisted = a.data;
      else if (a.type === 'log') node.logs.push(a.msg);
      else if (a.type === 'witness') node.witnessPolling = a.poll;
      else if (a.type === 'abort') node.pending = [];
      else if (a.type === 'lease' && this.store) {
        if (a.op === 'release') this.store.release(node.core.self, this.now);
        else {
          const r = this.store.claim(node.core.self, a.gen, a.force, this.now);
          this.answers.push({ node: node.core.self, at: r.at, ev: { type: 'lease', ...r.answer } });
        }
      }
    }
  }

  /** delivers the store answers due by now (a crashed node never gets its own) */
  private deliverAnswers(): void {
    const due = this.answers.filter((a) => a.at <= this.now);
    this.answers = this.answers.filter((a) => a.at > this.now);
    for (const a of due) this.feed(a.node, a.ev);
  }

  /** lets `ms` of simulated time pass in rounds of 100 ms, whatever changes (ticks, heartbeats, store) */
  run(ms: number, each?: () => void): void {
    for (let t = 0; t < ms; t += 100) {
      this.round();
      each?.();
    }
  }

  boot(n: string): void {
    const node = this.node(n);
    const peerName = n === 'node1' ? 'node2' : 'node1';
    this.add(n, peerName, node.persisted);
    this.node(n).crashed = false;
    this.node(n).failing = node.failing;
    this.feed(n, { type: 'boot' });
  }

  crash(n: string): void {
    const node = this.node(n);
    node.crashed = true;
    node.pending = [];
    this.answers = this.answers.filter((a) => a.node !== n);
  }

  command(n: string, command: Command): { ok: boolean; message: string } {
    this.feed(n, { type: 'command', command });
    return this.node(n).replies.at(-1)!;
  }

  /** completes the node's queued transitions, failing on a configured failing script */
  runTransitions(n: string): void {
    const node = this.node(n);
    while (node.pending.length > 0 && !node.crashed) {
      const t = node.pending.shift()!;
      const bad = t.steps.find((s: Step) => s.type === 'script' && !s.stop && node.failing.has(s.script));
      if (bad) {
        node.pending = [];
        this.feed(n, { type: 'transitionDone', id: t.id, ok: false, detail: `${(bad as { script: string }).script} exited 1` });
      } else {
        node.done.push(t);
        this.feed(n, { type: 'transitionDone', id: t.id, ok: true, detail: '' });
      }
    }
  }

  private lastSeen = new Map<string, string>();

  /** one round of heartbeats in both directions (if the link is up) */
  exchange(): void {
    for (const [a, b] of [['node1', 'node2'], ['node2', 'node1']]) {
      const from = this.node(a);
      const to = this.node(b);
      if (to.crashed) continue;
      if (this.link && !from.crashed) {
        const view = peerViewOf(from.core);
        const key = JSON.stringify(view);
        if (this.lastSeen.get(b) !== key || !to.core.peerAlive) {
          this.lastSeen.set(b, key);
          this.feed(b, { type: 'peer', peer: view });
        }
      } else if (to.core.peerAlive || !to.core.peerGone) {
        this.lastSeen.delete(b);
        this.feed(b, { type: 'peerLost', node: a });
      }
    }
  }

  /** replication connects when one side is primary and the other secondary and the link is up */
  replicate(): void {
    const [n1, n2] = [this.node('node1'), this.node('node2')];
    for (const [p, s] of [[n1, n2], [n2, n1]]) {
      if (p.crashed || s.crashed || !this.link || !this.replicationUp) continue;
      const primary = p.core.state === 'ALONE' || p.core.state === 'PRIM';
      if (primary && s.core.state === 'SECOND' && s.core.busy === 0 && p.core.busy === 0) {
        if (!s.core.synced) this.feed(s.core.self, { type: 'replication', status: 'synced', reason: '' });
        if (!p.core.synced) this.feed(p.core.self, { type: 'replication', status: 'synced', reason: '' });
      }
    }
  }

  /** runs everything until nothing changes (bounded) */
  settle(rounds = 20): void {
    for (let i = 0; i < rounds; i++) {
      const before = this.snapshot();
      this.round();
      if (this.snapshot() === before) return;
    }
  }

  private round(): void {
    for (const n of this.nodes.keys()) this.runTransitions(n);
    this.exchange();
    this.replicate();
    this.deliverAnswers();
    this.now += 100;
    for (const n of this.nodes.keys()) this.feed(n, { type: 'tick' });
  }

  private snapshot(): string {
    return JSON.stringify([...this.nodes.values()].map((n) => [n.crashed, n.core.state, n.core.target, n.core.busy, n.pending.length, n.core.synced, n.core.p, n.core.handover, n.core.peerAlive, n.core.lease.view, n.core.leaseWant]).concat([this.answers.length]));
  }
}

/** One core driven by hand: every event's actions collected, the state readable at any time. */
export function drive<C>(init: C, step: (c: C, ev: CoreEvent) => { state: C; actions: readonly Action[] }): { feed: (ev: CoreEvent) => void; readonly c: C; actions: Action[] } {
  let c = init;
  const actions: Action[] = [];
  return {
    feed: (ev) => {
      const r = step(c, ev);
      c = r.state;
      actions.push(...r.actions);
    },
    get c() {
      return c;
    },
    actions,
  };
}
