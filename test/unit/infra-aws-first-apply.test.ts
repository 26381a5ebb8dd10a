/**
 * The AWS stacks are right on first apply: defects found by reviewing the synthesized templates
 * against CloudFormation's and ELBv2's own definitions, each with the template fact that shows it fixed.
 */
import { App, Stack } from 'aws-cdk-lib';
import { Template } from 'aws-cdk-lib/assertions';
import { describe, expect, it } from 'vitest';
import { parseFunctionsConfig } from '../../functions/src/config.ts';
import { FarmCluster, MirrorCluster } from '../../infra/aws/index.ts';
import { buildApp } from '../../infra/bin/app.ts';
import { cfnText } from '../../infra/common/inspect.ts';

process.env.CDK_DOCKER = '/bin/false';

type Res = Record<string, { Type: string; Properties?: Record<string, any> }>;
const resources = (s: Stack) => Template.fromStack(s).toJSON().Resources as Res;

/** Properties that give a resource a physical name: two resources with the same one collide in an account and region. */
const NAME_PROPS = ['LaunchTemplateName', 'Name', 'RoleName', 'FunctionName', 'LogGroupName', 'AssociationName', 'AlarmName', 'TargetGroupName', 'LoadBalancerName', 'GroupName', 'SecretName', 'RuleName'];

function physicalNames(stacks: Stack[]): string[] {
  const out: string[] = [];
  for (const s of stacks) {
    for (const r of Object.values(resources(s))) {
      for (const k of NAME_PROPS) {
        const v = r.Properties?.[k];
        if (typeof v === 'string') out.push(`${r.Type}.${k}=${v}`);
      }
    }
  }
  return out;
}

describe('AWS: first apply', () => {
  const app = new App({ builtinCloudFormationValidation: false });
  const { mirror, farm } = buildApp(app);
  // a second mirror and farm cluster in one more stack of the same account and region
  const more = new Stack(app, 'More');
  new MirrorCluster(more, 'Db2', { clusterName: 'db2' });
  new FarmCluster(more, 'Web2', { clusterName: 'web2' });
  const all = [mirror, farm, more];

  it('several clusters and both stacks coexist: no launch template, no physical name used twice', () => {
    for (const s of all) expect(Object.values(resources(s)).filter((r) => r.Type === 'AWS::EC2::LaunchTemplate')).toEqual([]);
    const names = physicalNames(all);
    expect(names.filter((n, i) => names.indexOf(n) !== i)).toEqual([]);
    // IMDSv2 is required on the instances themselves
    for (const s of all) {
      for (const r of Object.values(resources(s)).filter((x) => x.Type === 'AWS::EC2::Instance')) expect(r.Properties!.MetadataOptions).toMatchObject({ HttpTokens: 'required' });
    }
  });

  it('a mirror registers no target in the template (only the function registers the observed primary); a farm registers all', () => {
    const tg = (s: Stack) => Object.values(resources(s)).find((r) => r.Type === 'AWS::ElasticLoadBalancingV2::TargetGroup')!;
    expect(tg(mirror).Properties!.Targets).toBeUndefined();
    expect(tg(farm).Properties!.Targets).toHaveLength(2);
    expect(() => new MirrorCluster(new Stack(new App(), 'X'), 'C', { enableFunction: false })).toThrow(/fails open/);
  });

  it('the events secret and the admin token are not in the Lambda environment: read at run time, with read rights on exactly them', () => {
    const res = resources(mirror);
    const fn = Object.values(res).find((r) => r.Type === 'AWS::Lambda::Function' && r.Properties!.Handler === 'index.handler')!;
    const env = fn.Properties!.Environment.Variables;
    expect(Object.keys(env).sort()).toEqual(['NODE_OPTIONS', 'VIGIL_FUNCTIONS_CONFIG']);
    expect(JSON.stringify(env)).not.toMatch(/resolve:secretsmanager/);
    const cfg = parseFunctionsConfig(JSON.parse(cfnText(env.VIGIL_FUNCTIONS_CONFIG, (v) => (JSON.stringify(v).includes('Secret') ? 'arn:aws:secretsmanager:r:1:secret:x' : 'placeholder'))), 'test');
    const c = Object.values(cfg.clusters)[0];
    expect(c.eventSecrets).toEqual([{ awsSecretArn: expect.stringMatching(/^arn:aws:secretsmanager/) }]);
    expect(c.adminTokens).toHaveLength(1);
    const policies = Object.values(res).filter((r) => r.Type === 'AWS::IAM::Policy' && JSON.stringify(r.Properties!.Roles).includes('FunctionServiceRole'));
    const text = JSON.stringify(policies);
    expect(text).toContain('secretsmanager:GetSecretValue');
    expect(text).toMatch(/ClusterEventsSecret/);
  });

  it('the open function URL is capped, and a failed scheduled reconcile is not retried by Lambda', () => {
    const res = resources(mirror);
    const fn = Object.values(res).find((r) => r.Type === 'AWS::Lambda::Function' && r.Properties!.Handler === 'index.handler')!;
    expect(fn.Properties!.ReservedConcurrentExecutions).toBe(3);
    const cfg = Object.values(res).find((r) => r.Type === 'AWS::Lambda::EventInvokeConfig')!;
    expect(cfg.Properties).toMatchObject({ MaximumRetryAttempts: 0, Qualifier: '$LATEST' });
  });

  it('the node role reads the one package object, not the whole CDK assets bucket', () => {
    const res = resources(mirror);
    const nodePolicy = Object.values(res).filter((r) => r.Type === 'AWS::IAM::Policy' && JSON.stringify(r.Properties!.Roles).includes('NodeRole'));
    const s3 = nodePolicy.flatMap((p) => p.Properties!.PolicyDocument.Statement).filter((st: any) => JSON.stringify(st.Action).includes('s3:'));
    expect(s3).toHaveLength(1);
    expect(s3[0].Action).toBe('s3:GetObject');
    const resource = cfnText(s3[0].Resource, () => 'X');
    expect(resource).toMatch(/^arn:X:s3:::X\/[0-9a-f]{64}\.tgz$/);
  });

  it('every resource that takes tags is tagged with its cluster', () => {
    for (const [s, name] of [[mirror, 'vigil-mirror'], [farm, 'vigil-farm']] as const) {
      for (const [id, r] of Object.entries(resources(s))) {
        if (!r.Properties || !('Tags' in r.Properties)) continue;
        const tags = r.Properties.Tags;
        const has = Array.isArray(tags) ? tags.some((t: any) => t.Key === 'vigil:cluster' && t.Value === name) : tags?.['vigil:cluster'] === name;
        expect(has, `${id} (${r.Type})`).toBe(true);
      }
      const tagged = Object.values(resources(s)).filter((r) => r.Properties && 'Tags' in r.Properties).map((r) => r.Type);
      for (const t of ['AWS::EC2::Instance', 'AWS::ElasticLoadBalancingV2::LoadBalancer', 'AWS::SecretsManager::Secret', 'AWS::Lambda::Function', 'AWS::EC2::SecurityGroup']) expect(tagged).toContain(t);
    }
  });
});
