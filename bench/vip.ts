/**
 * VIP failover benchmark: how long a client loses the service behind the VIP when the primary's link
 * is cut, Vigil against keepalived measured in the same run on the same namespace topology (two
 * nodes, one client, one witness on a bridge, 198.18.4.0/24).
 *
 *   npm run bench:vip                         all three measurements, median of 5 each
 *   npm run bench:vip -- --only keepalived    one of: keepalived, vigil_default, vigil_fast
 *   npm run bench:vip -- --runs 3
 *   npm run bench:vip -- --stress [--seconds 60]   false failovers under `stress-ng --cpu 2`, default settings
 *
 * Last line: RESULT vigil_default_ms=N vigil_fast_ms=N keepalived_ms=N (or RESULT stress_... for --stress).
 * Outage = from the cut to the end of the first request started after it and answered by the other node.
 */
import { spawn } from 'node:child_process';
import { parseArgs } from 'node:util';
import { startKeepalived } from '../test/helpers/keepalived.ts';
import { createVigilCluster, type VigilClusterOptions } from '../test/helpers/vip-cluster.ts';
import { createVipTopology, median, NODES, outageMs, sleep, startClientLoop, VIP_CIDR, waitUntil, watchVip, type VipTopology } from '../test/helpers/vip-topology.ts';

const { values: args } = parseArgs({
  options: {
    runs: { type: 'string', default: '5' },
    only: { type: 'string' },
    stress: { type: 'boolean', default: false },
    seconds: { type: 'string', default: '60' },
  },
});
const RUNS = Number(args.runs);
const say = (s: string) => process.stderr.write(`${s}\n`);

/** Cuts n1 with the client loop running; returns the outage and whether the client's ARP entry moved to n2. */
async function cutAndMeasure(topo: VipTopology, limitMs: number): Promise<{ ms: number | undefined; macMoved: boolean }> {
  const loop = startClientLoop(topo.lan, { period: 20, timeout: 1000 });
  try {
    const before = await loop.waitFor((s) => s.ok && s.b === 'n1', 5000);
    if (!before) throw new Error('the client does not reach n1 through the VIP before the cut');
    await sleep(300);
    const cutAt = Date.now();
    await topo.lan.cut('n1');
    await loop.waitFor((s) => s.ok && s.b === 'n2' && s.s >= cutAt, limitMs);
    const ms = outageMs(loop.samples, cutAt, 'n2');
    const macMoved = (await topo.clientVipMac()) === (await topo.lan.mac('n2'));
    return { ms, macMoved };
  } finally {
    loop.stop();
  }
}

async function measureKeepalived(runs: number): Promise<number[]> {
  const topo = await createVipTopology('vgk');
  const out: number[] = [];
  try {
    topo.startApp('n1');
    topo.startApp('n2');
    for (let i = 0; i < runs; i++) {
      const k = startKeepalived(topo.lan, {
        vip: VIP_CIDR,
        advertInt: 1,
        nodes: [
          { host: 'n1', addr: NODES.n1, priority: 150 },
          { host: 'n2', addr: NODES.n2, priority: 100 },
        ],
      });
      try {
        if (!(await waitUntil(() => topo.holdsVip('n1'), 10_000))) throw new Error(`keepalived: n1 never became master\n${k.output.get('n1')?.join('\n')}`);
        await sleep(1500); // n2 settles as backup (it has heard n1's adverts)
        if (await topo.holdsVip('n2')) throw new Error('keepalived: both nodes hold the VIP before the cut');
        const r = await cutAndMeasure(topo, 15_000);
        if (r.ms === undefined) throw new Error(`keepalived: no failover within 15 s\n${k.output.get('n2')?.slice(-20).join('\n')}`);
        say(`keepalived run ${i + 1}: ${r.ms} ms (client ARP ${r.macMoved ? 'moved to n2' : 'NOT moved'})`);
        out.push(r.ms);
      } finally {
        await k.stop();
        await topo.lan.restore('n1');
        for (const n of ['n1', 'n2'] as const) await topo.lan.tryExec(n, ['ip', 'addr', 'del', VIP_CIDR, 'dev', 'eth0']);
      }
    }
  } finally {
    await topo.destroy();
  }
  return out;
}

async function startVigil(topo: VipTopology, opts: VigilClusterOptions) {
  const c = createVigilCluster(topo, opts);
  c.start('n1');
  c.start('n2');
  const settled = await waitUntil(async () => (await c.ready('n1')) === 200 && (await topo.holdsVip('n1')) && (await c.state('n2'))?.state === 'SECOND', 30_000, 100);
  if (!settled) {
    const dump = (['n1', 'n2'] as const).map((n) => `--- ${n}\n${c.logs(n).slice(-30).join('\n')}`).join('\n');
    await c.destroy();
    throw new Error(`vigil: n1 PRIM/ALONE with the VIP and n2 SECOND not reached within 30 s\n${dump}`);
  }
  return c;
}

async function measureVigil(label: string, opts: VigilClusterOptions, runs: number): Promise<number[]> {
  const topo = await createVipTopology('vgv');
  const out: number[] = [];
  try {
    topo.startApp('n1');
    topo.startApp('n2');
    topo.startWitnessHttp();
    for (let i = 0; i < runs; i++) {
      const c = await startVigil(topo, opts);
      try {
        await sleep(1000);
        const r = await cutAndMeasure(topo, 15_000);
        if (r.ms === undefined) throw new Error(`${label}: no failover within 15 s\n${c.logs('n2').slice(-30).join('\n')}`);
        say(`${label} run ${i + 1}: ${r.ms} ms (client ARP ${r.macMoved ? 'moved to n2' : 'NOT moved'})`);
        out.push(r.ms);
      } finally {
        await c.destroy();
        await topo.lan.restore('n1');
        for (const n of ['n1', 'n2'] as const) await topo.lan.tryExec(n, ['ip', 'addr', 'del', VIP_CIDR, 'dev', 'eth0']);
      }
    }
  } finally {
    await topo.destroy();
  }
  return out;
}

/** Default settings, both nodes settled, then `stress-ng --cpu 2`: every change of VIP holder or of n1's readiness is a false failover. */
async function stress(seconds: number): Promise<void> {
  const topo = await createVipTopology('vgv');
  try {
    topo.startApp('n1');
    topo.startApp('n2');
    const c = await startVigil(topo, {});
    try {
      await sleep(1000);
      // every VIP add/delete in either namespace, with its time (no sampling gaps)
      const vip = await watchVip(topo);
      const logStart = (['n1', 'n2'] as const).map((n) => c.logs(n).length);
      say(`stress: stress-ng --cpu 2 for ${seconds} s with default settings`);
      const load = spawn('stress-ng', ['--cpu', '2', '--timeout', `${seconds}s`, '--quiet'], { stdio: 'ignore' });
      await new Promise<void>((r) => load.once('exit', () => r()));
      await sleep(500);
      vip.stop();
      const states = await Promise.all([c.state('n1'), c.state('n2')]);
      const moved = vip.events.filter((e) => e.node === 'n2' ? e.held : !e.held);
      for (const e of vip.events) say(`stress: ${new Date(e.t).toISOString()} ${e.node} ${e.held ? 'holds' : 'dropped'} the VIP`);
      const lines = (['n1', 'n2'] as const).flatMap((n, i) => c.logs(n).slice(logStart[i]).filter((l) => /peer lost|->/.test(l)).map((l) => `${n}: ${l.slice(0, 220)}`));
      if (lines.length) say(`stress: transitions / peer-lost lines during the load:\n${lines.slice(0, 30).join('\n')}`);
      const falseFailovers = moved.length + (states[0]?.state === 'PRIM' || states[0]?.state === 'ALONE' ? 0 : 1);
      say(`stress: final states n1=${states[0]?.state} n2=${states[1]?.state}; VIP holder changes during the load: ${moved.length}`);
      process.stdout.write(`RESULT stress_seconds=${seconds} stress_false_failovers=${falseFailovers} stress_peer_lost_lines=${lines.filter((l) => /peer lost/.test(l)).length}\n`);
    } finally {
      await c.destroy();
    }
  } finally {
    await topo.destroy();
  }
}

async function main(): Promise<void> {
  if (args.stress) return stress(Number(args.seconds));
  const want = (k: string) => !args.only || args.only === k;
  const res: Record<string, number | string> = { vigil_default_ms: 'NA', vigil_fast_ms: 'NA', keepalived_ms: 'NA', vigil_witness_ms: 'NA' };
  const failures: string[] = [];
  const attempt = async (key: string, f: () => Promise<number[]>) => {
    if (!want(key.replace(/_ms$/, ''))) return;
    try {
      const xs = await f();
      res[key] = median(xs);
      say(`${key}: runs ${xs.join(', ')} -> median ${res[key]}`);
    } catch (e) {
      failures.push(`${key}: ${(e as Error).message}`);
      say(`${key} FAILED: ${(e as Error).message}`);
    }
  };
  await attempt('keepalived_ms', () => measureKeepalived(RUNS));
  // "Default settings": the heartbeat defaults, no optional witness. With a witness, a secondary also
  // waits `grace` (1 s) for a cut-off primary to step down: measured separately, not hidden.
  const noWitness = { witness: { ping: [] } };
  await attempt('vigil_default_ms', () => measureVigil('vigil_default', noWitness, RUNS));
  await attempt('vigil_fast_ms', () => measureVigil('vigil_fast', { ...noWitness, pulse: '100ms', timeout: '500ms' }, RUNS));
  await attempt('vigil_witness_ms', () => measureVigil('vigil_witness', {}, RUNS));
  if (typeof res.vigil_default_ms === 'number' && typeof res.keepalived_ms === 'number') {
    say(`ratio vigil_default/keepalived = ${(res.vigil_default_ms / res.keepalived_ms).toFixed(2)} (target <= 0.5)`);
  }
  process.stdout.write(`RESULT vigil_default_ms=${res.vigil_default_ms} vigil_fast_ms=${res.vigil_fast_ms} keepalived_ms=${res.keepalived_ms} vigil_witness_ms=${res.vigil_witness_ms}\n`);
  if (failures.length) process.exitCode = 1;
}

await main();
