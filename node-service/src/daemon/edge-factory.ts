import { join } from 'node:path';
import { createModuleHealth } from '../checkers/module-health.ts';
import { createCloudEventPoster, readCloudEventSecret } from '../cloud-events/index.ts';
import { datagramKeys, type KeyRing } from '../secure/keyring.ts';
import type { ClusterConfig, ModuleConfig, NodeConfig } from '../config/types.ts';
import { FarmEdge } from '../farm/index.ts';
import { HeartbeatMonitor } from '../heartbeat/monitor.ts';
import type { Logger } from '../log/logger.ts';
import type { Metrics } from '../metrics/metrics.ts';
import { createMirrorReplicator, type MirrorReplicator } from '../mirror/index.ts';
import { MirrorReplication } from './mirror-replication.ts';
import { createArbiter } from '../arbiter/index.ts';
import { monotonic } from '../clock.ts';
import type { Edge } from './module-runner.ts';
import { NoReplication, nullFarm, nullVip, type ReplicationPort } from './ports.ts';
import type { SharedWitnesses } from './shared-witness.ts';

export interface EdgeContext {
  readonly cluster: ClusterConfig;
  readonly module: ModuleConfig;
  readonly self: NodeConfig;
  /** the cluster secrets (secret_file, next_secret_file), reloadable while the daemon runs */
  readonly keys: KeyRing;
  readonly counterBase: number;
  readonly log: Logger;
  readonly metrics: Metrics;
  /** the daemon's witness questions, shared by the modules that list the same witnesses */
  readonly witnesses: SharedWitnesses;
}

/** Picks, for one module, the adapter of each capability it configures (a null one otherwise). */
export function createEdge(ctx: EdgeContext): Edge & { close(): Promise<void>; mirror?: MirrorReplicator } {
  const { cluster, module, self, log } = ctx;
  const peers = module.nodes.filter((n) => n !== self.name).map((n) => cluster.nodes.find((x) => x.name === n)!);
  const monitor = new HeartbeatMonitor({
    cluster: cluster.cluster,
    module: module.name,
    self,
    peers,
    // farm membership uses the farm port (contract), mirror heartbeats the heartbeat port
    port: module.mode === 'farm' ? module.ports.farm : module.ports.heartbeat,
    pulseMs: module.heartbeat.pulse,
    // sealed with a key of their own: farm membership and mirror heartbeats never share one
    keys: datagramKeys(ctx.keys, module.mode === 'farm' ? 'farm' : 'heartbeat', cluster.cluster, module.name),
    counterBase: ctx.counterBase,
    log,
    metrics: ctx.metrics,
  });
  const health = createModuleHealth(module, self.name, log);

  let replication: ReplicationPort = new NoReplication();
  let mirror: MirrorReplicator | undefined;
  if (module.mode === 'mirror' && module.replication) {
    mirror = createMirrorReplicator({ module, self, peer: peers[0], secret: ctx.keys.sending.secret, keys: ctx.keys, stateDir: join(cluster.state_dir, module.name, 'mirror'), log: log.child({ part: 'mirror' }) });
    replication = new MirrorReplication(mirror);
  }

  const poster = module.cloud_events
    ? createCloudEventPoster({ url: module.cloud_events.url, secret: readCloudEventSecret(module.cloud_events.secret_file), cluster: cluster.cluster, node: self.name, log: log.child({ part: 'cloud-events' }) })
    : undefined;

  const arbiter = module.arbiter ? createArbiter(module.arbiter, { cluster: cluster.cluster, module: module.name, node: self.name, log: log.child({ part: 'arbiter' }), now: monotonic }) : undefined;

  return {
    monitor,
    arbiter,
    vip: health.vip ?? nullVip,
    replication,
    farm: module.mode === 'farm' ? new FarmEdge({ module, self: self.name, log }) : nullFarm,
    startCheckers: (report) => health.startCheckers(report),
    witness: health.witness && ctx.witnesses.share(module, health.witness),
    notify: poster ? (e) => poster.publish(e) : undefined,
    ...(mirror ? { mirror } : {}),
    close: async () => {
      await poster?.close();
      await arbiter?.close();
    },
  };
}
