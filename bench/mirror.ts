/**
 * npm run bench:mirror — the mirror module against baselines measured in the same run:
 *   (a) a plain directory, (b) a bindfs passthrough mount, (c) the Vigil view alone (no peer),
 *   (d) the Vigil view replicating to a peer in another network namespace (PRIM, replication.ack: fsync).
 * In each: sequential 1 MiB writes (fsync at the end), fsync'd 4 KiB writes with 1 and with 8 writers,
 * sequential (1 MiB) and random (4 KiB) reads of a file just written; median of ROUNDS runs; reads on the
 * secondary's view (FUSE passthrough) against its backing file. Then
 * PostgreSQL 15 pgbench (1 and 4 clients) on (a) and (d); a full resync of a 1 GiB file plus 10,000
 * small ones to an empty secondary against the raw TCP throughput between the two namespaces (and against a
 * local cp -a of the same tree on the same filesystem); the
 * checksum comparison of trees of 25,000 / 50,000 / 100,000 small files.
 * Every I/O runs inside node a's network and mount namespace (nsenter), so all mounts die with it.
 * The machine is shared and noisy: each round measures the baseline and the candidate back to back
 * ((a), (b), (c) while the view is ALONE; (a) again and (d) once it is PRIM; pgbench plain then view),
 * so a ratio compares runs made under the same load.
 * Last line: RESULT seq_d_over_a=R fsync_d_over_a=R fsync8_d_over_a=R read_c_over_a=R pgbench1_ratio=R
 *   pgbench4_ratio=R seq_c_over_b=R fsync_c_over_b=R resync_over_tcp=R compare_100k_s=N
 */
import { execFileSync, spawn } from 'node:child_process';
import { closeSync, mkdirSync, openSync, readFileSync, rmSync, writeFileSync, writeSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { createPair, type Pair } from '../test/helpers/mirror-cluster.ts';
import { buildManifest, diffManifests } from '../node-service/src/mirror/manifest.ts';
import { Tracking } from '../node-service/src/mirror/tracking.ts';
import { PgCluster } from './mirror-pgbench.ts';
import { median } from './stats.ts';

const ROOT = '/tmp/vgb-bench';
const REPO = resolve(import.meta.dirname, '..');
const IO = resolve(import.meta.dirname, 'mirror-io.ts');
const TCP = resolve(import.meta.dirname, 'mirror-tcp.ts');
const SEQ_MIB = Number(process.env.MIRROR_BENCH_SEQ_MIB ?? 1024);
const FSYNC_S = Number(process.env.MIRROR_BENCH_FSYNC_S ?? 10);
const READ_MIB = Number(process.env.MIRROR_BENCH_READ_MIB ?? 256);
const SIZES = (process.env.MIRROR_BENCH_TREES ?? '25000,50000,100000').split(',').map(Number);
const ROUNDS = Number(process.env.MIRROR_BENCH_ROUNDS ?? 3);
const PG_S = Number(process.env.MIRROR_BENCH_PG_S ?? 20);
const PG_SCALE = Number(process.env.MIRROR_BENCH_PG_SCALE ?? 10);
const RESYNC_MIB = Number(process.env.MIRROR_BENCH_RESYNC_MIB ?? 1024);
const RESYNC_FILES = Number(process.env.MIRROR_BENCH_RESYNC_FILES ?? 10_000);
const WRITERS = 8;
/** clock ticks per second of /proc/<pid>/stat times (USER_HZ, 100 on Linux) */
const CLK_TCK = 100;
const WARM_MIB = Number(process.env.MIRROR_BENCH_WARM_MIB ?? 6144);

function runIn(pid: number, cmd: string[]): Promise<string> {
  return new Promise((res, rej) => {
    const p = spawn('nsenter', ['-t', String(pid), '-m', '-n', `--wd=${REPO}`, '--', ...cmd], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    p.stdout.on('data', (d) => (out += d));
    p.stderr.on('data', (d) => (err += d));
    p.on('exit', (c) => (c === 0 ? res(out) : rej(new Error(`${cmd.join(' ')}: exit ${c}: ${err}${out}`))));
  });
}

const io = async <T>(pid: number, ...args: string[]): Promise<T> => JSON.parse(await runIn(pid, [process.execPath, '--import', 'tsx', IO, ...args])) as T;

interface Measured {
  mbps: number;
  opsps: number;
  /** CPU time of each daemon process (primary, secondary) per fsync'd 4 KiB write, in µs */
  cpuUs: number[];
  ops8ps: number;
  readMbps: number;
  randOpsps: number;
}

/** user + system CPU time of a process (all its threads), in µs */
function cpuUs(pid: number): number {
  const f = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const [utime, stime] = f.slice(f.lastIndexOf(')') + 2).split(' ').slice(11, 13).map(Number);
  return ((utime + stime) * 1e6) / CLK_TCK;
}

/** one run of every I/O measurement in dir; daemons: the pids whose CPU time per fsync'd write is counted */
async function sample(pid: number, dir: string, daemons: number[]): Promise<Measured> {
  const mbps = (await io<{ mbps: number }>(pid, 'seq', dir, String(SEQ_MIB))).mbps;
  const cpu0 = daemons.map(cpuUs);
  const one = await io<{ opsps: number; ops: number }>(pid, 'fsync4k', dir, String(FSYNC_S));
  const opsps = one.opsps;
  const cpu = daemons.map((d, i) => (cpuUs(d) - cpu0[i]) / one.ops);
  // 8 writers on 8 files, started together (tsx takes a while to start on a loaded machine)
  const start = String(Date.now() + 6000);
  const all = await Promise.all(Array.from({ length: WRITERS }, (_, w) => io<{ opsps: number }>(pid, 'fsync4k', dir, String(FSYNC_S), String(w), start)));
  const rd = await io<{ seqMbps: number; randOpsps: number }>(pid, 'read', dir, String(READ_MIB), String(Math.max(2, FSYNC_S / 2)));
  return { mbps, opsps, cpuUs: cpu, ops8ps: all.reduce((n, x) => n + x.opsps, 0), readMbps: rd.seqMbps, randOpsps: rd.randOpsps };
}

/** the median of each measurement over the rounds, printed with every run (these machines are noisy) */
function summarize(label: string, xs: Measured[]): Measured {
  const keys = ['mbps', 'opsps', 'ops8ps', 'readMbps', 'randOpsps'] as const;
  const m = { ...Object.fromEntries(keys.map((k) => [k, median(xs.map((x) => x[k]))])), cpuUs: xs[0].cpuUs.map((_, i) => median(xs.map((x) => x.cpuUs[i]))) } as unknown as Measured;
  const runs = (k: (typeof keys)[number]) => xs.map((x) => x[k].toFixed(0)).join('/');
  console.log(
    `${label.padEnd(34)} seq ${m.mbps.toFixed(0).padStart(5)} MB/s (${runs('mbps')})  fsync'd 4K ${m.opsps.toFixed(0).padStart(6)}/s (${runs('opsps')})  ×8 ${m.ops8ps.toFixed(0).padStart(6)}/s (${runs('ops8ps')})  read ${m.readMbps.toFixed(0).padStart(5)} MB/s (${runs('readMbps')})  rand 4K ${m.randOpsps.toFixed(0).padStart(7)}/s (${runs('randOpsps')})`,
  );
  return m;
}

/** ROUNDS rounds; in each, every target once, one after the other */
async function rounds(pid: number, targets: { label: string; dir: string }[], daemons: number[]): Promise<Measured[]> {
  const got: Measured[][] = targets.map(() => []);
  for (let r = 0; r < ROUNDS; r++) for (const [i, t] of targets.entries()) got[i].push(await sample(pid, t.dir, daemons));
  return targets.map((t, i) => summarize(t.label, got[i]));
}

function makeTree(root: string, from: number, to: number): void {
  for (let i = from; i < to; i++) {
    const d = join(root, `d${Math.floor(i / 500)}`);
    if (i % 500 === 0) mkdirSync(d, { recursive: true });
    writeFileSync(join(d, `f${i}.txt`), `file ${i} `.repeat(1 + (i % 50)));
  }
}

/** pgbench on the plain directory and on the view, 1 and 4 clients, alternating within each round */
async function pgRounds(plain: PgCluster, view: PgCluster): Promise<{ plain: { c1: number; c4: number }; view: { c1: number; c4: number } }> {
  const tps = { plain: { 1: [] as number[], 4: [] as number[] }, view: { 1: [] as number[], 4: [] as number[] } };
  for (let r = 0; r < ROUNDS; r++) {
    for (const c of [1, 4] as const) {
      tps.plain[c].push(await plain.bench(c, PG_S));
      tps.view[c].push(await view.bench(c, PG_S));
    }
  }
  const line = (label: string, t: { 1: number[]; 4: number[] }) => {
    const runs = (xs: number[]) => xs.map((x) => x.toFixed(0)).join('/');
    console.log(`pgbench on ${label.padEnd(24)} 1 client ${median(t[1]).toFixed(0).padStart(6)} tps (${runs(t[1])})   4 clients ${median(t[4]).toFixed(0).padStart(6)} tps (${runs(t[4])})`);
    return { c1: median(t[1]), c4: median(t[4]) };
  };
  return { plain: line('the plain directory', tps.plain), view: line('the view in PRIM', tps.view) };
}

/** raw TCP from a to b (1 GiB) and the median one-byte round trip, in the same namespaces */
async function tcpBaseline(pair: Pair, pid: number): Promise<{ mbps: number; rttUs: number }> {
  const server = pair.lan.spawn('b', [process.execPath, '--import', 'tsx', TCP, 'server', '5999']);
  try {
    await new Promise<void>((r, j) => {
      server.stdout!.once('data', () => r());
      server.once('exit', (c) => j(new Error(`tcp server exited ${c}`)));
    });
    const rs: { mbps: number; rttUs: number }[] = [];
    for (let i = 0; i < ROUNDS; i++) rs.push(JSON.parse(await runIn(pid, [process.execPath, '--import', 'tsx', TCP, 'client', pair.b.addr, '5999', '1024'])));
    return { mbps: median(rs.map((x) => x.mbps)), rttUs: median(rs.map((x) => x.rttUs)) };
  } finally {
    server.kill();
  }
}

/**
 * Writes and deletes WARM_MIB once before measuring. A virtual machine pays the host's first-touch
 * fault on every guest page it uses for the first time: page-cache writes into never-used memory ran
 * at a third of their speed here, and the replicated runs (two copies) reach into more new memory
 * than the plain ones. Afterwards the freed pages are reused by whichever run comes.
 */
function warmUp(): void {
  const f = join(ROOT, 'warm-up.bin');
  const buf = Buffer.alloc(1 << 20, 1);
  const t0 = process.hrtime.bigint();
  const fd = openSync(f, 'w');
  for (let i = 0; i < WARM_MIB; i++) writeSync(fd, buf);
  closeSync(fd);
  rmSync(f);
  console.log(`memory warm-up: ${WARM_MIB} MiB written and deleted in ${(Number(process.hrtime.bigint() - t0) / 1e9).toFixed(1)} s`);
}

async function main(): Promise<void> {
  // the replication engine as the baselines measured it: the channel in clear (the cost of TLS,
  // the default, is bench:secure's); MIRROR_BENCH_ENCRYPTION=tls measures with it
  const encryption = process.env.MIRROR_BENCH_ENCRYPTION === 'tls' ? 'tls' : 'none';
  const pair = await createPair({ root: ROOT, prefix: 'mqb', sendTimeoutMs: 5000, encryption });
  const clusters: PgCluster[] = [];
  const cleanup = async () => {
    for (const c of clusters.splice(0)) await c.destroy().catch((e: Error) => console.error(`cannot stop PostgreSQL: ${e.message}`));
    await pair.a.exit().catch(() => undefined);
    await pair.b.exit().catch(() => undefined);
    await pair.destroy();
  };
  try {
    const load = () => execFileSync('cat', ['/proc/loadavg']).toString().split(' ').slice(0, 3).join(' ');
    console.log(`mirror bench: ${SEQ_MIB} MiB sequential, ${FSYNC_S} s fsync'd 4 KiB (1 and ${WRITERS} writers), ${READ_MIB} MiB reads, pgbench -s ${PG_SCALE} ${PG_S} s, median of ${ROUNDS} runs each, replication.encryption: ${encryption}; load average ${load()}`);
    warmUp();
    const { a, b } = pair;
    a.start();
    b.start();
    await Promise.all([a.call('prepare'), b.call('prepare')]);
    const pid = a.proc!.pid!;
    const plain = join(ROOT, 'plain');
    const bsrc = join(ROOT, 'bindfs-src');
    const bmnt = join(ROOT, 'bindfs-mnt');
    for (const d of [plain, bsrc, bmnt]) mkdirSync(d, { recursive: true });
    await runIn(pid, ['bindfs', bsrc, bmnt]);

    const view = join(ROOT, 'a', 'data');
    await a.call('primary');
    const [ra1, rb, rc] = await rounds(pid, [
      { label: '(a) plain directory', dir: plain },
      { label: '(b) bindfs passthrough', dir: bmnt },
      { label: '(c) Vigil view, ALONE (no peer)', dir: view },
    ], [a.proc!.pid!]);
    await runIn(pid, ['umount', bmnt]);
    const synced = a.waitEvent('synced', 120_000);
    await b.call('secondary');
    await synced;
    const [ra, rd] = await rounds(pid, [
      { label: '(a) plain directory, again', dir: plain },
      { label: '(d) Vigil view, PRIM (ack: fsync)', dir: view },
    ], [a.proc!.pid!, b.proc!.pid!]);
    // reads on the secondary's read-only view, where opens use FUSE passthrough (the kernel reads b's
    // backing file itself), against that same backing file read directly, back to back
    const ptName = 'passthrough.bin';
    await io(pid, 'write', join(view, ptName), String(READ_MIB)); // its fsync returns once b has it
    const bpid = b.proc!.pid!;
    const opens0 = ((await b.call('status')) as { passthroughOpens?: number }).passthroughOpens ?? 0;
    const ptRuns: { plain: { seqMbps: number; randOpsps: number }[]; view: { seqMbps: number; randOpsps: number }[] } = { plain: [], view: [] };
    for (let i = 0; i < ROUNDS; i++) {
      const secs = String(Math.max(2, FSYNC_S / 2));
      ptRuns.plain.push(await io(bpid, 'readfile', join(ROOT, 'b', '.data.vigil-data', ptName), secs));
      ptRuns.view.push(await io(bpid, 'readfile', join(ROOT, 'b', 'data', ptName), secs));
    }
    const opens = (((await b.call('status')) as { passthroughOpens?: number }).passthroughOpens ?? 0) - opens0;
    await runIn(pid, ['rm', join(view, ptName)]);
    const ptSeq = median(ptRuns.view.map((x) => x.seqMbps)) / median(ptRuns.plain.map((x) => x.seqMbps));
    const ptRand = median(ptRuns.view.map((x) => x.randOpsps)) / median(ptRuns.plain.map((x) => x.randOpsps));
    console.log(
      `reads on the secondary's view (passthrough opens: ${opens}) vs its backing file: seq ${median(ptRuns.view.map((x) => x.seqMbps)).toFixed(0)} / ${median(ptRuns.plain.map((x) => x.seqMbps)).toFixed(0)} MB/s = ${ptSeq.toFixed(2)}, rand 4K ${median(ptRuns.view.map((x) => x.randOpsps)).toFixed(0)} / ${median(ptRuns.plain.map((x) => x.randOpsps)).toFixed(0)} /s = ${ptRand.toFixed(2)}`,
    );
    const run = (cmd: string[]) => runIn(pid, cmd);
    const pgPlain = new PgCluster(run, join(plain, 'pg'), join(ROOT, 'sock-plain'));
    const pgView = new PgCluster(run, join(view, 'pg'), join(ROOT, 'sock-view'));
    clusters.push(pgPlain, pgView);
    await pgPlain.init(PG_SCALE);
    await pgView.init(PG_SCALE);
    const pg = await pgRounds(pgPlain, pgView);
    const pga = pg.plain;
    const pgd = pg.view;
    for (const c of clusters.splice(0)) await c.destroy();
    const st = (await a.call('status')) as { peer: string; windowWaits?: number };
    if (st.peer !== 'synced') throw new Error(`peer not synced after the PRIM runs: ${st.peer}`);
    console.log(`load average after the PRIM runs: ${load()}; writers that waited for room in the window: ${st.windowWaits ?? 0}`);

    // full resync to an empty secondary, against raw TCP between the same namespaces
    const tcp = await tcpBaseline(pair, pid);
    console.log(`raw TCP a → b: ${tcp.mbps.toFixed(0)} MB/s, one-byte round trip ${tcp.rttUs.toFixed(0)} µs (median of ${ROUNDS})`);
    const lost = a.waitEvent('lost', 30_000);
    await b.exit();
    await lost;
    rmSync(join(ROOT, 'b'), { recursive: true, force: true });
    mkdirSync(join(ROOT, 'b'), { recursive: true });
    const tree = await io<{ bytes: number }>(pid, 'tree', join(view, 'resync'), String(RESYNC_MIB), String(RESYNC_FILES));
    execFileSync('sync');
    b.start();
    await b.call('prepare');
    const t0 = process.hrtime.bigint();
    const resynced = a.waitEvent('synced', 1_800_000);
    await b.call('secondary');
    await resynced;
    const resyncS = Number(process.hrtime.bigint() - t0) / 1e9;
    const last = ((await a.call('status')) as { lastResync?: { bytesSent: number; mode: string } }).lastResync;
    const resyncMbps = tree.bytes / (1 << 20) / resyncS;
    // what this disk and filesystem take to make the same copy locally, without the network: cp -a from
    // a's backing tree, then syncfs (the resync ends with one too); on this VM creating 10,000 files
    // alone costs seconds of kernel time
    const cpDst = join(ROOT, 'cp-ref');
    const c0 = process.hrtime.bigint();
    await runIn(pid, ['cp', '-a', join(ROOT, 'a', '.data.vigil-data', 'resync'), cpDst]);
    await runIn(pid, ['sync', '-f', cpDst]);
    const cpS = Number(process.hrtime.bigint() - c0) / 1e9;
    rmSync(cpDst, { recursive: true, force: true });
    console.log(`full resync of ${(tree.bytes / (1 << 20)).toFixed(0)} MiB (1 file of ${RESYNC_MIB} MiB + ${RESYNC_FILES} small) to an empty secondary: ${resyncS.toFixed(1)} s, ${resyncMbps.toFixed(0)} MB/s (${last?.mode}, ${last?.bytesSent} bytes sent) = ${(resyncMbps / tcp.mbps).toFixed(2)} of raw TCP; a local copy of the same tree (cp -a, syncfs): ${cpS.toFixed(1)} s, the resync ${(cpS / resyncS).toFixed(2)} of its speed`);
    await cleanup();

    const r = (x: number, y: number) => (y > 0 ? x / y : 0);
    const us = (opsps: number) => 1e6 / opsps;
    console.log(
      `ratios: seq d/a ${r(rd.mbps, ra.mbps).toFixed(2)} (target ≥ 0.8), fsync d/a ${r(rd.opsps, ra.opsps).toFixed(2)} (≥ 0.45), fsync×8 d/a ${r(rd.ops8ps, ra.ops8ps).toFixed(2)}, read c/a ${r(rc.readMbps, ra1.readMbps).toFixed(2)} seq, ${r(rc.randOpsps, ra1.randOpsps).toFixed(2)} random (≥ 0.9), read d/a ${r(rd.readMbps, ra.readMbps).toFixed(2)} / ${r(rd.randOpsps, ra.randOpsps).toFixed(2)}, pgbench 1 ${r(pgd.c1, pga.c1).toFixed(2)} (≥ 0.45), pgbench 4 ${r(pgd.c4, pga.c4).toFixed(2)} (≥ 0.5), seq c/b ${r(rc.mbps, rb.mbps).toFixed(2)} (≥ 1.0), fsync c/b ${r(rc.opsps, rb.opsps).toFixed(2)} (≥ 1.0), resync/TCP ${r(resyncMbps, tcp.mbps).toFixed(2)} (≥ 0.8)`,
    );
    // where the time of one fsync'd 4 KiB write goes: the plain directory's (local I/O), what the view adds
    // (FUSE round trips, the daemon), what replication adds (network round trip, the peer's apply and sync
    // running alongside the local one)
    console.log(
      `fsync'd 4 KiB, per operation: plain ${us(ra1.opsps).toFixed(0)} µs (local I/O); view alone ${us(rc.opsps).toFixed(0)} µs (+${(us(rc.opsps) - us(ra1.opsps)).toFixed(0)} FUSE and daemon); plain, PRIM phase ${us(ra.opsps).toFixed(0)} µs; PRIM ${us(rd.opsps).toFixed(0)} µs (+${(us(rd.opsps) - us(ra.opsps)).toFixed(0)} over plain: network round trip ${tcp.rttUs.toFixed(0)} µs, the rest the peer's apply and fsync beyond the local one)`,
    );
    console.log(`CPU time per fsync'd 4 KiB write (both daemons' processes, all threads, kernel included): view alone ${rc.cpuUs[0].toFixed(0)} µs; PRIM: primary ${rd.cpuUs[0].toFixed(0)} µs, secondary ${rd.cpuUs[1].toFixed(0)} µs`);
    console.log(`sequential 1 MiB writes, per MiB: plain ${(1e6 / ra1.mbps).toFixed(0)} / ${(1e6 / ra.mbps).toFixed(0)} µs; view alone ${(1e6 / rc.mbps).toFixed(0)} µs; PRIM ${(1e6 / rd.mbps).toFixed(0)} µs (raw TCP ${(1e6 / tcp.mbps).toFixed(0)} µs per MiB)`);

    // checksum comparison of two identical trees (both sides' listing + per-zone digests, then the diff)
    const t1 = join(ROOT, 'tree1');
    const t2 = join(ROOT, 'tree2');
    let have = 0;
    let lastS = 0;
    const perFile: number[] = [];
    for (const n of SIZES) {
      makeTree(t1, have, n);
      makeTree(t2, have, n);
      have = n;
      execFileSync('sync');
      const c0 = process.hrtime.bigint();
      const [m1, m2] = await Promise.all([buildManifest([t1], 1 << 20), buildManifest([t2], 1 << 20)]);
      const tracking = new Tracking(1 << 20);
      const bytes = diffManifests(m1, new Map(m2.map((e) => [e.k, e])), tracking);
      const s = Number(process.hrtime.bigint() - c0) / 1e9;
      if (tracking.entries.size !== 0 || bytes !== 0) throw new Error('identical trees compared as different');
      console.log(`checksum comparison of two identical trees of ${n} files: ${s.toFixed(2)} s (${Math.round(n / s)} files/s per side)`);
      perFile.push(s / n);
      lastS = s;
    }
    if (perFile.length > 1) console.log(`cost per file, largest tree / smallest: ${(perFile[perFile.length - 1] / perFile[0]).toFixed(2)} (1.0 = linear)`);
    rmSync(ROOT, { recursive: true, force: true });
    console.log(`load average at the end: ${load()}`);
    console.log(
      `RESULT seq_d_over_a=${r(rd.mbps, ra.mbps).toFixed(2)} fsync_d_over_a=${r(rd.opsps, ra.opsps).toFixed(2)} fsync8_d_over_a=${r(rd.ops8ps, ra.ops8ps).toFixed(2)} read_c_over_a=${Math.min(r(rc.readMbps, ra1.readMbps), r(rc.randOpsps, ra1.randOpsps)).toFixed(2)} pgbench1_ratio=${r(pgd.c1, pga.c1).toFixed(2)} pgbench4_ratio=${r(pgd.c4, pga.c4).toFixed(2)} seq_c_over_b=${r(rc.mbps, rb.mbps).toFixed(2)} fsync_c_over_b=${r(rc.opsps, rb.opsps).toFixed(2)} resync_over_tcp=${r(resyncMbps, tcp.mbps).toFixed(2)} compare_100k_s=${lastS.toFixed(1)}`,
    );
  } catch (e) {
    await cleanup();
    throw e;
  }
}

await main();
