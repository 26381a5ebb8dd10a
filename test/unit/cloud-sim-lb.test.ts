import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Hono } from 'hono';
import { serve, type ServerType } from '@hono/node-server';
import { SimulatedLbAdapter, SimulatedLoadBalancer, awsTimingScaled } from '../../cloud-adapters/src/sim/simulated-lb.ts';

describe('simulated load balancer (bench / integration stand-in for a cloud LB)', () => {
  const ready: Record<string, boolean> = { node1: true, node2: false };
  let server: ServerType;
  let base: string;
  beforeAll(async () => {
    const app = new Hono();
    app.get('/:node/var/modules/mirror/ready.txt', (c) => (ready[c.req.param('node')] ? c.text('OK') : c.text('NOT FOUND', 404)));
    await new Promise<void>((r) => {
      server = serve({ fetch: app.fetch, hostname: '127.0.0.1', port: 0 }, () => r());
    });
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  afterAll(() => new Promise<void>((r) => server.close(() => r())));

  it('uses AWS timing / scale from the shared probe settings', () => {
    expect(awsTimingScaled('mirror', 'mirror', 9010, 10)).toEqual({ intervalMs: 500, timeoutMs: 200, healthyThreshold: 2, unhealthyThreshold: 2 });
  });

  it('needs `threshold` consecutive probes to flip, and drain/restore act on registration like a target group', async () => {
    const rotations: string[] = [];
    const lb = new SimulatedLoadBalancer({
      targets: ['node1', 'node2'].map((n) => ({ node: n, url: `${base}/${n}/var/modules/mirror/ready.txt` })),
      intervalMs: 50,
      timeoutMs: 1000,
      healthyThreshold: 2,
      unhealthyThreshold: 2,
      onRotation: (nodes) => rotations.push(nodes.join(',')),
    });
    const until = async (cond: () => boolean) => {
      const end = Date.now() + 3000;
      while (!cond()) {
        if (Date.now() > end) throw new Error('timed out');
        await new Promise((r) => setTimeout(r, 5));
      }
    };
    lb.start();
    try {
      await until(() => lb.inRotation().join() === 'node1' && lb.state('node2').health === 'unhealthy');
      expect(lb.state('node2')).toMatchObject({ health: 'unhealthy', registered: true, lastCode: 404 });
      ready.node1 = false;
      ready.node2 = true;
      await until(() => lb.inRotation().join() === 'node2');
      expect(rotations).toEqual(['node1', '', 'node2']); // never both: node1 left before node2 passed its 2 probes
      const a = new SimulatedLbAdapter(lb, { cluster: 'c', module: 'mirror', mode: 'mirror', healthPort: 0, nodes: [{ name: 'node1', address: 'a' }, { name: 'node2', address: 'b' }], resources: { name: 'sim' } });
      expect((await a.drain('node2')).applied).toHaveLength(1);
      expect(lb.inRotation()).toEqual([]);
      expect((await a.observe()).targets.map((t) => t.state)).toEqual(['unhealthy', 'unused']);
      expect((await a.plan()).changes.map((c) => c.action)).toEqual(['register']);
      await a.restore('node2');
      expect(lb.state('node2').health).toBe('initial'); // re-registered targets start over
      await until(() => lb.inRotation().join() === 'node2');
    } finally {
      lb.stop();
    }
  });

  it('models fail-open: with no healthy registered target an NLB sends to every registered one, a drop policy nowhere; a mirror on AWS keeps only its primary registered', async () => {
    const mk = (noHealthy: 'fail-open' | 'drop') => new SimulatedLoadBalancer({ targets: ['node1', 'node2'].map((n) => ({ node: n, url: `${base}/${n}/var/modules/mirror/ready.txt` })), intervalMs: 50, timeoutMs: 1000, healthyThreshold: 2, unhealthyThreshold: 2, noHealthy });
    ready.node1 = false;
    ready.node2 = false;
    const open = mk('fail-open');
    const drop = mk('drop');
    for (const lb of [open, drop]) lb.start();
    try {
      const end = Date.now() + 3000;
      while ((open.state('node2').health !== 'unhealthy' || drop.state('node2').health !== 'unhealthy' || open.state('node1').health !== 'unhealthy') && Date.now() < end) await new Promise((r) => setTimeout(r, 10));
      expect(open.route()).toEqual(['node1', 'node2']); // fails open: a secondary gets traffic
      expect(drop.route()).toEqual([]);
      const desired = { cluster: 'c', module: 'mirror', mode: 'mirror' as const, healthPort: 0, nodes: [{ name: 'node1', address: 'a' }, { name: 'node2', address: 'b' }], resources: { name: 'sim' } };
      const aws = new SimulatedLbAdapter(open, { ...desired, serving: ['node1'] }, { servingOnly: true });
      await aws.apply(await aws.plan());
      expect(open.route()).toEqual(['node1']); // fail-open reaches only the primary
    } finally {
      open.stop();
      drop.stop();
    }
  });
});

