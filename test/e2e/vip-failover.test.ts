import type { ChildProcess } from 'node:child_process';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { DEFAULT_TIMEOUT_MS } from '../../node-service/src/config/defaults.ts';
import { run } from '../helpers/netns.ts';
import { API_PORT, createVigilCluster, MODULE, type VigilCluster, type VigilClusterOptions } from '../helpers/vip-cluster.ts';
import { createVipTopology, NODES, outageMs, pollReady, sleep, startClientLoop, VIP_CIDR, waitUntil, watchVip, WITNESS, type ClientLoop, type NodeName, type VipTopology } from '../helpers/vip-topology.ts';

// Acceptance of the VIP issue, in namespaces: n1, n2, a client and a witness on one bridge (198.18.4.0/24).
// Vigil runs as `node bin/vigil.mjs daemon` inside each node's namespace, default heartbeat settings.

let topo: VipTopology;
let cluster: VigilCluster | undefined;
let loop: ClientLoop | undefined;
let apps: ChildProcess[] = [];
const blackholes: { node: NodeName; dst: string }[] = [];

function dumpLogs(): string {
  if (!cluster) return '';
  return (['n1', 'n2'] as const).map((n) => `--- ${n}\n${cluster!.logs(n).slice(-40).join('\n')}`).join('\n');
}

async function startCluster(opts: VigilClusterOptions = {}): Promise<VigilCluster> {
  const c = createVigilCluster(topo, opts);
  cluster = c;
  c.start('n1');
  c.start('n2');
  const ok = await waitUntil(async () => (await c.ready('n1')) === 200 && (await topo.holdsVip('n1')) && (await c.state('n2'))?.state === 'SECOND', 30_000, 100);
  if (!ok) throw new Error(`n1 PRIM/ALONE with the VIP and n2 SECOND not reached in 30 s\n${dumpLogs()}`);
  return c;
}

interface Watch {
  readonly samples: number;
  readonly bothVip: number;
  readonly bothReady: number;
  readonly detail: string;
  stop(): void;
}

/**
 * Which nodes hold the VIP (every address event in each namespace, stronger than 50 ms samples of
 * `ip addr`) and, optionally, answer ready.txt 200 (requests to both every 50 ms from the client).
 */
async function watch(withReady: boolean): Promise<Watch> {
  const vip = await watchVip(topo);
  const ready = withReady ? pollReady(topo.lan, (n) => `http://${NODES[n]}:${API_PORT}/var/modules/${MODULE}/ready.txt`) : undefined;
  return {
    get samples() {
      return ready ? ready.rounds.length : vip.events.length;
    },
    get bothVip() {
      return vip.overlaps;
    },
    get bothReady() {
      return ready ? ready.rounds.filter((r) => r.n1 === 200 && r.n2 === 200).length : 0;
    },
    get detail() {
      const t0 = vip.events[0]?.t ?? 0;
      return `VIP events: ${vip.events.map((e) => `+${e.t - t0}ms ${e.node} ${e.held ? 'add' : 'del'}`).join(', ')}; overlap ${vip.overlapMs} ms\n${dumpLogs()}`;
    },
    stop: () => {
      vip.stop();
      ready?.stop();
    },
  };
}

async function blackhole(node: NodeName, dst: string): Promise<void> {
  await run(['ip', '-n', topo.lan.ns(node), 'route', 'add', 'blackhole', `${dst}/32`]);
  blackholes.push({ node, dst });
}

describe('VIP failover end to end (namespaces, real daemons)', () => {
  beforeAll(async () => {
    topo = await createVipTopology('vgv');
    apps = [topo.startApp('n1'), topo.startApp('n2')];
  });

  afterEach(async () => {
    loop?.stop();
    loop = undefined;
    await cluster?.destroy();
    cluster = undefined;
    for (const b of blackholes.splice(0)) await run(['ip', '-n', topo.lan.ns(b.node), 'route', 'del', 'blackhole', `${b.dst}/32`]).catch(() => undefined);
    for (const n of ['n1', 'n2'] as const) {
      await topo.lan.restore(n);
      await topo.lan.tryExec(n, ['ip', 'addr', 'del', VIP_CIDR, 'dev', 'eth0']);
    }
  });

  afterAll(async () => {
    await topo?.destroy();
  });

  it('cut the primary: served by n2 within timeout + 1 s, client ARP has n2; restore: never both, n1 ends SECOND', async () => {
    const c = await startCluster();
    loop = startClientLoop(topo.lan, { period: 20, timeout: 1000 });
    expect(await loop.waitFor((s) => s.ok && s.b === 'n1', 5000)).toBeDefined();
    await sleep(500);
    const cutAt = Date.now();
    await topo.lan.cut('n1');
    await loop.waitFor((s) => s.ok && s.b === 'n2' && s.s >= cutAt, 10_000);
    const outage = outageMs(loop.samples, cutAt, 'n2');
    expect(outage, dumpLogs()).toBeDefined();
    expect(outage!).toBeLessThanOrEqual(DEFAULT_TIMEOUT_MS + 1000);
    expect(await topo.clientVipMac()).toBe(await topo.lan.mac('n2'));

    // the isolated n1 must give the VIP up before it is back (it cannot see the witness)
    await waitUntil(async () => !(await topo.holdsVip('n1')), 10_000);
    const w = await watch(false);
    await topo.lan.restore('n1');
    const second = await waitUntil(async () => (await c.state('n1'))?.state === 'SECOND', 15_000, 100);
    await sleep(2000);
    w.stop();
    expect(w.bothVip, w.detail).toBe(0);
    expect(second, dumpLogs()).toBe(true);
    expect((await c.state('n1'))?.state).toBe('SECOND');
    expect(await topo.holdsVip('n2'), dumpLogs()).toBe(true);
  }, 120_000);

  for (const [label, blind] of [
    ['the primary', 'n2'],
    ['the secondary', 'n1'],
  ] as const) {
    it(`heartbeat cut while only ${label} reaches the witness: at most one node holds the VIP or answers ready`, async () => {
      const c = await startCluster();
      const w = await watch(true);
      await blackhole('n1', NODES.n2);
      await blackhole('n2', NODES.n1);
      await blackhole(blind, WITNESS);
      await sleep(8000);
      w.stop();
      expect(w.samples).toBeGreaterThan(40);
      expect(w.bothVip, w.detail).toBe(0);
      expect(w.bothReady, w.detail).toBe(0);
      const seeing: NodeName = blind === 'n1' ? 'n2' : 'n1';
      expect(await topo.holdsVip(seeing), dumpLogs()).toBe(true);
    }, 120_000);
  }

  it('kill the application: restarted in place; killed 4 times in a minute: failover', async () => {
    for (const a of apps) a.kill('SIGKILL');
    apps = [];
    await sleep(200);
    const node = process.execPath;
    const c = await startCluster({
      scripts: {
        start_prim: `cd "$(dirname "$0")/.." && setsid ${node} vipapp.cjs "$VIGIL_NODE" </dev/null >/dev/null 2>&1 & echo $! > "$(dirname "$0")/../app-$VIGIL_NODE.pid"`,
        stop_prim: `f="$(dirname "$0")/../app-$VIGIL_NODE.pid"; [ -f "$f" ] && kill "$(cat "$f")" 2>/dev/null; rm -f "$f"; exit 0`,
      },
      checkers: (n) => [{ type: 'process', name: 'app', match: `vipapp\\.cjs ${n}$`, regex: true, interval: '500ms', timeout: '500ms', failures: 1, on_failure: 'restart', max_restarts: 3, restart_window: '60s' }],
    });
    loop = startClientLoop(topo.lan, { period: 50, timeout: 1000 });
    expect(await loop.waitFor((s) => s.ok && s.b === 'n1', 10_000), dumpLogs()).toBeDefined();
    const appPid = async (n: NodeName): Promise<number | undefined> => {
      const r = await topo.lan.tryExec(n, ['pgrep', '-f', `vipapp\\.cjs ${n}$`]);
      return r.code === 0 ? Number(r.stdout.trim().split('\n')[0]) : undefined;
    };
    for (let k = 1; k <= 3; k++) {
      const pid = await appPid('n1');
      expect(pid, dumpLogs()).toBeDefined();
      process.kill(pid!, 'SIGKILL');
      const killedAt = Date.now();
      const back = await waitUntil(async () => {
        const p = await appPid('n1');
        return p !== undefined && p !== pid;
      }, 10_000);
      expect(back, `kill ${k}: not restarted\n${dumpLogs()}`).toBe(true);
      expect(await loop.waitFor((s) => s.ok && s.b === 'n1' && s.s > killedAt, 5000), `kill ${k}: n1 not serving again`).toBeDefined();
      expect(await topo.holdsVip('n1')).toBe(true);
      expect(await topo.holdsVip('n2')).toBe(false);
    }
    const pid = await appPid('n1');
    process.kill(pid!, 'SIGKILL');
    const killedAt = Date.now();
    expect(await loop.waitFor((s) => s.ok && s.b === 'n2' && s.s > killedAt, 20_000), `4th kill: no failover\n${dumpLogs()}`).toBeDefined();
    expect(await topo.holdsVip('n2')).toBe(true);
    expect(await topo.holdsVip('n1')).toBe(false);
  }, 120_000);
});
