/**
 * The Azure and GCP deployables are right on first apply: the defects found against Microsoft's and
 * Google's own definitions, each with the template fact that shows it fixed.
 */
import { describe, expect, it } from 'vitest';
import { azureNames, gcpBackendRoles } from '../../cloud-adapters/src/layout.ts';
import { AZURE_API_VERSIONS, azureClusterTemplate } from '../../infra/azure/arm-template.ts';
import { gcpClusterTerraform } from '../../infra/gcp/terraform.ts';

describe('Azure', () => {
  const { template } = azureClusterTemplate('mirror');
  const lb = template.resources.find((r) => r.type === 'Microsoft.Network/loadBalancers')!;

  it('the backend pool is IP-based (the kind the adapter manages) and no NIC joins it', () => {
    const pool = lb.properties.backendAddressPools[0];
    expect(pool.properties.loadBalancerBackendAddresses.map((a: any) => [a.name, a.properties.adminState, Boolean(a.properties.ipAddress), Boolean(a.properties.virtualNetwork?.id)])).toEqual([
      ['node1', 'None', true, true],
      ['node2', 'None', true, true],
    ]);
    for (const nic of template.resources.filter((r) => r.type === 'Microsoft.Network/networkInterfaces')) {
      expect(nic.properties.ipConfigurations[0].properties.loadBalancerBackendAddressPools).toBeUndefined();
    }
  });

  it('probe, pool and rule names are the adapter\'s (a reconcile adds no second rule); current apiVersions', () => {
    const n = azureNames('vigil-mirror', 'mirror');
    expect(lb.name).toBe(n.loadBalancer);
    expect(lb.properties.backendAddressPools[0].name).toBe(n.backendPool);
    expect(lb.properties.probes[0].name).toBe(n.probe);
    expect(lb.properties.loadBalancingRules.map((r: any) => r.name)).toEqual([n.rule('Tcp', 80)]);
    expect(lb.properties.probes[0].properties.noHealthyBackendsBehavior).toBe('AllProbedDown');
    expect(lb.apiVersion).toBe(AZURE_API_VERSIONS.network);
    const byProvider = new Map<string, Set<string>>();
    for (const r of template.resources) {
      const p = (r.type as string).split('/')[0];
      byProvider.set(p, (byProvider.get(p) ?? new Set()).add(r.apiVersion));
    }
    expect(Object.fromEntries([...byProvider].map(([k, v]) => [k, [...v]]))).toEqual({
      'Microsoft.Network': ['2025-07-01'],
      'Microsoft.KeyVault': ['2026-02-01'],
      'Microsoft.Compute': ['2025-04-01'],
      'Microsoft.Authorization': ['2022-04-01'],
      'Microsoft.Storage': ['2025-06-01'],
      'Microsoft.Web': ['2024-11-01'],
    });
  });

  it('outputs the load balancer, pool and probe ids', () => {
    for (const k of ['loadBalancerId', 'backendPoolId', 'probeId']) expect(template.outputs[k]).toMatchObject({ type: 'string' });
  });
});

describe('GCP', () => {
  it('mirror: node2 is a failover backend, as the adapter has it; connections never stay on an unhealthy backend', () => {
    const { tf } = gcpClusterTerraform('mirror');
    const bs = tf.resource.google_compute_region_backend_service.vip;
    expect(bs.backend.map((b: any) => b.failover)).toEqual(gcpBackendRoles('mirror', ['node1', 'node2']).map((r) => r.failover));
    expect(bs.backend.map((b: any) => b.failover)).toEqual([false, true]);
    expect(bs.connection_tracking_policy).toEqual({ connection_persistence_on_unhealthy_backends: 'NEVER_PERSIST' });
    expect(bs.failover_policy).toMatchObject({ drop_traffic_if_unhealthy: true });
    const farm = gcpClusterTerraform('farm').tf.resource.google_compute_region_backend_service.vip;
    expect(farm.backend.every((b: any) => b.failover === undefined)).toBe(true);
  });

  it('a module: no provider block, no expression in a variable default, validated variables, outputs', () => {
    const { tf } = gcpClusterTerraform('mirror');
    expect(tf.provider).toBeUndefined();
    for (const [name, v] of Object.entries<any>(tf.variable)) expect(JSON.stringify(v.default ?? null), name).not.toContain('${');
    expect(tf.variable.zones.validation).toHaveLength(1);
    expect(tf.variable.client_cidrs.validation).toHaveLength(1);
    expect(Object.keys(tf.output)).toEqual(expect.arrayContaining(['vip_address', 'health_urls', 'backend_service', 'health_check', 'events_url']));
  });
});
