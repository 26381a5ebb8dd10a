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

  constructor() {
    collectDefaultMetrics({ register: this.registry, prefix: 'vigil_process_' });
    const b = buildInfo();
    this.buildInfo.set({ version: b.version, node: b.node }, 1);
  }
}
