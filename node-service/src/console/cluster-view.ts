import type { NodeFeed, NodeSnapshot } from './feed.ts';
import { type PeerTarget, watchPeer } from './peers.ts';

/** One node as the console shows it: its own snapshot, or why it does not answer. */
export interface NodeView {
  readonly node: string;
  readonly addr: string;
  readonly reachable: boolean;
  /** why the node does not answer (connection refused, timeout, token refused) */
  readonly error?: string;
  /** when it stopped answering (ISO time) */
  readonly since?: string;
  /** the node's snapshot; the last one it sent while it is unreachable */
  readonly snapshot?: NodeSnapshot;
}

export interface ClusterView {
  readonly cluster: string;
  /** the node serving this console (and relaying the others) */
  readonly via: string;
  readonly time: string;
  readonly nodes: readonly NodeView[];
}

/**
 * The whole cluster for one console session: this node from its feed, every peer from its own API's
 * watch stream, opened with the operator's token (each peer checks and logs the role itself).
 * Changes are coalesced for 20 ms so that one transition seen by two nodes is one update. Nodes are
 * listed in the config's order, whichever node serves the console.
 */
export function watchCluster(
  o: { cluster: string; self: { node: string; addr: string }; feed: NodeFeed; peers: readonly PeerTarget[]; token: string; order?: readonly string[] },
  onView: (v: ClusterView) => void,
): () => void {
  const nodes = new Map<string, NodeView>();
  nodes.set(o.self.node, { node: o.self.node, addr: o.self.addr, reachable: true });
  for (const p of o.peers) nodes.set(p.node, { node: p.node, addr: p.addr, reachable: false, error: 'connecting' });
  let pending: NodeJS.Timeout | undefined;
  const emit = () => {
    pending ??= setTimeout(() => {
      pending = undefined;
      const rank = (n: NodeView) => o.order?.indexOf(n.node) ?? 0;
      onView({ cluster: o.cluster, via: o.self.node, time: new Date().toISOString(), nodes: [...nodes.values()].sort((a, b) => rank(a) - rank(b)) });
    }, 20);
  };
  const unwatchSelf = o.feed.watch((snapshot) => {
    nodes.set(o.self.node, { node: o.self.node, addr: o.self.addr, reachable: true, snapshot });
    emit();
  });
  const watches = o.peers.map((p) =>
    watchPeer(
      p,
      o.token,
      (snapshot) => {
        nodes.set(p.node, { node: p.node, addr: p.addr, reachable: true, snapshot });
        emit();
      },
      (error) => {
        const before = nodes.get(p.node)!;
        if (!before.reachable && before.error === error) return;
        nodes.set(p.node, { ...before, reachable: false, error, since: before.reachable ? new Date().toISOString() : (before.since ?? new Date().toISOString()) });
        emit();
      },
    ),
  );
  return () => {
    clearTimeout(pending);
    unwatchSelf();
    for (const w of watches) w.stop();
  };
}
