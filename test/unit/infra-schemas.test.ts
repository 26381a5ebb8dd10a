/**
 * Every synthesized template against its cloud's own published definitions, offline:
 * CloudFormation (both CDK stacks) against the CloudFormation resource specification
 * (@aws-cdk/aws-service-spec), the ARM templates against Microsoft's ARM JSON schemas for the
 * apiVersions used (strict property names), the Terraform JSON against the google provider's
 * arguments with every reference resolved. Data: ../shared/cloud-schemas (README: "Cloud schema data").
 */
import { App } from 'aws-cdk-lib';
import { Template } from 'aws-cdk-lib/assertions';
import { beforeAll, describe, expect, it } from 'vitest';
import { buildApp } from '../../infra/bin/app.ts';
import { azureClusterTemplate } from '../../infra/azure/arm-template.ts';
import { gcpClusterTerraform } from '../../infra/gcp/terraform.ts';
import { checkArm, checkCloudFormation, checkTerraform, requireSchemaData } from '../helpers/cloud-schemas.ts';

process.env.CDK_DOCKER = '/bin/false';

/** resources checked per cloud, printed for the README's table */
const counts: Record<string, number> = {};

describe('templates against the clouds\' own schemas', () => {
  beforeAll(() => requireSchemaData());

  it('CloudFormation: every resource of both stacks against the resource specification', () => {
    const { mirror, farm } = buildApp(new App({ builtinCloudFormationValidation: false }));
    let n = 0;
    for (const s of [mirror, farm]) {
      const r = checkCloudFormation(Template.fromStack(s).toJSON() as never);
      expect(r.errors, s.stackName).toEqual([]);
      n += r.checked;
    }
    counts.aws = n;
    expect(n).toBeGreaterThan(40);
  });

  it('the CloudFormation check finds what it should (unknown property, wrong type, missing required, dangling GetAtt)', () => {
    const bad = {
      Resources: {
        Tg: { Type: 'AWS::ElasticLoadBalancingV2::TargetGroup', Properties: { HealthCheckIntervalSecond: 5 } },
        Tg2: { Type: 'AWS::ElasticLoadBalancingV2::TargetGroup', Properties: { HealthyThresholdCount: 'two' } },
        Sg: { Type: 'AWS::EC2::SecurityGroup', Properties: {} },
        Out: { Type: 'AWS::SSM::Parameter', Properties: { Type: 'String', Value: { 'Fn::GetAtt': ['Nope', 'Arn'] } } },
      },
    };
    const r = checkCloudFormation(bad);
    expect(r.errors.join('\n')).toMatch(/unknown property HealthCheckIntervalSecond/);
    expect(r.errors.join('\n')).toMatch(/HealthyThresholdCount: expected a number/);
    expect(r.errors.join('\n')).toMatch(/required property GroupDescription is missing/);
    expect(r.errors.join('\n')).toMatch(/Fn::GetAtt Nope is not declared/);
  });

  it('ARM: every resource of the mirror and farm templates against the schema of its apiVersion, strictly', () => {
    let n = 0;
    for (const mode of ['mirror', 'farm'] as const) {
      const { template } = azureClusterTemplate(mode, mode === 'farm' ? { nodeCount: 3 } : {});
      const r = checkArm(template);
      expect(r.errors, mode).toEqual([]);
      n += r.checked;
    }
    counts.azure = n;
    expect(n).toBeGreaterThan(20);
  });

  it('the ARM check is strict: an unknown property name fails although the official schema lets it through', () => {
    const { template } = azureClusterTemplate('mirror');
    const lb = template.resources.find((r) => r.type === 'Microsoft.Network/loadBalancers')!;
    lb.properties.probes[0].properties.NoHealthyBackendsBehavior = 'AllProbedDown';
    const old = structuredClone(lb);
    old.apiVersion = '2024-01-01';
    old.properties.probes[0].properties = { ...old.properties.probes[0].properties };
    delete old.properties.probes[0].properties.NoHealthyBackendsBehavior;
    const r = checkArm({ resources: [lb, old] });
    expect(r.errors.join('\n')).toMatch(/unknown property "NoHealthyBackendsBehavior"/);
    // 2024-01-01 spells it with a capital N: the template's spelling did not exist in that version
    expect(r.errors.join('\n')).toMatch(/2024-01-01|unknown property "noHealthyBackendsBehavior"/);
  });

  it('Terraform: every resource\'s arguments exist in the google provider, and every reference resolves', () => {
    let n = 0;
    for (const mode of ['mirror', 'farm'] as const) {
      const { tf } = gcpClusterTerraform(mode);
      const r = checkTerraform(tf);
      expect(r.errors, mode).toEqual([]);
      n += r.checked;
    }
    counts.gcp = n;
    expect(n).toBeGreaterThan(30);
  });

  it('the Terraform check finds an unknown argument, a dangling reference and an expression in a variable default', () => {
    const { tf } = gcpClusterTerraform('mirror');
    tf.resource.google_compute_region_backend_service.vip.failover = true;
    tf.resource.google_compute_forwarding_rule.vip.network = '${google_compute_network.nope.id}';
    tf.variable.extra = { type: 'string', default: '${path.module}/vigil.tgz' };
    const r = checkTerraform(tf).errors.join('\n');
    expect(r).toMatch(/google_compute_region_backend_service.vip: unknown argument "failover"/);
    expect(r).toMatch(/google_compute_network.nope is not declared/);
    expect(r).toMatch(/variable.extra.default: a variable's default cannot contain an expression/);
  });

  it('reports the counts', () => {
    console.log(`RESULT schema_resources_aws=${counts.aws} schema_resources_azure=${counts.azure} schema_resources_gcp=${counts.gcp}`);
  });
});
