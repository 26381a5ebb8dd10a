/**
 * AWS: one ELBv2 target group per module (NLB: protocol TCP/TLS, ALB: HTTP/HTTPS), health-checked on
 * the node service's ready.txt. The listener and the load balancer itself belong to infra (CDK); this
 * adapter owns the target group's health check, its attributes and its registered targets.
 *
 * Fail-open: an NLB whose registered targets are all unhealthy sends traffic to every one of them.
 * A mirror therefore keeps only its observed primary registered (`desired.serving`, layout.ts), so
 * traffic can reach no other node whatever the probes say; a farm registers every node.
 */
import {
  CreateTargetGroupCommand,
  DeregisterTargetsCommand,
  DescribeTargetGroupAttributesCommand,
  DescribeTargetGroupsCommand,
  DescribeTargetHealthCommand,
  ModifyTargetGroupAttributesCommand,
  ModifyTargetGroupCommand,
  RegisterTargetsCommand,
  type ElasticLoadBalancingV2Client,
  type TargetDescription,
  type TargetGroup,
  type TargetHealthDescription,
} from '@aws-sdk/client-elastic-load-balancing-v2';
import { awsTemplateRegistersTargets } from '../layout.ts';
import { awsTargetGroupAttributes, probeSettings } from '../probe-settings.ts';
import type { AwsResources } from '../resources.ts';

export type { AwsResources } from '../resources.ts';
import { CloudAdapterError, fieldDiff, type ApplyResult, type Change, type CloudAdapter, type Desired, type DesiredNode, type HealthState, type Observation, type Plan } from '../types.ts';

const HEALTH_FIELDS = [
  'HealthCheckProtocol',
  'HealthCheckPort',
  'HealthCheckPath',
  'HealthCheckIntervalSeconds',
  'HealthCheckTimeoutSeconds',
  'HealthyThresholdCount',
  'UnhealthyThresholdCount',
] as const;

function desiredHealthCheck(d: Desired<AwsResources>) {
  const s = probeSettings({ module: d.module, mode: d.mode, healthPort: d.healthPort }).aws;
  return {
    HealthCheckEnabled: true,
    HealthCheckProtocol: s.healthCheckProtocol,
    HealthCheckPort: s.healthCheckPort,
    HealthCheckPath: s.healthCheckPath,
    HealthCheckIntervalSeconds: s.healthCheckIntervalSeconds,
    HealthCheckTimeoutSeconds: s.healthCheckTimeoutSeconds,
    HealthyThresholdCount: s.healthyThresholdCount,
    UnhealthyThresholdCount: s.unhealthyThresholdCount,
    Matcher: { HttpCode: s.matcher.HttpCode },
    attributes: awsTargetGroupAttributes(s, d.resources.protocol ?? 'TCP'),
  };
}

function targetOf(d: Desired<AwsResources>, n: DesiredNode): TargetDescription {
  const type = d.resources.targetType ?? 'ip';
  if (type === 'instance' && !n.instanceId) throw new CloudAdapterError(`node ${n.name}: target type instance needs an instance id`);
  const t: TargetDescription = { Id: type === 'instance' ? n.instanceId! : n.address, Port: d.resources.port };
  if (type === 'ip' && n.zone) t.AvailabilityZone = n.zone;
  return t;
}

function isNotFound(err: unknown): boolean {
  const name = (err as { name?: string })?.name;
  return name === 'TargetGroupNotFoundException' || name === 'TargetGroupNotFound';
}

/** states in which a target counts as registered (draining targets are on their way out) */
const REGISTERED = new Set(['initial', 'healthy', 'unhealthy', 'unhealthy.draining', 'unused', 'unavailable']);

function healthState(s: string | undefined): HealthState {
  switch (s) {
    case 'healthy':
    case 'initial':
    case 'draining':
    case 'unused':
      return s;
    case 'unhealthy':
    case 'unhealthy.draining':
      return 'unhealthy';
    default:
      return 'unknown';
  }
}

export class AwsTargetGroupAdapter implements CloudAdapter<AwsResources> {
  readonly cloud = 'aws' as const;
  private arn: string | undefined;

  constructor(private readonly client: ElasticLoadBalancingV2Client, readonly desired: Desired<AwsResources>) {}

  private async findTargetGroup(name: string): Promise<TargetGroup | undefined> {
    try {
      const out = await this.client.send(new DescribeTargetGroupsCommand({ Names: [name] }));
      return out.TargetGroups?.[0];
    } catch (err) {
      if (isNotFound(err)) return undefined;
      throw err;
    }
  }

  private async targetGroupArn(): Promise<string> {
    if (this.arn) return this.arn;
    const tg = await this.findTargetGroup(this.desired.resources.targetGroupName);
    if (!tg?.TargetGroupArn) throw new CloudAdapterError(`target group ${this.desired.resources.targetGroupName} does not exist: run a reconcile first`);
    this.arn = tg.TargetGroupArn;
    return this.arn;
  }

  async plan(desired: Desired<AwsResources> = this.desired): Promise<Plan> {
    const r = desired.resources;
    const want = desiredHealthCheck(desired);
    const resource = `target-group ${r.targetGroupName}`;
    const changes: Change[] = [];
    const registersAll = awsTemplateRegistersTargets(desired.mode);
    // mirror: only the observed primary; not observed → registrations are not touched
    const managed = registersAll || desired.serving !== undefined;
    const targets = desired.nodes.filter((n) => registersAll || desired.serving?.includes(n.name)).map((n) => targetOf(desired, n));
    const tg = await this.findTargetGroup(r.targetGroupName);

    if (!tg) {
      const { attributes, ...hc } = want;
      const input = {
        Name: r.targetGroupName,
        Protocol: r.protocol ?? 'TCP',
        Port: r.port,
        VpcId: r.vpcId,
        TargetType: r.targetType ?? 'ip',
        ...hc,
        Tags: [
          { Key: 'vigil:cluster', Value: desired.cluster },
          { Key: 'vigil:module', Value: desired.module },
        ],
      };
      changes.push({
        action: 'create',
        resource,
        diff: [`${input.Protocol}:${input.Port} ${input.TargetType} targets, health ${hc.HealthCheckProtocol}:${hc.HealthCheckPort}${hc.HealthCheckPath} every ${hc.HealthCheckIntervalSeconds}s, ${hc.HealthyThresholdCount}/${hc.UnhealthyThresholdCount}, matcher ${hc.Matcher.HttpCode}`],
        request: { operation: 'CreateTargetGroup', input },
      });
      changes.push({
        action: 'update',
        resource: `${resource} attributes`,
        diff: Object.entries(attributes).map(([k, v]) => fieldDiff(k, undefined, v)),
        request: { operation: 'ModifyTargetGroupAttributes', input: { TargetGroupArn: '$created', Attributes: Object.entries(attributes).map(([Key, Value]) => ({ Key, Value })) } },
      });
      if (targets.length > 0) {
        changes.push({
          action: 'register',
          resource: `${resource} targets`,
          diff: targets.map((t) => `+ ${t.Id}:${t.Port}`),
          request: { operation: 'RegisterTargets', input: { TargetGroupArn: '$created', Targets: targets } },
        });
      }
      return { cloud: 'aws', cluster: desired.cluster, module: desired.module, changes };
    }

    const arn = tg.TargetGroupArn!;
    this.arn = arn;
    if (tg.TargetType && tg.TargetType !== (r.targetType ?? 'ip')) {
      throw new CloudAdapterError(`${resource} has target type ${tg.TargetType}, config says ${r.targetType ?? 'ip'}: target type cannot be changed, use a new target group`);
    }
    if (tg.Protocol && tg.Protocol !== (r.protocol ?? 'TCP')) {
      throw new CloudAdapterError(`${resource} has protocol ${tg.Protocol}, config says ${r.protocol ?? 'TCP'}: protocol cannot be changed, use a new target group`);
    }

    // health check: send only the fields that differ
    const modify: Record<string, unknown> = {};
    const diff: string[] = [];
    for (const f of HEALTH_FIELDS) {
      if (tg[f] !== want[f]) {
        modify[f] = want[f];
        diff.push(fieldDiff(f, tg[f], want[f]));
      }
    }
    if (tg.HealthCheckEnabled === false) {
      modify.HealthCheckEnabled = true;
      diff.push(fieldDiff('HealthCheckEnabled', false, true));
    }
    if (tg.Matcher?.HttpCode !== want.Matcher.HttpCode) {
      modify.Matcher = want.Matcher;
      diff.push(fieldDiff('Matcher.HttpCode', tg.Matcher?.HttpCode, want.Matcher.HttpCode));
    }
    if (diff.length > 0) {
      changes.push({ action: 'update', resource, diff, request: { operation: 'ModifyTargetGroup', input: { TargetGroupArn: arn, ...modify } } });
    }

    const attrs = await this.client.send(new DescribeTargetGroupAttributesCommand({ TargetGroupArn: arn }));
    const have = new Map((attrs.Attributes ?? []).map((a) => [a.Key, a.Value]));
    const attrChanges = Object.entries(want.attributes).filter(([k, v]) => have.get(k) !== v);
    if (attrChanges.length > 0) {
      changes.push({
        action: 'update',
        resource: `${resource} attributes`,
        diff: attrChanges.map(([k, v]) => fieldDiff(k, have.get(k), v)),
        request: { operation: 'ModifyTargetGroupAttributes', input: { TargetGroupArn: arn, Attributes: attrChanges.map(([Key, Value]) => ({ Key, Value })) } },
      });
    }

    const health = await this.client.send(new DescribeTargetHealthCommand({ TargetGroupArn: arn }));
    const registered = (health.TargetHealthDescriptions ?? []).filter((h) => REGISTERED.has(h.TargetHealth?.State ?? ''));
    const key = (t: TargetDescription | undefined) => `${t?.Id}:${t?.Port}`;
    const haveKeys = new Set(registered.map((h) => key(h.Target)));
    const wantKeys = new Set(targets.map(key));
    const toRegister = managed ? targets.filter((t) => !haveKeys.has(key(t))) : [];
    const toDeregister = managed ? registered.map((h) => h.Target!).filter((t) => !wantKeys.has(key(t))) : [];
    if (toRegister.length > 0) {
      changes.push({
        action: 'register',
        resource: `${resource} targets`,
        diff: toRegister.map((t) => `+ ${t.Id}:${t.Port}`),
        request: { operation: 'RegisterTargets', input: { TargetGroupArn: arn, Targets: toRegister } },
      });
    }
    if (toDeregister.length > 0) {
      changes.push({
        action: 'deregister',
        resource: `${resource} targets`,
        diff: toDeregister.map((t) => `- ${t.Id}:${t.Port} (${desired.nodes.some((n) => n.address === t.Id || n.instanceId === t.Id) ? 'not observed primary' : `not a node of ${desired.cluster}`})`),
        request: { operation: 'DeregisterTargets', input: { TargetGroupArn: arn, Targets: toDeregister.map((t) => ({ Id: t.Id, Port: t.Port })) } },
      });
    }
    return { cloud: 'aws', cluster: desired.cluster, module: desired.module, changes };
  }

  async apply(plan: Plan): Promise<ApplyResult> {
    const applied: Change[] = [];
    let created: string | undefined;
    const withArn = (input: unknown) => {
      const i = input as { TargetGroupArn?: string };
      if (i.TargetGroupArn !== '$created') return input;
      if (!created) throw new CloudAdapterError('plan refers to a created target group but none was created');
      return { ...i, TargetGroupArn: created };
    };
    for (const c of plan.changes) {
      const input = withArn(c.request.input) as never;
      switch (c.request.operation) {
        case 'CreateTargetGroup': {
          const out = await this.client.send(new CreateTargetGroupCommand(input));
          created = out.TargetGroups?.[0]?.TargetGroupArn;
          if (!created) throw new CloudAdapterError('CreateTargetGroup returned no target group ARN');
          this.arn = created;
          break;
        }
        case 'ModifyTargetGroup':
          await this.client.send(new ModifyTargetGroupCommand(input));
          break;
        case 'ModifyTargetGroupAttributes':
          await this.client.send(new ModifyTargetGroupAttributesCommand(input));
          break;
        case 'RegisterTargets':
          await this.client.send(new RegisterTargetsCommand(input));
          break;
        case 'DeregisterTargets':
          await this.client.send(new DeregisterTargetsCommand(input));
          break;
        default:
          throw new CloudAdapterError(`unknown AWS operation ${c.request.operation}`);
      }
      applied.push(c);
    }
    return { applied };
  }

  async observe(): Promise<Observation> {
    const arn = await this.targetGroupArn();
    const out = await this.client.send(new DescribeTargetHealthCommand({ TargetGroupArn: arn }));
    return {
      cloud: 'aws',
      cluster: this.desired.cluster,
      module: this.desired.module,
      targets: (out.TargetHealthDescriptions ?? []).map((h: TargetHealthDescription) => {
        const id = h.Target?.Id ?? '?';
        const node = this.desired.nodes.find((n) => n.address === id || n.instanceId === id);
        const detail = [h.TargetHealth?.Reason, h.TargetHealth?.Description].filter(Boolean).join(': ');
        return { node: node?.name ?? id, target: `${id}:${h.Target?.Port}`, state: healthState(h.TargetHealth?.State), ...(detail ? { detail } : {}) };
      }),
    };
  }

  private node(name: string): DesiredNode {
    const n = this.desired.nodes.find((x) => x.name === name);
    if (!n) throw new CloudAdapterError(`unknown node ${name}`);
    return n;
  }

  /** one DeregisterTargets call (plus one DescribeTargetGroups on a cold instance) */
  async drain(node: string): Promise<ApplyResult> {
    const input = { TargetGroupArn: await this.targetGroupArn(), Targets: [targetOf(this.desired, this.node(node))] };
    await this.client.send(new DeregisterTargetsCommand(input));
    return { applied: [{ action: 'deregister', resource: `target-group ${this.desired.resources.targetGroupName} targets`, diff: [`- ${input.Targets[0].Id}:${input.Targets[0].Port} (${node} left the ready state)`], request: { operation: 'DeregisterTargets', input } }] };
  }

  /** RegisterTargets is idempotent on ELBv2: registering a registered target changes nothing */
  async restore(node: string): Promise<ApplyResult> {
    const input = { TargetGroupArn: await this.targetGroupArn(), Targets: [targetOf(this.desired, this.node(node))] };
    await this.client.send(new RegisterTargetsCommand(input));
    return { applied: [{ action: 'register', resource: `target-group ${this.desired.resources.targetGroupName} targets`, diff: [`+ ${input.Targets[0].Id}:${input.Targets[0].Port} (${node} became ready)`], request: { operation: 'RegisterTargets', input } }] };
  }
}
