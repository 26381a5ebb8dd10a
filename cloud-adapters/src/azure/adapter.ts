/**
 * Azure Load Balancer (Standard SKU): an IP-based backend pool holding the nodes, an Http probe on the
 * node service's ready.txt, and load-balancing rules that reference both. The load balancer and its
 * frontend IP configuration belong to infra (ARM/Bicep/CDK); this adapter owns the pool's addresses,
 * the probe and the rules.
 *
 * Probes and rules are children of the load balancer resource: ARM has no PUT for them alone, so they
 * are written by a PUT of the whole load balancer, re-read just before (apply) so that concurrent
 * changes to other children (NAT rules, outbound rules, other pools) are kept.
 * drain(node) sets the node's backend address `adminState: Down` (overrides the probe: no new flows;
 * established flows are NOT reset, they continue until they end or idle out); restore(node) and every
 * reconcile set it back to `None` (the probe decides), as the template does.
 *
 * The pool is IP-based (addresses + virtual network), as infra/azure builds it: a pool cannot mix
 * IP-based and NIC-based members, and NIC-based members are not managed through pool operations.
 * Fail-open: a mirror's probe has `noHealthyBackendsBehavior: AllProbedDown`, so with no healthy
 * backend the load balancer sends nothing anywhere.
 */
import type { BackendAddressPool, LoadBalancer, LoadBalancerBackendAddress, LoadBalancingRule, NetworkManagementClient, Probe } from '@azure/arm-network';
import { azureNames } from '../layout.ts';
import { probeSettings } from '../probe-settings.ts';
import type { AzureResources, AzureRule } from '../resources.ts';

export type { AzureResources, AzureRule } from '../resources.ts';
import { CloudAdapterError, fieldDiff, type ApplyResult, type Change, type CloudAdapter, type Desired, type HealthState, type Observation, type Plan } from '../types.ts';

export interface AzureAdapterOptions {
  /** LRO polling interval, ms (tests use a few ms) @default 2000 */
  readonly pollIntervalMs?: number;
}

const ruleName = (d: Desired<AzureResources>, r: AzureRule) => r.name ?? azureNames(d.cluster, d.module).rule(r.protocol ?? 'Tcp', r.frontendPort);
const probeName = (d: Desired<AzureResources>) => d.resources.probeName ?? azureNames(d.cluster, d.module).probe;

function ids(d: Desired<AzureResources>) {
  const r = d.resources;
  const lb = `/subscriptions/${r.subscriptionId}/resourceGroups/${r.resourceGroup}/providers/Microsoft.Network/loadBalancers/${r.loadBalancer}`;
  return {
    lb,
    frontend: `${lb}/frontendIPConfigurations/${r.frontendIpConfiguration}`,
    pool: `${lb}/backendAddressPools/${r.backendPool}`,
    probe: `${lb}/probes/${probeName(d)}`,
  };
}

function desiredProbe(d: Desired<AzureResources>): Probe {
  const s = probeSettings({ module: d.module, mode: d.mode, healthPort: d.healthPort }).azure;
  return {
    name: probeName(d),
    protocol: s.protocol,
    port: s.port,
    requestPath: s.requestPath,
    intervalInSeconds: s.intervalInSeconds,
    probeThreshold: s.probeThreshold,
    noHealthyBackendsBehavior: s.noHealthyBackendsBehavior,
  };
}

function desiredRules(d: Desired<AzureResources>): LoadBalancingRule[] {
  const i = ids(d);
  return d.resources.rules.map((r) => ({
    name: ruleName(d, r),
    frontendIPConfiguration: { id: i.frontend },
    backendAddressPool: { id: i.pool },
    probe: { id: i.probe },
    protocol: r.protocol ?? 'Tcp',
    frontendPort: r.frontendPort,
    backendPort: r.backendPort,
    // a mirror's clients must see a failover as a reset, not as a silent hang until their own timeout
    enableTcpReset: true,
    enableFloatingIP: false,
    loadDistribution: 'Default',
    idleTimeoutInMinutes: 4,
    // outbound goes through the NAT gateway (infra/azure), never through the load balancer's frontend
    disableOutboundSnat: true,
  }));
}

function desiredAddresses(d: Desired<AzureResources>, down: ReadonlySet<string> = new Set()): LoadBalancerBackendAddress[] {
  return d.nodes.map((n) => ({
    name: n.name,
    ipAddress: n.address,
    virtualNetwork: { id: d.resources.virtualNetworkId },
    adminState: down.has(n.name) ? 'Down' : 'None',
  }));
}

const PROBE_FIELDS = ['protocol', 'port', 'requestPath', 'intervalInSeconds', 'probeThreshold', 'noHealthyBackendsBehavior'] as const;
const RULE_FIELDS = ['protocol', 'frontendPort', 'backendPort', 'enableTcpReset', 'enableFloatingIP', 'loadDistribution', 'idleTimeoutInMinutes', 'disableOutboundSnat'] as const;
const sameId = (a: { id?: string } | undefined, b: { id?: string } | undefined) => (a?.id ?? '').toLowerCase() === (b?.id ?? '').toLowerCase();

function addressKey(a: LoadBalancerBackendAddress): string {
  return `${a.name}|${a.ipAddress}|${(a.virtualNetwork?.id ?? '').toLowerCase()}|${a.adminState && a.adminState !== 'None' ? a.adminState : 'None'}`;
}

function isNotFound(err: unknown): boolean {
  return (err as { statusCode?: number })?.statusCode === 404;
}

export class AzureLoadBalancerAdapter implements CloudAdapter<AzureResources> {
  readonly cloud = 'azure' as const;
  private readonly poll: { updateIntervalInMs: number };

  constructor(private readonly client: NetworkManagementClient, readonly desired: Desired<AzureResources>, opts: AzureAdapterOptions = {}) {
    this.poll = { updateIntervalInMs: opts.pollIntervalMs ?? 2000 };
  }

  private async getPool(d: Desired<AzureResources>): Promise<BackendAddressPool | undefined> {
    try {
      return await this.client.loadBalancerBackendAddressPools.get(d.resources.resourceGroup, d.resources.loadBalancer, d.resources.backendPool);
    } catch (err) {
      if (isNotFound(err)) return undefined;
      throw err;
    }
  }

  async plan(desired: Desired<AzureResources> = this.desired): Promise<Plan> {
    const r = desired.resources;
    const changes: Change[] = [];
    let lb: LoadBalancer;
    try {
      lb = await this.client.loadBalancers.get(r.resourceGroup, r.loadBalancer);
    } catch (err) {
      if (isNotFound(err)) throw new CloudAdapterError(`load balancer ${r.resourceGroup}/${r.loadBalancer} does not exist (it is created by infra)`);
      throw err;
    }
    if (!lb.frontendIPConfigurations?.some((f) => f.name === r.frontendIpConfiguration)) {
      throw new CloudAdapterError(`load balancer ${r.loadBalancer} has no frontend IP configuration "${r.frontendIpConfiguration}"`);
    }

    // 1. the pool (its own PUT, before the rules that reference it)
    const pool = await this.getPool(desired);
    const wantAddrs = desiredAddresses(desired);
    const haveAddrs = pool?.loadBalancerBackendAddresses ?? [];
    const haveKeys = new Set(haveAddrs.map(addressKey));
    const wantKeys = new Set(wantAddrs.map(addressKey));
    if (!pool || haveKeys.size !== wantKeys.size || [...wantKeys].some((k) => !haveKeys.has(k))) {
      const diff = [
        ...wantAddrs.filter((a) => !haveKeys.has(addressKey(a))).map((a) => `+ ${a.name} ${a.ipAddress} (adminState None)`),
        ...haveAddrs.filter((a) => !wantKeys.has(addressKey(a))).map((a) => `- ${a.name} ${a.ipAddress}${a.adminState && a.adminState !== 'None' ? ` (adminState ${a.adminState})` : ''}`),
      ];
      changes.push({
        action: pool ? 'update' : 'create',
        resource: `azure backend pool ${r.loadBalancer}/${r.backendPool}`,
        diff,
        request: { operation: 'PutBackendAddressPool', input: { name: r.backendPool, loadBalancerBackendAddresses: wantAddrs } },
      });
    }

    // 2. probe and rules (one PUT of the load balancer)
    const diff: string[] = [];
    const want = desiredProbe(desired);
    const probe = lb.probes?.find((p) => p.name === want.name);
    if (!probe) diff.push(`+ probe ${want.name}: ${want.protocol}:${want.port}${want.requestPath} every ${want.intervalInSeconds}s, threshold ${want.probeThreshold}, ${want.noHealthyBackendsBehavior}`);
    else for (const f of PROBE_FIELDS) if (probe[f] !== want[f]) diff.push(`probe ${want.name} ${fieldDiff(f, probe[f], want[f])}`);
    const wantRules = desiredRules(desired);
    for (const w of wantRules) {
      const have = lb.loadBalancingRules?.find((x) => x.name === w.name);
      if (!have) {
        diff.push(`+ rule ${w.name}: ${w.protocol} ${w.frontendPort} -> ${w.backendPort} via probe ${want.name}`);
        continue;
      }
      for (const f of RULE_FIELDS) if (have[f] !== w[f]) diff.push(`rule ${w.name} ${fieldDiff(f, have[f], w[f])}`);
      for (const ref of ['frontendIPConfiguration', 'backendAddressPool', 'probe'] as const) {
        if (!sameId(have[ref], w[ref])) diff.push(`rule ${w.name} ${fieldDiff(ref, have[ref]?.id, w[ref]?.id)}`);
      }
    }
    if (diff.length > 0) {
      changes.push({
        action: 'update',
        resource: `azure load balancer ${r.loadBalancer}`,
        diff,
        request: { operation: 'PutLoadBalancer', input: { probe: want, rules: wantRules } },
      });
    }
    return { cloud: 'azure', cluster: desired.cluster, module: desired.module, changes };
  }

  async apply(plan: Plan): Promise<ApplyResult> {
    const r = this.desired.resources;
    const applied: Change[] = [];
    for (const c of plan.changes) {
      switch (c.request.operation) {
        case 'PutBackendAddressPool': {
          const input = c.request.input as BackendAddressPool;
          await this.client.loadBalancerBackendAddressPools.beginCreateOrUpdateAndWait(r.resourceGroup, r.loadBalancer, r.backendPool, input, this.poll);
          break;
        }
        case 'PutLoadBalancer': {
          const { probe, rules } = c.request.input as { probe: Probe; rules: LoadBalancingRule[] };
          // re-read: the pool PUT above changed the load balancer, and others may have too
          const lb = await this.client.loadBalancers.get(r.resourceGroup, r.loadBalancer);
          const names = new Set(rules.map((x) => x.name));
          const body: LoadBalancer = {
            ...lb,
            probes: [...(lb.probes ?? []).filter((p) => p.name !== probe.name), probe],
            loadBalancingRules: [...(lb.loadBalancingRules ?? []).filter((x) => !names.has(x.name)), ...rules],
          };
          await this.client.loadBalancers.beginCreateOrUpdateAndWait(r.resourceGroup, r.loadBalancer, body, this.poll);
          break;
        }
        default:
          throw new CloudAdapterError(`unknown Azure operation ${c.request.operation}`);
      }
      applied.push(c);
    }
    return { applied };
  }

  async observe(): Promise<Observation> {
    const d = this.desired;
    const r = d.resources;
    const rule = ruleName(d, r.rules[0]);
    const health = await this.client.loadBalancerLoadBalancingRules.beginHealthAndWait(r.resourceGroup, r.loadBalancer, rule, this.poll);
    return {
      cloud: 'azure',
      cluster: d.cluster,
      module: d.module,
      targets: (health.loadBalancerBackendAddresses ?? []).map((a) => {
        const node = d.nodes.find((n) => n.address === a.ipAddress);
        const s = (a.state ?? '').toLowerCase();
        const state: HealthState = s === 'up' ? 'healthy' : s === 'down' ? 'unhealthy' : 'unknown';
        return { node: node?.name ?? a.ipAddress ?? '?', target: a.ipAddress ?? a.networkInterfaceIPConfigurationId ?? '?', state, ...(a.reason ? { detail: a.reason } : {}) };
      }),
    };
  }

  private async setAdminState(node: string, state: 'Down' | 'None'): Promise<ApplyResult> {
    const d = this.desired;
    const r = d.resources;
    const n = d.nodes.find((x) => x.name === node);
    if (!n) throw new CloudAdapterError(`unknown node ${node}`);
    const pool = await this.getPool(d);
    const addrs = [...(pool?.loadBalancerBackendAddresses ?? [])];
    const i = addrs.findIndex((a) => a.name === node || a.ipAddress === n.address);
    const entry: LoadBalancerBackendAddress = { name: n.name, ipAddress: n.address, virtualNetwork: { id: r.virtualNetworkId }, adminState: state };
    if (i >= 0) {
      if ((addrs[i].adminState ?? 'None') === state) return { applied: [] };
      addrs[i] = { ...addrs[i], adminState: state };
    } else addrs.push(entry);
    const input: BackendAddressPool = { name: r.backendPool, loadBalancerBackendAddresses: addrs.map(({ name, ipAddress, virtualNetwork, subnet, adminState }) => ({ name, ipAddress, virtualNetwork, subnet, adminState })) };
    await this.client.loadBalancerBackendAddressPools.beginCreateOrUpdateAndWait(r.resourceGroup, r.loadBalancer, r.backendPool, input, this.poll);
    const change: Change = {
      action: state === 'Down' ? 'deregister' : 'register',
      resource: `azure backend pool ${r.loadBalancer}/${r.backendPool}`,
      diff: [`${node} ${n.address} adminState -> ${state}`],
      request: { operation: 'PutBackendAddressPool', input },
    };
    return { applied: [change] };
  }

  drain(node: string): Promise<ApplyResult> {
    return this.setAdminState(node, 'Down');
  }

  restore(node: string): Promise<ApplyResult> {
    return this.setAdminState(node, 'None');
  }
}
