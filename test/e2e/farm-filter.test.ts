/**
 * The farm packet path in network namespaces (3 nodes, 3 clients on one bridge), driven by a static
 * membership harness: the test computes the plans and applies them on each node with FarmFilter.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { bucketsOf, planBuckets } from '../../node-service/src/farm/index.ts';
import { createFarmLan, ECHO_PORT, HTTP_PORT, VIP, type FarmLan, type FarmRuleRaw } from '../helpers/farm-lan.ts';
import { expectEachAnsweredOnce, type HttpResult as AgentResult, served, synacks } from '../helpers/farm-checks.ts';

/** client_ip tests bind each request to a source address */
type HttpResult = AgentResult & { src: string };

interface LongResult { node: string; sent: number; echoed: number; error?: string }

const SESSION: FarmRuleRaw[] = [
  { port: HTTP_PORT, proto: 'tcp', balance: 'client_session' },
  { port: ECHO_PORT, proto: 'tcp', balance: 'client_session' },
];
const BY_IP: FarmRuleRaw[] = [{ port: HTTP_PORT, proto: 'tcp', balance: 'client_ip' }];

let f: FarmLan;
let tag = 0;

beforeAll(async () => {
  f = await createFarmLan({ nodes: 3, clients: 3 });
}, 120_000);

afterAll(async () => {
  await f?.destroy();
});

/** `total` requests split over the clients, each on a new connection (so a new source port). */
async function burst(total: number, opts: { sourcesPerClient?: number; concurrency?: number; timeoutMs?: number } = {}): Promise<HttpResult[]> {
  tag += 1;
  const per = Math.ceil(total / f.clients.length);
  const parts = await Promise.all(f.clients.map((c) => f.call<HttpResult[]>(c, 'http', {
    target: VIP, port: HTTP_PORT, count: per, concurrency: opts.concurrency ?? 16, idPrefix: `${c}-${tag}`,
    sources: opts.sourcesPerClient ? f.sources(c, opts.sourcesPerClient) : undefined, timeoutMs: opts.timeoutMs ?? 5000,
  }, 120_000)));
  return parts.flat();
}

/** request id → the nodes whose server saw it (and resets the servers' records) */
function expectSpread(results: HttpResult[], power: Record<string, number>, nodes: readonly string[]): void {
  const total = results.length;
  const sum = nodes.reduce((s, n) => s + (power[n] ?? 1), 0);
  const counts = Object.fromEntries(nodes.map((n) => [n, results.filter((r) => r.node === n).length]));
  for (const n of nodes) {
    const expected = (total * (power[n] ?? 1)) / sum;
    expect({ node: n, counts, within15pct: Math.abs(counts[n] - expected) <= 0.15 * expected }).toEqual({ node: n, counts, within15pct: true });
  }
}

describe('farm packet path (static membership)', () => {
  it('client_session, equal powers: 3000 requests each answered exactly once, spread ±15 %, one SYN-ACK per connection', async () => {
    await f.install(SESSION);
    await f.converge(f.nodes);
    await synacks(f);
    const results = await burst(3000);
    expectEachAnsweredOnce(results, await served(f));
    expectSpread(results, {}, f.nodes);
    expect(await synacks(f)).toBe(results.length);
  });

  it('client_session, powers 2:1:1: spread follows the weights ±15 %', async () => {
    const power = { n1: 2, n2: 1, n3: 1 };
    await f.install(SESSION, power);
    await f.converge(f.nodes);
    await synacks(f);
    const results = await burst(3000);
    expectEachAnsweredOnce(results, await served(f));
    expectSpread(results, power, f.nodes);
    expect(await synacks(f)).toBe(results.length);
  });

  it('client_ip: a client always lands on the same node (100 requests); 762 client addresses spread ±15 %', async () => {
    await f.install(BY_IP);
    await f.converge(f.nodes);
    // each client, from its own address: 100 requests, one node
    for (const c of f.clients) {
      const r = await f.call<HttpResult[]>(c, 'http', { target: VIP, port: HTTP_PORT, count: 100, concurrency: 10, idPrefix: `${c}-own` });
      expect(r.every((x) => x.node !== null)).toBe(true);
      expect(new Set(r.map((x) => x.node)).size).toBe(1);
    }
    await served(f);
    const results = await burst(3048, { sourcesPerClient: 254 });
    expectEachAnsweredOnce(results, await served(f));
    const bySource = new Map<string, Set<string>>();
    for (const r of results) bySource.set(r.src, (bySource.get(r.src) ?? new Set()).add(r.node!));
    expect(bySource.size).toBe(762);
    expect([...bySource.values()].filter((s) => s.size !== 1)).toEqual([]);
    expectSpread(results, {}, f.nodes);
  });

  it('a cut node’s buckets move to the survivors; long connections to survivors survive (also across its return); it comes back to the same buckets', async () => {
    await f.install(SESSION);
    const full = await f.converge(f.nodes);
    const before = await f.call<{ buckets: number[] }>('n3', 'status');
    expect(before.buckets).toEqual(bucketsOf(full, 'n3'));
    const longNodes = (await Promise.all(f.clients.map((c) => f.call<string[]>(c, 'longOpen', { target: VIP, port: ECHO_PORT, conns: 10, intervalMs: 100 })))).flat();
    expect(new Set(longNodes)).toEqual(new Set(f.nodes));

    // failure: n3 is cut off; survivors (and n3 on its own side) re-plan
    await f.lan.cut('n3');
    const survivors = ['n1', 'n2'];
    await f.converge(survivors, { views: { n3: ['n3'] } });
    await synacks(f);
    const during = await burst(1500);
    expectEachAnsweredOnce(during, await served(f));
    expect(new Set(during.map((r) => r.node))).toEqual(new Set(survivors));
    expectSpread(during, {}, survivors);
    expect(await synacks(f)).toBe(during.length);

    // long connections opened during the failure: some sit in n3's buckets, on a survivor
    const duringNodes = (await Promise.all(f.clients.map((c) => f.call<string[]>(c, 'longOpen', { target: VIP, port: ECHO_PORT, conns: 10, intervalMs: 100 })))).flat();
    // every long connection must live at least 2.5 s (≥ 20 echoes at 100 ms), however fast the rest runs
    const longestDeadline = Date.now() + 2500;
    expect(new Set(duringNodes)).toEqual(new Set(survivors));
    await synacks(f);

    // return: traffic keeps flowing while the plans converge; every request succeeds (a connection
    // in a bucket going back to n3 drains on its survivor), nobody answers a connection twice
    const load = burst(900, { concurrency: 6 });
    await new Promise((r) => setTimeout(r, 200));
    await f.converge(f.nodes, { afterHandover: () => f.lan.restore('n3') });
    const rejoin = await load;
    expectEachAnsweredOnce(rejoin, await served(f));
    expect(await synacks(f)).toBe(rejoin.length);
    const draining = await f.call<{ draining: number[] }>('n1', 'status');
    expect(draining.draining.length).toBeGreaterThan(0);

    const after = await f.call<{ buckets: number[]; responder: boolean }>('n3', 'status');
    expect(after.buckets).toEqual(before.buckets);
    const results = await burst(1500);
    expectEachAnsweredOnce(results, await served(f));
    expectSpread(results, {}, f.nodes);

    // every long connection to a survivor — opened before or during the failure — is still intact
    await new Promise((r) => setTimeout(r, Math.max(0, longestDeadline - Date.now())));
    const long = (await Promise.all(f.clients.map((c) => f.call<LongResult[]>(c, 'longClose')))).flat();
    const toSurvivors = long.filter((l) => l.node !== 'n3');
    expect(toSurvivors.length).toBeGreaterThanOrEqual(30 + 10);
    expect(toSurvivors.filter((l) => l.error !== undefined || l.echoed !== l.sent || l.sent < 20)).toEqual([]);
  });

  it('replies leave with the node’s real MAC; clients resolve the VIP to the virtual MAC; the bridge never learns it', async () => {
    await f.install(SESSION);
    const plan = await f.converge(f.nodes);
    await burst(30);
    await served(f);
    const vmac = '02:76:67:12:05:c8';
    for (const c of f.clients) {
      const neigh = await f.lan.exec(c, ['ip', 'neigh', 'show', VIP, 'dev', 'eth0']);
      expect(neigh).toContain(vmac);
    }
    const fdb = await f.lan.exec('c1', ['true']).then(() => f.lan.hosts.get('n1')!).then(() =>
      // the switch namespace's bridge table
      import('../helpers/netns.ts').then(({ run }) => run(['bridge', '-n', `${f.lan.prefix}sw`, 'fdb', 'show', 'br', 'br0'])));
    expect(fdb).not.toContain(vmac);
    for (const n of f.nodes) expect(fdb).toContain(await f.lan.mac(n));
    expect(plan.responder).toBe(planBuckets({ nodes: f.nodes, power: {}, alive: new Set(f.nodes) }).owners[0]);
  });
});
