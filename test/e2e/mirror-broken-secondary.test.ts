import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { join } from 'node:path';
import { backing, closePair, startPair, type MirrorNode, type Pair } from '../helpers/mirror-cluster.ts';
import { compareTrees } from '../helpers/mirror-compare.ts';

const ROOT = `/tmp/vgbs-e2e-broken-secondary-${process.pid}`;
const B = join(ROOT, 'b', '.data.vigil-data');

/** runs a shell script inside the node's namespaces; the script must succeed */
async function inside(node: MirrorNode, script: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const p = node.spawnInside(['sh', '-c', script]);
    let out = '';
    p.stdout!.on('data', (d) => (out += d));
    p.stderr!.on('data', (d) => (out += d));
    p.on('exit', (c) => (c === 0 ? resolve(out) : reject(new Error(`exit ${c}: ${script}\n${out}`))));
  });
}

const count = (text: string, re: RegExp) => text.match(new RegExp(re.source, 'g'))?.length ?? 0;

/**
 * A secondary whose disk turns read-only (a failing disk: ext4 errors=remount-ro) refuses every change.
 * The primary goes on alone, its changes tracked, and does not spin: found by the 60-minute soak (seed
 * 2026 #240), where the primary re-copied the refused entries ~5,000 times a second and logged each
 * (400 MB of log in five minutes). Now a session ends after 256 refusals and the next waits 1 s, 2 s, ...
 * up to 10 s; the first refusal of a session is logged, the rest counted in the reason it ends with.
 * Once the disk is writable again, the next session brings the secondary back in sync.
 */
describe('mirror: a secondary whose disk turns read-only', () => {
  let pair: Pair | undefined;

  beforeAll(async () => {
    pair = await startPair({ root: ROOT, sendTimeoutMs: 2000, prefix: 'vgbs' }, true);
  }, 60_000);
  afterAll(() => closePair(pair), 60_000);

  it('the primary goes on alone without spinning, and resyncs once the disk is writable again', async () => {
    const { a, b } = pair!;
    // the secondary's copy read-only in its own mount namespace, as ext4 does on an error
    await inside(b, `mount --bind '${B}' '${B}' && mount -o remount,bind,ro '${B}'`);
    const mark = a.stderr.length;
    await inside(a, `cd '${join(ROOT, 'a', 'data')}' && for i in $(seq 1 400); do echo "record $i" > f$i; done && sync`);
    await new Promise((r) => setTimeout(r, 8000));
    const log = a.stderr.slice(mark);
    const ended = count(log, /the secondary failed to apply 256 changes \(last: E[A-Z]+\)/);
    // 8 s: sessions at 0, ~1, ~3, ~7 s (pauses 1, 2, 4 s); each logs its first refusal once
    expect(ended, log.slice(-3000)).toBeGreaterThanOrEqual(2);
    expect(ended).toBeLessThanOrEqual(5);
    expect(log).toMatch(/"err":"EROFS"/);
    expect(log).toMatch(/connecting again in 1000 ms/);
    expect(log).toMatch(/connecting again in 2000 ms/);
    expect(count(log, /secondary failed to apply a change/)).toBeLessThanOrEqual(ended + 1);
    expect(((await a.call('status')) as { peer: string }).peer).not.toBe('synced');

    const synced = a.waitEvent('synced', 30_000);
    await inside(b, `umount '${B}'`);
    await synced;
    expect(compareTrees(backing(ROOT, 'a'), backing(ROOT, 'b'))).toEqual([]);
  }, 90_000);
});
