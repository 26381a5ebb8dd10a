import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { NsCluster } from '../../node-service/src/demo/ns-cluster.ts';
import { run } from '../helpers/netns.ts';
import { type EtcdServers, startEtcdCluster } from '../helpers/arbiter-etcd.ts';
import { type Sample, ServingSampler, serving } from '../helpers/arbiter-sampler.ts';

// Issue 16 acceptance: two real vigil daemons (mirror module with replication and a VIP) and a real
// 3-member etcd cluster, each in its own network namespace on one bridge. Five partitions, each
// healed before the next; ready.txt and the VIP of both nodes sampled every 20 ms throughout.
const SUBNET = '198.18.16';
const VIP = `${SUBNET}.100`;
const ETCD = ['e1', 'e2', 'e3'];
const TTL_MS = 3000;
const VIGIL = join(import.meta.dirname, '../../bin/vigil.mjs');
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

let c: NsCluster;
let etcd: EtcdServers;
let sampler: ServingSampler;
const table: { case: string; cut: string; dual: number; takeover: string; after: string }[] = [];

const addr = (h: string) => c.lan.hosts.get(h)!.addr;
const other = (n: string) => (n === 'node1' ? 'node2' : 'node1');

/** drops every packet between `host` and `peers`, in the host's namespace (nftables) */
async function block(host: string, peers: readonly string[]): Promise<void> {
  const set = `{ ${peers.map(addr).join(', ')} }`;
  const ns = c.lan.ns(host);
  await run(['ip', 'netns', 'exec', ns, 'nft', `add table inet vigilab; add chain inet vigilab in { type filter hook input priority 0; }; add chain inet vigilab out { type filter hook output priority 0; }; add rule inet vigilab in ip saddr ${set} drop; add rule inet vigilab out ip daddr ${set} drop`]);
}

async function unblockAll(): Promise<void> {
  for (const h of ['node1', 'node2', ...ETCD]) {
    await run(['ip', 'netns', 'exec', c.lan.ns(h), 'nft', 'delete table inet vigilab']).catch(() => undefined);
    await c.lan.restore(h);
  }
}

async function roles(): Promise<{ primary?: string; secondary?: string; detail: string }> {
  const s = await Promise.all(['node1', 'node2'].map((n) => c.status(n)));
  const primary = s.find((x) => x?.state === 'PRIM')?.node;
  const secondary = s.find((x) => x?.state === 'SECOND' && x.inSync)?.node;
  return { primary, secondary, detail: s.map((x, i) => `node${i + 1}: ${x ? `${x.state} inSync=${x.inSync} ${JSON.stringify(x.arbiter)} ${x.reason}` : 'no answer'}`).join('\n') };
}

/** one PRIM and an in-sync SECOND, and exactly the PRIM serving */
async function steady(timeoutMs: number): Promise<string> {
  const t0 = Date.now();
  let last = '';
  while (Date.now() - t0 < timeoutMs) {
    const r = await roles();
    last = r.detail;
    if (r.primary && r.secondary) return r.primary;
    await sleep(200);
  }
  throw new Error(`no PRIM + in-sync SECOND within ${timeoutMs} ms:\n${last}\nlogs in ${c.dir}`);
}

async function etcdLeader(): Promise<string> {
  const out = await c.lan.exec('e1', ['etcdctl', '--endpoints', etcd.endpoints.join(','), '-w', 'json', 'endpoint', 'status'], { timeoutMs: 10_000 });
  const st = JSON.parse(out) as { Endpoint: string; Status: { header: { member_id: string | number }; leader: string | number } }[];
  const leader = st.find((s) => String(s.Status.header.member_id) === String(s.Status.leader));
  return ETCD.find((m) => leader?.Endpoint.includes(addr(m)))!;
}

/** the node the etcd leader key names, or undefined when no lease is held */
async function leaseHolder(): Promise<string | undefined> {
  const out = await c.lan.exec('e1', ['etcdctl', '--endpoints', etcd.endpoints.join(','), '-w', 'json', 'get', '--prefix', '/vigil/'], { timeoutMs: 10_000 });
  const kvs = ((JSON.parse(out) as { kvs?: { key: string; value: string }[] }).kvs ?? []);
  const leader = kvs.find((kv) => Buffer.from(kv.key, 'base64').toString().endsWith('/leader'));
  return leader ? (JSON.parse(Buffer.from(leader.value, 'base64').toString()) as { node: string }).node : undefined;
}

interface Case {
  readonly name: string;
  /** cuts, given the current primary P; returns what was cut (for the table) */
  cut(p: string): Promise<string>;
  /** who must serve at the end of the partition: the primary, its peer, or nobody */
  readonly expect: 'primary' | 'peer' | 'nobody';
}

const CASES: Case[] = [
  { name: 'node↔node only', cut: async (p) => (await block(p, [other(p)]), `${p}↔${other(p)}`), expect: 'primary' },
  { name: 'primary from etcd only', cut: async (p) => (await block(p, ETCD), `${p}↔etcd`), expect: 'peer' },
  { name: 'primary from everything', cut: async (p) => (await c.lan.cut(p), `${p} link down`), expect: 'peer' },
  { name: 'one etcd member (the leader)', cut: async () => { const l = await etcdLeader(); await c.lan.cut(l); return `${l} (etcd leader) link down`; }, expect: 'primary' },
  {
    name: 'both nodes from the etcd majority',
    cut: async () => {
      await block('node1', ['e2', 'e3']);
      await block('node2', ['e2', 'e3']);
      await block('e1', ['e2', 'e3']);
      return 'node1,node2,e1 | e2,e3';
    },
    expect: 'nobody',
  },
];

describe('arbiter: etcd lease, partition matrix (real etcd, real daemons)', () => {
  beforeAll(async () => {
    c = await NsCluster.create({
      prefix: 'ab',
      subnet: SUBNET,
      extraHosts: ['e1', 'e2', 'e3'],
      privatePath: '/srv/vigil-ab',
      module: {
        name: 'db',
        default_primary: 'node1',
        heartbeat: { pulse: '100ms', timeout: '1s' },
        vip: [{ addr: `${VIP}/24`, interface: 'eth0' }],
        replication: { dirs: ['/srv/vigil-ab/data'], encryption: 'none' },
        arbiter: { type: 'etcd', endpoints: ['e1', 'e2', 'e3'].map((_, i) => `http://${SUBNET}.${10 + i}:2379`), ttl: `${TTL_MS}ms`, key_prefix: '/vigil' },
      },
    });
    for (const n of c.nodes) mkdirSync(join(n.root, 'private', 'data'), { recursive: true });
    etcd = await startEtcdCluster(c.lan, ETCD, `${c.dir}/etcd`);
    sampler = new ServingSampler(c.lan, ['node1', 'node2'], (n) => `http://${addr(n)}:9010/var/modules/db/ready.txt`, VIP);
    c.start('node1');
    c.start('node2');
    await steady(60_000);
  }, 120_000);

  afterAll(async () => {
    sampler?.stop();
    if (table.length) {
      console.log('\npartition | cut | dual-serving samples | takeover | after the heal');
      for (const r of table) console.log(`${r.case} | ${r.cut} | ${r.dual} | ${r.takeover} | ${r.after}`);
    }
    await etcd?.stop();
    await c?.destroy({ keepDir: process.env.VIGIL_ARBITER_KEEP === '1' });
  }, 60_000);

  for (const k of CASES) {
    it(`${k.name}: never two serving; at the end ${k.expect === 'nobody' ? 'nobody serves' : `the ${k.expect} serves`}; after the heal one PRIM and a resynced SECOND`, async () => {
      const p = await steady(30_000);
      const from = Date.now();
      const cutAt = Date.now();
      const what = await k.cut(p);
      // long enough for a lease to run out (ttl) and the peer to be granted it (+ renewals and a heartbeat timeout)
      await sleep(TTL_MS + 3000);
      const during: Sample[] = sampler.since(from);
      const last = (n: string) => during.filter((s) => s.node === n).at(-1);
      const servingAtEnd = ['node1', 'node2'].filter((n) => { const s = last(n); return s !== undefined && serving(s); });
      const peerUp = ServingSampler.firstServing(during, other(p), cutAt);
      const detail = (await roles()).detail;
      const statuses = await Promise.all(['node1', 'node2'].map((n) => c.status(n)));
      const metrics = await Promise.all(['node1', 'node2'].map(async (n) => (await c.get(n, `http://${addr(n)}:9010/metrics`))?.body ?? ''));
      const cli = await c.lan.exec(p, [process.execPath, VIGIL, 'state', '--config', c.configFile, '--node', p]);
      await unblockAll();
      const healAt = Date.now();
      const newPrimary = await steady(45_000);
      const all = sampler.since(from);
      const dual = ServingSampler.dualServing(all);
      const takeover = k.expect === 'peer' && peerUp !== undefined ? `${peerUp - cutAt} ms (${other(p)})` : k.expect === 'nobody' ? 'nobody serves (by design)' : `${p} kept serving`;
      table.push({ case: k.name, cut: what, dual, takeover, after: `${newPrimary} PRIM, ${other(newPrimary)} in-sync SECOND after ${Date.now() - healAt} ms` });
      expect(all.length, 'the sampler must have run').toBeGreaterThan(200);
      expect(dual, `both nodes served at once\n${detail}\nlogs in ${c.dir}`).toBe(0);
      const want = k.expect === 'primary' ? [p] : k.expect === 'peer' ? [other(p)] : [];
      expect(servingAtEnd, detail).toEqual(want);
      if (k.expect === 'nobody') {
        // vigil state and the metrics say why nobody serves
        for (const s of statuses) {
          expect(s?.arbiter?.lease, detail).toBe('unreachable');
          expect(s?.reason, detail).toMatch(/arbiter unreachable .*nobody serves until it is back/);
        }
        for (const m of metrics) expect(m).toMatch(/vigil_arbiter_reachable\{module="db"\} 0/);
        expect(cli).toMatch(new RegExp(`db on ${p}: arbiter etcd: UNREACHABLE for \\d+ s .*nobody serves`));
      } else {
        // the one serving holds the lease, the other does not
        expect(statuses.map((s) => (s?.arbiter?.lease === 'held' ? s.node : undefined)).filter(Boolean), detail).toEqual(want);
      }
    }, 120_000);
  }

  it('the primary stopped (SIGTERM): it releases the lease on its way out, so the peer serves without waiting for the ttl; never two serving', async () => {
    const p = await steady(30_000);
    expect(await leaseHolder(), 'the primary holds the lease before it stops').toBe(p);
    const from = Date.now();
    await c.kill(p, 'SIGTERM');
    const stoppedAt = Date.now();
    // Released, not left to expire: the moment the daemon has exited, the store no longer names it
    // (an expiring lease would still name it for up to the ttl after its last renewal). The check is
    // conclusive only if the daemon exited within the ttl of its last renewal.
    const holderAtExit = await leaseHolder();
    expect(stoppedAt - from, 'the daemon took longer than the lease ttl to stop: the release cannot be told from an expiry').toBeLessThan(TTL_MS);
    expect(holderAtExit, 'the stopped primary still holds the lease: it was not released').not.toBe(p);
    let up: number | undefined;
    while (up === undefined && Date.now() - stoppedAt < 15_000) {
      await sleep(100);
      up = ServingSampler.firstServing(sampler.since(from), other(p), from);
    }
    expect(up, `${other(p)} never served\n${(await roles()).detail}`).toBeDefined();
    const dual = ServingSampler.dualServing(sampler.since(from));
    table.push({ case: 'primary stopped (SIGTERM)', cut: `${p} daemon stopped`, dual, takeover: `${up! - from} ms (${other(p)})`, after: '' });
    expect(dual).toBe(0);
    c.start(p);
    await steady(45_000);
  }, 120_000);
});
