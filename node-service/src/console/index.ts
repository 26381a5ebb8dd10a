import { readFileSync } from 'node:fs';
import type { ClusterConfig, NodeConfig } from '../config/types.ts';
import type { ModuleRunner } from '../daemon/module-runner.ts';
import { NodeFeed } from './feed.ts';
import type { PeerTarget } from './peers.ts';

export { consoleApp } from './routes.ts';
export { registerNodeRoutes } from './node-routes.ts';

/** What the API needs to serve the console and the routes it relays: built once by the daemon. */
export interface ConsoleSetup {
  readonly feed: NodeFeed;
  readonly config: ClusterConfig;
  readonly self: { readonly node: string; readonly addr: string };
  readonly peers: readonly PeerTarget[];
  /** node names in the config's order (the console lists them so on every node) */
  readonly order: readonly string[];
  readonly secure: boolean;
}

/**
 * Peers are reached on their first address at the cluster's API port, over HTTPS when api.tls is
 * set, trusting api.tls.ca or else this node's own certificate (the pair `vigil tls selfsigned`
 * makes is copied to every node, like the config).
 */
export function consoleSetup(config: ClusterConfig, self: NodeConfig, runners: ReadonlyMap<string, ModuleRunner>): ConsoleSetup {
  const tls = config.api.tls;
  const ca = tls ? readFileSync(tls.ca ?? tls.cert) : undefined;
  const vips = Object.fromEntries(config.modules.map((m) => [m.name, m.vip.map((v) => v.addr)]));
  const checkers = Object.fromEntries(config.modules.map((m) => [m.name, m.checkers.map((c, i) => c.name ?? `${c.type}${i}`)]));
  const addrOf = (n: NodeConfig) => (n.name === self.name ? (config.api.listen ?? n.addrs)[0] : n.addrs[0]);
  return {
    feed: new NodeFeed(self.name, config.cluster, runners, vips, checkers),
    config,
    self: { node: self.name, addr: addrOf(self) },
    peers: config.nodes.filter((n) => n.name !== self.name).map((n) => ({ node: n.name, addr: addrOf(n), port: config.api.port, ca })),
    order: config.nodes.map((n) => n.name),
    secure: tls !== undefined,
  };
}
