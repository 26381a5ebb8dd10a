import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CloudPathRig } from '../../bench/cloud.ts';
import { signEvent } from '../../node-service/src/contract/events.ts';

// The cloud path with real daemons: node services push signed transitions to the functions' app
// (served locally), which drives a simulated load balancer probing the nodes' ready.txt.
// Correctness only; timings are bench/cloud.ts's business.
describe('cloud events: daemons -> POST /events -> load balancer', () => {
  let rig: CloudPathRig;
  const until = async (what: string, cond: () => boolean | Promise<boolean>, ms = 20_000) => {
    const end = Date.now() + ms;
    while (!(await cond())) {
      if (Date.now() > end) throw new Error(`timed out: ${what}`);
      await new Promise((r) => setTimeout(r, 25));
    }
  };
  const status = async () => (await fetch(`${rig.fn.url}/status?cluster=local`, { headers: { authorization: `Bearer ${rig.cluster.token}` } })).json();

  beforeAll(async () => {
    // a loopback /24 and ports of its own, so a concurrent bench or test never collides
    rig = await CloudPathRig.start({ subnet: `127.${20 + (randomBytes(1)[0] % 200)}.${randomBytes(1)[0]}`, apiPort: 9400 + (randomBytes(1)[0] % 90), moduleId: 9 });
  }, 90_000);
  afterAll(async () => {
    await rig?.destroy();
  });

  it('settles with the primary alone in rotation, and GET /status agrees with the nodes', async () => {
    expect(rig.lb.inRotation()).toEqual(['node1']);
    const s = await status();
    expect(s.modules[0].nodes.map((n: any) => [n.node, n.lb.state, n.service.state, n.agree])).toEqual([
      ['node1', 'healthy', 'PRIM', true],
      ['node2', 'unused', 'SECOND', true], // not registered: an NLB fails open, only the primary is
    ]);
    expect(s.modules[0].invariant).toMatchObject({ verdict: 'ok', healthy: ['node1'] });
  });

  it('kill -9 of the primary: the survivor posts a signed SECOND->ALONE, the function drains the dead node, traffic moves', async () => {
    const r = await rig.killPrimary('node1', 'node2');
    expect(r.event?.event).toMatchObject({ cluster: 'local', node: 'node2', module: 'mirror', from: 'SECOND', to: 'ALONE' });
    // the function looked at both nodes first; on AWS only the primary is registered (NLB fail-open)
    expect(r.event?.actions).toEqual(['observed node1 not ready (unreachable), node2 ready', 'drain node1', 'restore node2']);
    expect(rig.lb.state('node1').registered).toBe(false);
    await until('node2 alone in rotation', () => rig.lb.inRotation().join() === 'node2');
    const s = await status();
    const [n1, n2] = s.modules[0].nodes;
    expect(n1.lb.state).toBe('unused');
    expect(n1.service.error).toMatch(/GET \/api\/v1\/modules/);
    expect([n2.lb.state, n2.service.state]).toEqual(['healthy', 'ALONE']);
  });

  it('the restarted node returns as SECOND; the reconcile keeps it unregistered (only the primary is, behind a fail-open NLB)', async () => {
    await rig.recover('node1', 'node2');
    expect(rig.lb.state('node1').registered).toBe(false);
    expect(rig.lb.inRotation()).toEqual(['node2']);
    expect(rig.lb.route()).toEqual(['node2']);
  });

  it('a swap is followed by the function: node2 PRIM->SECOND drains node2, node1 SECOND->PRIM restores node1', async () => {
    const before = rig.events.length;
    const res = await rig.cluster.command('node2', 'swap');
    expect(res.status).toBe(200);
    await rig.cluster.waitFor({ node1: 'PRIM', node2: 'SECOND' }, 30_000);
    await until('both transitions received', () => {
      const seen = rig.events.slice(before).map((e) => `${e.event.node}:${e.event.to}`);
      return seen.includes('node1:PRIM') && seen.some((x) => x.startsWith('node2:') && x !== 'node2:PRIM');
    });
    const acted = rig.events.slice(before).flatMap((e) => e.actions);
    expect(acted).toContain('drain node2');
    await until('node1 alone in rotation', () => rig.lb.inRotation().join() === 'node1');
  });

  it('forged, unsigned and replayed events are refused with 4xx and change nothing', async () => {
    const registered = () => ['node1', 'node2'].map((n) => rig.lb.state(n).registered);
    const before = registered();
    const body = JSON.stringify({ id: 'forged-000001', cluster: 'local', node: 'node2', module: 'mirror', from: 'SECOND', to: 'PRIM', at: Date.now(), seq: 1 });
    const forged = await fetch(`${rig.fn.url}/events`, { method: 'POST', headers: { 'content-type': 'application/json', ...signEvent(Buffer.from('not-the-cluster-secret'), body, Date.now()) }, body });
    expect(forged.status).toBe(401);
    const unsigned = await fetch(`${rig.fn.url}/events`, { method: 'POST', headers: { 'content-type': 'application/json' }, body });
    expect(unsigned.status).toBe(401);
    const malformed = await fetch(`${rig.fn.url}/events`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"cluster":"local",' });
    expect(malformed.status).toBe(400);
    expect(registered()).toEqual(before);
  });
});
