/**
 * Builds an adapter's `desired` from a validated cluster.yaml (the node service's own config), so the
 * cloud side is derived from the same file the daemons run with: module name and mode, api.port as the
 * health port, the module's nodes with their first address. Cloud-only facts (instance ids, zones)
 * come in `extra`, keyed by node name.
 *
 *   const cfg = loadConfig('/etc/vigil/cluster.yaml');
 *   const desired = desiredFromCluster(cfg, 'mirror', { targetGroupName: 'vigil-mirror', vpcId, port: 5432 },
 *                                      { node1: { instanceId: 'i-0aaa' }, node2: { instanceId: 'i-0bbb' } });
 */
import type { ClusterConfig } from '../../node-service/src/config/types.ts';
import { CloudAdapterError, type ClusterTarget, type Desired, type DesiredNode } from './types.ts';

/** The one builder of a Desired: the cluster's target, its cloud resources, what was observed. */
export function desiredOf<R>(target: ClusterTarget, resources: R, serving?: readonly string[]): Desired<R> {
  return {
    cluster: target.cluster,
    module: target.module,
    mode: target.mode,
    healthPort: target.healthPort,
    nodes: target.nodes.map((n) => ({ name: n.name, address: n.address, ...(n.instanceId ? { instanceId: n.instanceId } : {}), ...(n.zone ? { zone: n.zone } : {}) })),
    resources,
    ...(serving ? { serving } : {}),
  };
}

export function desiredFromCluster<R>(
  cfg: ClusterConfig,
  module: string,
  resources: R,
  extra: Readonly<Record<string, Partial<Pick<DesiredNode, 'instanceId' | 'zone' | 'address'>>>> = {},
): Desired<R> {
  const m = cfg.modules.find((x) => x.name === module);
  if (!m) throw new CloudAdapterError(`${cfg.file}: no module "${module}" (modules: ${cfg.modules.map((x) => x.name).join(', ')})`);
  const nodes = m.nodes.map((name) => {
    const n = cfg.nodes.find((x) => x.name === name);
    if (!n) throw new CloudAdapterError(`${cfg.file}: module "${module}" runs on unknown node "${name}"`);
    const more = extra[name] ?? {};
    return { name, address: more.address ?? n.addrs[0], instanceId: more.instanceId, zone: more.zone };
  });
  return desiredOf({ cluster: cfg.cluster, module: m.name, mode: m.mode, healthPort: cfg.api.port, nodes }, resources);
}
