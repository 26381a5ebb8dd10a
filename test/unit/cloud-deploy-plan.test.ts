/**
 * Templates and adapters agree by construction: each stack is synthesized, the resources it creates
 * are loaded into the adapter's fake cloud (as the cloud would hold them after the deploy), and a
 * reconcile right after the deploy plans nothing. A reconcile changes nothing the template set, and
 * re-applying the template undoes no reconcile. Real SDK clients throughout.
 */
import { App, Stack } from 'aws-cdk-lib';
import { Template } from 'aws-cdk-lib/assertions';
import { mockClient } from 'aws-sdk-client-mock';
import { ElasticLoadBalancingV2Client } from '@aws-sdk/client-elastic-load-balancing-v2';
import { NetworkManagementClient } from '@azure/arm-network';
import type { TokenCredential } from '@azure/core-auth';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AwsTargetGroupAdapter } from '../../cloud-adapters/src/aws/adapter.ts';
import { AzureLoadBalancerAdapter } from '../../cloud-adapters/src/azure/adapter.ts';
import { GcpLoadBalancerAdapter, type GcpClients } from '../../cloud-adapters/src/gcp/adapter.ts';
import { gcpNames } from '../../cloud-adapters/src/layout.ts';
import { formatPlan, type Desired } from '../../cloud-adapters/src/types.ts';
import { parseFunctionsConfig, type FunctionsConfig } from '../../functions/src/config.ts';
import { desiredFor } from '../../functions/src/controller.ts';
import { azureClusterTemplate } from '../../infra/azure/arm-template.ts';
import { buildApp } from '../../infra/bin/app.ts';
import { gcpClusterTerraform, gcpFunctionsConfig } from '../../infra/gcp/terraform.ts';
import { FakeArm, FakeCompute, FakeElb, startFakeCompute } from '../helpers/cloud-fakes.ts';

process.env.CDK_DOCKER = '/bin/false';

/** the one module of the one cluster in a functions config, as the function builds its adapter's desired */
function desiredFromConfig(cfg: FunctionsConfig, serving?: readonly string[]): Desired<any> {
  const [name, c] = Object.entries(cfg.clusters)[0];
  return desiredFor(name, c, c.modules[0], serving);
}

// ------------------------------------------------------------------------------------ AWS --------

const REGION = 'eu-west-1';
/** CloudFormation as the fake deploys it: physical ids for Ref / GetAtt, the ELBv2 defaults for unset attributes */
function cfnResolver(resources: Record<string, { Type: string; Properties?: any }>) {
  const physical = (id: string): string => {
    const t = resources[id]?.Type;
    if (t === 'AWS::EC2::VPC') return 'vpc-0f00d';
    if (t === 'AWS::SecretsManager::Secret') return `arn:aws:secretsmanager:${REGION}:123456789012:secret:${id}-AbCdEf`;
    if (t === 'AWS::ElasticLoadBalancingV2::TargetGroup') return `arn:aws:elasticloadbalancing:${REGION}:123456789012:targetgroup/${id.slice(0, 20)}/0123456789abcdef`;
    return `${id}-physical`;
  };
  const resolve = (v: any): any => {
    if (Array.isArray(v)) return v.map(resolve);
    if (v && typeof v === 'object') {
      if ('Ref' in v) return v.Ref === 'AWS::Region' ? REGION : v.Ref === 'AWS::Partition' ? 'aws' : v.Ref === 'AWS::URLSuffix' ? 'amazonaws.com' : physical(v.Ref);
      if ('Fn::GetAtt' in v) {
        const [id, attr] = v['Fn::GetAtt'];
        if (attr === 'TargetGroupName') return `${id.slice(0, 12)}-0AbC1dEf`.slice(0, 32);
        return `${physical(id)}/${attr}`;
      }
      if ('Fn::Join' in v) {
        const [sep, parts] = v['Fn::Join'];
        return resolve(parts).join(sep);
      }
      return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, resolve(x)]));
    }
    return v;
  };
  return { resolve, physical };
}

/** An NLB target group's attributes when the template sets none (ELBv2 defaults) */
const NLB_DEFAULT_ATTRIBUTES: Record<string, string> = {
  'deregistration_delay.timeout_seconds': '300',
  'deregistration_delay.connection_termination.enabled': 'false',
  'preserve_client_ip.enabled': 'false',
  'proxy_protocol_v2.enabled': 'false',
  'stickiness.enabled': 'false',
  'stickiness.type': 'source_ip',
  'target_health_state.unhealthy.connection_termination.enabled': 'true',
  'load_balancing.cross_zone.enabled': 'use_load_balancer_configuration',
};

/** CloudFormation's create/update of the target group, into the fake ELBv2 */
function deployTargetGroup(fake: FakeElb, stack: Stack) {
  const resources = Template.fromStack(stack).toJSON().Resources;
  const { resolve } = cfnResolver(resources);
  const [id, tgRes] = Object.entries<any>(resources).find(([, r]) => r.Type === 'AWS::ElasticLoadBalancingV2::TargetGroup')!;
  const p = resolve(tgRes.Properties);
  const name = resolve({ 'Fn::GetAtt': [id, 'TargetGroupName'] });
  const existing = fake.tgs.get(name);
  const tg = {
    TargetGroupName: name,
    TargetGroupArn: fake.arn,
    Protocol: p.Protocol,
    Port: p.Port,
    VpcId: p.VpcId,
    TargetType: p.TargetType,
    HealthCheckEnabled: p.HealthCheckEnabled,
    HealthCheckProtocol: p.HealthCheckProtocol,
    HealthCheckPort: p.HealthCheckPort,
    HealthCheckPath: p.HealthCheckPath,
    HealthCheckIntervalSeconds: p.HealthCheckIntervalSeconds,
    HealthCheckTimeoutSeconds: p.HealthCheckTimeoutSeconds,
    HealthyThresholdCount: p.HealthyThresholdCount,
    UnhealthyThresholdCount: p.UnhealthyThresholdCount,
    Matcher: p.Matcher,
  };
  const attrs = existing?.attrs ?? new Map(Object.entries(NLB_DEFAULT_ATTRIBUTES));
  for (const a of p.TargetGroupAttributes ?? []) attrs.set(a.Key, a.Value);
  const targets = existing?.targets ?? new Map();
  // CloudFormation manages Targets only when the template lists them
  if (p.Targets) {
    targets.clear();
    for (const t of p.Targets) targets.set(`${t.Id}:${t.Port}`, { Id: t.Id, Port: t.Port, state: 'initial' });
  }
  fake.tgs.set(name, { tg, attrs, targets });
  const fn = Object.values<any>(resources).find((r) => r.Type === 'AWS::Lambda::Function' && r.Properties.Handler === 'index.handler');
  return parseFunctionsConfig(JSON.parse(resolve(fn.Properties.Environment.Variables.VIGIL_FUNCTIONS_CONFIG)), 'lambda environment');
}

describe('AWS: the reconcile right after cdk deploy plans nothing', () => {
  const elb = mockClient(ElasticLoadBalancingV2Client);
  const { mirror, farm } = buildApp(new App({ builtinCloudFormationValidation: false }));
  afterAll(() => elb.restore());

  for (const [kind, stack] of [['mirror', mirror], ['farm', farm]] as const) {
    it(`${kind}: empty plan after deploy; a reconcile and a template re-apply do not undo each other`, async () => {
      elb.reset();
      const fake = new FakeElb();
      fake.install(elb);
      const cfg = deployTargetGroup(fake, stack);
      const client = new ElasticLoadBalancingV2Client({ region: REGION });
      // right after the deploy no node runs Vigil yet: none ready
      const fresh = new AwsTargetGroupAdapter(client, desiredFromConfig(cfg, []));
      const plan = await fresh.plan();
      expect(formatPlan(plan)).toBe(`aws ${fresh.desired.cluster}/${fresh.desired.module}: no changes`);
      // the nodes start, node1 becomes primary: the reconcile registers it (a mirror) or nothing (a farm)
      const primary = new AwsTargetGroupAdapter(client, desiredFromConfig(cfg, ['node1']));
      const reconcile = await primary.plan();
      if (kind === 'mirror') expect(reconcile.changes.map((c) => c.request.operation)).toEqual(['RegisterTargets']);
      else expect(reconcile.changes).toEqual([]);
      await primary.apply(reconcile);
      // the template is applied again (an update of the stack): the reconcile's work stands
      deployTargetGroup(fake, stack);
      expect((await primary.plan()).changes).toEqual([]);
    });
  }
});

// ------------------------------------------------------------------------------------ Azure ------

const SUB = '00000000-0000-0000-0000-0000000000aa';
const RG = 'vigil-rg';
const credential: TokenCredential = { getToken: async () => ({ token: 't', expiresOnTimestamp: Date.now() + 3_600_000 }) };

/** ARM's evaluation of the expressions the load balancer uses: resourceId(type, names...) */
function armEval(v: any): any {
  if (typeof v === 'string') {
    const m = /^\[resourceId\('([^']+)', (.+)\)\]$/.exec(v);
    if (!m) return v;
    const names = [...m[2].matchAll(/'([^']*)'/g)].map((x) => x[1]);
    const [ns, ...types] = m[1].split('/');
    const path = types.map((t, i) => `${t}/${names[i]}`).join('/');
    return `/subscriptions/${SUB}/resourceGroups/${RG}/providers/${ns}/${path}`;
  }
  if (Array.isArray(v)) return v.map(armEval);
  if (v && typeof v === 'object') return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, armEval(x)]));
  return v;
}

/** The load balancer as ARM holds it after the deployment (children with their ids) */
function deployedLb(template: any): any {
  const r = template.resources.find((x: any) => x.type === 'Microsoft.Network/loadBalancers');
  const id = `/subscriptions/${SUB}/resourceGroups/${RG}/providers/Microsoft.Network/loadBalancers/${r.name}`;
  const p = armEval(r.properties);
  const child = (kind: string) => (c: any) => ({ ...c, id: `${id}/${kind}/${c.name}`, properties: typeof c.properties === 'string' ? {} : c.properties });
  return {
    id,
    name: r.name,
    location: 'westeurope',
    sku: r.sku,
    properties: {
      frontendIPConfigurations: p.frontendIPConfigurations.map(child('frontendIPConfigurations')),
      backendAddressPools: p.backendAddressPools.map(child('backendAddressPools')),
      probes: p.probes.map(child('probes')),
      loadBalancingRules: p.loadBalancingRules.map(child('loadBalancingRules')),
    },
  };
}

describe('Azure: the reconcile right after the ARM deployment plans nothing', () => {
  for (const mode of ['mirror', 'farm'] as const) {
    it(`${mode}: empty plan after deploy; a reconcile and a template re-apply do not undo each other`, async () => {
      const { template } = azureClusterTemplate(mode);
      const arm = new FakeArm(deployedLb(template));
      const cfgText = (template.variables.functionsConfigTemplate as string).replaceAll('__SUB__', SUB).replaceAll('__RG__', RG);
      const cfg = parseFunctionsConfig(JSON.parse(cfgText), 'app setting');
      const adapter = new AzureLoadBalancerAdapter(new NetworkManagementClient(credential, SUB, { httpClient: arm, retryOptions: { maxRetries: 0 } }), desiredFromConfig(cfg), { pollIntervalMs: 1 });
      const plan = await adapter.plan();
      expect(formatPlan(plan)).toBe(`azure ${adapter.desired.cluster}/${adapter.desired.module}: no changes`);
      // the event fast path drains node1, the reconcile puts it back as the template has it
      await adapter.drain('node1');
      await adapter.apply(await adapter.plan());
      expect(arm.lb.properties.backendAddressPools[0].properties.loadBalancerBackendAddresses.map((a: any) => a.properties.adminState)).toEqual(['None', 'None']);
      // re-applying the template gives the same load balancer: nothing for the next reconcile
      arm.lb = deployedLb(template);
      expect((await adapter.plan()).changes).toEqual([]);
    });
  }
});

// ------------------------------------------------------------------------------------ GCP --------

const VARS = { project: 'proj-vigil', region: 'europe-west1', zones: ['europe-west1-b', 'europe-west1-c', 'europe-west1-d'], internet_facing: false };
const API = 'https://www.googleapis.com/compute/v1';

/** Terraform's evaluation of the interpolations the load-balancer resources and the function config use */
function tfEval(v: any, refs: Record<string, string>): any {
  if (typeof v === 'string') {
    const whole = /^\$\{([^}]*)\}$/.exec(v);
    const expr = (e: string): any => {
      e = e.trim();
      let m = /^var\.(\w+)\[(\d+) % length\(var\.(\w+)\)\]$/.exec(e);
      if (m) return (VARS as any)[m[1]][Number(m[2]) % (VARS as any)[m[3]].length];
      m = /^var\.(\w+) \? "([^"]*)" : "([^"]*)"$/.exec(e);
      if (m) return (VARS as any)[m[1]] ? m[2] : m[3];
      m = /^var\.(\w+)$/.exec(e);
      if (m) return (VARS as any)[m[1]];
      if (e in refs) return refs[e];
      throw new Error(`cannot evaluate \${${e}}`);
    };
    if (whole) return expr(whole[1]);
    return v.replace(/\$\{([^}]*)\}/g, (_s, e) => String(expr(e)));
  }
  if (Array.isArray(v)) return v.map((x) => tfEval(x, refs));
  if (v && typeof v === 'object') return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, tfEval(x, refs)]));
  return v;
}

/** The google provider's create calls, into the fake Compute endpoint (paths and API field names). */
function deployGcp(fake: FakeCompute, tf: any) {
  const r = tf.resource;
  const p = `/compute/v1/projects/${VARS.project}`;
  const refs: Record<string, string> = {};
  const net = r.google_compute_network.vpc.name;
  refs['google_compute_network.vpc.id'] = `projects/${VARS.project}/global/networks/${net}`;
  refs['google_compute_network.vpc.name'] = net;
  refs['google_compute_subnetwork.nodes.id'] = `projects/${VARS.project}/regions/${VARS.region}/subnetworks/${r.google_compute_subnetwork.nodes.name}`;
  for (const [n, inst] of Object.entries<any>(r.google_compute_instance)) refs[`google_compute_instance.${n}.id`] = `projects/${VARS.project}/zones/${tfEval(inst.zone, refs)}/instances/${inst.name}`;
  for (const [n, g] of Object.entries<any>(r.google_compute_instance_group)) refs[`google_compute_instance_group.${n}.id`] = `projects/${VARS.project}/zones/${tfEval(g.zone, refs)}/instanceGroups/${g.name}`;
  const hc = tfEval(r.google_compute_region_health_check.ready, refs);
  refs['google_compute_region_health_check.ready.id'] = `projects/${VARS.project}/regions/${VARS.region}/healthChecks/${hc.name}`;
  fake.res.set(`${p}/regions/${VARS.region}/healthChecks/${hc.name}`, {
    name: hc.name, type: 'HTTP', checkIntervalSec: hc.check_interval_sec, timeoutSec: hc.timeout_sec, healthyThreshold: hc.healthy_threshold, unhealthyThreshold: hc.unhealthy_threshold,
    httpHealthCheck: { port: hc.http_health_check.port, requestPath: hc.http_health_check.request_path }, selfLink: `${API}/${refs['google_compute_region_health_check.ready.id']}`,
  });
  const fw = tfEval(r.google_compute_firewall.health, refs);
  fake.res.set(`${p}/global/firewalls/${fw.name}`, {
    name: fw.name, network: `${API}/projects/${VARS.project}/global/networks/${fw.network}`, direction: fw.direction, priority: 1000, sourceRanges: fw.source_ranges, targetTags: fw.target_tags,
    allowed: fw.allow.map((a: any) => ({ IPProtocol: a.protocol, ports: a.ports })), disabled: false,
  });
  for (const g0 of Object.values<any>(r.google_compute_instance_group)) {
    const g = tfEval(g0, refs);
    fake.res.set(`${p}/zones/${g.zone}/instanceGroups/${g.name}`, { name: g.name, zone: g.zone, network: `${API}/${g.network}` });
    fake.members.set(`${p}/zones/${g.zone}/instanceGroups/${g.name}`, new Set(g.instances.map((i: string) => `${API}/${i}`)));
  }
  const bs = tfEval(r.google_compute_region_backend_service.vip, refs);
  fake.res.set(`${p}/regions/${VARS.region}/backendServices/${bs.name}`, {
    name: bs.name, loadBalancingScheme: bs.load_balancing_scheme, protocol: bs.protocol, healthChecks: bs.health_checks.map((h: string) => `${API}/${h}`),
    backends: bs.backend.map((b: any) => ({ group: `${API}/${b.group}`, balancingMode: b.balancing_mode, failover: b.failover ?? false })),
    ...(bs.failover_policy ? { failoverPolicy: { dropTrafficIfUnhealthy: bs.failover_policy.drop_traffic_if_unhealthy, disableConnectionDrainOnFailover: bs.failover_policy.disable_connection_drain_on_failover, failoverRatio: bs.failover_policy.failover_ratio } } : {}),
    ...(bs.connection_tracking_policy ? { connectionTrackingPolicy: { connectionPersistenceOnUnhealthyBackends: bs.connection_tracking_policy.connection_persistence_on_unhealthy_backends, trackingMode: 'PER_CONNECTION' } } : {}),
    connectionDraining: { drainingTimeoutSec: bs.connection_draining_timeout_sec },
  });
  return refs;
}

describe('GCP: the reconcile right after terraform apply plans nothing', () => {
  const fake = new FakeCompute();
  let clients: GcpClients & { close(): Promise<void> };
  beforeAll(async () => {
    clients = await startFakeCompute(fake);
  });
  afterAll(() => clients.close());

  for (const mode of ['mirror', 'farm'] as const) {
    it(`${mode}: empty plan after apply; a reconcile and a template re-apply do not undo each other`, async () => {
      fake.res.clear();
      fake.members.clear();
      const { tf, plan: cp } = gcpClusterTerraform(mode);
      const refs = deployGcp(fake, tf);
      const cfg = parseFunctionsConfig(tfEval(gcpFunctionsConfig(cp, gcpNames(cp.cluster, cp.moduleName), mode), refs), 'function environment');
      const adapter = new GcpLoadBalancerAdapter(clients, desiredFromConfig(cfg));
      const plan = await adapter.plan();
      expect(formatPlan(plan)).toBe(`gcp ${adapter.desired.cluster}/${adapter.desired.module}: no changes`);
      // event fast path: node1 leaves its group; the reconcile puts it back, as the template has it
      await adapter.drain('node1');
      await adapter.apply(await adapter.plan());
      deployGcp(fake, tf);
      expect((await adapter.plan()).changes).toEqual([]);
    });
  }
});
