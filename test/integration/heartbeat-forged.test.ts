import { createSocket } from 'node:dgram';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LocalCluster } from '../../node-service/src/demo/local-cluster.ts';
import { Secret } from '../../node-service/src/config/secret.ts';
import { encodeHeartbeat, type Heartbeat } from '../../node-service/src/heartbeat/packet.ts';
import { datagramKeys, KeyRing } from '../../node-service/src/secure/keyring.ts';

/** node1's sealing key for module app, from a secret (the real one, or a wrong one) */
const sealWith = (secret: string) => datagramKeys(new KeyRing(new Secret(Buffer.from(secret))), 'heartbeat', 'local', 'app').seal('node1');

/** Sends a datagram from node1's own address, as an attacker on the heartbeat network would. */
function sendFrom(addr: string, to: string, port: number, buf: Buffer): Promise<void> {
  return new Promise((resolve, reject) => {
    const s = createSocket('udp4');
    s.bind(0, addr, () => s.send(buf, port, to, (e) => (s.close(), e ? reject(e) : resolve())));
  });
}

async function dropped(c: LocalCluster, node: string, reason: string): Promise<number> {
  const text = await (await fetch(c.url(node, '/metrics'))).text();
  const m = new RegExp(`vigil_heartbeats_dropped_total\\{module="app",reason="${reason}"\\} (\\d+)`).exec(text);
  return m ? Number(m[1]) : 0;
}

describe('forged heartbeats change nothing', () => {
  let c: LocalCluster;
  const port = 8888;
  beforeAll(async () => {
    c = new LocalCluster({ module: { default_primary: 'node1' } });
    c.start('node1');
    c.start('node2');
    await c.waitFor({ node1: 'PRIM', node2: 'SECOND' }, 45_000);
  }, 60_000);
  afterAll(() => c?.destroy());

  // "node1 is stopped and hands over": if believed, node2 would promote itself.
  const lie: Heartbeat = { v: 1, cluster: 'local', module: 'app', node: 'node1', net: 0, counter: 0, state: 'STOP', target: 'STOP', gen: 99, epoch: 99, inSync: true, handover: true, swapRequest: false, isolated: false };

  it('a heartbeat sealed with a wrong secret is refused, counted and logged', async () => {
    const before = await dropped(c, 'node2', 'bad_key');
    for (let i = 0; i < 20; i++) {
      await sendFrom(c.node('node1').addr, c.node('node2').addr, port, encodeHeartbeat({ ...lie, counter: Date.now() * 1000 * 2 + i }, sealWith('not-the-secret-not-the-secret!!')));
    }
    await new Promise((r) => setTimeout(r, 1500));
    expect(await dropped(c, 'node2', 'bad_key')).toBeGreaterThanOrEqual(before + 20);
    expect(readFileSync(c.node('node2').logFile, 'utf8')).toMatch(/datagram from [\d.]+ refused: sealed with a secret this node does not hold/);
    expect((await c.status('node2'))?.state).toBe('SECOND');
    expect((await c.status('node1'))?.state).toBe('PRIM');
  });

  it('a sealed heartbeat changed in flight does not authenticate: dropped and counted', async () => {
    const before = await dropped(c, 'node2', 'bad_mac');
    const good = encodeHeartbeat({ ...lie, counter: Date.now() * 1000 * 2 + 99 }, sealWith(readFileSync(join(c.dir, 'cluster.key'), 'utf8').trim()));
    good[good.length - 20] ^= 0x40;
    await sendFrom(c.node('node1').addr, c.node('node2').addr, port, good);
    await new Promise((r) => setTimeout(r, 300));
    expect(await dropped(c, 'node2', 'bad_mac')).toBe(before + 1);
    expect((await c.status('node2'))?.state).toBe('SECOND');
  });

  it('a correctly sealed heartbeat with a replayed (old) counter is dropped and counted', async () => {
    const key = sealWith(readFileSync(join(c.dir, 'cluster.key'), 'utf8').trim());
    const before = await dropped(c, 'node2', 'replay');
    for (let i = 0; i < 20; i++) await sendFrom(c.node('node1').addr, c.node('node2').addr, port, encodeHeartbeat({ ...lie, counter: 1000 + i }, key));
    await new Promise((r) => setTimeout(r, 1500));
    expect(await dropped(c, 'node2', 'replay')).toBeGreaterThanOrEqual(before + 20);
    expect((await c.status('node2'))?.state).toBe('SECOND');
    expect((await c.status('node1'))?.state).toBe('PRIM');
  });

  it('a valid heartbeat from an address that is not the node\'s is dropped', async () => {
    const key = sealWith(readFileSync(join(c.dir, 'cluster.key'), 'utf8').trim());
    const before = await dropped(c, 'node2', 'unknown_node');
    const stranger = c.node('node1').addr.replace(/\.1$/, '.77');
    await sendFrom(stranger, c.node('node2').addr, port, encodeHeartbeat({ ...lie, counter: Number.MAX_SAFE_INTEGER - 1 }, key));
    await new Promise((r) => setTimeout(r, 500));
    expect(await dropped(c, 'node2', 'unknown_node')).toBe(before + 1);
    expect((await c.status('node2'))?.state).toBe('SECOND');
  });

  it('garbage on the heartbeat port is counted as malformed', async () => {
    const before = await dropped(c, 'node2', 'malformed');
    await sendFrom(c.node('node1').addr, c.node('node2').addr, port, Buffer.from('hello'));
    await new Promise((r) => setTimeout(r, 300));
    expect(await dropped(c, 'node2', 'malformed')).toBe(before + 1);
  });
});
