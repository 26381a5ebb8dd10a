import { networkInterfaces } from 'node:os';
import type { ClusterConfig, NodeConfig } from './types.ts';

/** Picks this node's entry: by name, or the one whose address is configured on this host. */
export function selectNode(config: ClusterConfig, name?: string): NodeConfig {
  if (name !== undefined) {
    const n = config.nodes.find((x) => x.name === name);
    if (!n) throw new Error(`node "${name}" is not in ${config.file} (nodes: ${config.nodes.map((x) => x.name).join(', ')})`);
    return n;
  }
  const local = new Set(Object.values(networkInterfaces()).flatMap((l) => (l ?? []).map((a) => a.address)));
  const mine = config.nodes.filter((n) => n.addrs.some((a) => local.has(a)));
  if (mine.length === 1) return mine[0];
  if (mine.length === 0) throw new Error(`no node of ${config.file} has an address on this host: pass --node NAME`);
  throw new Error(`several nodes of ${config.file} have addresses on this host (${mine.map((n) => n.name).join(', ')}): pass --node NAME`);
}
