import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { LocalCluster } from './local-cluster.ts';

// The application the demo protects: a one-line HTTP server started and stopped by the module's
// scripts, as an operator's own start_prim/stop_prim would.
const APP = `require('http').createServer((q, s) => s.end('hello from ' + process.env.VIGIL_NODE + '\\n')).listen(8080, process.env.DEMO_ADDR)`;
const SCRIPTS = {
  start_prim: `cd "$(dirname "$0")"; "${process.execPath}" -e "${APP.replace(/"/g, '\\"')}" >/dev/null 2>&1 &\necho $! > app-$VIGIL_NODE.pid`,
  stop_prim: `cd "$(dirname "$0")"; [ -f app-$VIGIL_NODE.pid ] && kill $(cat app-$VIGIL_NODE.pid) 2>/dev/null; rm -f app-$VIGIL_NODE.pid; exit 0`,
};

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export async function runDemo(o: { farm: boolean; fast: boolean; loopback?: boolean }): Promise<void> {
  if (o.farm) {
    const { runFarmDemo } = await import('./demo-farm.ts');
    return runFarmDemo({ fast: o.fast });
  }
  if (!o.loopback) {
    const { runLanDemo } = await import('./demo-lan.ts');
    return runLanDemo({ fast: o.fast });
  }
  const pause = o.fast ? 300 : 1500;
  const cluster = new LocalCluster({ module: { name: 'demo', default_primary: 'node1' }, scripts: SCRIPTS });
  const t0 = Date.now();
  const stamp = () => `[${((Date.now() - t0) / 1000).toFixed(2).padStart(6)}s]`;
  let last = '';
  let watching = true;
  let bothReady = 0;
  let samples = 0;
  const watcher = (async () => {
    while (watching) {
      const ready = await Promise.all(cluster.nodes.map((n) => cluster.ready(n.name)));
      samples += 1;
      if (ready.every(Boolean)) bothReady += 1;
      const row = await Promise.all(
        cluster.nodes.map(async (n) => {
          const s = await cluster.status(n.name);
          return `${n.name} ${(s?.state ?? 'DOWN').padEnd(6)} ${s?.ready ? 'ready' : '     '}`;
        }),
      );
      const line = row.join('   |   ');
      if (line !== last) {
        console.log(`${stamp()}  ${line}`);
        last = line;
      }
      await sleep(50);
    }
  })();
  const say = (msg: string) => console.log(`\n${stamp()}  >>> ${msg}`);
  const app = async (name: string) => {
    // start_prim returns once the process is launched; give the application a moment to listen
    for (let i = 0; i < 50; i++) {
      try {
        return (await (await fetch(`http://${cluster.node(name).addr}:8080/`, { signal: AbortSignal.timeout(1000) })).text()).trim();
      } catch {
        await sleep(100);
      }
    }
    return 'no answer';
  };
  const killApp = (name: string) => {
    try {
      process.kill(Number(readFileSync(join(cluster.scriptsDir, `app-${name}.pid`), 'utf8')), 'SIGKILL');
    } catch {
      /* not running */
    }
  };

  try {
    console.log(`Vigil demo: a two-node mirror module "demo" on this machine (nodes on ${cluster.nodes.map((n) => n.addr).join(' and ')}),`);
    console.log(`heartbeat pulse 100ms, timeout 1s; files in ${cluster.dir}\n`);
    say('starting both daemons (default_primary: node1)');
    for (const n of cluster.nodes) cluster.start(n.name, { DEMO_ADDR: n.addr });
    await cluster.waitFor({ node1: 'PRIM', node2: 'SECOND' }, 30_000);
    say(`application on node1 answers: "${await app('node1')}"`);
    await sleep(pause);

    say('crash of node1: kill -9 of its daemon and its application');
    const crashAt = Date.now();
    await cluster.kill('node1');
    killApp('node1');
    while (!(await cluster.ready('node2'))) await sleep(10);
    const failoverMs = Date.now() - crashAt;
    say(`node2 took over in ${failoverMs} ms; application on node2 answers: "${await app('node2')}"`);
    await sleep(pause);

    say('node1 comes back');
    cluster.start('node1', { DEMO_ADDR: cluster.node('node1').addr });
    await cluster.waitFor({ node1: 'SECOND', node2: 'PRIM' }, 30_000);
    await sleep(pause);

    say('vigil swap -m demo: roles exchange');
    const r = await cluster.command('node2', 'swap');
    if (r.status !== 200) throw new Error(`swap refused: ${r.body.message ?? r.body.error}`);
    await cluster.waitFor({ node1: 'PRIM', node2: 'SECOND' }, 30_000);
    say(`application on node1 answers: "${await app('node1')}"`);
    await sleep(200);
    watching = false;
    await watcher;
    console.log(`\nDemo complete: failover took ${failoverMs} ms (detection timeout 1000 ms).`);
    console.log(`ready.txt sampled ${samples} times on both nodes: ${bothReady === 0 ? 'never were both ready at once' : `BOTH READY in ${bothReady} samples`}.`);
    if (bothReady > 0) throw new Error('both nodes answered ready.txt 200 at the same time');
  } finally {
    watching = false;
    await watcher;
    for (const n of cluster.nodes) {
      await cluster.kill(n.name, 'SIGTERM');
      killApp(n.name);
    }
    await cluster.destroy();
  }
}
