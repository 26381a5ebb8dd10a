import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { join, resolve } from 'node:path';
import { backing, closePair, drained, startPair, type Pair } from '../helpers/mirror-cluster.ts';
import { compareTrees, countEntries } from '../helpers/mirror-compare.ts';

const ROOT = `/tmp/vgm-e2e-workload-${process.pid}`;
const WORKLOAD = resolve(import.meta.dirname, '../helpers/mirror-workload.ts');

function run(p: ReturnType<Pair['a']['spawnInside']>): Promise<string> {
  return new Promise((res, rej) => {
    let out = '';
    p.stdout!.on('data', (d) => (out += d));
    p.stderr!.on('data', (d) => (out += d));
    p.on('exit', (c) => (c === 0 ? res(out) : rej(new Error(`exit ${c}: ${out}`))));
  });
}

describe('mirror: synchronous replication through the FUSE view (two namespaces)', () => {
  let pair: Pair;
  beforeAll(async () => {
    pair = await startPair({ root: ROOT, sendTimeoutMs: 3000, prefix: 'vgmw' }, true);
  }, 60_000);
  afterAll(() => closePair(pair), 60_000);

  it('a seeded random workload of 10,000 operations leaves both backing trees identical', async () => {
    // GIVEN a synced pair, WHEN 10,000 random operations run through a's view
    const out = await run(pair.a.spawnInside([process.execPath, '--import', 'tsx', WORKLOAD, join(ROOT, 'a', 'data'), '20261125', '10000']));
    const summary = JSON.parse(out.trim().split('\n').pop()!) as { counts: Record<string, number>; errors: Record<string, number> };
    const done = Object.values(summary.counts).reduce((x, y) => x + y, 0);
    console.log(`workload: ${done} successful operations`, summary.counts);
    expect(done).toBeGreaterThan(7000);
    await drained(pair.a);
    const st = (await pair.a.call('status')) as { peer: string };
    expect(st.peer).toBe('synced');
    // THEN both backing trees are the same: names, types, sizes, modes, symlink targets and bytes
    const diffs = compareTrees(backing(ROOT, 'a'), backing(ROOT, 'b'));
    expect(diffs).toEqual([]);
    expect(countEntries(backing(ROOT, 'a'))).toBeGreaterThan(50);
  }, 240_000);

  it('the secondary view is read-only (EROFS)', async () => {
    const p = pair.b.spawnInside(['sh', '-c', `touch ${join(ROOT, 'b', 'data', 'x')} 2>&1; exit 0`]);
    const out = await run(p);
    expect(out).toMatch(/Read-only file system/);
  });

  it('1 MiB writes reach the daemon in one call and fsync works through the view', async () => {
    const f = join(ROOT, 'a', 'data', 'big.bin');
    const out = await run(pair.a.spawnInside(['sh', '-c', `dd if=/dev/urandom of=${f} bs=1M count=8 conv=fsync 2>&1 && sync`]));
    expect(out).toMatch(/8388608 bytes/);
    const st = (await pair.a.call('status')) as { largestWrite: number };
    // dd writes 1 MiB blocks: each reaches the daemon as one request (max_pages negotiated)
    expect(st.largestWrite).toBe(1024 * 1024);
    await drained(pair.a);
    expect(compareTrees(backing(ROOT, 'a'), backing(ROOT, 'b'))).toEqual([]);
  }, 60_000);
});
