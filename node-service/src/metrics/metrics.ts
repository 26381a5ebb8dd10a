import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import { buildInfo } from '../version.ts';

/** Every metric the daemon exports on GET /metrics, in one registry per daemon. */
export class Metrics {
  readonly registry = new Registry();
  readonly moduleState = new Gauge({ name: 'vigil_module_state', help: '1 for the current state of each module', labelNames: ['module', 'state'], registers: [this.registry] });
  readonly ready = new Gauge({ name: 'vigil_module_ready', help: '1 when ready.txt answers 200', labelNames: ['module'], registers: [this.registry] });
  readonly transitions = new Counter({ name: 'vigil_transitions_total', help: 'state transitions', labelNames: ['module', 'from', 'to'], registers: [this.registry] });
  readonly heartbeatsReceived = new Counter({ name: 'vigil_heartbeats_received_total', help: 'valid heartbeats received', labelNames: ['module', 'peer', 'net'], registers: [this.registry] });
  readonly heartbeatsDropped = new Counter({ name: 'vigil_heartbeats_dropped_total', help: 'heartbeats dropped (bad_mac, malformed, replay, unknown_node, wrong_cluster, wrong_module)', labelNames: ['module', 'reason'], registers: [this.registry] });
  readonly peerLost = new Counter({ name: 'vigil_peer_lost_total', help: 'times a peer was declared lost', labelNames: ['module', 'peer'], registers: [this.registry] });
  readonly peerAlive = new Gauge({ name: 'vigil_peer_alive', help: '1 while heartbeats from the peer arrive', labelNames: ['module', 'peer'], registers: [this.registry] });
  readonly scriptRuns = new Counter({ name: 'vigil_script_runs_total', help: 'script runs by result', labelNames: ['module', 'script', 'result'], registers: [this.registry] });
  readonly scriptSeconds = new Histogram({ name: 'vigil_script_duration_seconds', help: 'script run time', labelNames: ['module', 'script'], buckets: [0.01, 0.1, 0.5, 1, 5, 30, 120], registers: [this.registry] });
  readonly loopLag = new Gauge({ name: 'vigil_event_loop_lag_seconds', help: 'how late the daemon loop ran at the last check (liveness of the daemon itself)', registers: [this.registry] });
  readonly checkerUp = new Gauge({ name: 'vigil_checker_up', help: '1 when a checker reports up', labelNames: ['module', 'checker'], registers: [this.registry] });

  /** always 1; the labels say which build runs (Prometheus' *_build_info convention) */
  readonly buildInfo = new Gauge({ name: 'vigil_build_info', help: 'the running build: version and Node.js', labelNames: ['version', 'node'], registers: [this.registry] });

  // For the dashboards and alert rules (node-service/monitoring/). The replication and farm series are
  // read from the module statuses when Prometheus scrapes (observeStatuses), so they cost nothing between scrapes.
  readonly nodeInfo = new Gauge({ name: 'vigil_node_info', help: 'always 1: the cluster and node names of this daemon (join on instance)', labelNames: ['cluster', 'node'], registers: [this.registry] });
  readonly replicationInSync = new Gauge({ name: 'vigil_replication_in_sync', help: 'mirror: 1 when this node is PRIM (its secondary is synchronous) or an in-sync SECOND, else 0', labelNames: ['module'], registers: [this.registry], collect: () => this.sampleStatuses() });
  readonly replicationBehind = new Gauge({ name: 'vigil_replication_behind_bytes', help: 'mirror: bytes the secondary lacks (changes tracked while ALONE, or what the running resync has left); 0 when in sync', labelNames: ['module'], registers: [this.registry], collect: () => this.sampleStatuses() });
  readonly resyncDone = new Gauge({ name: 'vigil_resync_done_bytes', help: 'mirror: bytes copied by the running resync', labelNames: ['module'], registers: [this.registry], collect: () => this.sampleStatuses() });
  readonly resyncSize = new Gauge({ name: 'vigil_resync_size_bytes', help: 'mirror: bytes the running resync copies in all', labelNames: ['module'], registers: [this.registry], collect: () => this.sampleStatuses() });
  readonly resyncRate = new Gauge({ name: 'vigil_resync_rate_bytes_per_second', help: 'mirror: current resync rate', labelNames: ['module'], registers: [this.registry], collect: () => this.sampleStatuses() });
  readonly resyncEta = new Gauge({ name: 'vigil_resync_eta_seconds', help: 'mirror: estimated time left in the running resync', labelNames: ['module'], registers: [this.registry], collect: () => this.sampleStatuses() });
  readonly farmBuckets = new Gauge({ name: 'vigil_farm_buckets', help: 'farm: hash buckets (of 256) each node owns, as this node sees it', labelNames: ['module', 'node'], registers: [this.registry], collect: () => this.sampleStatuses() });
  readonly failoverSeconds = new Histogram({ name: 'vigil_failover_duration_seconds', help: 'mirror takeover: from the peer declared lost (heartbeat timeout elapsed) to this node serving ALONE', labelNames: ['module'], buckets: [0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60], registers: [this.registry] });
  readonly transitionSeconds = new Histogram({ name: 'vigil_transition_duration_seconds', help: 'a transition from its first step to its last (scripts, VIP, replication)', labelNames: ['module', 'from', 'to'], buckets: [0.01, 0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 120], registers: [this.registry] });

  // The arbiter lease (issue 16): alert on lease_held summed over both nodes being 0 (nobody serves) or on reachable 0.
  readonly arbiterLeaseHeld = new Gauge({ name: 'vigil_arbiter_lease_held', help: 'mirror with an arbiter: 1 while this node holds the lease and may serve as primary', labelNames: ['module'], registers: [this.registry] });
  readonly arbiterReachable = new Gauge({ name: 'vigil_arbiter_reachable', help: 'mirror with an arbiter: 0 when the last claim got no answer from the store (with both nodes at 0, nobody serves)', labelNames: ['module'], registers: [this.registry] });
  readonly arbiterClaims = new Counter({ name: 'vigil_arbiter_claims_total', help: 'lease claims and renewals by outcome (held, taken, fenced, unreachable)', labelNames: ['module', 'outcome'], registers: [this.registry] });

  private statuses: () => readonly StatusForMetrics[] = () => [];
  private sampledAt = -Infinity;
  private readonly lostAt = new Map<string, number>();

  constructor() {
    collectDefaultMetrics({ register: this.registry, prefix: 'vigil_process_' });
    const b = buildInfo();
    this.buildInfo.set({ version: b.version, node: b.node }, 1);
  }

  /** where the status-derived series come from (the daemon's module runners) */
  observeStatuses(cluster: string, node: string, statuses: () => readonly StatusForMetrics[]): void {
    this.nodeInfo.set({ cluster, node }, 1);
    this.statuses = statuses;
  }

  /** a peer was declared lost: a failover, if one follows, is timed from here */
  peerLostAt(module: string, nowMs: number): void {
    this.lostAt.set(module, nowMs);
  }

  /**
   * A published state change. A failover is a node that was not serving (SECOND, or WAIT on the way)
   * becoming ALONE after its peer was lost; a primary that merely loses its secondary is no failover.
   */
  stateChanged(module: string, from: string, to: string, nowMs: number): void {
    const lost = this.lostAt.get(module);
    if (lost === undefined) return;
    if (to === 'ALONE' && (from === 'SECOND' || from === 'WAIT')) this.failoverSeconds.observe({ module }, (nowMs - lost) / 1000);
    if (to !== 'SECOND' && to !== 'WAIT') this.lostAt.delete(module);
  }

  private sampleStatuses(): void {
    const now = performance.now();
    if (now - this.sampledAt < 100) return; // one reading per scrape for all the gauges above
    this.sampledAt = now;
    for (const g of [this.replicationInSync, this.replicationBehind, this.resyncDone, this.resyncSize, this.resyncRate, this.resyncEta, this.farmBuckets]) g.reset();
    for (const s of this.statuses()) {
      const module = s.module;
      if (s.mode === 'farm') {
        for (const [node, buckets] of Object.entries(s.buckets ?? {})) this.farmBuckets.set({ module, node }, buckets.length);
        continue;
      }
      const r = s.resync as { bytesDone?: number; bytesTotal?: number; rateBps?: number; etaS?: number; trackedBytes?: number };
      this.replicationInSync.set({ module }, s.state === 'PRIM' || (s.state === 'SECOND' && s.inSync) ? 1 : 0);
      const resyncing = (r.bytesTotal ?? 0) > 0;
      if (resyncing) {
        this.resyncDone.set({ module }, r.bytesDone ?? 0);
        this.resyncSize.set({ module }, r.bytesTotal!);
        this.resyncRate.set({ module }, r.rateBps ?? 0);
        this.resyncEta.set({ module }, r.etaS ?? 0);
      }
      const behind = resyncing ? r.bytesTotal! - (r.bytesDone ?? 0) : s.state === 'ALONE' ? (r.trackedBytes ?? 0) : 0;
      this.replicationBehind.set({ module }, behind);
    }
  }
}

/** the part of a module's status the derived series read */
export interface StatusForMetrics {
  readonly module: string;
  readonly mode: 'mirror' | 'farm';
  readonly state: string;
  readonly inSync: boolean;
  readonly resync: Record<string, unknown>;
  readonly buckets?: Record<string, number[]>;
}
