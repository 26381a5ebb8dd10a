import { describe, expect, it } from 'vitest';
import { validateConfig } from '../../node-service/src/config/index.ts';
import { FarmEdge, FarmFilter, type BucketPlan, type FilterState } from '../../node-service/src/farm/index.ts';
import { silentLogger } from '../../node-service/src/log/logger.ts';

function setup() {
  const cfg = validateConfig({
    cluster: 't', secret_file: '/k', api: { admin_token_file: '/t' },
    nodes: ['a', 'b', 'c'].map((n, i) => ({ name: n, addrs: [`198.18.5.${i + 1}`] })),
    modules: [{ name: 'web', mode: 'farm', id: 2, vip: [{ addr: '198.18.5.200/24', interface: 'eth0' }], farm: { rules: [{ port: 80, proto: 'tcp', balance: 'client_ip' }] } }],
  }, '/tmp/c.yaml', { skipFileChecks: true });
  const module = cfg.modules[0];
  const log: string[] = [];
  // GIVEN a filter whose kernel side only records what it is asked
  const filter = new FarmFilter({ module, self: 'c', log: silentLogger(), exec: async () => '', sysctlDir: '/nonexistent' });
  const applyReal = filter.apply.bind(filter);
  filter.apply = async (plan: BucketPlan): Promise<FilterState> => {
    const s = await applyReal(plan);
    log.push(`apply ${s.buckets.length}`);
    return s;
  };
  filter.install = async () => { log.push('install'); };
  filter.remove = async () => { log.push('remove'); };
  return { edge: new FarmEdge({ module, self: 'c', log: silentLogger(), filter, graceMs: 20 }), log };
}

describe('FarmEdge', () => {
  it('a node joining a running farm owns nothing, then takes its buckets after the grace', async () => {
    const { edge, log } = setup();
    await edge.removeLeftovers();
    await edge.join();
    await edge.membership(['a', 'b', 'c']);
    expect(log).toEqual(['remove', 'install', 'apply 0', 'apply 85']);
    expect(edge.status()?.buckets?.c).toHaveLength(85);
  });

  it('failover is one apply, no grace; leave removes everything', async () => {
    const { edge, log } = setup();
    await edge.join();
    await edge.membership(['c']);
    await edge.membership(['a', 'c']);
    log.length = 0;
    await edge.membership(['c']);
    expect(log).toEqual(['apply 256']);
    await edge.leave();
    expect(log).toEqual(['apply 256', 'remove']);
    expect(edge.status()).toBeUndefined();
  });

  it('membership before join is remembered; the latest membership wins', async () => {
    const { edge, log } = setup();
    await edge.membership(['a', 'b']);
    expect(log).toEqual([]);
    const p1 = edge.join();
    const p2 = edge.membership(['a', 'b', 'c']);
    await Promise.all([p1, p2]);
    expect(log.at(-1)).toBe('apply 85');
  });
});
