import { spawnSync } from 'node:child_process';
import { App, Stack } from 'aws-cdk-lib';
import { Match, Template } from 'aws-cdk-lib/assertions';
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import { beforeAll, describe, expect, it } from 'vitest';
import type { ModuleMode } from '../../node-service/src/contract/index.ts';
import { parse } from 'yaml';
import { awsTargetGroupAttributes, probeSettings } from '../../cloud-adapters/src/probe-settings.ts';
import { parseFunctionsConfig } from '../../functions/src/config.ts';
import { modulePorts, validateConfig } from '../../node-service/src/config/index.ts';
import { FarmCluster, MirrorCluster, type FarmClusterProps, type VigilClusterProps } from '../../infra/aws/index.ts';
import { extractClusterYaml } from '../../infra/common/bootstrap.ts';
import { cfnText } from '../../infra/common/inspect.ts';
import { clusterOutputs } from '../../infra/bin/app.ts';

// Bundling must never fall back to Docker: make any docker call fail loudly.
process.env.CDK_DOCKER = '/bin/false';

type Resources = Record<string, { Type: string; Properties: Record<string, any> }>;

function synth(kind: ModuleMode, props: FarmClusterProps = {}): { stack: Stack; template: Template; cluster: MirrorCluster | FarmCluster } {
  // built-in CloudFormation validation is exercised by the `npm run synth` test; skip it here for speed
  const app = new App({ builtinCloudFormationValidation: false });
  const stack = new Stack(app, `T${kind}`);
  const cluster = kind === 'mirror' ? new MirrorCluster(stack, 'Cluster', props) : new FarmCluster(stack, 'Cluster', props);
  return { stack, template: Template.fromStack(stack), cluster };
}

function ingressRules(template: Template): any[] {
  const res = template.toJSON().Resources as Resources;
  const rules: any[] = [];
  for (const [id, r] of Object.entries(res)) {
    if (r.Type === 'AWS::EC2::SecurityGroup') for (const i of r.Properties.SecurityGroupIngress ?? []) rules.push({ ...i, GroupId: { Ref: id } });
    if (r.Type === 'AWS::EC2::SecurityGroupIngress') rules.push(r.Properties);
  }
  return rules;
}

function covers(rule: any, port: number, proto: 'tcp' | 'udp'): boolean {
  if (rule.IpProtocol !== '-1' && rule.IpProtocol !== proto) return false;
  return rule.IpProtocol === '-1' || (rule.FromPort <= port && port <= rule.ToPort);
}

function userDataScripts(template: Template): string[] {
  const res = template.toJSON().Resources as Resources;
  return Object.values(res)
    .filter((r) => r.Type === 'AWS::EC2::Instance')
    .map((r) => cfnText(r.Properties.UserData));
}

describe('MirrorCluster', () => {
  let t: Template;
  let cluster: MirrorCluster;
  const s = probeSettings({ module: 'mirror', mode: 'mirror', healthPort: 9010 });
  beforeAll(() => {
    const r = synth('mirror', { clusterName: 'prod-db' });
    t = r.template;
    cluster = r.cluster as MirrorCluster;
  });

  it('target group health check comes from the shared probe settings', () => {
    // THEN
    t.resourceCountIs('AWS::ElasticLoadBalancingV2::TargetGroup', 1);
    t.hasResourceProperties('AWS::ElasticLoadBalancingV2::TargetGroup', {
      Protocol: 'TCP',
      Port: 80,
      TargetType: 'ip',
      HealthCheckEnabled: true,
      HealthCheckProtocol: s.aws.healthCheckProtocol,
      HealthCheckPort: s.aws.healthCheckPort,
      HealthCheckPath: s.aws.healthCheckPath,
      Matcher: { HttpCode: '200' },
      HealthCheckIntervalSeconds: s.aws.healthCheckIntervalSeconds,
      HealthCheckTimeoutSeconds: s.aws.healthCheckTimeoutSeconds,
      HealthyThresholdCount: s.aws.healthyThresholdCount,
      UnhealthyThresholdCount: s.aws.unhealthyThresholdCount,
    });
    // a mirror's template registers no target: the function registers the observed primary (NLB fail-open)
    expect(Object.values(t.findResources('AWS::ElasticLoadBalancingV2::TargetGroup'))[0].Properties.Targets).toBeUndefined();
    expect(s.aws.healthCheckPath).toBe('/var/modules/mirror/ready.txt');
    expect(s.aws.healthCheckPort).toBe('9010');
  });

  it('target group attributes include every shared attribute, cross-zone on the load balancer', () => {
    const tg = Object.values(t.findResources('AWS::ElasticLoadBalancingV2::TargetGroup'))[0] as any;
    const attrs = Object.fromEntries(tg.Properties.TargetGroupAttributes.map((a: any) => [a.Key, a.Value]));
    for (const [k, v] of Object.entries(awsTargetGroupAttributes(s.aws, 'TCP'))) expect(attrs[k], k).toBe(v);
    expect(attrs['load_balancing.cross_zone.enabled']).toBe('true');
    t.hasResourceProperties('AWS::ElasticLoadBalancingV2::LoadBalancer', {
      Type: 'network',
      Scheme: 'internal',
      LoadBalancerAttributes: Match.arrayWith([{ Key: 'load_balancing.cross_zone.enabled', Value: 'true' }]),
      SecurityGroups: Match.anyValue(),
    });
    t.hasResourceProperties('AWS::ElasticLoadBalancingV2::Listener', { Port: 80, Protocol: 'TCP' });
  });

  it('2 instances in 2 different AZs with fixed private IPs', () => {
    const inst = Object.values(t.findResources('AWS::EC2::Instance')) as any[];
    expect(inst).toHaveLength(2);
    const azs = inst.map((i) => JSON.stringify(i.Properties.AvailabilityZone));
    expect(new Set(azs).size).toBe(2);
    const subnets = inst.map((i) => JSON.stringify(i.Properties.SubnetId));
    expect(new Set(subnets).size).toBe(2);
    expect(inst.map((i) => i.Properties.PrivateIpAddress).sort()).toEqual([...cluster.nodeAddresses].sort());
    expect(inst.map((i) => i.Properties.Tags)).toEqual(
      ['node1', 'node2'].map((n) =>
        expect.arrayContaining([
          { Key: 'Name', Value: `prod-db-${n}` },
          { Key: 'vigil:cluster', Value: 'prod-db' },
          { Key: 'vigil:node', Value: n },
        ]),
      ),
    );
  });

  it('no cluster port is open to the world; heartbeat and replication only from the nodes themselves', () => {
    const rules = ingressRules(t);
    const p = modulePorts(1);
    const clusterPorts: [number, 'tcp' | 'udp'][] = [
      [p.heartbeat, 'udp'],
      ...[0, 1, 2, 3].map((i): [number, 'tcp'] => [p.replication + i, 'tcp']),
      [9010, 'tcp'],
    ];
    for (const [port, proto] of clusterPorts) {
      const open = rules.filter((r) => covers(r, port, proto));
      expect(open.length, `${proto}/${port} has rules`).toBeGreaterThan(0);
      for (const r of open) {
        expect(r.CidrIp, `${proto}/${port}`).toBeUndefined();
        expect(r.CidrIpv6, `${proto}/${port}`).toBeUndefined();
        expect(r.SourceSecurityGroupId, `${proto}/${port}`).toBeDefined();
      }
    }
    const selfOnly = rules.filter((r) => covers(r, p.heartbeat, 'udp') || covers(r, p.replication, 'tcp'));
    for (const r of selfOnly) expect(JSON.stringify(r.SourceSecurityGroupId)).toBe(JSON.stringify(r.GroupId.Ref ? { 'Fn::GetAtt': [r.GroupId.Ref, 'GroupId'] } : r.GroupId));
    // nothing at all from 0.0.0.0/0 by default (the listener is limited to the VPC CIDR)
    expect(rules.filter((r) => r.CidrIp === '0.0.0.0/0' || r.CidrIpv6 === '::/0')).toEqual([]);
  });

  it('the listener is the only thing opened to the world when asked', () => {
    const { template } = synth('mirror', { clientCidrs: ['0.0.0.0/0'], internetFacing: true });
    const world = ingressRules(template).filter((r) => r.CidrIp === '0.0.0.0/0');
    expect(world).toHaveLength(1);
    expect(world[0]).toMatchObject({ IpProtocol: 'tcp', FromPort: 80, ToPort: 80 });
    template.hasResourceProperties('AWS::ElasticLoadBalancingV2::LoadBalancer', { Scheme: 'internet-facing' });
  });

  it("the function's IAM policy changes only this target group", () => {
    const policies = Object.values(t.findResources('AWS::IAM::Policy')) as any[];
    const fnPolicy = policies.find((p) => JSON.stringify(p).includes('elasticloadbalancing:RegisterTargets'));
    expect(fnPolicy).toBeDefined();
    const tgId = Object.keys(t.findResources('AWS::ElasticLoadBalancingV2::TargetGroup'))[0];
    for (const st of fnPolicy.Properties.PolicyDocument.Statement) {
      const actions: string[] = [st.Action].flat();
      const elb = actions.filter((a) => a.startsWith('elasticloadbalancing:'));
      if (elb.length === 0) continue;
      const mutating = elb.filter((a) => !a.startsWith('elasticloadbalancing:Describe'));
      if (mutating.length > 0) expect(st.Resource).toEqual({ Ref: tgId });
      else expect(st.Resource).toBe('*'); // ELBv2 Describe* have no resource-level permissions
    }
    expect(JSON.stringify(fnPolicy)).not.toMatch(/elasticloadbalancing:\*|CreateLoadBalancer|DeleteTargetGroup/);
  });

  it('the function runs on a schedule, has a URL, and its config passes the functions schema', () => {
    t.hasResourceProperties('AWS::Events::Rule', {
      ScheduleExpression: 'rate(1 minute)',
      State: 'ENABLED',
      Targets: [Match.objectLike({ Arn: { 'Fn::GetAtt': [Match.stringLikeRegexp('ClusterFunction'), 'Arn'] } })],
    });
    t.hasResourceProperties('AWS::Lambda::Url', { AuthType: 'NONE' });
    const fn = Object.values(t.findResources('AWS::Lambda::Function')).find((f: any) => f.Properties.Handler === 'index.handler') as any;
    expect(fn.Properties.Runtime).toMatch(/^nodejs2\d\.x$/);
    expect(fn.Properties.VpcConfig).toBeDefined();
    const env = fn.Properties.Environment.Variables;
    expect(JSON.stringify(env)).not.toMatch(/resolve:secretsmanager|SecretString/);
    const cfg = parseFunctionsConfig(JSON.parse(cfnText(env.VIGIL_FUNCTIONS_CONFIG, () => 'placeholder')), 'test');
    const c = cfg.clusters['prod-db'];
    expect(c.nodes.map((n) => n.address)).toEqual(cluster.nodeAddresses);
    expect(c.modules[0]).toMatchObject({ name: 'mirror', mode: 'mirror', cloud: { provider: 'aws', port: 80, targetType: 'ip' } });
  });

  it("user data holds a cluster.yaml the daemon's own validator accepts", () => {
    const scripts = userDataScripts(t);
    expect(scripts).toHaveLength(2);
    for (const script of scripts) {
      const yamlText = extractClusterYaml(script);
      const raw = parse(yamlText.replaceAll('DEPLOY_TIME_VALUE', 'https://fn.example.invalid/'));
      const config = validateConfig(raw, '/etc/vigil/cluster.yaml', { skipFileChecks: true });
      expect(config.cluster).toBe('prod-db');
      expect(config.nodes.map((n) => n.addrs[0])).toEqual(cluster.nodeAddresses);
      expect(config.modules[0]).toMatchObject({ name: 'mirror', mode: 'mirror', nodes: ['node1', 'node2'] });
      expect(config.modules[0].replication?.dirs).toEqual(['/srv/app/data']);
      expect(config.modules[0].cloud_events?.secret_file).toBe('/etc/vigil/events.key');
      // installs the packed tarball, reads the secrets, enables the unit
      expect(script).toContain('npm install -g');
      expect(script).toContain('aws s3 cp');
      expect(script).toMatch(/secretsmanager get-secret-value .* > \/etc\/vigil\/cluster\.key\.tmp/);
      expect(script).toContain('systemctl enable --now vigil.service');
      expect(script).toContain('vigil config check --config /etc/vigil/cluster.yaml');
      expect(spawnSync('bash', ['-n'], { input: script, encoding: 'utf8' }).status).toBe(0);
    }
  });

  it('outputs the VIP DNS name, health URLs and function URL (in the stack, not inside the construct)', () => {
    expect(t.toJSON().Outputs).toBeUndefined();
    const app = new App({ builtinCloudFormationValidation: false });
    const stack = new Stack(app, 'WithOutputs');
    const c = new MirrorCluster(stack, 'Cluster', { clusterName: 'prod-db' });
    clusterOutputs(stack, c);
    const outputs = Template.fromStack(stack).toJSON().Outputs as Record<string, any>;
    const byPrefix = (p: string) => Object.entries(outputs).find(([k]) => k.startsWith(p))?.[1];
    expect(byPrefix('VipDnsName').Value).toEqual({ 'Fn::GetAtt': [expect.stringMatching(/LoadBalancer/), 'DNSName'] });
    expect(byPrefix('HealthUrls').Value).toBe(c.nodeAddresses.map((a) => `http://${a}:9010/var/modules/mirror/ready.txt`).join(' '));
    expect(byPrefix('FunctionUrl').Value).toEqual({ 'Fn::GetAtt': [expect.stringMatching(/FunctionUrl/), 'FunctionUrl'] });
  });
});

describe('FarmCluster', () => {
  it('spreads N nodes over the AZs, opens the farm ports between nodes only', () => {
    const { template, cluster } = synth('farm', { nodeCount: 3, module: { name: 'web', id: 2 } });
    const inst = Object.values(template.findResources('AWS::EC2::Instance')) as any[];
    expect(inst).toHaveLength(3);
    expect(new Set(inst.map((i) => JSON.stringify(i.Properties.AvailabilityZone))).size).toBeGreaterThanOrEqual(2);
    const s = probeSettings({ module: 'web', mode: 'farm', healthPort: 9010 });
    template.hasResourceProperties('AWS::ElasticLoadBalancingV2::TargetGroup', { HealthCheckPath: s.aws.healthCheckPath, Matcher: { HttpCode: '200' } });
    const p = modulePorts(2);
    const rules = ingressRules(template);
    for (const port of [p.heartbeat, p.farm, p.farm + 2]) {
      const open = rules.filter((r) => covers(r, port, 'udp'));
      expect(open.length).toBeGreaterThan(0);
      for (const r of open) expect(r.CidrIp).toBeUndefined();
    }
    expect(rules.filter((r) => covers(r, p.replication, 'tcp'))).toEqual([]);
    for (const script of userDataScripts(template)) {
      const raw = parse(extractClusterYaml(script).replaceAll('DEPLOY_TIME_VALUE', 'https://fn.example.invalid/'));
      const config = validateConfig(raw, '/etc/vigil/cluster.yaml', { skipFileChecks: true });
      expect(config.nodes).toHaveLength(3);
      expect(config.modules[0]).toMatchObject({ name: 'web', mode: 'farm', id: 2 });
    }
    expect(cluster.nodeAddresses).toHaveLength(3);
  });

  it('uses existing instances in an existing VPC', () => {
    const app = new App({ builtinCloudFormationValidation: false });
    const stack = new Stack(app, 'Existing');
    const vpc = ec2.Vpc.fromVpcAttributes(stack, 'Vpc', {
      vpcId: 'vpc-12345678',
      vpcCidrBlock: '10.20.0.0/16',
      availabilityZones: ['eu-west-1a', 'eu-west-1b'],
      privateSubnetIds: ['subnet-aaaa1111', 'subnet-bbbb2222'],
      privateSubnetIpv4CidrBlocks: ['10.20.1.0/24', '10.20.2.0/24'],
    });
    new FarmCluster(stack, 'Cluster', {
      vpc,
      existingInstances: [
        { instanceId: 'i-0123456789abcdef0', privateIp: '10.20.1.5' },
        { instanceId: 'i-0123456789abcdef1', privateIp: '10.20.2.5' },
      ],
    });
    const t = Template.fromStack(stack);
    t.resourceCountIs('AWS::EC2::Instance', 0);
    t.hasResourceProperties('AWS::ElasticLoadBalancingV2::TargetGroup', {
      Targets: [
        { Id: '10.20.1.5', Port: 80 },
        { Id: '10.20.2.5', Port: 80 },
      ],
    });
    const assoc = Object.values(t.findResources('AWS::SSM::Association'))[0] as any;
    expect(assoc.Properties.Targets).toEqual([{ Key: 'InstanceIds', Values: ['i-0123456789abcdef0', 'i-0123456789abcdef1'] }]);
    const [writeScript, run] = assoc.Properties.Parameters.commands;
    expect(run).toBe('bash /var/tmp/vigil-bootstrap.sh');
    expect(spawnSync('sh', ['-n'], { input: cfnText(writeScript), encoding: 'utf8' }).status).toBe(0);
    const yamlText = extractClusterYaml(cfnText(writeScript));
    const config = validateConfig(parse(yamlText.replaceAll('DEPLOY_TIME_VALUE', 'https://fn.example.invalid/')), 'cluster.yaml', { skipFileChecks: true });
    expect(config.nodes.map((n) => n.addrs[0])).toEqual(['10.20.1.5', '10.20.2.5']);
  });
});

describe('impossible input throws at construction', () => {
  const cases: [string, ModuleMode, FarmClusterProps, RegExp][] = [
    ['mirror with 3 nodes', 'mirror', { nodeCount: 3 } as VigilClusterProps, /exactly 2 nodes/],
    ['farm with 1 node', 'farm', { nodeCount: 1 }, /nodeCount 1 not supported/],
    ['listener on the health port', 'mirror', { listenerPort: 9010 }, /must differ from healthPort/],
    ['listener on a cluster port', 'mirror', { listenerPort: 5601 }, /collides with the module's cluster ports/],
    ['private IP outside the subnet', 'mirror', { privateIps: ['192.168.0.10', '10.0.3.10'] }, /not in node1's subnet/],
    ['reserved private IP', 'mirror', { privateIps: ['10.0.2.1', '10.0.3.10'] }, /reserves/],
    ['wrong number of private IPs', 'farm', { nodeCount: 3, privateIps: ['10.0.2.10'] }, /1 address\(es\) for 3 nodes/],
    ['existing instances without a VPC', 'mirror', { existingInstances: [{ instanceId: 'i-01234567', privateIp: '10.0.0.5' }] }, /requires vpc/],
    ['mirror cross-zone off', 'mirror', { crossZone: false }, /crossZone cannot be false/],
    ['replicated dirs on a farm', 'farm', { module: { replicatedDirs: ['/srv'] } }, /for a mirror cluster/],
    ['config the daemon rejects', 'mirror', { module: { replicatedDirs: ['/srv/a', '/srv/a/b'] } }, /must not nest/],
  ];
  for (const [name, kind, props, re] of cases) {
    it(name, () => {
      const app = new App({ builtinCloudFormationValidation: false });
      const stack = new Stack(app, 'S');
      expect(() => (kind === 'mirror' ? new MirrorCluster(stack, 'C', props) : new FarmCluster(stack, 'C', props))).toThrow(re);
    });
  }
});

describe('optional production features', () => {
  it('waitForBootstrap: a creation policy and a cfn-signal per node, on success and on failure', () => {
    const { template } = synth('mirror', { waitForBootstrap: true });
    const inst = Object.entries(template.findResources('AWS::EC2::Instance')) as [string, any][];
    expect(inst).toHaveLength(2);
    for (const [logicalId, r] of inst) {
      expect(r.CreationPolicy).toEqual({ ResourceSignal: { Count: 1, Timeout: 'PT30M' } });
      const script = cfnText(r.Properties.UserData, (v) => (JSON.stringify(v) === '{"Ref":"AWS::StackName"}' ? 'STACK' : 'X'));
      expect(script.startsWith('#!/bin/bash\n')).toBe(true);
      expect(script).toContain(`cfn-signal -e 0 --stack STACK --resource ${logicalId} `);
      expect(script).toMatch(new RegExp(`trap '/opt/aws/bin/cfn-signal -e 1 --stack STACK --resource ${logicalId} `));
      expect(spawnSync('bash', ['-n'], { input: script, encoding: 'utf8' }).status).toBe(0);
      validateConfig(parse(extractClusterYaml(script).replaceAll('X', 'https://fn.example.invalid/')), 'c.yaml', { skipFileChecks: true });
    }
  });

  it('alarms when no target is healthy', () => {
    const { template } = synth('farm');
    template.hasResourceProperties('AWS::CloudWatch::Alarm', {
      MetricName: 'HealthyHostCount',
      Namespace: 'AWS/NetworkELB',
      Statistic: 'Minimum',
      Threshold: 1,
      ComparisonOperator: 'LessThanThreshold',
      TreatMissingData: 'breaching',
    });
  });
});
