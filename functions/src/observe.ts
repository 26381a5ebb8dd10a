/**
 * What the nodes themselves say, read before any traffic is moved: each node's health URL (the same
 * ready.txt the load balancer probes, no credentials needed). An event is only a trigger; this is
 * what the function acts on, so a replayed or stale signed event cannot move traffic wrongly.
 */
import { readyUrl } from '../../node-service/src/contract/index.ts';
import type { ClusterConfig, ModuleConfig } from './config.ts';

export interface NodeReadiness {
  readonly node: string;
  readonly ready: boolean;
  /** 200, 404, or why the node could not be asked (refused, timeout) */
  readonly detail: string;
}

export async function observeReadiness(c: ClusterConfig, m: ModuleConfig, doFetch: typeof fetch, timeoutMs: number): Promise<NodeReadiness[]> {
  return Promise.all(
    c.nodes.map(async (n): Promise<NodeReadiness> => {
      try {
        const res = await doFetch(readyUrl(n.address, c.healthPort, m.name), { signal: AbortSignal.timeout(timeoutMs) });
        await res.arrayBuffer();
        return { node: n.name, ready: res.status === 200, detail: String(res.status) };
      } catch (err) {
        return { node: n.name, ready: false, detail: (err as Error).name === 'TimeoutError' ? 'timeout' : 'unreachable' };
      }
    }),
  );
}

/**
 * The nodes that should get traffic, from the observations: a farm's ready nodes; a mirror's single
 * ready node, none when none is ready; undefined when more than one mirror node claims to be
 * primary (split brain as the nodes report it: change nothing, raise the alarm).
 */
export function servingNodes(mode: ModuleConfig['mode'], seen: readonly NodeReadiness[]): string[] | undefined {
  const ready = seen.filter((s) => s.ready).map((s) => s.node);
  if (mode === 'mirror' && ready.length > 1) return undefined;
  return ready;
}
