import { App, Stack } from 'aws-cdk-lib';
import { Match, Template } from 'aws-cdk-lib/assertions';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { MirrorCluster } from '../../infra/aws/index.ts';
import { extractClusterYaml } from '../../infra/common/bootstrap.ts';
import { cfnText } from '../../infra/common/inspect.ts';
import { validateConfig } from '../../node-service/src/config/index.ts';
import { checkCloudFormation, requireSchemaData } from '../helpers/cloud-schemas.ts';

process.env.CDK_DOCKER = '/bin/false';

function synth(arbiter: boolean): Template {
  const stack = new Stack(new App({ builtinCloudFormationValidation: false }), 'Tarb');
  new MirrorCluster(stack, 'Cluster', { clusterName: 'prod-db', module: { arbiter } });
  return Template.fromStack(stack);
}

describe('infra: the lease table of the arbiter (AWS)', () => {
  it('module.arbiter: a DynamoDB table keyed by pk, on-demand; the nodes may only GetItem/PutItem on it; cluster.yaml names it', () => {
    const t = synth(true);
    t.hasResourceProperties('AWS::DynamoDB::Table', { TableName: 'prod-db-lease', KeySchema: [{ AttributeName: 'pk', KeyType: 'HASH' }], BillingMode: 'PAY_PER_REQUEST' });
    t.hasResourceProperties('AWS::IAM::Policy', {
      PolicyDocument: { Statement: Match.arrayWith([Match.objectLike({ Action: ['dynamodb:GetItem', 'dynamodb:PutItem'], Resource: { 'Fn::GetAtt': [Match.stringLikeRegexp('LeaseTable'), 'Arn'] } })]) },
    });
    const res = t.toJSON().Resources as Record<string, { Type: string; Properties: Record<string, unknown> }>;
    const script = Object.values(res).filter((r) => r.Type === 'AWS::EC2::Instance').map((r) => cfnText(r.Properties.UserData))[0];
    const raw = parse(extractClusterYaml(script).replaceAll('DEPLOY_TIME_VALUE', 'https://fn.example.invalid/'));
    expect(raw.modules[0].arbiter).toMatchObject({ type: 'aws-dynamodb', table: 'prod-db-lease' });
    expect(script).toContain('region: ');
    expect(validateConfig(raw, 'cluster.yaml', { skipFileChecks: true }).modules[0].arbiter).toMatchObject({ type: 'aws-dynamodb', table: 'prod-db-lease', ttl: 10_000 });
    requireSchemaData();
    expect(checkCloudFormation(t.toJSON() as never).errors).toEqual([]);
  });

  it('without module.arbiter: no table, no arbiter in cluster.yaml', () => {
    const t = synth(false);
    t.resourceCountIs('AWS::DynamoDB::Table', 0);
  });
});
