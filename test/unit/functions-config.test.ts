import { describe, expect, it } from 'vitest';
import { loadFunctionsConfig, parseFunctionsConfig } from '../../functions/src/config.ts';

const base = {
  clusters: {
    demo: {
      eventSecretEnv: 'DEMO_SECRET',
      nodes: [
        { name: 'node1', address: '10.0.1.10' },
        { name: 'node2', address: '10.0.2.10' },
      ],
      modules: [{ name: 'mirror', mode: 'mirror', cloud: { provider: 'aws', targetGroupName: 'vigil-demo', vpcId: 'vpc-1', port: 5432 } }],
    },
  },
};

describe('functions config (zod)', () => {
  it('applies defaults', () => {
    const c = parseFunctionsConfig(base);
    expect(c.clusters.demo.healthPort).toBe(9010);
    expect(c.clusters.demo.modules[0].cloud).toMatchObject({ protocol: 'TCP', targetType: 'ip' });
    expect(c.eventToleranceMs).toBe(60_000);
  });

  it('reports every error at once with its key path', () => {
    const bad = structuredClone(base) as any;
    delete bad.clusters.demo.eventSecretEnv;
    bad.clusters.demo.nodes[1].name = 'node1';
    bad.clusters.demo.nodes[0].address = 'not-an-ip';
    bad.clusters.demo.modules[0].cloud.targetType = 'instance';
    bad.clusters.demo.modules.push({ name: 'web', mode: 'farm', cloud: { provider: 'gcp', project: 'p', region: 'r', network: 'n', backendService: 'b', healthCheck: 'h', firewallRule: 'f', targetTags: ['t'], instanceGroups: {} } });
    let msg = '';
    try {
      parseFunctionsConfig(bad, 'cfg.json');
    } catch (e) {
      msg = (e as Error).message;
    }
    expect(msg).toContain('cfg.json: invalid functions config');
    expect(msg).toContain('clusters.demo.nodes.0.address: "not-an-ip" is not an IP address');
    for (const m of [/eventSecretEnv: one of eventSecrets, eventSecretEnv or eventSecret is required/]) expect(msg).toMatch(m);
  });

  it('cross-checks: duplicate nodes, instance ids for instance targets, GCP zones and groups', () => {
    const bad = structuredClone(base) as any;
    bad.clusters.demo.nodes[1].name = 'node1';
    bad.clusters.demo.modules[0].cloud.targetType = 'instance';
    bad.clusters.demo.modules.push({ name: 'web', mode: 'farm', cloud: { provider: 'gcp', project: 'p', region: 'r', network: 'n', backendService: 'b', healthCheck: 'h', firewallRule: 'f', targetTags: ['t'], instanceGroups: {} } });
    expect(() => parseFunctionsConfig(bad)).toThrow(/duplicate node "node1"[\s\S]*needs instanceId[\s\S]*needs instanceId \(VM name\) and zone[\s\S]*no instance group for node/);
  });

  it('loads from VIGIL_FUNCTIONS_CONFIG, and says what to set when nothing is', () => {
    expect(loadFunctionsConfig({ VIGIL_FUNCTIONS_CONFIG: JSON.stringify(base) }).clusters.demo.nodes).toHaveLength(2);
    expect(() => loadFunctionsConfig({})).toThrow(/set VIGIL_FUNCTIONS_CONFIG \(JSON\) or VIGIL_FUNCTIONS_CONFIG_FILE/);
    expect(() => loadFunctionsConfig({ VIGIL_FUNCTIONS_CONFIG: '{nope' })).toThrow(/VIGIL_FUNCTIONS_CONFIG: invalid functions config:\n  not JSON/);
  });
});
