import { App, Stack } from 'aws-cdk-lib';
import { Match, Template } from 'aws-cdk-lib/assertions';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { MirrorCluster } from '../../infra/aws/index.ts';
import { azureClusterTemplate } from '../../infra/azure/arm-template.ts';
import { gcpClusterTerraform } from '../../infra/gcp/terraform.ts';
import { extractClusterYaml } from '../../infra/common/bootstrap.ts';
import { cfnText } from '../../infra/common/inspect.ts';
import { validateConfig } from '../../node-service/src/config/index.ts';
import { checkArm, checkCloudFormation, checkTerraform, requireSchemaData } from '../helpers/cloud-schemas.ts';

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
    // the SDK is an optional peer of Vigil: the bootstrap installs it beside Vigil on these nodes only
    expect(script).toContain(`npm install --prefix "$(npm root -g)/vigil" --omit=dev --no-save --no-fund --no-audit '@aws-sdk/client-dynamodb@^3'`);
    expect(validateConfig(raw, 'cluster.yaml', { skipFileChecks: true }).modules[0].arbiter).toMatchObject({ type: 'aws-dynamodb', table: 'prod-db-lease', ttl: 10_000 });
    requireSchemaData();
    expect(checkCloudFormation(t.toJSON() as never).errors).toEqual([]);
  });

  it('without module.arbiter: no table, no arbiter in cluster.yaml', () => {
    const t = synth(false);
    t.resourceCountIs('AWS::DynamoDB::Table', 0);
    expect(JSON.stringify(t.toJSON())).not.toContain('npm install --prefix');
  });
});

describe('infra: the lease store of the arbiter (Azure, GCP)', () => {
  it('Azure: module.arbiter adds a container to the storage account, blob read/write on it for each VM identity, and the azure-blob arbiter with the account URL filled in at deployment', () => {
    const { template, plan } = azureClusterTemplate('mirror', { module: { arbiter: true } });
    const container = template.resources.find((r) => r.type === 'Microsoft.Storage/storageAccounts/blobServices/containers' && String(r.name).includes('vigil-leases'));
    expect(container).toBeDefined();
    const grants = template.resources.filter((r) => r.type === 'Microsoft.Authorization/roleAssignments' && String(r.scope).includes('containers/vigil-leases'));
    expect(grants).toHaveLength(2);
    for (const g of grants) expect(g.properties.roleDefinitionId).toContain('ba92f5b4-2d11-453d-a403-e96b0029c9fe');
    expect(plan.raw.modules![0].arbiter).toEqual({ type: 'azure-blob', account_url: 'https://vigil-lease-account.blob.core.windows.net', container: 'vigil-leases' });
    expect(template.variables.bootstrap).toContain("'https://vigil-lease-account.blob.core.windows.net', format('https://{0}.blob.{1}', variables('storageName'), environment().suffixes.storage))");
    requireSchemaData();
    expect(template.variables.bootstrapTemplate).toContain(`'@azure/storage-blob@^12' '@azure/identity@^4'`);
    expect(checkArm(template).errors).toEqual([]);
    expect(azureClusterTemplate('mirror').plan.raw.modules![0].arbiter).toBeUndefined();
  });

  it('GCP: module.arbiter adds a lease bucket, object read/write on it for the nodes, and the gcs arbiter naming it', () => {
    const { tf, plan } = gcpClusterTerraform('mirror', { module: { arbiter: true } });
    const r = tf.resource as Record<string, Record<string, any>>;
    expect(r.google_storage_bucket.lease).toMatchObject({ name: '${var.project}-vigil-mirror-lease', uniform_bucket_level_access: true, public_access_prevention: 'enforced' });
    expect(r.google_storage_bucket_iam_member.lease).toMatchObject({ bucket: '${google_storage_bucket.lease.name}', role: 'roles/storage.objectUser', member: 'serviceAccount:${google_service_account.nodes.email}' });
    expect(plan.raw.modules![0].arbiter).toEqual({ type: 'gcs', bucket: 'vigil-lease-bucket-placeholder' });
    expect(JSON.stringify(tf)).toContain('arbiter:\\n      type: gcs\\n      bucket: ${google_storage_bucket.lease.name}');
    requireSchemaData();
    expect(JSON.stringify(tf)).toContain(`'@google-cloud/storage@^7'`);
    expect(checkTerraform(tf).errors).toEqual([]);
    expect((gcpClusterTerraform('mirror').tf.resource as Record<string, Record<string, unknown>>).google_storage_bucket.lease).toBeUndefined();
  });
});
