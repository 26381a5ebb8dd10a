import type { ChildProcess } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { appSource, clientSource } from './demo-app.ts';
import { NsCluster } from './ns-cluster.ts';

const SUBNET = '198.18.1';
const VIP = `${SUBNET}.100`;
const DATA = '/srv/vigil-demo/data';
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** one client request; times are the machine's epoch milliseconds */
interface Result {
  seq: number;
  ok: boolean;
  node?: string;
  t: number;
  end: number;
}

/**
 * `vigil demo`: two nodes in network namespaces on a bridge, a client and a witness. A mirror module
 * replicates /srv/vigil-demo/data (each node has its own copy, in its own mount namespace) and holds
 * the virtual IP; the client writes fsync'd records through the VIP. The demo cuts the primary's
 * link, shows the client-visible outage and that every acknowledged record is on the new primary,
 * brings the node back (resync) and swaps the roles.
 */
export async function runLanDemo(o: { fast: boolean }): Promise<void> {
  const pause = o.fast ? 500 : 2000;
  const c = await NsCluster.create({
    prefix: 'vgd',
    subnet: SUBNET,
    extraHosts: ['client', 'witness'],
    privatePath: '/srv/vigil-demo',
    module: {
      name: 'demo',
      default_primary: 'node1',
      vip: [{ addr: `${VIP}/24`, interface: 'eth0' }],
      replication: { dirs: [DATA] },
      witness: { ping: [`${SUBNET}.11`], grace: '2s' },
    },
    scripts: {
      start_prim: `cd "$(dirname "$0")"; VIGIL_NODE=$VIGIL_NODE "${process.execPath}" app.js >>/var/lib/vigil/app.log 2>&1 &\necho $! > /var/lib/vigil/app.pid`,
      stop_prim: `[ -f /var/lib/vigil/app.pid ] && kill $(cat /var/lib/vigil/app.pid) 2>/dev/null; rm -f /var/lib/vigil/app.pid; exit 0`,
    },
  });
  writeFileSync(join(c.scriptsDir, 'app.js'), appSource(DATA));
  writeFileSync(join(c.dir, 'client.js'), clientSource(VIP, 50));
  const t0 = Date.now();
  const stamp = () => `[${((Date.now() - t0) / 1000).toFixed(2).padStart(6)}s]`;
  const say = (m: string) => console.log(`${stamp()}  >>> ${m}`);
  const results: Result[] = [];
  let client: ChildProcess | undefined;
  let watching = true;
  let bothVip = 0;
  let vipSamples = 0;
  let linkCut = false;
  const watcher = (async () => {
    let last = '';
    while (watching) {
      const row = await Promise.all(c.nodes.map(async (n) => {
        const [s, held] = await Promise.all([c.status(n.name), c.lan.tryExec(n.name, ['ip', '-4', '-o', 'addr', 'show', 'dev', 'eth0'])]);
        return { name: n.name, state: s?.state ?? '----', vip: held.stdout.includes(`${VIP}/`) };
      }));
      // While node1 is cut off it cannot know it lost: only count samples with every link up.
      if (!linkCut) {
        vipSamples += 1;
        if (row.every((r) => r.vip)) bothVip += 1;
      }
      const line = row.map((r) => `${r.name} ${r.state.padEnd(6)} ${r.vip ? 'VIP' : '   '}`).join('   |   ');
      if (line !== last) console.log(`${stamp()}      ${line}`);
      last = line;
      await sleep(100);
    }
  })();
  const outage = (from: number): { ms: number; node?: string } => {
    const after = results.filter((r) => r.t >= from);
    const lastOkBefore = [...results].reverse().find((r) => r.ok && r.t < from);
    const firstOkAfterFail = after.find((r, i) => r.ok && after.slice(0, i).some((x) => !x.ok));
    if (!firstOkAfterFail) return { ms: 0, node: after.find((r) => r.ok)?.node };
    return { ms: firstOkAfterFail.t - (lastOkBefore?.t ?? from), node: firstOkAfterFail.node };
  };
  const checkRecords = async (): Promise<{ acked: number; missing: number[]; on?: string }> => {
    // Snapshot what was acknowledged before asking: later writes are not expected in this answer.
    const ackedBefore = results.filter((x) => x.ok);
    let r = await c.get('client', `http://${VIP}:8080/`);
    // the application may still be starting on the new primary
    for (let i = 0; i < 100 && r?.status !== 200; i++) {
      await sleep(100);
      r = await c.get('client', `http://${VIP}:8080/`);
    }
    if (!r || r.status !== 200) throw new Error('the application did not answer through the VIP');
    const stored = JSON.parse(r.body) as { node: string; seqs: number[] };
    const have = new Set(stored.seqs);
    const acked = ackedBefore;
    const missing = acked.filter((x) => !have.has(x.seq));
    for (const m of missing) console.log(`      missing: seq ${m.seq} acknowledged by ${m.node} at ${new Date(m.end).toISOString()}`);
    return { acked: acked.length, missing: missing.map((x) => x.seq), on: stored.node };
  };

  try {
    console.log('Vigil demo: two nodes in network namespaces on a bridge (198.18.1.0/24), a client and a witness.');
    console.log(`Mirror module "demo": VIP ${VIP}, ${DATA} replicated synchronously, heartbeat 100ms/1s, witness ${SUBNET}.11.\n`);
    say('starting both daemons (default_primary: node1)');
    c.start('node1');
    c.start('node2');
    await c.waitFor({ node1: 'PRIM', node2: 'SECOND' }, 60_000);
    say('client starts writing fsync\'d records through the VIP, one every 50 ms');
    client = c.lan.spawn('client', [process.execPath, join(c.dir, 'client.js')]);
    createInterface({ input: client.stdout! }).on('line', (l) => {
      try {
        results.push(JSON.parse(l) as Result);
      } catch {
        /* not ours */
      }
    });
    for (let i = 0; i < 200 && results.filter((r) => r.ok).length < 20; i++) await sleep(50);
    await sleep(pause);
    const okBefore = results.filter((r) => r.ok).length;
    say(`${okBefore} records acknowledged by ${results.filter((r) => r.ok).at(-1)?.node}`);

    say('cutting node1\'s network link');
    linkCut = true;
    await c.lan.cut('node1');
    const cutAt = Date.now();
    console.log(`      (cut at ${new Date(cutAt).toISOString()})`);
    for (let i = 0; i < 300 && !results.some((r) => r.t > cutAt && r.ok && r.node === 'node2'); i++) await sleep(50);
    await sleep(pause);
    const fo = outage(cutAt);
    say(`client outage: ${fo.ms} ms, now served by ${fo.node}`);
    const r1 = await checkRecords();
    say(`records: ${r1.acked} acknowledged, ${r1.missing.length} missing on ${r1.on}`);

    say('restoring node1\'s link: it resyncs what changed and becomes SECOND');
    await c.lan.restore('node1');
    linkCut = false;
    await c.waitFor({ node1: 'SECOND', node2: 'PRIM' }, 60_000);
    await sleep(pause);

    say('vigil swap -m demo');
    const swapAt = Date.now();
    const sw = await c.command('node2', 'swap');
    if (sw?.status !== 200) throw new Error(`swap refused: ${sw?.body}`);
    await c.waitFor({ node1: 'PRIM', node2: 'SECOND' }, 30_000);
    for (let i = 0; i < 100 && !results.some((r) => r.t > swapAt && r.ok && r.node === 'node1'); i++) await sleep(50);
    const so = outage(swapAt);
    say(`swap outage: ${so.ms} ms, now served by ${so.node}`);
    client.kill();
    await sleep(300);
    const r2 = await checkRecords();
    watching = false;
    await watcher;
    console.log(`\nDemo complete.`);
    console.log(`  failover (link cut): client outage ${fo.ms} ms; swap: ${so.ms} ms`);
    console.log(`  records acknowledged: ${r2.acked}; missing on ${r2.on}: ${r2.missing.length}`);
    console.log(`  VIP sampled ${vipSamples} times in both namespaces: ${bothVip === 0 ? 'never on both nodes at once' : `ON BOTH in ${bothVip} samples`}`);
    if (r1.missing.length + r2.missing.length > 0) throw new Error(`acknowledged records lost: ${[...r1.missing, ...r2.missing].join(', ')}`);
    if (bothVip > 0) throw new Error('both nodes held the VIP at the same time');
  } finally {
    watching = false;
    await watcher;
    client?.kill();
    await c.destroy({ keepDir: process.env.VIGIL_DEMO_KEEP === '1' });
  }
}
