import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import type { ModuleMode } from '../../node-service/src/contract/index.ts';
import { GcpLoadBalancerAdapter, type GcpClients, type GcpResources } from '../../cloud-adapters/src/gcp/adapter.ts';
import { formatPlan, type Desired } from '../../cloud-adapters/src/types.ts';
import { demoDesired } from '../helpers/cloud-desired.ts';
import { FakeCompute, startFakeCompute } from '../helpers/cloud-fakes.ts';

const P = '/compute/v1/projects/proj';
const SELF = 'https://www.googleapis.com/compute/v1/projects/proj';

function desired(mode: ModuleMode = 'mirror'): Desired<GcpResources> {
  return demoDesired(
    [
      { name: 'node1', address: '10.2.0.2', instanceId: 'vm-1', zone: 'europe-west1-b' },
      { name: 'node2', address: '10.2.0.3', instanceId: 'vm-2', zone: 'europe-west1-c' },
    ],
    {
      project: 'proj',
      region: 'europe-west1',
      network: 'vpc-vigil',
      backendService: 'vigil-mirror',
      healthCheck: 'vigil-mirror',
      firewallRule: 'vigil-allow-probes',
      targetTags: ['vigil-node'],
      instanceGroups: { node1: 'vigil-node1', node2: 'vigil-node2' },
    },
    mode,
  );
}

describe('GCP adapter (real @google-cloud/compute clients, REST transport to a local endpoint)', () => {
  const fake = new FakeCompute();
  let clients: GcpClients & { close(): Promise<void> };
  let adapter: GcpLoadBalancerAdapter;

  beforeAll(async () => {
    clients = await startFakeCompute(fake);
  });
  afterAll(() => clients.close());
  beforeEach(() => {
    fake.requests = [];
    fake.res.clear();
    fake.members.clear();
    fake.ops.clear();
    adapter = new GcpLoadBalancerAdapter(clients, desired());
  });

  it('creates the health check, probe firewall rule, instance groups and the failover backend service; every operation polled to DONE', async () => {
    const plan = await adapter.plan();
    await adapter.apply(plan);
    const w = fake.writes();
    expect(w.map((r) => `${r.method} ${r.path}`)).toEqual([
      `POST ${P}/regions/europe-west1/healthChecks`,
      `POST ${P}/global/firewalls`,
      `POST ${P}/zones/europe-west1-b/instanceGroups`,
      `POST ${P}/zones/europe-west1-b/instanceGroups/vigil-node1/addInstances`,
      `POST ${P}/zones/europe-west1-c/instanceGroups`,
      `POST ${P}/zones/europe-west1-c/instanceGroups/vigil-node2/addInstances`,
      `POST ${P}/regions/europe-west1/backendServices`,
    ]);
    expect(w[0].body).toEqual({
      name: 'vigil-mirror',
      type: 'HTTP',
      httpHealthCheck: { port: 9010, requestPath: '/var/modules/mirror/ready.txt' },
      checkIntervalSec: 1,
      timeoutSec: 1,
      healthyThreshold: 2,
      unhealthyThreshold: 2,
      description: 'Vigil demo/mirror: 200 on the primary',
    });
    expect(w[1].body).toMatchObject({
      name: 'vigil-allow-probes',
      network: `${SELF}/global/networks/vpc-vigil`,
      direction: 'INGRESS',
      sourceRanges: ['35.191.0.0/16', '130.211.0.0/22', '209.85.152.0/22', '209.85.204.0/22'],
      targetTags: ['vigil-node'],
      allowed: [{ IPProtocol: 'tcp', ports: ['9010'] }],
    });
    expect(w[3].body).toEqual({ instances: [{ instance: `${SELF}/zones/europe-west1-b/instances/vm-1` }] });
    expect(w[6].body).toMatchObject({
      name: 'vigil-mirror',
      loadBalancingScheme: 'INTERNAL',
      protocol: 'TCP',
      healthChecks: [`${SELF}/regions/europe-west1/healthChecks/vigil-mirror`],
      backends: [
        { group: `${SELF}/zones/europe-west1-b/instanceGroups/vigil-node1`, balancingMode: 'CONNECTION', failover: false },
        { group: `${SELF}/zones/europe-west1-c/instanceGroups/vigil-node2`, balancingMode: 'CONNECTION', failover: true },
      ],
      failoverPolicy: { dropTrafficIfUnhealthy: true, disableConnectionDrainOnFailover: true },
    });
    // each of the 7 operations was waited on until DONE (RUNNING once, then DONE), in the right scope
    expect([...fake.ops.values()].every((o) => o.done)).toBe(true);
    const waits = fake.requests.filter((r) => r.path.endsWith('/wait')).map((r) => r.path.replace(/\/operations\/.*/, ''));
    expect(new Set(waits)).toEqual(new Set([`${P}/regions/europe-west1`, `${P}/global`, `${P}/zones/europe-west1-b`, `${P}/zones/europe-west1-c`]));
    expect(waits).toHaveLength(14);
  });

  it('is idempotent: the second plan is empty', async () => {
    await adapter.apply(await adapter.plan());
    fake.requests = [];
    const again = await adapter.plan();
    expect(formatPlan(again)).toBe('gcp demo/mirror: no changes');
    await adapter.apply(again);
    expect(fake.writes()).toEqual([]);
  });

  it('patches a drifted health check and shows the diff', async () => {
    await adapter.apply(await adapter.plan());
    fake.res.get(`${P}/regions/europe-west1/healthChecks/vigil-mirror`).checkIntervalSec = 5;
    fake.requests = [];
    const plan = await adapter.plan();
    expect(formatPlan(plan)).toBe(['gcp demo/mirror: 1 change(s)', '~ update gcp health check vigil-mirror', '    checkIntervalSec: 5 -> 1'].join('\n'));
    await adapter.apply(plan);
    expect(fake.writes().map((r) => `${r.method} ${r.path}`)).toEqual([`PATCH ${P}/regions/europe-west1/healthChecks/vigil-mirror`]);
  });

  it('drain removes the VM from its group (polled to DONE), observe shows it, restore adds it back', async () => {
    await adapter.apply(await adapter.plan());
    fake.health.set('vm-1', 'UNHEALTHY').set('vm-2', 'HEALTHY');
    fake.requests = [];
    const r = await adapter.drain('node1');
    expect(r.applied).toHaveLength(1);
    expect(fake.writes()).toEqual([{ method: 'POST', path: `${P}/zones/europe-west1-b/instanceGroups/vigil-node1/removeInstances`, body: { instances: [{ instance: `${SELF}/zones/europe-west1-b/instances/vm-1` }] } }]);
    expect((await adapter.drain('node1')).applied).toEqual([]);
    const obs = await adapter.observe();
    expect(obs.targets).toEqual([
      { node: 'node1', target: 'vigil-node1 (empty)', state: 'unused' },
      { node: 'node2', target: 'vm-2 10.2.0.x', state: 'healthy' },
    ]);
    await adapter.restore('node1');
    expect((await adapter.plan()).changes).toEqual([]);
  });

  it('farm: no failover policy, every backend primary', async () => {
    const farm = new GcpLoadBalancerAdapter(clients, desired('farm'));
    await farm.apply(await farm.plan());
    const bs = fake.writes().find((r) => r.path.endsWith('/backendServices'))!.body;
    expect(bs.failoverPolicy).toBeUndefined();
    expect(bs.backends.map((b: any) => b.failover)).toEqual([undefined, undefined]);
  });
});
