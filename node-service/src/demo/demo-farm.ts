import { NsCluster } from './ns-cluster.ts';

const SUBNET = '198.18.2';
const VIP = `${SUBNET}.200`;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const APP = `require('http').createServer((q, s) => s.end(process.env.VIGIL_NODE)).listen(8080)`;

/**
 * `vigil demo --farm`: three nodes in network namespaces share one virtual IP; each node's nftables
 * filter keeps only its buckets of client sessions. A client spreads requests (a new source port each),
 * one node's link is cut, and the spread moves to the survivors; the node returns and takes its share back.
 */
export async function runFarmDemo(o: { fast: boolean }): Promise<void> {
  const c = await NsCluster.create({
    prefix: 'vgdf',
    subnet: SUBNET,
    nodes: 3,
    extraHosts: ['client'],
    module: {
      name: 'web',
      mode: 'farm',
      vip: [{ addr: `${VIP}/24`, interface: 'eth0' }],
      farm: { rules: [{ port: 8080, proto: 'tcp', balance: 'client_session' }], power: { node1: 2, node2: 1, node3: 1 } },
    },
    scripts: {
      start_both: `VIGIL_NODE=$VIGIL_NODE "${process.execPath}" -e "${APP.replace(/"/g, '\\"')}" >/dev/null 2>&1 &\necho $! > /var/lib/vigil/app.pid`,
      stop_both: `[ -f /var/lib/vigil/app.pid ] && kill $(cat /var/lib/vigil/app.pid) 2>/dev/null; rm -f /var/lib/vigil/app.pid; exit 0`,
    },
  });
  const t0 = Date.now();
  const say = (m: string) => console.log(`[${((Date.now() - t0) / 1000).toFixed(2).padStart(6)}s]  >>> ${m}`);
  /** n requests from the client, each on a new TCP connection (new source port): who answered */
  const spread = async (n: number): Promise<Record<string, number>> => {
    const script = `for i in $(seq ${n}); do curl -s -m 1 http://${VIP}:8080/ || echo FAIL; echo; done`;
    const out = await c.lan.exec('client', ['sh', '-c', script], { timeoutMs: 120_000 });
    const counts: Record<string, number> = {};
    for (const line of out.split('\n').filter(Boolean)) counts[line] = (counts[line] ?? 0) + 1;
    return counts;
  };
  const show = (counts: Record<string, number>) => Object.entries(counts).sort().map(([k, v]) => `${k}=${v}`).join('  ');
  try {
    console.log(`Vigil farm demo: 3 nodes share ${VIP}:8080 (powers 2:1:1, balance client_session), one client.\n`);
    say('starting three daemons');
    for (const n of c.nodes) c.start(n.name);
    await c.waitFor({ node1: 'UP', node2: 'UP', node3: 'UP' }, 90_000);
    await sleep(o.fast ? 1000 : 2000);
    for (const n of c.nodes) {
      const s = await c.status(n.name);
      const mine = (s?.buckets as Record<string, number[]> | undefined)?.[n.name]?.length ?? 0;
      say(`${n.name} UP, owns ${mine} of 256 buckets`);
    }
    say(`100 requests: ${show(await spread(100))}`);
    say('cutting node3\'s link');
    await c.lan.cut('node3');
    await sleep(2500);
    say(`100 requests: ${show(await spread(100))}`);
    say('restoring node3\'s link: it takes its buckets back');
    await c.lan.restore('node3');
    await c.waitFor({ node1: 'UP', node2: 'UP', node3: 'UP' }, 30_000);
    await sleep(2500);
    const after = await spread(100);
    say(`100 requests: ${show(after)}`);
    if (after.FAIL) throw new Error(`${after.FAIL} requests failed after the node returned`);
    console.log('\nFarm demo complete.');
  } finally {
    await c.destroy({ keepDir: process.env.VIGIL_DEMO_KEEP === '1' });
  }
}
