import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { toYaml } from '../node-service/src/config/emit.ts';
import type { RawCluster } from '../node-service/src/config/schema.ts';
import type { ModuleStatus } from '../node-service/src/contract/module-status.ts';
import { run } from '../node-service/src/demo/lan.ts';
import { NsCluster } from '../node-service/src/demo/ns-cluster.ts';
import { cpuSeconds, rssMb } from './checker.ts';
import { Probe } from './probe.ts';
import { HEARTBEAT } from './topology.ts';

type RawModule = NonNullable<RawCluster['modules']>[number];
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const FARM_NODES = 5;
/** how often the probe asks every ready.txt, in both pairs (the resolution of the failover times) */
const PROBE_EVERY_MS = 100;

/** appends a fsync'd record to DIR/log every INTERVAL ms, for each DIR given (one async writer per module) */
const WRITERS_JS = `
const fs = require('node:fs');
const [interval, ...dirs] = process.argv.slice(1);
for (const d of dirs) {
  let seq = 0;
  const once = () => {
    try { const fd = fs.openSync(d + '/log', 'a'); fs.writeSync(fd, ++seq + '\\n'); fs.fdatasyncSync(fd); fs.closeSync(fd); } catch {}
    setTimeout(once, Number(interval));
  };
  once();
}`;

function mirror(i: number, subnet: string, dir: string): RawModule {
  return {
    name: `m${i}`,
    mode: 'mirror',
    id: i,
    nodes: ['node1', 'node2'],
    default_primary: 'node1',
    heartbeat: { pulse: HEARTBEAT.pulse, timeout: HEARTBEAT.timeout },
    vip: [{ addr: `${subnet}.${100 + i}/24`, interface: 'eth0' }],
    replication: { dirs: [dir] },
    witness: { ping: [`${subnet}.10`], grace: HEARTBEAT.witnessGrace },
  } as RawModule;
}

/**
 * Rewrites an NsCluster's configuration with many modules (the demo's cluster carries one): the nodes,
 * secret and token stay the cluster's own.
 */
function writeConfig(c: NsCluster, modules: RawModule[]): void {
  const raw: RawCluster = {
    cluster: c.o.prefix,
    secret_file: join(c.dir, 'cluster.key'),
    state_dir: '/var/lib/vigil',
    api: { port: 9010, admin_token_file: join(c.dir, 'admin.token') },
    log: { level: 'info' },
    nodes: c.nodes.map((n) => ({ name: n.name, addrs: [n.addr] })),
    modules,
  };
  writeFileSync(c.configFile, toYaml(raw));
}

async function statuses(p: Probe, c: NsCluster, node: string): Promise<ModuleStatus[]> {
  return (await p.json<ModuleStatus[]>(`http://${c.node(node).addr}:9010/api/v1/modules`, { headers: { authorization: `Bearer ${c.token}` }, timeoutMs: 3000 })) ?? [];
}

/** until node1 holds every mirror module PRIM, node2 SECOND in sync, and the farm (if any) is UP everywhere */
async function settled(p: Probe, c: NsCluster, mirrors: number, farm: boolean, timeoutMs: number): Promise<void> {
  const until = Date.now() + timeoutMs;
  let seen = '';
  while (Date.now() < until) {
    const all = await Promise.all(c.nodes.map((n) => statuses(p, c, n.name)));
    const prim = all[0].filter((s) => s.mode === 'mirror' && s.state === 'PRIM').length;
    const second = all[1].filter((s) => s.mode === 'mirror' && s.state === 'SECOND' && s.inSync).length;
    const up = farm ? all.filter((ss) => ss.some((s) => s.mode === 'farm' && s.state === 'UP')).length : 0;
    seen = `${prim}/${mirrors} PRIM on node1, ${second}/${mirrors} SECOND in sync on node2${farm ? `, farm UP on ${up}/${c.nodes.length}` : ''}`;
    if (prim === mirrors && second === mirrors && (!farm || up === c.nodes.length)) return;
    await sleep(500);
  }
  throw new Error(`${c.o.prefix}: not settled within ${timeoutMs} ms: ${seen} (logs in ${c.dir})`);
}

/** kills every process of a node's namespace (its daemon, writers): the node dies */
async function killNode(c: NsCluster, node: string): Promise<number> {
  const pids = (await run(['ip', 'netns', 'pids', c.lan.ns(node)])).split(/\s+/).filter(Boolean).map(Number);
  const t = Date.now();
  for (const pid of pids) try { process.kill(pid, 'SIGKILL'); } catch { /* gone */ }
  return t;
}

/** the first moment each ready.txt answered 200 once armed, from the probe's change lines */
class FirstReady {
  readonly seen: (number | undefined)[];
  private armed = false;
  constructor(n: number) {
    this.seen = new Array<number | undefined>(n).fill(undefined);
  }
  arm(): void {
    this.armed = true;
  }
  readonly on = (t: number, r: number[]): void => {
    if (!this.armed) return;
    r.forEach((s, i) => {
      if (s === 200 && this.seen[i] === undefined) this.seen[i] = t;
    });
  };
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

/** the steps of a takeover as the survivor logs them, in order */
const STEPS = [
  ['lost', (m: string) => m.startsWith('peer lost')],
  ['decided', (m: string) => / -> ALONE: /.test(m)],
  ['primary', (m: string) => m.startsWith('became primary')],
  ['vip', (m: string) => m === 'VIPs taken over'],
  ['alone', (m: string) => m === 'state ALONE'],
] as const;
type StepName = (typeof STEPS)[number][0];

/**
 * When each module reached each step of its takeover on a node, from its daemon's log (first line
 * after `since`): the daemon's own clock. "state ALONE" is the end; ready.txt answers 200 from then.
 */
function takeoverSteps(c: NsCluster, node: string, since: number): Map<string, Partial<Record<StepName, number>>> {
  const out = new Map<string, Partial<Record<StepName, number>>>();
  for (const line of readFileSync(join(c.dir, `${node}.log`), 'utf8').split('\n')) {
    if (!/"msg":"(peer lost|[A-Z]+ -> ALONE: |became primary|VIPs taken over|state ALONE)/.test(line)) continue;
    let r: { time: string; module?: string; msg?: string };
    try {
      r = JSON.parse(line) as typeof r;
    } catch {
      continue;
    }
    const t = Date.parse(r.time);
    if (!r.module || !r.msg || t < since) continue;
    const step = STEPS.find(([, is]) => is(r.msg!))?.[0];
    if (!step) continue;
    const m = out.get(r.module) ?? {};
    m[step] ??= t;
    out.set(r.module, m);
  }
  return out;
}

/** when each module logged "state ALONE" after `since` (polled while 64 take over: only those lines are parsed) */
function takeoverTimes(c: NsCluster, node: string, since: number): Map<string, number> {
  const out = new Map<string, number>();
  for (const line of readFileSync(join(c.dir, `${node}.log`), 'utf8').split('\n')) {
    if (!line.includes('"msg":"state ALONE"')) continue;
    const r = JSON.parse(line) as { time: string; module: string };
    const t = Date.parse(r.time);
    if (t >= since && !out.has(r.module)) out.set(r.module, t);
  }
  return out;
}

/** "lost 1.5 s (1.4-1.8), lost->decided 1.1 s (...)": where the time of a takeover goes, median (min-max) over the modules */
function breakdown(steps: Map<string, Partial<Record<StepName, number>>>, kill: number): string {
  const parts: string[] = [];
  const spread = (xs: number[]) => `${median(xs)} ms (${Math.min(...xs)}-${Math.max(...xs)})`;
  const lost = [...steps.values()].flatMap((s) => (s.lost === undefined ? [] : [s.lost - kill]));
  if (lost.length) parts.push(`kill->lost ${spread(lost)}`);
  for (let i = 1; i < STEPS.length; i++) {
    const [a, b] = [STEPS[i - 1][0], STEPS[i][0]];
    const d = [...steps.values()].flatMap((s) => (s[a] === undefined || s[b] === undefined ? [] : [s[b]! - s[a]!]));
    if (d.length) parts.push(`${a}->${b} ${spread(d)}`);
  }
  return parts.join(', ');
}

/**
 * `npm run soak -- --scale`: one pair carrying `modules` mirror modules (each its own replicated
 * directory, VIP and writer) beside a 5-node farm module, and in the same run a pair carrying one
 * module. Both primaries are killed (every process of the node): the slowest of the many modules to
 * be ready on the survivor is compared with the single module's failover, and where the time went
 * (from the survivor's log: peer lost, decided, mirror primary, VIPs, ALONE) is printed for both.
 * Memory and CPU per module are measured at rest, before the writers start.
 */
export async function runScale(o: { modules: number }): Promise<void> {
  const many = await NsCluster.create({ prefix: 'sm', subnet: '198.18.174', nodes: FARM_NODES, extraHosts: ['witness'], privatePath: '/srv/scale', module: { name: 'm1' } });
  let one: NsCluster | undefined;
  const probes: Probe[] = [];
  try {
    one = await NsCluster.create({ prefix: 'sn', subnet: '198.18.176', extraHosts: ['witness'], privatePath: '/srv/scale', module: { name: 'm1' } });
    const dirs = Array.from({ length: o.modules }, (_, i) => `/srv/scale/m${i + 1}/data`);
    writeConfig(many, [
      ...dirs.map((d, i) => mirror(i + 1, '198.18.174', d)),
      { name: 'farm', mode: 'farm', id: o.modules + 1, vip: [{ addr: '198.18.174.250/24', interface: 'eth0' }], farm: { rules: [{ port: 8080 }] } } as RawModule,
    ]);
    writeConfig(one, [mirror(1, '198.18.176', dirs[0])]);
    // Both pairs' ready.txt are probed every PROBE_EVERY_MS, the same for one module and for 64: at the
    // soak's 20 ms, the 64 URLs alone took half a core of the survivor while it took over.
    process.env.VIGIL_PROBE_EVERY_MS = String(PROBE_EVERY_MS);
    const manyReady = new FirstReady(o.modules);
    const oneReady = new FirstReady(1);
    const pm = new Probe(many.lan, 'witness', dirs.map((_, i) => `http://${many.node('node2').addr}:9010/var/modules/m${i + 1}/ready.txt`), manyReady.on);
    const p1 = new Probe(one.lan, 'witness', [`http://${one.node('node2').addr}:9010/var/modules/m1/ready.txt`], oneReady.on);
    probes.push(pm, p1);
    const t0 = Date.now();
    for (const n of many.nodes) many.start(n.name);
    for (const n of one.nodes) one.start(n.name);
    await settled(p1, one, 1, false, 120_000);
    await settled(pm, many, o.modules, true, 600_000);
    console.log(`scale: ${o.modules} mirror modules on node1/node2 and a farm on ${FARM_NODES} nodes settled in ${Date.now() - t0} ms; a one-module pair beside it`);

    // at rest: no writers yet
    await sleep(10_000);
    const d64 = many.node('node1').proc!.pid!;
    const d1 = one.node('node1').proc!.pid!;
    const c0 = [cpuSeconds(d64), cpuSeconds(d1)];
    await sleep(20_000);
    const c1 = [cpuSeconds(d64), cpuSeconds(d1)];
    const rss = [rssMb(d64)!, rssMb(d1)!];
    const rssPerModule = (rss[0] - rss[1]) / (o.modules - 1);
    const cpuPerModule = ((c1[0] - c0[0] - (c1[1] - c0[1])) / (o.modules - 1) / 20) * 100;
    console.log(`at rest: primary daemon RSS ${rss[0].toFixed(1)} MiB with ${o.modules} mirror modules + farm, ${rss[1].toFixed(1)} MiB with 1: ${rssPerModule.toFixed(2)} MiB per module; CPU ${(((c1[0] - c0[0]) / 20) * 100).toFixed(1)}% vs ${(((c1[1] - c0[1]) / 20) * 100).toFixed(1)}%: ${cpuPerModule.toFixed(2)}% of a core per module`);

    // writers on the primaries, inside the daemons' mount namespaces (the views)
    const writer = (c: NsCluster, ds: string[]) =>
      run(['nsenter', '-t', String(c.node('node1').proc!.pid), '-m', '-n', '--', 'sh', '-c', `'${process.execPath}' -e "$0" 100 "$@" >/dev/null 2>&1 &`, WRITERS_JS, ...ds]);
    await writer(one, [dirs[0]]);
    await writer(many, dirs);
    await sleep(5000);

    // Both pairs are measured by the same rules: a module has failed over when the probe (from the
    // witness host, every ready.txt every PROBE_EVERY_MS) first sees its ready.txt answer 200 after the kill;
    // the survivor's log ("state ALONE") gives the same moment on the daemon's clock, and both are
    // printed. The RESULT takes the probe's times when it saw every module of both pairs, the log's
    // for both otherwise (the probe's requests time out while an API answers too slowly).
    oneReady.arm();
    const k1 = await killNode(one, 'node1');
    for (let i = 0; i < 600 && oneReady.seen[0] === undefined; i++) await sleep(50);
    if (oneReady.seen[0] === undefined) throw new Error(`the one-module pair did not fail over within 30 s (logs in ${one.dir})`);
    const oneProbe = oneReady.seen[0] - k1;
    const oneSteps = takeoverSteps(one, 'node2', k1);
    const oneDone = oneSteps.get('m1')?.alone;
    if (oneDone === undefined) throw new Error(`no "state ALONE" in ${one.dir}/node2.log after the kill`);
    const oneLog = oneDone - k1;
    console.log(`single module: ready.txt 200 on node2 ${oneProbe} ms after node1 was killed ("state ALONE" in its log after ${oneLog} ms); ${breakdown(oneSteps, k1)}`);
    await sleep(3000);

    manyReady.arm();
    const k = await killNode(many, 'node1');
    let done = takeoverTimes(many, 'node2', k);
    for (let i = 0; i < 1200 && done.size < o.modules; i++) {
      await sleep(100);
      done = takeoverTimes(many, 'node2', k);
    }
    if (done.size < o.modules) throw new Error(`${o.modules - done.size} modules not taken over on node2 within 120 s of the kill (logs in ${many.dir})`);
    const logged = dirs.map((_, i) => done.get(`m${i + 1}`)! - k);
    for (let i = 0; i < 100 && manyReady.seen.some((x) => x === undefined); i++) await sleep(100);
    const probed = manyReady.seen.every((x) => x !== undefined) ? manyReady.seen.map((x) => x! - k) : undefined;
    const allLog = Math.max(...logged);
    const allProbe = probed && Math.max(...probed);
    console.log(
      `${o.modules} modules: ${probed ? `every ready.txt 200 on node2 from ${Math.min(...probed)} to ${allProbe} ms after node1 was killed (median ${median(probed)} ms)` : `${manyReady.seen.filter((x) => x === undefined).length} ready.txt never seen 200 by the probe (its 200 ms requests timed out)`}; "state ALONE" logged from ${Math.min(...logged)} to ${allLog} ms (median ${median(logged)} ms); ${breakdown(takeoverSteps(many, 'node2', k), k)}`,
    );
    const [all, single, rule] = allProbe !== undefined ? [allProbe, oneProbe, 'ready.txt seen by the probe'] : [allLog, oneLog, 'the survivors\' logs'];
    console.log(`slowest/single = ${(all / single).toFixed(2)} (target ≤ 1.5), both from ${rule}`);
    console.log(`RESULT modules=${o.modules} failover_all_ms=${all} failover_one_ms=${single} rss_per_module_mb=${rssPerModule.toFixed(2)}`);
  } finally {
    for (const p of probes) p.close();
    await many.destroy({ keepDir: true });
    await one?.destroy({ keepDir: true });
  }
}
