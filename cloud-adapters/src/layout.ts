/**
 * How a Vigil module is laid out on each cloud's load balancer: resource names, pool kind, which
 * nodes are primary or failover backends, and who registers targets. infra (CDK, ARM, Terraform)
 * builds its templates from these functions and the adapters reconcile against the same ones, so a
 * reconcile right after a deploy has nothing to change, and re-applying a template undoes no
 * reconcile (test/unit/cloud-deploy-plan.test.ts).
 */
import type { ModuleMode } from '../../node-service/src/contract/index.ts';

/**
 * AWS. An NLB "fails open": when no registered target is healthy it sends traffic to all of them. For
 * a mirror that would put writes on the secondary, so only the node observed primary is registered
 * (by the function: on each node event and each scheduled reconcile). The template registers no
 * target of a mirror; a farm's template registers every node (failing open to UP-or-not farm nodes
 * is the availability the farm asks for).
 */
export function awsTemplateRegistersTargets(mode: ModuleMode): boolean {
  return mode === 'farm';
}

/** Azure: names inside the load balancer. One IP-based backend pool per module (never NIC-based). */
export function azureNames(cluster: string, module: string) {
  return {
    loadBalancer: `${cluster}-lb`,
    frontend: 'vip',
    backendPool: `${module}-nodes`,
    probe: `${module}-ready`,
    rule: (protocol: 'Tcp' | 'Udp' | 'All', frontendPort: number) => `${module}-${protocol.toLowerCase()}-${frontendPort}`,
  };
}

/** GCP: resource names (all per cluster, so several clusters coexist in one project). */
export function gcpNames(cluster: string, module: string) {
  return {
    backendService: `${cluster}-${module}`,
    healthCheck: `${cluster}-${module}-ready`,
    firewallRule: `${cluster}-health-probes`,
    targetTag: `${cluster}-node`,
    instance: (node: string) => `${cluster}-${node}`,
    instanceGroup: (node: string) => `${cluster}-${node}`,
  };
}

/**
 * GCP backends of a module, in node order: a mirror's first node is the primary backend and the
 * others failover backends (with `dropTrafficIfUnhealthy`, traffic goes to whichever is healthy and
 * never to an unhealthy one); a farm has only primary backends.
 */
export function gcpBackendRoles(mode: ModuleMode, nodes: readonly string[]): { node: string; failover: boolean }[] {
  return nodes.map((node, i) => ({ node, failover: mode === 'mirror' && i > 0 }));
}
