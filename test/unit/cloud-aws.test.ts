import { describe, expect, it, beforeEach } from 'vitest';
import type { ModuleMode } from '../../node-service/src/contract/index.ts';
import { mockClient } from 'aws-sdk-client-mock';
import {
  CreateTargetGroupCommand,
  DeregisterTargetsCommand,
  DescribeTargetGroupAttributesCommand,
  DescribeTargetGroupsCommand,
  DescribeTargetHealthCommand,
  ElasticLoadBalancingV2Client,
  ModifyTargetGroupAttributesCommand,
  ModifyTargetGroupCommand,
  RegisterTargetsCommand,
} from '@aws-sdk/client-elastic-load-balancing-v2';
import { AwsTargetGroupAdapter, type AwsResources } from '../../cloud-adapters/src/aws/adapter.ts';
import { formatPlan, type Desired } from '../../cloud-adapters/src/types.ts';
import { demoDesired } from '../helpers/cloud-desired.ts';
import { FakeElb } from '../helpers/cloud-fakes.ts';

const ARN = 'arn:aws:elasticloadbalancing:eu-west-1:123456789012:targetgroup/vigil-demo-mirror/0123456789abcdef';

/** node1 observed primary (the function reads the nodes' ready.txt before it plans) */
function desired(over: Partial<AwsResources> = {}, mode: ModuleMode = 'mirror', serving: readonly string[] | null = ['node1']): Desired<AwsResources> {
  const d = demoDesired(
    [
      { name: 'node1', address: '10.0.1.10' },
      { name: 'node2', address: '10.0.2.10' },
    ],
    { targetGroupName: 'vigil-demo-mirror', vpcId: 'vpc-0abc', protocol: 'TCP' as const, port: 5432, targetType: 'ip' as const, ...over },
    mode,
  );
  return serving === null ? d : { ...d, serving };
}

describe('AWS target group adapter (aws-sdk-client-mock)', () => {
  const elb = mockClient(ElasticLoadBalancingV2Client);
  let fake: FakeElb;
  let adapter: AwsTargetGroupAdapter;

  beforeEach(() => {
    elb.reset();
    fake = new FakeElb(ARN);
    fake.install(elb);
    adapter = new AwsTargetGroupAdapter(new ElasticLoadBalancingV2Client({ region: 'eu-west-1' }), desired());
  });

  it('creates the target group with the shared probe settings, then its attributes and targets', async () => {
    // GIVEN no target group  WHEN planned and applied
    const plan = await adapter.plan();
    expect(plan.changes.map((c) => c.request.operation)).toEqual(['CreateTargetGroup', 'ModifyTargetGroupAttributes', 'RegisterTargets']);
    await adapter.apply(plan);
    // THEN the exact requests
    expect(elb.commandCalls(CreateTargetGroupCommand)[0].args[0].input).toEqual({
      Name: 'vigil-demo-mirror',
      Protocol: 'TCP',
      Port: 5432,
      VpcId: 'vpc-0abc',
      TargetType: 'ip',
      HealthCheckEnabled: true,
      HealthCheckProtocol: 'HTTP',
      HealthCheckPort: '9010',
      HealthCheckPath: '/var/modules/mirror/ready.txt',
      HealthCheckIntervalSeconds: 5,
      HealthCheckTimeoutSeconds: 2,
      HealthyThresholdCount: 2,
      UnhealthyThresholdCount: 2,
      Matcher: { HttpCode: '200' },
      Tags: [
        { Key: 'vigil:cluster', Value: 'demo' },
        { Key: 'vigil:module', Value: 'mirror' },
      ],
    });
    expect(elb.commandCalls(ModifyTargetGroupAttributesCommand)[0].args[0].input).toEqual({
      TargetGroupArn: ARN,
      Attributes: [
        { Key: 'deregistration_delay.timeout_seconds', Value: '5' },
        { Key: 'deregistration_delay.connection_termination.enabled', Value: 'true' },
        { Key: 'target_health_state.unhealthy.connection_termination.enabled', Value: 'true' },
        { Key: 'load_balancing.cross_zone.enabled', Value: 'true' },
      ],
    });
    // a mirror registers only the node observed primary: an NLB fails open to every registered target
    expect(elb.commandCalls(RegisterTargetsCommand)[0].args[0].input).toEqual({ TargetGroupArn: ARN, Targets: [{ Id: '10.0.1.10', Port: 5432 }] });
  });

  it('mirror (fail-open): after a failover only the new primary stays registered; unobserved, registrations are left alone', async () => {
    await adapter.apply(await adapter.plan());
    const after = new AwsTargetGroupAdapter(new ElasticLoadBalancingV2Client({ region: 'eu-west-1' }), desired({}, 'mirror', ['node2']));
    elb.resetHistory();
    const plan = await after.plan();
    expect(formatPlan(plan)).toContain('- 10.0.1.10:5432 (not observed primary)');
    await after.apply(plan);
    expect(elb.commandCalls(RegisterTargetsCommand)[0].args[0].input).toEqual({ TargetGroupArn: ARN, Targets: [{ Id: '10.0.2.10', Port: 5432 }] });
    expect(elb.commandCalls(DeregisterTargetsCommand)[0].args[0].input).toEqual({ TargetGroupArn: ARN, Targets: [{ Id: '10.0.1.10', Port: 5432 }] });
    // nobody primary: nobody registered (an outage, never a write on a secondary)
    const none = new AwsTargetGroupAdapter(new ElasticLoadBalancingV2Client({ region: 'eu-west-1' }), desired({}, 'mirror', []));
    await none.apply(await none.plan());
    expect((await none.observe()).targets.filter((t) => t.state !== 'draining')).toEqual([]);
    const blind = new AwsTargetGroupAdapter(new ElasticLoadBalancingV2Client({ region: 'eu-west-1' }), desired({}, 'mirror', null));
    expect((await blind.plan()).changes).toEqual([]);
  });

  it('is idempotent: the second plan is empty and applying it sends nothing', async () => {
    await adapter.apply(await adapter.plan());
    elb.resetHistory();
    const again = await adapter.plan();
    expect(again.changes).toEqual([]);
    expect(formatPlan(again)).toBe('aws demo/mirror: no changes');
    await adapter.apply(again);
    const writes = [CreateTargetGroupCommand, ModifyTargetGroupCommand, ModifyTargetGroupAttributesCommand, RegisterTargetsCommand, DeregisterTargetsCommand];
    for (const c of writes) expect(elb.commandCalls(c as never)).toHaveLength(0);
    // the reads a plan makes on an existing group
    expect(elb.commandCalls(DescribeTargetGroupsCommand)[0].args[0].input).toEqual({ Names: ['vigil-demo-mirror'] });
    expect(elb.commandCalls(DescribeTargetGroupAttributesCommand)[0].args[0].input).toEqual({ TargetGroupArn: ARN });
    expect(elb.commandCalls(DescribeTargetHealthCommand)[0].args[0].input).toEqual({ TargetGroupArn: ARN });
  });

  it('modifies only the health-check fields and attributes that drifted, and shows them as a diff', async () => {
    await adapter.apply(await adapter.plan());
    const v = fake.tgs.get('vigil-demo-mirror')!;
    v.tg.HealthCheckIntervalSeconds = 30;
    v.tg.Matcher = { HttpCode: '200-399' };
    v.attrs.set('deregistration_delay.timeout_seconds', '300');
    elb.resetHistory();
    const plan = await adapter.plan();
    expect(formatPlan(plan)).toBe(
      [
        'aws demo/mirror: 2 change(s)',
        '~ update target-group vigil-demo-mirror',
        '    HealthCheckIntervalSeconds: 30 -> 5',
        '    Matcher.HttpCode: 200-399 -> 200',
        '~ update target-group vigil-demo-mirror attributes',
        '    deregistration_delay.timeout_seconds: 300 -> 5',
      ].join('\n'),
    );
    await adapter.apply(plan);
    expect(elb.commandCalls(ModifyTargetGroupCommand)[0].args[0].input).toEqual({ TargetGroupArn: ARN, HealthCheckIntervalSeconds: 5, Matcher: { HttpCode: '200' } });
    expect(elb.commandCalls(ModifyTargetGroupAttributesCommand)[0].args[0].input).toEqual({ TargetGroupArn: ARN, Attributes: [{ Key: 'deregistration_delay.timeout_seconds', Value: '5' }] });
    expect((await adapter.plan()).changes).toEqual([]);
  });

  it('farm: registers missing nodes and deregisters targets that are not nodes of the cluster', async () => {
    adapter = new AwsTargetGroupAdapter(new ElasticLoadBalancingV2Client({ region: 'eu-west-1' }), desired({}, 'farm'));
    await adapter.apply(await adapter.plan());
    const v = fake.tgs.get('vigil-demo-mirror')!;
    v.targets.delete('10.0.2.10:5432');
    v.targets.set('10.9.9.9:5432', { Id: '10.9.9.9', Port: 5432, state: 'healthy' });
    elb.resetHistory();
    await adapter.apply(await adapter.plan());
    expect(elb.commandCalls(RegisterTargetsCommand)[0].args[0].input).toEqual({ TargetGroupArn: ARN, Targets: [{ Id: '10.0.2.10', Port: 5432 }] });
    expect(elb.commandCalls(DeregisterTargetsCommand)[0].args[0].input).toEqual({ TargetGroupArn: ARN, Targets: [{ Id: '10.9.9.9', Port: 5432 }] });
  });

  it('drain is one DeregisterTargets; restore re-registers; instance targets use instance ids', async () => {
    const a = new AwsTargetGroupAdapter(new ElasticLoadBalancingV2Client({ region: 'eu-west-1' }), {
      ...desired({ targetType: 'instance' }, 'farm'),
      nodes: [
        { name: 'node1', address: '10.0.1.10', instanceId: 'i-0aaa' },
        { name: 'node2', address: '10.0.2.10', instanceId: 'i-0bbb' },
      ],
    });
    await a.apply(await a.plan());
    elb.resetHistory();
    await a.drain('node1');
    expect(elb.commandCalls(DeregisterTargetsCommand).map((c) => c.args[0].input)).toEqual([{ TargetGroupArn: ARN, Targets: [{ Id: 'i-0aaa', Port: 5432 }] }]);
    const obs = await a.observe();
    expect(obs.targets).toEqual([
      { node: 'node1', target: 'i-0aaa:5432', state: 'draining' },
      { node: 'node2', target: 'i-0bbb:5432', state: 'initial' },
    ]);
    // a reconcile puts a drained node back (the probe keeps it out of traffic while its ready.txt is 404)
    expect((await a.plan()).changes.map((c) => c.request.input)).toEqual([{ TargetGroupArn: ARN, Targets: [{ Id: 'i-0aaa', Port: 5432 }] }]);
    await a.restore('node1');
    expect(elb.commandCalls(RegisterTargetsCommand).at(-1)!.args[0].input).toEqual({ TargetGroupArn: ARN, Targets: [{ Id: 'i-0aaa', Port: 5432 }] });
  });

  it('an ALB (HTTP) target group gets no NLB-only attributes; farm gets no connection termination', async () => {
    const alb = new AwsTargetGroupAdapter(new ElasticLoadBalancingV2Client({ region: 'eu-west-1' }), desired({ protocol: 'HTTP', port: 8080 }));
    await alb.apply(await alb.plan());
    expect(elb.commandCalls(ModifyTargetGroupAttributesCommand)[0].args[0].input.Attributes).toEqual([
      { Key: 'deregistration_delay.timeout_seconds', Value: '5' },
      { Key: 'load_balancing.cross_zone.enabled', Value: 'true' },
    ]);
    elb.resetHistory();
    fake.tgs.clear();
    const farm = new AwsTargetGroupAdapter(new ElasticLoadBalancingV2Client({ region: 'eu-west-1' }), { ...desired({}, 'farm'), module: 'web' });
    await farm.apply(await farm.plan());
    expect(elb.commandCalls(CreateTargetGroupCommand)[0].args[0].input.HealthCheckPath).toBe('/var/modules/web/ready.txt');
    expect(elb.commandCalls(ModifyTargetGroupAttributesCommand)[0].args[0].input.Attributes).toEqual([{ Key: 'deregistration_delay.timeout_seconds', Value: '5' }]);
  });

  it('refuses to change what ELBv2 cannot change (protocol, target type)', async () => {
    await adapter.apply(await adapter.plan());
    const other = new AwsTargetGroupAdapter(new ElasticLoadBalancingV2Client({ region: 'eu-west-1' }), desired({ protocol: 'TLS' }));
    await expect(other.plan()).rejects.toThrow(/protocol cannot be changed/);
  });
});
