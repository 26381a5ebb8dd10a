import { describe, expect, it, beforeEach } from 'vitest';
import type { ModuleMode } from '../../node-service/src/contract/index.ts';
import { NetworkManagementClient } from '@azure/arm-network';
import { createHttpHeaders } from '@azure/core-rest-pipeline';
import type { TokenCredential } from '@azure/core-auth';
import { AzureLoadBalancerAdapter, type AzureResources } from '../../cloud-adapters/src/azure/adapter.ts';
import { formatPlan, type Desired } from '../../cloud-adapters/src/types.ts';
import { demoDesired } from '../helpers/cloud-desired.ts';
import { FakeArm } from '../helpers/cloud-fakes.ts';

const emptyLb = () => ({ id: LB_ID, name: 'lb-vigil', location: 'westeurope', sku: { name: 'Standard' }, properties: { frontendIPConfigurations: [{ id: `${LB_ID}/frontendIPConfigurations/fe`, name: 'fe', properties: {} }], backendAddressPools: [], probes: [], loadBalancingRules: [] } });

const SUB = '00000000-0000-0000-0000-000000000001';
const RG = 'rg-vigil';
const LB_ID = `/subscriptions/${SUB}/resourceGroups/${RG}/providers/Microsoft.Network/loadBalancers/lb-vigil`;
const VNET = `/subscriptions/${SUB}/resourceGroups/${RG}/providers/Microsoft.Network/virtualNetworks/vnet-vigil`;

const credential: TokenCredential = { getToken: async () => ({ token: 'fake-token', expiresOnTimestamp: Date.now() + 3_600_000 }) };

function desired(mode: ModuleMode = 'mirror'): Desired<AzureResources> {
  return demoDesired(
    [
      { name: 'node1', address: '10.1.0.4' },
      { name: 'node2', address: '10.1.0.5' },
    ],
    {
      subscriptionId: SUB,
      resourceGroup: RG,
      loadBalancer: 'lb-vigil',
      frontendIpConfiguration: 'fe',
      backendPool: 'vigil-mirror',
      virtualNetworkId: VNET,
      rules: [{ frontendPort: 5432, backendPort: 5432 }],
    },
    mode,
  );
}

describe('Azure Load Balancer adapter (real @azure/arm-network client, recorded HTTP)', () => {
  let arm: FakeArm;
  let adapter: AzureLoadBalancerAdapter;
  beforeEach(() => {
    arm = new FakeArm(emptyLb());
    const client = new NetworkManagementClient(credential, SUB, { httpClient: arm, retryOptions: { maxRetries: 0 } });
    adapter = new AzureLoadBalancerAdapter(client, desired(), { pollIntervalMs: 1 });
  });

  it('PUTs the IP-based pool, then the load balancer with the probe and the rule referencing it', async () => {
    const plan = await adapter.plan();
    expect(formatPlan(plan)).toContain('+ probe mirror-ready: Http:9010/var/modules/mirror/ready.txt every 5s, threshold 2, AllProbedDown');
    await adapter.apply(plan);
    const puts = arm.writes();
    expect(puts.map((r) => r.path)).toEqual([`${LB_ID}/backendAddressPools/vigil-mirror`, LB_ID]);
    expect(puts.every((r) => r.auth === 'Bearer fake-token' && r.apiVersion)).toBe(true);
    expect(puts[0].body).toEqual({
      name: 'vigil-mirror',
      properties: {
        loadBalancerBackendAddresses: [
          { name: 'node1', properties: { ipAddress: '10.1.0.4', virtualNetwork: { id: VNET }, adminState: 'None' } },
          { name: 'node2', properties: { ipAddress: '10.1.0.5', virtualNetwork: { id: VNET }, adminState: 'None' } },
        ],
      },
    });
    const lbBody = puts[1].body;
    expect(lbBody.properties.probes).toEqual([
      {
        name: 'mirror-ready',
        properties: { protocol: 'Http', port: 9010, requestPath: '/var/modules/mirror/ready.txt', intervalInSeconds: 5, probeThreshold: 2, noHealthyBackendsBehavior: 'AllProbedDown' },
      },
    ]);
    expect(lbBody.properties.loadBalancingRules).toEqual([
      {
        name: 'mirror-tcp-5432',
        properties: {
          frontendIPConfiguration: { id: `${LB_ID}/frontendIPConfigurations/fe` },
          backendAddressPool: { id: `${LB_ID}/backendAddressPools/vigil-mirror` },
          probe: { id: `${LB_ID}/probes/mirror-ready` },
          protocol: 'Tcp',
          frontendPort: 5432,
          backendPort: 5432,
          enableTcpReset: true,
          enableFloatingIP: false,
          loadDistribution: 'Default',
          idleTimeoutInMinutes: 4,
          disableOutboundSnat: true,
        },
      },
    ]);
    // the load balancer PUT keeps the pool the previous PUT created (it re-read the load balancer first)
    expect(lbBody.properties.backendAddressPools.map((p: any) => p.name)).toEqual(['vigil-mirror']);
    expect(arm.asyncPolls).toBeGreaterThanOrEqual(2);
  });

  it('is idempotent: a second plan is empty, and applying it writes nothing', async () => {
    await adapter.apply(await adapter.plan());
    arm.requests = [];
    const again = await adapter.plan();
    expect(again.changes).toEqual([]);
    await adapter.apply(again);
    expect(arm.writes()).toEqual([]);
  });

  it('farm probes fail open (AllProbedUp); a drifted probe is one load balancer PUT with a readable diff', async () => {
    await adapter.apply(await adapter.plan());
    arm.lb.properties.probes[0].properties.intervalInSeconds = 15;
    arm.requests = [];
    const plan = await adapter.plan();
    expect(formatPlan(plan)).toBe(['azure demo/mirror: 1 change(s)', '~ update azure load balancer lb-vigil', '    probe mirror-ready intervalInSeconds: 15 -> 5'].join('\n'));
    const farm = new AzureLoadBalancerAdapter(new NetworkManagementClient(credential, SUB, { httpClient: new FakeArm(emptyLb()) }), desired('farm'), { pollIntervalMs: 1 });
    const fp = await farm.plan();
    expect((fp.changes[1].request.input as any).probe.noHealthyBackendsBehavior).toBe('AllProbedUp');
  });

  it('drain sets adminState Down on the node; restore and reconcile set it back to None; observe maps rule health', async () => {
    await adapter.apply(await adapter.plan());
    arm.requests = [];
    await adapter.drain('node1');
    expect(arm.writes()).toHaveLength(1);
    expect(arm.writes()[0].body.properties.loadBalancerBackendAddresses).toEqual([
      { name: 'node1', properties: { ipAddress: '10.1.0.4', virtualNetwork: { id: VNET }, adminState: 'Down' } },
      { name: 'node2', properties: { ipAddress: '10.1.0.5', virtualNetwork: { id: VNET }, adminState: 'None' } },
    ]);
    expect(formatPlan(await adapter.plan())).toContain('- node1 10.1.0.4 (adminState Down)');
    arm.requests = [];
    await adapter.restore('node1');
    expect(arm.writes()[0].body.properties.loadBalancerBackendAddresses[0].properties.adminState).toBe('None');
    expect((await adapter.plan()).changes).toEqual([]);
    arm.health = { '10.1.0.4': 'Up', '10.1.0.5': 'Down' };
    const obs = await adapter.observe();
    expect(arm.requests.at(-1)!.path).toBe(`${LB_ID}/loadBalancingRules/mirror-tcp-5432/health`);
    expect(obs.targets).toEqual([
      { node: 'node1', target: '10.1.0.4', state: 'healthy', detail: 'probe' },
      { node: 'node2', target: '10.1.0.5', state: 'unhealthy', detail: 'probe' },
    ]);
  });

  it('a missing load balancer is reported, not created', async () => {
    const client = new NetworkManagementClient(credential, SUB, { httpClient: { sendRequest: async (req) => ({ request: req, status: 404, headers: createHttpHeaders({ 'content-type': 'application/json' }), bodyAsText: '{"error":{"code":"ResourceNotFound","message":"nope"}}' }) }, retryOptions: { maxRetries: 0 } });
    await expect(new AzureLoadBalancerAdapter(client, desired()).plan()).rejects.toThrow(/does not exist \(it is created by infra\)/);
  });
});
