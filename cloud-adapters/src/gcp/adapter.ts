/**
 * GCP internal passthrough Network Load Balancer: a regional backend service (INTERNAL, TCP/UDP) with one
 * unmanaged instance group per node, a regional HTTP health check on the node service's ready.txt, and
 * a firewall rule admitting Google's probe ranges on the health port. The forwarding rule (the
 * "virtual IP") belongs to infra. Mirror: node 1's group is the primary backend, the others are failover
 * backends (layout.ts, as the Terraform has them), the failover policy drops traffic when no backend
 * is healthy (no "fail open" to a secondary), and connection tracking never keeps a flow on an
 * unhealthy backend (`NEVER_PERSIST`: the demoted primary's connections move and are reset).
 * drain(node) removes the VM from its instance group; restore(node) adds it back.
 * Every write is a Compute long-running operation, polled to DONE (regional, global or zonal).
 */
import type { protos } from '@google-cloud/compute';
import { gcpBackendRoles } from '../layout.ts';
import { probeSettings } from '../probe-settings.ts';
import type { GcpResources } from '../resources.ts';

export type { GcpResources } from '../resources.ts';
import { CloudAdapterError, fieldDiff, type ApplyResult, type Change, type CloudAdapter, type Desired, type DesiredNode, type HealthState, type Observation, type Plan } from '../types.ts';

type IOperation = protos.google.cloud.compute.v1.IOperation;
type IHealthCheck = protos.google.cloud.compute.v1.IHealthCheck;
type IFirewall = protos.google.cloud.compute.v1.IFirewall;
type IBackendService = protos.google.cloud.compute.v1.IBackendService;
type IInstanceGroup = protos.google.cloud.compute.v1.IInstanceGroup;
type IInstanceWithNamedPorts = protos.google.cloud.compute.v1.IInstanceWithNamedPorts;
type IBackendServiceGroupHealth = protos.google.cloud.compute.v1.IBackendServiceGroupHealth;

/** The slice of the @google-cloud/compute clients the adapter uses (real clients in production and tests). */
type Op = Promise<[{ latestResponse?: unknown }, ...unknown[]]>;
export interface GcpClients {
  readonly regionHealthChecks: { get(r: object): Promise<[IHealthCheck, ...unknown[]]>; insert(r: object): Op; patch(r: object): Op };
  readonly firewalls: { get(r: object): Promise<[IFirewall, ...unknown[]]>; insert(r: object): Op; patch(r: object): Op };
  readonly regionBackendServices: {
    get(r: object): Promise<[IBackendService, ...unknown[]]>;
    insert(r: object): Op;
    patch(r: object): Op;
    getHealth(r: object): Promise<[IBackendServiceGroupHealth, ...unknown[]]>;
  };
  readonly instanceGroups: {
    get(r: object): Promise<[IInstanceGroup, ...unknown[]]>;
    insert(r: object): Op;
    addInstances(r: object): Op;
    removeInstances(r: object): Op;
    listInstances(r: object, o?: object): Promise<[IInstanceWithNamedPorts[], ...unknown[]]>;
  };
  readonly regionOperations: { wait(r: object): Promise<[IOperation, ...unknown[]]> };
  readonly globalOperations: { wait(r: object): Promise<[IOperation, ...unknown[]]> };
  readonly zoneOperations: { wait(r: object): Promise<[IOperation, ...unknown[]]> };
}

export interface GcpAdapterOptions {
  /** give up waiting for an operation after this long, ms @default 300000 */
  readonly operationTimeoutMs?: number;
}

const API = 'https://www.googleapis.com/compute/v1';
/** compares self links whatever their host/version prefix */
const tail = (url: string | null | undefined) => (url ?? '').replace(/^.*?\/projects\//, 'projects/');

function isNotFound(err: unknown): boolean {
  const e = err as { code?: number; status?: number };
  return e?.code === 404 || e?.code === 5 || e?.status === 404;
}

function isDone(op: IOperation | undefined): boolean {
  return op?.status === 'DONE' || (op?.status as unknown) === 2104194;
}

export class GcpLoadBalancerAdapter implements CloudAdapter<GcpResources> {
  readonly cloud = 'gcp' as const;
  private readonly operationTimeoutMs: number;

  constructor(private readonly c: GcpClients, readonly desired: Desired<GcpResources>, opts: GcpAdapterOptions = {}) {
    this.operationTimeoutMs = opts.operationTimeoutMs ?? 300_000;
  }

  private urls(d: Desired<GcpResources>) {
    const r = d.resources;
    const p = `${API}/projects/${r.project}`;
    return {
      healthCheck: `${p}/regions/${r.region}/healthChecks/${r.healthCheck}`,
      network: r.network.includes('/') ? r.network : `${p}/global/networks/${r.network}`,
      group: (n: DesiredNode) => `${p}/zones/${this.zoneOf(n)}/instanceGroups/${this.groupOf(d, n)}`,
      instance: (n: DesiredNode) => `${p}/zones/${this.zoneOf(n)}/instances/${n.instanceId}`,
    };
  }

  private zoneOf(n: DesiredNode): string {
    if (!n.zone) throw new CloudAdapterError(`node ${n.name}: GCP needs the VM's zone`);
    if (!n.instanceId) throw new CloudAdapterError(`node ${n.name}: GCP needs the VM's name (instanceId)`);
    return n.zone;
  }

  private groupOf(d: Desired<GcpResources>, n: DesiredNode): string {
    const g = d.resources.instanceGroups[n.name];
    if (!g) throw new CloudAdapterError(`node ${n.name}: no instance group configured`);
    return g;
  }

  private async getOr404<T>(p: Promise<[T, ...unknown[]]>): Promise<T | undefined> {
    try {
      return (await p)[0];
    } catch (err) {
      if (isNotFound(err)) return undefined;
      throw err;
    }
  }

  private wantHealthCheck(d: Desired<GcpResources>): IHealthCheck {
    const s = probeSettings({ module: d.module, mode: d.mode, healthPort: d.healthPort }).gcp;
    return {
      name: d.resources.healthCheck,
      type: s.type,
      httpHealthCheck: { port: s.port, requestPath: s.requestPath },
      checkIntervalSec: s.checkIntervalSec,
      timeoutSec: s.timeoutSec,
      healthyThreshold: s.healthyThreshold,
      unhealthyThreshold: s.unhealthyThreshold,
      description: `Vigil ${d.cluster}/${d.module}: 200 on the ${d.mode === 'mirror' ? 'primary' : 'UP nodes'}`,
    };
  }

  private wantFirewall(d: Desired<GcpResources>): IFirewall {
    const s = probeSettings({ module: d.module, mode: d.mode, healthPort: d.healthPort }).gcp;
    return {
      name: d.resources.firewallRule,
      network: this.urls(d).network,
      direction: 'INGRESS',
      priority: 1000,
      sourceRanges: [...s.probeSourceRanges],
      targetTags: [...d.resources.targetTags],
      allowed: [{ IPProtocol: 'tcp', ports: [String(d.healthPort)] }],
      description: `Vigil ${d.cluster}: Google health-check probes to the node service`,
    };
  }

  private wantBackendService(d: Desired<GcpResources>): IBackendService {
    const s = probeSettings({ module: d.module, mode: d.mode, healthPort: d.healthPort }).gcp;
    const u = this.urls(d);
    const mirror = d.mode === 'mirror';
    const roles = gcpBackendRoles(d.mode, d.nodes.map((n) => n.name));
    return {
      name: d.resources.backendService,
      loadBalancingScheme: d.resources.loadBalancingScheme ?? 'INTERNAL',
      protocol: d.resources.protocol ?? 'TCP',
      healthChecks: [u.healthCheck],
      backends: d.nodes.map((n, i) => ({ group: u.group(n), balancingMode: 'CONNECTION', ...(mirror ? { failover: roles[i].failover } : {}) })),
      ...(mirror && s.failoverPolicy ? { failoverPolicy: { ...s.failoverPolicy } } : {}),
      ...(s.connectionTrackingPolicy ? { connectionTrackingPolicy: { ...s.connectionTrackingPolicy } } : {}),
      connectionDraining: { drainingTimeoutSec: 5 },
      description: `Vigil ${d.cluster}/${d.module} (${d.mode})`,
    };
  }

  async plan(desired: Desired<GcpResources> = this.desired): Promise<Plan> {
    const r = desired.resources;
    const u = this.urls(desired);
    const changes: Change[] = [];
    const base = { project: r.project };

    // 1. health check
    const wantHc = this.wantHealthCheck(desired);
    const hc = await this.getOr404(this.c.regionHealthChecks.get({ ...base, region: r.region, healthCheck: r.healthCheck }));
    if (!hc) {
      changes.push({ action: 'create', resource: `gcp health check ${r.healthCheck}`, diff: [`HTTP:${wantHc.httpHealthCheck!.port}${wantHc.httpHealthCheck!.requestPath} every ${wantHc.checkIntervalSec}s, timeout ${wantHc.timeoutSec}s, ${wantHc.healthyThreshold}/${wantHc.unhealthyThreshold}`], request: { operation: 'regionHealthChecks.insert', input: { ...base, region: r.region, healthCheckResource: wantHc } } });
    } else {
      const diff: string[] = [];
      for (const f of ['type', 'checkIntervalSec', 'timeoutSec', 'healthyThreshold', 'unhealthyThreshold'] as const) if (hc[f] !== wantHc[f]) diff.push(fieldDiff(f, hc[f], wantHc[f]));
      if (hc.httpHealthCheck?.port !== wantHc.httpHealthCheck!.port) diff.push(fieldDiff('httpHealthCheck.port', hc.httpHealthCheck?.port, wantHc.httpHealthCheck!.port));
      if (hc.httpHealthCheck?.requestPath !== wantHc.httpHealthCheck!.requestPath) diff.push(fieldDiff('httpHealthCheck.requestPath', hc.httpHealthCheck?.requestPath, wantHc.httpHealthCheck!.requestPath));
      if (diff.length) changes.push({ action: 'update', resource: `gcp health check ${r.healthCheck}`, diff, request: { operation: 'regionHealthChecks.patch', input: { ...base, region: r.region, healthCheck: r.healthCheck, healthCheckResource: wantHc } } });
    }

    // 2. probe firewall rule
    const wantFw = this.wantFirewall(desired);
    const fw = await this.getOr404(this.c.firewalls.get({ ...base, firewall: r.firewallRule }));
    if (!fw) {
      changes.push({ action: 'create', resource: `gcp firewall ${r.firewallRule}`, diff: [`allow tcp:${desired.healthPort} from ${wantFw.sourceRanges!.join(', ')} to tags ${wantFw.targetTags!.join(', ')}`], request: { operation: 'firewalls.insert', input: { ...base, firewallResource: wantFw } } });
    } else {
      const diff: string[] = [];
      const sorted = (a: readonly string[] | null | undefined) => [...(a ?? [])].sort().join(',');
      if (sorted(fw.sourceRanges) !== sorted(wantFw.sourceRanges)) diff.push(fieldDiff('sourceRanges', fw.sourceRanges, wantFw.sourceRanges));
      if (sorted(fw.targetTags) !== sorted(wantFw.targetTags)) diff.push(fieldDiff('targetTags', fw.targetTags, wantFw.targetTags));
      const ports = (fw.allowed ?? []).flatMap((a) => (a.IPProtocol === 'tcp' ? a.ports ?? [] : []));
      if (!ports.includes(String(desired.healthPort)) || (fw.allowed ?? []).length !== 1) diff.push(fieldDiff('allowed', fw.allowed, wantFw.allowed));
      if (fw.disabled) diff.push(fieldDiff('disabled', true, false));
      if (tail(fw.network) !== tail(wantFw.network)) throw new CloudAdapterError(`firewall ${r.firewallRule} is on network ${fw.network}, not ${wantFw.network}: the network of a firewall rule cannot change`);
      if (diff.length) changes.push({ action: 'update', resource: `gcp firewall ${r.firewallRule}`, diff, request: { operation: 'firewalls.patch', input: { ...base, firewall: r.firewallRule, firewallResource: { ...wantFw, disabled: false } } } });
    }

    // 3. one unmanaged instance group per node, holding exactly that node's VM
    for (const n of desired.nodes) {
      const zone = this.zoneOf(n);
      const group = this.groupOf(desired, n);
      const ig = await this.getOr404(this.c.instanceGroups.get({ ...base, zone, instanceGroup: group }));
      const members = ig ? ((await this.c.instanceGroups.listInstances({ ...base, zone, instanceGroup: group, instanceGroupsListInstancesRequestResource: { instanceState: 'ALL' } }, { autoPaginate: true }))[0] ?? []).map((x) => x.instance ?? '') : [];
      if (!ig) {
        changes.push({ action: 'create', resource: `gcp instance group ${zone}/${group}`, diff: [`unmanaged, network ${tail(u.network)}`], request: { operation: 'instanceGroups.insert', input: { ...base, zone, instanceGroupResource: { name: group, network: u.network, description: `Vigil ${desired.cluster} node ${n.name}` } } } });
      }
      if (!members.some((m) => tail(m) === tail(u.instance(n)))) {
        changes.push({ action: 'register', resource: `gcp instance group ${zone}/${group}`, diff: [`+ ${n.instanceId} (${n.name})`], request: { operation: 'instanceGroups.addInstances', input: { ...base, zone, instanceGroup: group, instanceGroupsAddInstancesRequestResource: { instances: [{ instance: u.instance(n) }] } } } });
      }
      const strangers = members.filter((m) => tail(m) !== tail(u.instance(n)));
      if (strangers.length) {
        changes.push({ action: 'deregister', resource: `gcp instance group ${zone}/${group}`, diff: strangers.map((m) => `- ${m.split('/').pop()} (not node ${n.name})`), request: { operation: 'instanceGroups.removeInstances', input: { ...base, zone, instanceGroup: group, instanceGroupsRemoveInstancesRequestResource: { instances: strangers.map((instance) => ({ instance })) } } } });
      }
    }

    // 4. backend service
    const wantBs = this.wantBackendService(desired);
    const bs = await this.getOr404(this.c.regionBackendServices.get({ ...base, region: r.region, backendService: r.backendService }));
    if (!bs) {
      changes.push({ action: 'create', resource: `gcp backend service ${r.backendService}`, diff: [`INTERNAL ${wantBs.protocol}, ${wantBs.backends!.length} backends${wantBs.failoverPolicy ? ', failover policy dropTrafficIfUnhealthy' : ''}`], request: { operation: 'regionBackendServices.insert', input: { ...base, region: r.region, backendServiceResource: wantBs } } });
    } else {
      const diff: string[] = [];
      if (bs.loadBalancingScheme !== wantBs.loadBalancingScheme) throw new CloudAdapterError(`backend service ${r.backendService} has scheme ${bs.loadBalancingScheme}, expected ${wantBs.loadBalancingScheme}: the scheme cannot change, use a new backend service`);
      if (bs.protocol !== wantBs.protocol) diff.push(fieldDiff('protocol', bs.protocol, wantBs.protocol));
      if ((bs.healthChecks ?? []).map(tail).join(',') !== wantBs.healthChecks!.map(tail).join(',')) diff.push(fieldDiff('healthChecks', bs.healthChecks, wantBs.healthChecks));
      const key = (b: { group?: string | null; failover?: boolean | null; balancingMode?: string | null }) => `${tail(b.group)}|${b.failover ? 'failover' : 'primary'}|${b.balancingMode ?? 'CONNECTION'}`;
      const haveB = (bs.backends ?? []).map(key).sort().join(' ');
      const wantB = wantBs.backends!.map(key).sort().join(' ');
      if (haveB !== wantB) diff.push(fieldDiff('backends', (bs.backends ?? []).map(key), wantBs.backends!.map(key)));
      const fp = bs.failoverPolicy;
      const wfp = wantBs.failoverPolicy;
      if (wfp && (fp?.dropTrafficIfUnhealthy !== wfp.dropTrafficIfUnhealthy || fp?.disableConnectionDrainOnFailover !== wfp.disableConnectionDrainOnFailover || (fp?.failoverRatio ?? 0) !== wfp.failoverRatio)) {
        diff.push(fieldDiff('failoverPolicy', fp, wfp));
      }
      const ct = wantBs.connectionTrackingPolicy;
      if (ct && bs.connectionTrackingPolicy?.connectionPersistenceOnUnhealthyBackends !== ct.connectionPersistenceOnUnhealthyBackends) {
        diff.push(fieldDiff('connectionTrackingPolicy.connectionPersistenceOnUnhealthyBackends', bs.connectionTrackingPolicy?.connectionPersistenceOnUnhealthyBackends, ct.connectionPersistenceOnUnhealthyBackends));
      }
      if ((bs.connectionDraining?.drainingTimeoutSec ?? 0) !== 5) diff.push(fieldDiff('connectionDraining.drainingTimeoutSec', bs.connectionDraining?.drainingTimeoutSec, 5));
      if (diff.length) changes.push({ action: 'update', resource: `gcp backend service ${r.backendService}`, diff, request: { operation: 'regionBackendServices.patch', input: { ...base, region: r.region, backendService: r.backendService, backendServiceResource: wantBs } } });
    }
    return { cloud: 'gcp', cluster: desired.cluster, module: desired.module, changes };
  }

  /** polls a Compute operation until DONE; throws with the operation's own errors */
  private async wait(kind: 'region' | 'global' | 'zone', first: { latestResponse?: unknown }, where: { project: string; region?: string; zone?: string }): Promise<IOperation> {
    let op = first.latestResponse as IOperation;
    const deadline = Date.now() + this.operationTimeoutMs;
    while (!isDone(op)) {
      if (Date.now() > deadline) throw new CloudAdapterError(`operation ${op.name} not DONE after ${this.operationTimeoutMs} ms`);
      const client = kind === 'region' ? this.c.regionOperations : kind === 'global' ? this.c.globalOperations : this.c.zoneOperations;
      // wait() returns when the operation is DONE or after about 2 minutes, whichever comes first
      [op] = await client.wait({ project: where.project, operation: op.name, ...(kind === 'region' ? { region: where.region } : kind === 'zone' ? { zone: where.zone } : {}) });
    }
    const errors = op.error?.errors ?? [];
    if (errors.length) throw new CloudAdapterError(`operation ${op.name} (${op.operationType} ${op.targetLink}) failed: ${errors.map((e) => `${e.code}: ${e.message}`).join('; ')}`);
    return op;
  }

  async apply(plan: Plan): Promise<ApplyResult> {
    const applied: Change[] = [];
    for (const ch of plan.changes) {
      const input = ch.request.input as { project: string; region?: string; zone?: string };
      const [svc, method] = ch.request.operation.split('.') as [keyof GcpClients, string];
      const client = this.c[svc] as unknown as Record<string, (r: object) => Op>;
      if (typeof client?.[method] !== 'function') throw new CloudAdapterError(`unknown GCP operation ${ch.request.operation}`);
      const [lro] = await client[method](input);
      await this.wait(svc === 'firewalls' ? 'global' : svc === 'instanceGroups' ? 'zone' : 'region', lro, input);
      applied.push(ch);
    }
    return { applied };
  }

  async observe(): Promise<Observation> {
    const d = this.desired;
    const r = d.resources;
    const u = this.urls(d);
    const targets = [];
    for (const n of d.nodes) {
      const [h] = await this.c.regionBackendServices.getHealth({ project: r.project, region: r.region, backendService: r.backendService, resourceGroupReferenceResource: { group: u.group(n) } });
      const statuses = h.healthStatus ?? [];
      if (statuses.length === 0) targets.push({ node: n.name, target: `${this.groupOf(d, n)} (empty)`, state: 'unused' as HealthState });
      for (const s of statuses) {
        const hs = s.healthState as string | undefined;
        const state: HealthState = hs === 'HEALTHY' ? 'healthy' : hs === 'UNHEALTHY' ? 'unhealthy' : 'unknown';
        const name = d.nodes.find((x) => tail(s.instance).endsWith(`/instances/${x.instanceId}`))?.name ?? s.instance ?? '?';
        targets.push({ node: name, target: `${s.instance?.split('/').pop()} ${s.ipAddress ?? ''}`.trim(), state });
      }
    }
    return { cloud: 'gcp', cluster: d.cluster, module: d.module, targets };
  }

  private node(name: string): DesiredNode {
    const n = this.desired.nodes.find((x) => x.name === name);
    if (!n) throw new CloudAdapterError(`unknown node ${name}`);
    return n;
  }

  private async membership(n: DesiredNode, add: boolean): Promise<ApplyResult> {
    const d = this.desired;
    const r = d.resources;
    const u = this.urls(d);
    const zone = this.zoneOf(n);
    const group = this.groupOf(d, n);
    const where = { project: r.project, zone, instanceGroup: group };
    const [members] = await this.c.instanceGroups.listInstances({ ...where, instanceGroupsListInstancesRequestResource: { instanceState: 'ALL' } }, { autoPaginate: true });
    const present = (members ?? []).some((m) => tail(m.instance) === tail(u.instance(n)));
    if (present === add) return { applied: [] };
    const operation = add ? 'instanceGroups.addInstances' : 'instanceGroups.removeInstances';
    const input = add
      ? { ...where, instanceGroupsAddInstancesRequestResource: { instances: [{ instance: u.instance(n) }] } }
      : { ...where, instanceGroupsRemoveInstancesRequestResource: { instances: [{ instance: u.instance(n) }] } };
    const [lro] = await (add ? this.c.instanceGroups.addInstances(input) : this.c.instanceGroups.removeInstances(input));
    await this.wait('zone', lro, where);
    return { applied: [{ action: add ? 'register' : 'deregister', resource: `gcp instance group ${zone}/${group}`, diff: [`${add ? '+' : '-'} ${n.instanceId} (${n.name})`], request: { operation, input } }] };
  }

  drain(node: string): Promise<ApplyResult> {
    return this.membership(this.node(node), false);
  }

  restore(node: string): Promise<ApplyResult> {
    return this.membership(this.node(node), true);
  }
}
