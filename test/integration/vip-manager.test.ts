import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createLan, type Lan } from '../helpers/netns.ts';
import { silentLogger } from '../../node-service/src/log/logger.ts';
import { VipManager } from '../../node-service/src/vip/index.ts';

// Real namespaces: two nodes and a client on one bridge (198.18.4.0/24, fd00:198:18:4::/64).
const V4 = '198.18.4.100/24';
const V6 = 'fd00:198:18:4::100/64';
const vips = [
  { addr: V4, interface: 'eth0' },
  { addr: V6, interface: 'eth0' },
];

let lan: Lan;

async function neigh(host: string, addr: string): Promise<string | undefined> {
  const out = await lan.exec(host, ['ip', '-j', 'neigh', 'show', 'to', addr]);
  const rows = JSON.parse(out || '[]') as { dst: string; lladdr?: string }[];
  return rows[0]?.lladdr;
}

async function waitFor(pred: () => Promise<boolean>, ms: number): Promise<boolean> {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (await pred()) return true;
    await new Promise((r) => setTimeout(r, 20));
  }
  return pred();
}

function manager(host: string, arp = { count: 3, interval: 100 }): VipManager {
  return new VipManager({ vips, arp, log: silentLogger(), netns: lan.ns(host) });
}

describe('VipManager in network namespaces', () => {
  beforeAll(async () => {
    lan = await createLan('vgv', [
      { name: 'n1', addr: '198.18.4.1/24' },
      { name: 'n2', addr: '198.18.4.2/24' },
      { name: 'client', addr: '198.18.4.3/24' },
    ]);
    let i = 1;
    for (const h of ['n1', 'n2', 'client']) {
      await lan.exec(h, ['ip', 'addr', 'add', `fd00:198:18:4::${i++}/64`, 'dev', 'eth0', 'nodad']);
    }
  });
  afterAll(async () => {
    await lan?.destroy();
  });

  it('takeover adds IPv4 and IPv6 VIPs and the client reaches them on the holder', async () => {
    const m1 = manager('n1');
    await m1.takeover();
    expect(await m1.present()).toEqual([V4, V6]);
    expect(await m1.missing()).toEqual([]);
    await lan.exec('client', ['ping', '-c1', '-W1', '198.18.4.100']);
    await lan.exec('client', ['ping', '-c1', '-W1', 'fd00:198:18:4::100']);
    expect(await neigh('client', '198.18.4.100')).toBe(await lan.mac('n1'));
    expect(await neigh('client', 'fd00:198:18:4::100')).toBe(await lan.mac('n1'));
    m1.close();
  });

  it('moving the VIP updates the client caches through gratuitous ARP and unsolicited NA, without client traffic', async () => {
    const m1 = manager('n1');
    const m2 = manager('n2');
    await m1.release();
    expect(await m1.present()).toEqual([]);
    const t0 = Date.now();
    await m2.takeover();
    const addMs = Date.now() - t0;
    const mac2 = await lan.mac('n2');
    expect(await waitFor(async () => (await neigh('client', '198.18.4.100')) === mac2, 1000)).toBe(true);
    expect(await waitFor(async () => (await neigh('client', 'fd00:198:18:4::100')) === mac2, 1000)).toBe(true);
    expect(addMs).toBeLessThan(5000); // ~10 `ip netns exec` round trips; far less on an idle machine
    // DAD setting restored, NA notification left on
    expect((await lan.exec('n2', ['sysctl', '-n', 'net.ipv6.conf.eth0.accept_dad'])).trim()).not.toBe('0');
    await lan.exec('client', ['ping', '-c1', '-W1', '198.18.4.100']);
    await lan.exec('client', ['ping', '-c1', '-W1', 'fd00:198:18:4::100']);
    await m2.release();
  });

  it('release is idempotent and stops a running ARP burst', async () => {
    const m = manager('n1', { count: 20, interval: 50 });
    await m.takeover();
    await new Promise((r) => setTimeout(r, 120));
    await m.release();
    const sent = m.arpSent;
    expect(sent).toBeGreaterThan(0);
    expect(sent).toBeLessThan(20);
    await new Promise((r) => setTimeout(r, 200));
    expect(m.arpSent).toBe(sent);
    await m.release();
    expect(await m.present()).toEqual([]);
  });

  it('missing() reports a VIP removed behind its back; removeLeftovers() cleans up after a crash', async () => {
    const m = manager('n1');
    expect(await m.missing()).toEqual([]); // not held: nothing is missing
    await m.takeover();
    await lan.exec('n1', ['ip', 'addr', 'del', V4, 'dev', 'eth0']);
    expect(await m.missing()).toEqual([V4]);
    // a new daemon run finds the rest
    const fresh = manager('n1');
    await fresh.removeLeftovers();
    expect(fresh.leftovers).toEqual([V6]);
    expect(await fresh.present()).toEqual([]);
    // node address untouched
    expect(await lan.exec('n1', ['ip', '-4', 'addr', 'show', 'dev', 'eth0'])).toContain('198.18.4.1/24');
    m.close();
  });

  it('takeover rejects, naming the VIP, when the interface does not exist', async () => {
    const m = new VipManager({ vips: [{ addr: '198.18.4.101/24', interface: 'nope0' }], arp: { count: 0, interval: 100 }, log: silentLogger(), netns: lan.ns('n1') });
    await expect(m.takeover()).rejects.toThrow(/198\.18\.4\.101/);
    expect(await m.missing()).toEqual(['198.18.4.101/24']);
    await m.release();
  });
});
