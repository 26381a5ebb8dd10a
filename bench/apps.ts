/**
 * Application templates benchmark: the failover a client sees with the real servers from Debian, run
 * by the templates' scripts under real daemons in network namespaces (198.18.70-74.0/24).
 *
 *   npm run bench:apps                       every template, 5 failovers each
 *   npm run bench:apps -- --runs 3 --only postgresql,nginx
 *
 * Mirror (postgresql, mariadb, firebird): a client commits one row per transaction through the VIP;
 * the primary dies (link cut + kill -9 of its whole namespace); measured: kill → end of the client's
 * first successful commit. Every run then checks that each commit the client saw succeed is in the
 * table, brings the node back (SECOND, resynced) and kills the other one next. Baseline measured in
 * the same runs: how long the template's start_prim took on the survivor (the server's own start and
 * crash recovery, from the daemon's event log): what any restart of that server costs, failover or not.
 *
 * Farm (nginx, apache): three nodes, a client opens a new connection every 20 ms through the VIP; a
 * node dies (link cut + kill -9); measured: the gap, from the kill to the start of the last request
 * that failed. Baseline: the heartbeat timeout (1 s), the floor of any failure detection.
 *
 * Last line: RESULT postgresql_ms=N mariadb_ms=N firebird_ms=N nginx_gap_ms=N apache_gap_ms=N (medians).
 */
import { parseArgs } from 'node:util';
import type { LogRecord } from '../node-service/src/daemon/event-log.ts';
import { sleep, startCommitClient, missingCommits } from '../test/helpers/app-cluster.ts';
import { createFirebird, createMariadb, createPostgres, type MirrorDb } from '../test/helpers/app-dbs.ts';
import { createWebFarm, type WebServer } from '../test/helpers/app-farm.ts';
import { startClientLoop } from '../test/helpers/vip-topology.ts';
import { median } from './stats.ts';

const { values: args } = parseArgs({ options: { runs: { type: 'string', default: '5' }, only: { type: 'string' } } });
const RUNS = Number(args.runs);
const ONLY = args.only ? new Set(args.only.split(',')) : undefined;
const say = (s: string) => process.stderr.write(`${s}\n`);

const MIRRORS: [string, (p: string, s: string) => Promise<MirrorDb>, string, string][] = [
  ['postgresql', createPostgres, 'vgwpg', '198.18.70'],
  ['mariadb', createMariadb, 'vgwmy', '198.18.71'],
  ['firebird', createFirebird, 'vgwfb', '198.18.72'],
];
const FARMS: [WebServer, string, string][] = [
  ['nginx', 'vgwng', '198.18.73'],
  ['apache', 'vgwap', '198.18.74'],
];

async function lastStartPrimMs(db: MirrorDb, node: string): Promise<number | undefined> {
  const c = db.app.c;
  const r = await c.get(node, `http://${c.node(node).addr}:9010/api/v1/modules/${c.moduleName}/log?n=100`, { authorization: `Bearer ${c.token}` });
  if (r?.status !== 200) return undefined;
  const runs = (JSON.parse(r.body) as LogRecord[]).filter((x) => x.kind === 'script' && x.script === 'start_prim' && x.ok);
  const last = runs.at(-1) as { durationMs?: number } | undefined;
  return last?.durationMs;
}

async function benchMirror(name: string, create: (p: string, s: string) => Promise<MirrorDb>, prefix: string, subnet: string): Promise<number> {
  say(`\n== ${name}: ${RUNS} failovers`);
  const db = await create(prefix, subnet);
  const client = startCommitClient(db.app.c, db.insert, { env: { ...db.env } });
  const failovers: number[] = [];
  const starts: number[] = [];
  try {
    let primary = 'node1';
    for (let i = 0; i < RUNS; i++) {
      const survivor = primary === 'node1' ? 'node2' : 'node1';
      const before = client.committed().length;
      while (client.committed().length < before + 20) await sleep(50);
      await db.app.killNamespace(primary);
      const killAt = Date.now();
      const first = await client.firstOkAfter(killAt, 90_000);
      if (!first) {
        const c = db.app.c;
        const why = await Promise.all([
          c.lan.tryExec('client', ['ip', 'neigh']).then((r) => `client neighbours: ${r.stdout.trim()}`),
          ...c.nodes.map((n) => c.lan.tryExec(n.name, ['ip', '-br', 'addr']).then((r) => `${n.name}: ${r.stdout.trim().replace(/\n/g, '; ')}`)),
        ]);
        const errs = client.results.filter((r) => !r.ok && r.s >= killAt).slice(-3).map((r) => JSON.stringify(r));
        throw new Error(`${name}: no commit within 90 s of killing ${primary}\n${why.join('\n')}\nlast client errors: ${errs.join('\n')}`);
      }
      failovers.push(first.e - killAt);
      while (client.committed().filter((n) => n > first.n).length < 5) await sleep(50);
      const logged = client.committed();
      const missing = missingCommits(logged, await db.stored());
      const startMs = await lastStartPrimMs(db, survivor);
      if (startMs !== undefined) starts.push(startMs);
      say(`  run ${i + 1}: ${primary} killed, ${survivor} serves: first commit after ${first.e - killAt} ms (start_prim ${startMs ?? '?'} ms); ${logged.length} commits logged, ${missing.length} missing`);
      if (missing.length) throw new Error(`${name}: committed rows lost: ${missing.slice(0, 10).join(', ')}`);
      await db.app.revive(primary);
      await db.app.c.waitFor({ [primary]: 'SECOND', [survivor]: 'PRIM' }, 120_000);
      primary = survivor;
    }
  } finally {
    await client.stop();
    await db.app.destroy();
  }
  const m = median(failovers);
  say(`  ${name}: failover median ${m} ms (runs ${failovers.join(', ')}); baseline start_prim median ${median(starts)} ms: Vigil adds ${m - median(starts)} ms (detection, takeover, client reconnect)`);
  return m;
}

async function benchFarm(kind: WebServer, prefix: string, subnet: string): Promise<number> {
  say(`\n== ${kind}: ${RUNS} node kills in a farm of 3`);
  const app = await createWebFarm(kind, prefix, subnet);
  const gaps: number[] = [];
  try {
    const c = app.c;
    for (const n of c.nodes) c.start(n.name);
    await c.waitFor({ node1: 'UP', node2: 'UP', node3: 'UP' }, 60_000);
    await sleep(1500);
    const loop = startClientLoop(c.lan, { url: `http://${app.vip}:8080/`, period: 20, timeout: 1000 });
    try {
      for (let i = 0; i < RUNS; i++) {
        const victim = `node${(i % 3) + 1}`;
        await sleep(1500);
        const killAt = Date.now();
        await app.killNamespace(victim);
        await sleep(4000);
        const fails = loop.samples.filter((x) => !x.ok && x.e >= killAt);
        const gap = fails.length ? Math.max(0, Math.max(...fails.map((x) => x.s)) - killAt) : 0;
        const late = loop.samples.filter((x) => x.s >= killAt + 3000 && (!x.ok || x.b === victim)).length;
        gaps.push(gap);
        say(`  run ${i + 1}: ${victim} killed: ${fails.length} requests failed, the last started ${gap} ms after the kill; ${late} bad requests after 3 s`);
        await app.revive(victim);
        await c.waitFor({ node1: 'UP', node2: 'UP', node3: 'UP' }, 60_000);
        await loop.waitFor((x) => x.ok && x.b === victim && x.s > Date.now(), 15_000);
      }
    } finally {
      loop.stop();
    }
  } finally {
    await app.destroy();
  }
  const m = median(gaps);
  say(`  ${kind}: gap median ${m} ms (runs ${gaps.join(', ')}); baseline: heartbeat timeout 1000 ms`);
  return m;
}

const result: Record<string, number | string> = {};
for (const [name, create, prefix, subnet] of MIRRORS) {
  if (ONLY && !ONLY.has(name)) continue;
  result[`${name}_ms`] = await benchMirror(name, create, prefix, subnet);
}
for (const [kind, prefix, subnet] of FARMS) {
  if (ONLY && !ONLY.has(kind)) continue;
  result[`${kind}_gap_ms`] = await benchFarm(kind, prefix, subnet);
}
console.log(`RESULT ${Object.entries(result).map(([k, v]) => `${k}=${v}`).join(' ')}`);
process.exit(0);
