import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execFileSync, type ChildProcess } from 'node:child_process';
import { randomFillSync } from 'node:crypto';
import { mkdirSync, openSync, writeSync, closeSync } from 'node:fs';
import { join } from 'node:path';
import { backing, createPair, drained, rejoinSecondary, type Pair } from '../helpers/mirror-cluster.ts';
import { setXattr } from '../../node-service/src/mirror/fuse/libc.ts';
import { compareTrees } from '../helpers/mirror-compare.ts';

const ROOT = `/tmp/vgm-e2e-failback-${process.pid}`;
const MiB = 1 << 20;

function run(p: ChildProcess): Promise<string> {
  return new Promise((res, rej) => {
    let out = '';
    p.stdout!.on('data', (d) => (out += d));
    p.stderr!.on('data', (d) => (out += d));
    p.on('exit', (c) => (c === 0 ? res(out) : rej(new Error(`exit ${c}: ${out}`))));
  });
}

type Status = { role?: string; peer: string; lastResync?: { mode: string; bytesSent: number; entries: number; durationMs: number } };

describe('mirror: failback resync copies only what changed', () => {
  let pair: Pair;
  beforeAll(async () => {
    pair = await createPair({ root: ROOT, sendTimeoutMs: 2000, prefix: 'vgmr' });
    // a 256 MiB tree (32 × 8 MiB), present on both nodes before replication is enabled
    const src = join(ROOT, 'a', 'data');
    mkdirSync(join(src, 'sub'), { recursive: true });
    const buf = Buffer.allocUnsafe(8 * MiB);
    for (let i = 0; i < 32; i++) {
      randomFillSync(buf);
      const fd = openSync(join(src, i % 2 ? 'sub' : '', `f${i}.bin`), 'w');
      writeSync(fd, buf);
      closeSync(fd);
    }
    execFileSync('cp', ['-a', src, join(ROOT, 'b', 'data')]);
    pair.a.start();
    pair.b.start();
    await Promise.all([pair.a.call('prepare'), pair.b.call('prepare')]);
    await pair.b.call('secondary');
    const synced = pair.a.waitEvent('synced', 120_000);
    await pair.a.call('primary');
    await synced;
  }, 180_000);
  afterAll(async () => {
    await pair?.a.exit();
    await pair?.b.exit();
    await pair?.destroy();
  }, 60_000);

  it('first pairing of identical trees compares checksums and sends no file data', async () => {
    const st = (await pair.a.call('status')) as Status;
    expect(st.lastResync?.mode).toBe('checksum');
    expect(st.lastResync?.bytesSent).toBe(0);
  });

  it('8 MiB changed while the secondary is down: delta resync sends at most 16 MiB, trees identical', async () => {
    // GIVEN the secondary stops; the primary is alone
    const lost = pair.a.waitEvent('lost', 20_000);
    await pair.b.exit();
    await lost;
    // WHEN 8 MiB are changed through the primary's view (1 MiB in each of 8 files, one unaligned)
    const cmds = [0, 3, 5, 8, 13, 21, 26, 31].map((f, i) => {
      const path = join(ROOT, 'a', 'data', f % 2 ? 'sub' : '', `f${f}.bin`);
      return i === 7
        ? `dd if=/dev/urandom of=${path} bs=512K count=2 seek=5 conv=notrunc status=none`
        : `dd if=/dev/urandom of=${path} bs=1M count=1 seek=${i} conv=notrunc status=none`;
    });
    await run(pair.a.spawnInside(['sh', '-c', `${cmds.join(' && ')} && echo new > ${join(ROOT, 'a', 'data', 'new.txt')} && rm ${join(ROOT, 'a', 'data', 'f2.bin')}`]));
    const alone = (await pair.a.call('status')) as { trackedBytes: number };
    expect(alone.trackedBytes).toBeGreaterThanOrEqual(8 * MiB);
    // THEN the returning secondary is resynced with only the changed zones
    await rejoinSecondary(pair);
    const st = (await pair.a.call('status')) as Status;
    console.log(`failback delta resync: ${st.lastResync?.bytesSent} bytes of file data sent (${((st.lastResync?.bytesSent ?? 0) / MiB).toFixed(2)} MiB) in ${st.lastResync?.durationMs} ms, ${st.lastResync?.entries} entries`);
    expect(st.lastResync?.mode).toBe('delta');
    expect(st.lastResync!.bytesSent).toBeLessThanOrEqual(16 * MiB);
    expect(st.lastResync!.bytesSent).toBeGreaterThanOrEqual(8 * MiB);
    expect(compareTrees(backing(ROOT, 'a'), backing(ROOT, 'b'))).toEqual([]);
  }, 180_000);

  it('edits made on the secondary while it was stopped force a checksum comparison that repairs them', async () => {
    const lost = pair.a.waitEvent('lost', 20_000);
    await pair.b.exit();
    await lost;
    // someone edits the stopped node's data directly
    await new Promise((r) => setTimeout(r, 50));
    const fd = openSync(join(backing(ROOT, 'b'), 'f4.bin'), 'r+');
    writeSync(fd, Buffer.from('tampered'), 0, 8, 3 * MiB + 17);
    closeSync(fd);
    // and an extended attribute only: the comparison covers them too
    expect(setXattr(join(backing(ROOT, 'b'), 'f6.bin'), 'user.tampered', Buffer.from('yes'), 0)).toBe(0);
    await rejoinSecondary(pair);
    const st = (await pair.a.call('status')) as Status;
    console.log(`checksum resync: ${st.lastResync?.bytesSent} bytes sent in ${st.lastResync?.durationMs} ms`);
    expect(st.lastResync?.mode).toBe('checksum');
    expect(st.lastResync!.bytesSent).toBeLessThanOrEqual(2 * MiB);
    expect(compareTrees(backing(ROOT, 'a'), backing(ROOT, 'b'))).toEqual([]);
  }, 180_000);

  it('prim --fullsync on a running primary compares checksums and repairs a copy damaged behind its back', async () => {
    // the secondary's copy is damaged while the pair runs (a disk error, an operator mistake)
    const fd = openSync(join(backing(ROOT, 'b'), 'f4.bin'), 'r+');
    writeSync(fd, Buffer.from('bitrot!!'), 0, 8, 5 * MiB + 3);
    closeSync(fd);
    expect(compareTrees(backing(ROOT, 'a'), backing(ROOT, 'b'))).not.toEqual([]);
    const synced = pair.a.waitEvent('synced', 120_000);
    await pair.a.call('primary', { fullSync: true });
    await synced;
    const st = (await pair.a.call('status')) as Status;
    expect(st.role).toBe('primary');
    expect(st.lastResync?.mode).toBe('checksum');
    expect(st.lastResync!.bytesSent).toBeLessThanOrEqual(2 * MiB);
    expect(compareTrees(backing(ROOT, 'a'), backing(ROOT, 'b'))).toEqual([]);
  }, 180_000);

  it('swap: roles exchange without a restart and without losing a write', async () => {
    // the core's order: the primary steps down first, then the secondary takes over
    await pair.a.call('secondary');
    const synced = pair.b.waitEvent('synced', 60_000);
    await pair.b.call('primary');
    await synced;
    await run(pair.b.spawnInside(['sh', '-c', `echo after-swap > ${join(ROOT, 'b', 'data', 'swap.txt')}`]));
    await drained(pair.b);
    const st = (await pair.b.call('status')) as Status;
    expect(st.lastResync?.mode).toBe('delta');
    expect(st.lastResync?.bytesSent).toBe(0);
    expect(compareTrees(backing(ROOT, 'a'), backing(ROOT, 'b'))).toEqual([]);
    // and back
    await pair.b.call('secondary');
    const back = pair.a.waitEvent('synced', 60_000);
    await pair.a.call('primary');
    await back;
    expect(compareTrees(backing(ROOT, 'a'), backing(ROOT, 'b'))).toEqual([]);
  }, 120_000);
});
