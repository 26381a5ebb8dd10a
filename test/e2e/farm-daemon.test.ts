/**
 * The farm with real daemons: `vigil daemon` in each node namespace finds the others by heartbeats on
 * the farm port and drives the filter itself. Same packet-path checks as farm-filter.test.ts, but the
 * membership (failure detection, return, stop) is the daemons' own.
 */
import { writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createFarmDaemons, type FarmDaemons } from '../helpers/farm-daemons.ts';
import { createFarmLan, ECHO_PORT, HTTP_PORT, VIP, type FarmLan, type FarmRuleRaw } from '../helpers/farm-lan.ts';
import { expectEachAnsweredOnce, type HttpResult, served, synacks } from '../helpers/farm-checks.ts';

interface LongResult { node: string; sent: number; echoed: number; error?: string }

const RULES: FarmRuleRaw[] = [
  { port: HTTP_PORT, proto: 'tcp', balance: 'client_session' },
  { port: ECHO_PORT, proto: 'tcp', balance: 'client_session' },
];

let f: FarmLan;
let d: FarmDaemons;
let tag = 0;

beforeAll(async () => {
  f = await createFarmLan({ nodes: 3, clients: 3 });
  d = createFarmDaemons(f, RULES);
}, 120_000);

afterAll(async () => {
  // the daemons' logs, for a failure's post-mortem
  if (d) writeFileSync(join(tmpdir(), 'vigil-farm-daemon-e2e.log'), f.nodes.flatMap((n) => d.logs(n)).join('\n'));
  await d?.destroy();
  await f?.destroy();
});

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function until<T>(what: string, f: () => Promise<T>, ok: (v: T) => boolean, timeoutMs = 30_000): Promise<T> {
  const end = Date.now() + timeoutMs;
  let v = await f();
  while (!ok(v)) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}: ${JSON.stringify(v)}`);
    await sleep(200);
    v = await f();
  }
  return v;
}

/** buckets owned per node, as the kernels enforce them */
async function owned(nodes: readonly string[]): Promise<Record<string, number>> {
  return Object.fromEntries(await Promise.all(nodes.map(async (n) => [n, (await d.kernel(n)).buckets.length] as const)));
}

async function burst(total: number): Promise<HttpResult[]> {
  tag += 1;
  const per = Math.ceil(total / f.clients.length);
  return (await Promise.all(f.clients.map((c) => f.call<HttpResult[]>(c, 'http', { target: VIP, port: HTTP_PORT, count: per, concurrency: 16, idPrefix: `${c}-${tag}`, timeoutMs: 5000 }, 120_000)))).flat();
}

function expectEvenSpread(results: HttpResult[], nodes: readonly string[]): void {
  const counts = Object.fromEntries(nodes.map((n) => [n, results.filter((r) => r.node === n).length]));
  const expected = results.length / nodes.length;
  expect({ counts, ok: nodes.every((n) => Math.abs(counts[n] - expected) <= 0.15 * expected) }).toEqual({ counts, ok: true });
}

describe('farm driven by real daemons', () => {
  it('three daemons come UP, split the 256 buckets and serve each request exactly once', async () => {
    for (const n of f.nodes) d.start(n);
    await until('all UP', () => Promise.all(f.nodes.map((n) => d.state(n))), (s) => s.every((x) => x === 'UP'), 60_000);
    const counts = await until('256 buckets split', () => owned(f.nodes), (o) => Object.values(o).every((c) => c >= 85 && c <= 86) && Object.values(o).reduce((a, b) => a + b) === 256);
    expect(counts).toBeDefined();
    await served(f);
    await synacks(f);
    const results = await burst(1500);
    expectEachAnsweredOnce(results, await served(f));
    expectEvenSpread(results, f.nodes);
    expect(await synacks(f)).toBe(results.length);
  }, 120_000);

  it('a cut node: the survivors take its buckets within the heartbeat timeout; long connections to them go on; it comes back', async () => {
    const longNodes = (await Promise.all(f.clients.map((c) => f.call<string[]>(c, 'longOpen', { target: VIP, port: ECHO_PORT, conns: 6, intervalMs: 100 })))).flat();
    expect(new Set(longNodes)).toEqual(new Set(f.nodes));
    const n3Buckets = (await d.kernel('n3')).buckets;

    await f.call('c1', 'probeStart', { target: VIP, port: HTTP_PORT, intervalMs: 20, timeoutMs: 300 });
    await sleep(300);
    const cut = Date.now();
    await f.lan.cut('n3');
    await until('survivors own everything', () => owned(['n1', 'n2']), (o) => o.n1 + o.n2 === 256, 15_000);
    await sleep(500);
    const probes = (await f.call<HttpResult[]>('c1', 'probeStop')).filter((p) => p.t0 >= cut);
    const lastFail = probes.reduce((m, p, i) => (p.node === null ? i : m), -1);
    const gap = lastFail < 0 ? 0 : probes[lastFail + 1].t0 - cut;
    console.log(`daemon farm: gap after the cut ${gap} ms (${probes.filter((p) => p.node === null).length}/${probes.length} probes failed)`);
    expect(gap).toBeLessThan(4000);

    const during = await burst(900);
    expectEachAnsweredOnce(during, await served(f));
    expect(new Set(during.map((r) => r.node))).toEqual(new Set(['n1', 'n2']));

    // return: n3 gets the same buckets back, with no double answer while it rejoins
    await synacks(f);
    const load = burst(900);
    await sleep(200);
    await f.lan.restore('n3');
    await until('n3 back with its buckets', () => d.kernel('n3'), (k) => k.buckets.length === n3Buckets.length, 20_000);
    const rejoin = await load;
    expectEachAnsweredOnce(rejoin, await served(f));
    expect(await synacks(f)).toBe(rejoin.length);
    expect((await d.kernel('n3')).buckets).toEqual(n3Buckets);
    await until('survivors released n3 buckets', () => owned(['n1', 'n2']), (o) => o.n1 + o.n2 === 256 - n3Buckets.length, 10_000);

    const after = await burst(1500);
    expectEachAnsweredOnce(after, await served(f));
    expectEvenSpread(after, f.nodes);

    const long = (await Promise.all(f.clients.map((c) => f.call<LongResult[]>(c, 'longClose')))).flat();
    const toSurvivors = long.filter((l) => l.node !== 'n3');
    expect(toSurvivors.length).toBeGreaterThan(0);
    expect(toSurvivors.filter((l) => l.error !== undefined || l.echoed !== l.sent)).toEqual([]);
  }, 150_000);

  it('a daemon stopping removes its VIP and filter; the others take its share', async () => {
    await d.stop('n1');
    const k = await d.kernel('n1');
    expect(k.installed).toBe(false);
    expect(k.vips.every((v) => !v.present)).toBe(true);
    await until('n2 and n3 own everything', () => owned(['n2', 'n3']), (o) => o.n2 + o.n3 === 256, 15_000);
    const results = await burst(600);
    expectEachAnsweredOnce(results, await served(f));
    expect(new Set(results.map((r) => r.node))).toEqual(new Set(['n2', 'n3']));
  }, 60_000);
});
