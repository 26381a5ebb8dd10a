import type { ClusterConfig, ModuleConfig, NodeConfig } from '../config/types.ts';
import type { Secret } from '../config/secret.ts';
import { HeartbeatMonitor } from '../heartbeat/monitor.ts';
import type { Logger } from '../log/logger.ts';
import type { Metrics } from '../metrics/metrics.ts';
import type { Edge } from './module-runner.ts';
import { NoReplication, nullFarm, nullVip } from './ports.ts';

export interface EdgeContext {
  readonly cluster: ClusterConfig;
  readonly module: ModuleConfig;
  readonly self: NodeConfig;
  readonly secret: Secret;
  readonly counterBase: number;
  readonly log: Logger;
  readonly metrics: Metrics;
}

/** Picks, for one module, the adapter of each capability it configures (a null one otherwise). */
export function createEdge(ctx: EdgeContext): Edge {
  const { cluster, module, self } = ctx;
  const peers = module.nodes.filter((n) => n !== self.name).map((n) => cluster.nodes.find((x) => x.name === n)!);
  const monitor = new HeartbeatMonitor({
    cluster: cluster.cluster,
    module: module.name,
    self,
    peers,
    // farm membership uses the farm port (contract), mirror heartbeats the heartbeat port
    port: module.mode === 'farm' ? module.ports.farm : module.ports.heartbeat,
    pulseMs: module.heartbeat.pulse,
    timeoutMs: module.heartbeat.timeout,
    key: ctx.secret.key,
    counterBase: ctx.counterBase,
    log: ctx.log,
    metrics: ctx.metrics,
  });
  return {
    monitor,
    vip: nullVip,
    replication: new NoReplication(),
    farm: nullFarm,
    startCheckers: () => () => {},
  };
}
