import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LocalCluster } from '../../node-service/src/demo/local-cluster.ts';

// Acceptance of the core: real daemons as separate processes on loopback, pulse 100 ms / timeout 1 s.
describe('two real daemons: failover, return, swap', () => {
  let c: LocalCluster;
  let sampling = true;
  let samples = 0;
  const bothReady: string[] = [];
  let sampler: Promise<void>;

  beforeAll(async () => {
    c = new LocalCluster({ module: { default_primary: 'node1', heartbeat: { pulse: '100ms', timeout: '1s' } } });
    c.start('node1');
    c.start('node2');
    await c.waitFor({ node1: 'PRIM', node2: 'SECOND' }, 45_000);
    // Sample both health URLs every 20 ms for the whole test: never may both answer 200.
    sampler = (async () => {
      while (sampling) {
        const [a, b] = await Promise.all([c.ready('node1'), c.ready('node2')]);
        samples += 1;
        if (a && b) bothReady.push(new Date().toISOString());
        await new Promise((r) => setTimeout(r, 20));
      }
    })();
  }, 60_000);

  afterAll(async () => {
    sampling = false;
    await sampler;
    await c?.destroy();
  });

  it('settles with exactly one ready node', async () => {
    expect(await c.ready('node1')).toBe(true);
    expect(await c.ready('node2')).toBe(false);
    const s = await c.status('node2');
    expect(s).toMatchObject({ module: 'app', node: 'node2', mode: 'mirror', state: 'SECOND', ready: false, peers: [{ node: 'node1', state: 'PRIM' }] });
  });

  it('kill -9 of the primary daemon: the survivor answers 200 within timeout + 500 ms', async () => {
    const t0 = performance.now();
    await c.kill('node1', 'SIGKILL');
    while (!(await c.ready('node2'))) {
      expect(performance.now() - t0).toBeLessThan(5000);
      await new Promise((r) => setTimeout(r, 10));
    }
    const ms = performance.now() - t0;
    console.log(`failover: survivor ready after ${Math.round(ms)} ms`);
    expect(ms).toBeLessThan(1000 + 500);
    expect((await c.status('node2'))?.state).toBe('ALONE');
  });

  it('the restarted node returns as SECOND and the survivor becomes PRIM', async () => {
    c.start('node1');
    await c.waitFor({ node1: 'SECOND', node2: 'PRIM' }, 45_000);
  });

  it('swap exchanges the roles', async () => {
    const r = await c.command('node1', 'swap');
    expect(r.status).toBe(200);
    await c.waitFor({ node1: 'PRIM', node2: 'SECOND' }, 20_000);
  });

  it('never were both nodes ready at the same sample', () => {
    expect(samples).toBeGreaterThan(50);
    expect(bothReady).toEqual([]);
  });

  it('the admin API needs the bearer token; ready.txt and /metrics are open', async () => {
    const url = c.url('node1', '/api/v1/modules/app');
    expect((await fetch(url)).status).toBe(401);
    expect((await fetch(url, { headers: { authorization: 'Bearer wrong' } })).status).toBe(403);
    expect((await fetch(url, { method: 'POST', headers: { authorization: 'Bearer wrong' } })).status).toBe(403);
    const unknown = await fetch(c.url('node1', '/var/modules/nosuch/ready.txt'));
    expect([unknown.status, await unknown.text()]).toEqual([404, 'NOT FOUND']);
    const ok = await fetch(c.url('node1', '/var/modules/app/ready.txt'));
    expect([ok.status, await ok.text()]).toEqual([200, 'OK']);
    const metrics = await (await fetch(c.url('node1', '/metrics'))).text();
    expect(metrics).toMatch(/vigil_module_state\{module="app",state="PRIM"\} 1/);
    expect(metrics).toMatch(/vigil_transitions_total\{module="app",from="SECOND",to="PRIM"\} 1/);
  });

  it('commands that make no sense are refused with the reason, nothing changes', async () => {
    const r = await c.command('node1', 'prim');
    expect(r.status).toBe(409);
    expect(r.body.message).toMatch(/already primary/);
    const bad = await fetch(c.url('node1', '/api/v1/modules/app/prim'), {
      method: 'POST',
      headers: { authorization: `Bearer ${c.token}` },
      body: '{"forse": true}',
    });
    expect(bad.status).toBe(400);
    expect(((await bad.json()) as { error: string }).error).toMatch(/forse/);
    const prose = await fetch(c.url('node1', '/api/v1/modules/app/prim'), { method: 'POST', headers: { authorization: `Bearer ${c.token}` }, body: 'prim please' });
    expect([prose.status, ((await prose.json()) as { error: string }).error]).toEqual([400, 'body is not JSON: send {} or {"force":true} / {"fullsync":true} / {"on":true}']);
    expect((await c.status('node1'))?.state).toBe('PRIM');
  });

  it('vigil log shows the transitions with their reasons', async () => {
    const r = await fetch(c.url('node2', '/api/v1/modules/app/log?n=100'), { headers: { authorization: `Bearer ${c.token}` } });
    const text = JSON.stringify(await r.json());
    expect(text).toMatch(/peer node1 lost; our data is in sync/);
    expect(text).toMatch(/swap/);
  });
});
