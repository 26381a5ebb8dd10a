/**
 * bench:farm — the cost of the farm filter and the rebalancing gap, in network namespaces.
 *
 * 1. filter_ratio: requests/s (keep-alive HTTP, one client) through the VIP to a one-node farm,
 *    divided by requests/s straight to that node's own address. Runs come in back-to-back pairs
 *    (order alternating) and the ratio is the median of the per-pair ratios, so that a neighbour's
 *    load on the shared machine, which drifts over seconds, cancels out within a pair.
 * 2. rebalance_ms: a client opens a new connection every 10 ms (300 ms timeout) to a 3-node farm;
 *    one node's link is cut; the gap is the time from the cut to the first request after which every
 *    request succeeds. Median over several cut/restore cycles. Detection is the driver's business
 *    (FarmDriver): by default real `vigil daemon`s (heartbeats); FARM_BENCH_DRIVER=harness uses
 *    static plans with a 1 s detection timeout.
 *
 * Last line: RESULT filter_ratio=R rebalance_ms=N
 */
import { DaemonDriver, HarnessDriver, type FarmDriver } from './farm-driver.ts';
import { createFarmLan, HTTP_PORT, VIP, type FarmLan, type FarmRuleRaw } from '../test/helpers/farm-lan.ts';

const RUNS = Number(process.env.FARM_BENCH_RUNS ?? 7);
const CYCLES = Number(process.env.FARM_BENCH_CYCLES ?? 3);
const LOAD_MS = 1000;
const RULES: FarmRuleRaw[] = [{ port: HTTP_PORT, proto: 'tcp', balance: 'client_session' }];

interface Probe { node: string | null; t0: number; t1: number }

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function filterRatio(farm: FarmLan, driver: FarmDriver): Promise<number> {
  // one-node farm on n1; the other nodes are unplugged so the bridge floods the vMAC to n1 only
  await farm.lan.cut('n2');
  await farm.lan.cut('n3');
  await driver.start(['n1'], RULES);
  const load = (target: string) => farm.call<{ rps: number; failed: number }>('c1', 'load', { target, port: HTTP_PORT, durationMs: LOAD_MS, concurrency: 16 });
  await load(VIP); // warm-up (ARP, JIT)
  await load('198.18.5.1');
  const vip: number[] = [];
  const direct: number[] = [];
  for (let i = 0; i < RUNS; i += 1) {
    // alternate the order so drift in the machine's load hits both sides alike
    for (const which of i % 2 ? ['vip', 'direct'] : ['direct', 'vip']) {
      const r = await load(which === 'vip' ? VIP : '198.18.5.1');
      if (r.failed > 0) throw new Error(`${which}: ${r.failed} requests failed`);
      (which === 'vip' ? vip : direct).push(r.rps);
    }
    console.log(`run ${i + 1}: direct ${direct[i].toFixed(0)} req/s, via VIP ${vip[i].toFixed(0)} req/s`);
  }
  await driver.stop();
  await farm.lan.restore('n2');
  await farm.lan.restore('n3');
  const ratio = median(vip.map((v, i) => v / direct[i]));
  console.log(`filter: median direct ${median(direct).toFixed(0)} req/s, via VIP ${median(vip).toFixed(0)} req/s, median pair ratio ${ratio.toFixed(3)}`);
  return ratio;
}

async function rebalance(farm: FarmLan, driver: FarmDriver): Promise<number> {
  await driver.start(['n1', 'n2', 'n3'], RULES);
  const gaps: number[] = [];
  for (let i = 0; i < CYCLES; i += 1) {
    await farm.call('c1', 'probeStart', { target: VIP, port: HTTP_PORT, intervalMs: 10, timeoutMs: 300 });
    await sleep(500);
    const cut = Date.now();
    await farm.lan.cut('n3');
    await driver.afterCut('n3');
    await sleep(1500);
    const probes = (await farm.call<Probe[]>('c1', 'probeStop')).filter((p) => p.t0 >= cut - 300);
    const lastFail = probes.reduce((m, p, idx) => (p.node === null ? idx : m), -1);
    const gap = lastFail < 0 ? 0 : lastFail + 1 < probes.length ? probes[lastFail + 1].t0 - cut : Number.POSITIVE_INFINITY;
    const failed = probes.filter((p) => p.node === null).length;
    console.log(`cycle ${i + 1}: ${probes.length} probes, ${failed} failed, gap ${gap} ms`);
    gaps.push(gap);
    await driver.restore('n3');
    await sleep(300);
  }
  await driver.stop();
  return median(gaps);
}

async function main(): Promise<void> {
  const farm = await createFarmLan({ nodes: 3, clients: 1 });
  try {
    // FARM_BENCH_DRIVER=harness: static plans applied by the bench itself, detection by a 1 s timeout
    const driver: FarmDriver = process.env.FARM_BENCH_DRIVER === 'harness' ? new HarnessDriver(farm) : new DaemonDriver(farm);
    console.log(`farm bench, driver: ${driver.name}`);
    const ratio = await filterRatio(farm, driver);
    const gap = await rebalance(farm, driver);
    console.log(`RESULT filter_ratio=${ratio.toFixed(3)} rebalance_ms=${Math.round(gap)}`);
  } finally {
    await farm.destroy();
  }
}

main().catch((e) => {
  console.error(e);
  process.exitCode = 1;
});
