/**
 * The reconcile / status / events function is deployed on Azure and GCP too (AWS: infra-aws*.test.ts):
 * on a schedule, behind an events URL the nodes post to, with an instance cap, with an identity that
 * can change only its cluster's load balancer, and with its secrets referenced, never written.
 */
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { parseFunctionsConfig } from '../../functions/src/config.ts';
import { azureClusterTemplate } from '../../infra/azure/arm-template.ts';
import { extractClusterYaml } from '../../infra/common/bootstrap.ts';
import { gcpClusterTerraform } from '../../infra/gcp/terraform.ts';

describe('Azure: the function app in the ARM template', () => {
  const { template } = azureClusterTemplate('mirror');
  const res = template.resources;
  const site = res.find((r) => r.type === 'Microsoft.Web/sites')!;

  it('a Flex Consumption function app with an instance cap and VNet integration, its timer in the code, its events URL an output the nodes use', () => {
    expect(site.kind).toBe('functionapp,linux');
    expect(site.properties.functionAppConfig.scaleAndConcurrency.maximumInstanceCount).toBe("[parameters('functionMaxInstances')]");
    expect(site.properties.virtualNetworkSubnetId).toContain("'function'");
    expect(template.outputs.eventsUrl).toEqual({ type: 'string', value: "[variables('eventsUrl')]" });
    // the nodes' cluster.yaml gets the same URL (replaced at deployment)
    expect(template.variables.bootstrap as string).toContain("variables('eventsUrl')");
    const yaml = parse(extractClusterYaml(template.variables.bootstrapTemplate as string));
    expect(yaml.modules[0].cloud_events).toEqual({ url: '__VIGIL_EVENTS_URL__', secret_file: '/etc/vigil/events.key' });
  });

  it('secrets are Key Vault references (a previous events secret too: rotation without redeploy); the config passes the functions schema', () => {
    const settings = Object.fromEntries(site.properties.siteConfig.appSettings.map((s: { name: string; value: string }) => [s.name, s.value]));
    for (const k of ['VIGIL_EVENT_SECRET', 'VIGIL_EVENT_SECRET_PREVIOUS', 'VIGIL_ADMIN_TOKEN']) expect(settings[k]).toMatch(/^\[format\('@Microsoft\.KeyVault\(VaultName=\{0\};SecretName=vigil-/);
    expect(JSON.stringify(site)).not.toMatch(/parameters\('(eventsSecret|adminToken|clusterSecret)'\)/);
    const cfg = parseFunctionsConfig(JSON.parse((template.variables.functionsConfigTemplate as string).replaceAll('__SUB__', 'sub').replaceAll('__RG__', 'rg')), 'app setting');
    expect(Object.values(cfg.clusters)[0].modules[0].cloud).toMatchObject({ provider: 'azure', loadBalancer: 'vigil-mirror-lb', backendPool: 'mirror-nodes', probeName: 'mirror-ready' });
  });

  it('least privilege: a custom role on this load balancer and its VNet only', () => {
    const role = res.find((r) => r.type === 'Microsoft.Authorization/roleDefinitions')!;
    const actions: string[] = role.properties.permissions[0].actions;
    expect(actions.every((a) => a.startsWith('Microsoft.Network/loadBalancers/') || a.startsWith('Microsoft.Network/virtualNetworks/'))).toBe(true);
    expect(actions).not.toContain('Microsoft.Network/loadBalancers/delete');
    const scopes = res.filter((r) => r.type === 'Microsoft.Authorization/roleAssignments' && JSON.stringify(r.properties.roleDefinitionId).includes('vigil-function-lb')).map((r) => r.scope);
    expect(scopes.sort()).toEqual(['Microsoft.Network/loadBalancers/vigil-mirror-lb', 'Microsoft.Network/virtualNetworks/vigil-mirror-vnet']);
  });
});

describe('GCP: the functions in the Terraform module', () => {
  const { tf } = gcpClusterTerraform('mirror');
  const r = tf.resource;

  it('an HTTP function (events URL) with an instance cap, and a Pub/Sub function run every minute by Cloud Scheduler, not retried', () => {
    const fn = r.google_cloudfunctions2_function.vigil;
    expect(fn.service_config.max_instance_count).toBe('${var.function_max_instances}');
    expect(fn.build_config.entry_point).toBe('vigil');
    expect(r.google_cloud_scheduler_job.reconcile).toMatchObject({ schedule: '* * * * *', pubsub_target: { topic_name: '${google_pubsub_topic.reconcile.id}' } });
    expect(r.google_cloudfunctions2_function.reconcile.event_trigger).toMatchObject({ event_type: 'google.cloud.pubsub.topic.v1.messagePublished', retry_policy: 'RETRY_POLICY_DO_NOT_RETRY' });
    expect(tf.output.events_url.value).toBe('${google_cloudfunctions2_function.vigil.service_config[0].uri}/events');
    expect(tf.locals.bootstrap).toContain('${google_cloudfunctions2_function.vigil.service_config[0].uri}/events');
  });

  it('secrets mounted from Secret Manager (latest version, a previous events secret for rotation), none in the environment', () => {
    const sc = r.google_cloudfunctions2_function.vigil.service_config;
    expect(sc.secret_volumes.map((v: { secret: string; versions: { version: string }[] }) => [v.secret, v.versions[0].version])).toEqual([
      ['vigil-mirror-events-secret', 'latest'],
      ['vigil-mirror-events-secret-previous', 'latest'],
      ['vigil-mirror-admin-token', 'latest'],
    ]);
    expect(JSON.stringify(sc.environment_variables)).not.toMatch(/random_password|secret_data/);
  });

  it('least privilege: a custom role with the adapter\'s Compute permissions, conditioned on this cluster\'s resources', () => {
    const role = r.google_project_iam_custom_role.function;
    expect(role.permissions.every((p: string) => p.startsWith('compute.'))).toBe(true);
    expect(role.permissions.some((p: string) => /delete|create|setIamPolicy/.test(p))).toBe(false);
    const m = r.google_project_iam_member.function;
    expect(m.role).toBe('${google_project_iam_custom_role.function.id}');
    expect(m.condition.expression).toContain('backendServices/vigil-mirror');
  });
});
