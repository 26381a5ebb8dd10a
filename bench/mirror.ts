/**
 * npm run bench:mirror — the mirror module against baselines measured in the same run:
 *   (a) a plain directory, (b) a bindfs passthrough mount, (c) the Vigil view alone (no peer),
 *   (d) the Vigil view replicating synchronously to a peer in another network namespace.
 * Sequential 1 MiB writes (1 GiB, fsync at the end) and fsync'd 4 KiB writes (10 s) in each, median of 3 runs; then the
 * checksum comparison of two identical trees of 25,000 / 50,000 / 100,000 small files.
 * Every I/O runs inside node a's network and mount namespace (nsenter), so all mounts die with it.
 * Last line: RESULT seq_d_over_a=R fsync_d_over_a=R seq_c_over_b=R fsync_c_over_b=R compare_100k_s=N
 */
import { execFileSync, spawn } from 'node:child_process';
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { createPair } from '../test/helpers/mirror-cluster.ts';
import { buildManifest, diffManifests } from '../node-service/src/mirror/manifest.ts';
import { Tracking } from '../node-service/src/mirror/tracking.ts';
import { median } from './stats.ts';

const ROOT = '/tmp/vgm-bench';
const IO = resolve(import.meta.dirname, 'mirror-io.ts');
const SEQ_MIB = Number(process.env.MIRROR_BENCH_SEQ_MIB ?? 1024);
const FSYNC_S = Number(process.env.MIRROR_BENCH_FSYNC_S ?? 10);
const SIZES = (process.env.MIRROR_BENCH_TREES ?? '25000,50000,100000').split(',').map(Number);
const ROUNDS = Number(process.env.MIRROR_BENCH_ROUNDS ?? 3);

function runIn(pid: number, cmd: string[]): Promise<string> {
  return new Promise((res, rej) => {
    const p = spawn('nsenter', ['-t', String(pid), '-m', '-n', `--wd=${resolve(import.meta.dirname, '..')}`, '--', ...cmd], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    p.stdout.on('data', (d) => (out += d));
    p.stderr.on('data', (d) => (err += d));
    p.on('exit', (c) => (c === 0 ? res(out) : rej(new Error(`${cmd.join(' ')}: exit ${c}: ${err}`))));
  });
}

/** ROUNDS runs of each measurement; the median is what counts (these machines are noisy) */
async function measure(pid: number, label: string, dir: string): Promise<{ mbps: number; opsps: number }> {
  const seqs: number[] = [];
  const syncs: number[] = [];
  for (let i = 0; i < ROUNDS; i++) {
    seqs.push((JSON.parse(await runIn(pid, [process.execPath, '--import', 'tsx', IO, 'seq', dir, String(SEQ_MIB)])) as { mbps: number }).mbps);
    syncs.push((JSON.parse(await runIn(pid, [process.execPath, '--import', 'tsx', IO, 'fsync4k', dir, String(FSYNC_S)])) as { opsps: number }).opsps);
  }
  const mbps = median(seqs);
  const opsps = median(syncs);
  const runs = (xs: number[], d: number) => xs.map((x) => x.toFixed(d)).join(' / ');
  console.log(`${label.padEnd(36)} sequential ${mbps.toFixed(1).padStart(7)} MB/s (${runs(seqs, 0)})   fsync'd 4 KiB ${opsps.toFixed(0).padStart(6)} ops/s (${runs(syncs, 0)})`);
  return { mbps, opsps };
}

function makeTree(root: string, from: number, to: number): void {
  for (let i = from; i < to; i++) {
    const d = join(root, `d${Math.floor(i / 500)}`);
    if (i % 500 === 0) mkdirSync(d, { recursive: true });
    writeFileSync(join(d, `f${i}.txt`), `file ${i} `.repeat(1 + (i % 50)));
  }
}

async function main(): Promise<void> {
  const pair = await createPair({ root: ROOT, prefix: 'vgmb', sendTimeoutMs: 5000 });
  const cleanup = async () => {
    await pair.a.exit().catch(() => undefined);
    await pair.b.exit().catch(() => undefined);
    await pair.destroy();
  };
  try {
    console.log(`mirror bench: ${SEQ_MIB} MiB sequential, ${FSYNC_S} s fsync'd 4 KiB, median of ${ROUNDS} runs each, load average ${execFileSync('cat', ['/proc/loadavg']).toString().split(' ').slice(0, 3).join(' ')}`);
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

    const ra = await measure(pid, '(a) plain directory', plain);
    const rb = await measure(pid, '(b) bindfs passthrough', bmnt);
    await a.call('primary');
    const rc = await measure(pid, '(c) Vigil view, ALONE (no peer)', join(ROOT, 'a', 'data'));
    const synced = a.waitEvent('synced', 120_000);
    await b.call('secondary');
    await synced;
    const rd = await measure(pid, '(d) Vigil view, PRIM (sync to peer)', join(ROOT, 'a', 'data'));
    const st = (await a.call('status')) as { peer: string };
    if (st.peer !== 'synced') throw new Error(`peer not synced after the PRIM run: ${st.peer}`);
    await runIn(pid, ['umount', bmnt]).catch(() => undefined);
    await cleanup();

    const r = (x: number, y: number) => (y > 0 ? x / y : 0);
    console.log(`ratios: seq d/a ${r(rd.mbps, ra.mbps).toFixed(2)} (target ≥ 0.35), fsync d/a ${r(rd.opsps, ra.opsps).toFixed(2)} (target ≥ 0.33), seq c/b ${r(rc.mbps, rb.mbps).toFixed(2)} (target ≥ 1.0), fsync c/b ${r(rc.opsps, rb.opsps).toFixed(2)} (target ≥ 1.0)`);

    // checksum comparison of two identical trees (both sides' listing + per-zone digests, then the diff)
    const t1 = join(ROOT, 'tree1');
    const t2 = join(ROOT, 'tree2');
    let have = 0;
    let last = 0;
    const times: string[] = [];
    const perFile: number[] = [];
    for (const n of SIZES) {
      makeTree(t1, have, n);
      makeTree(t2, have, n);
      have = n;
      execFileSync('sync');
      const t0 = process.hrtime.bigint();
      const [m1, m2] = await Promise.all([buildManifest([t1], 1 << 20), buildManifest([t2], 1 << 20)]);
      const tracking = new Tracking(1 << 20);
      const bytes = diffManifests(m1, new Map(m2.map((e) => [e.k, e])), tracking);
      const s = Number(process.hrtime.bigint() - t0) / 1e9;
      if (tracking.entries.size !== 0 || bytes !== 0) throw new Error('identical trees compared as different');
      console.log(`checksum comparison of two identical trees of ${n} files: ${s.toFixed(2)} s (${Math.round(n / s)} files/s per side)`);
      times.push(`${n}:${s.toFixed(2)}`);
      perFile.push(s / n);
      last = s;
    }
    // linear growth: the cost per file stays flat from the smallest tree to the largest
    if (perFile.length > 1) console.log(`cost per file, largest tree / smallest: ${(perFile[perFile.length - 1] / perFile[0]).toFixed(2)} (1.0 = linear)`);
    rmSync(ROOT, { recursive: true, force: true });
    console.log(`RESULT seq_d_over_a=${r(rd.mbps, ra.mbps).toFixed(2)} fsync_d_over_a=${r(rd.opsps, ra.opsps).toFixed(2)} seq_c_over_b=${r(rc.mbps, rb.mbps).toFixed(2)} fsync_c_over_b=${r(rc.opsps, rb.opsps).toFixed(2)} compare_100k_s=${last.toFixed(1)}`);
  } catch (e) {
    await cleanup();
    throw e;
  }
}

await main();
