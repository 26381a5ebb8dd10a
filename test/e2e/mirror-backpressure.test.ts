import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { backing, closePair, drained, startPair, type Pair } from '../helpers/mirror-cluster.ts';
import { compareTrees } from '../helpers/mirror-compare.ts';

const ROOT = `/tmp/vgk-e2e-backpressure-${process.pid}`;
const MiB = 1 << 20;
const WINDOW = 2 * MiB;

function rssBytes(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) * 1024 : 0;
}

interface Status {
  peer: string;
  unackedBytes?: number;
  windowWaits?: number;
}

describe('mirror: a writer faster than the secondary is slowed down; memory stays bounded', () => {
  let pair: Pair;
  beforeAll(async () => {
    pair = await startPair({ root: ROOT, sendTimeoutMs: 3000, prefix: 'vgk', window: WINDOW }, true);
  }, 60_000);
  afterAll(() => closePair(pair), 60_000);

  it('with the link to the secondary slowed (tc), the primary holds at most its window unacknowledged', async () => {
    const { a, b, lan } = pair;
    // GIVEN the secondary's link slowed to 100 Mbit/s. A token bucket (tbf), not netem: this machine's
    // kernel is built without sch_netem; what matters is a writer faster than the link. It shapes the
    // switch's port towards b, where the replication stream goes.
    const sw = `${lan.prefix}sw`;
    const port = lan.hosts.get('b')!.port;
    const tc = (...args: string[]) => execFileSync('ip', ['netns', 'exec', sw, 'tc', 'qdisc', ...args, 'dev', port, 'root', ...(args[0] === 'add' ? ['tbf', 'rate', '100mbit', 'burst', '64kb', 'latency', '200ms'] : [])]);
    tc('add');
    const pid = a.proc!.pid!;
    const before = rssBytes(pid);
    let peakRss = before;
    let peakUnacked = 0;
    let sampling = true;
    const sampler = (async () => {
      while (sampling) {
        peakRss = Math.max(peakRss, rssBytes(pid));
        const st = (await a.call('status')) as Status;
        peakUnacked = Math.max(peakUnacked, st.unackedBytes ?? 0);
        await new Promise((r) => setTimeout(r, 50));
      }
    })();
    // WHEN a writer streams 192 MiB through the primary's view (about 8 times what the link carries in a second)
    const t0 = Date.now();
    await a.inside(['dd', 'if=/dev/zero', `of=${join(ROOT, 'a', 'data', 'stream.bin')}`, 'bs=1M', 'count=192', 'status=none']);
    const writeS = (Date.now() - t0) / 1000;
    await drained(a, 120_000);
    sampling = false;
    await sampler;
    const st = (await a.call('status')) as Status;
    console.log(`192 MiB through a 100 Mbit/s link: ${writeS.toFixed(1)} s; peak unacknowledged ${(peakUnacked / MiB).toFixed(1)} MiB (window ${WINDOW / MiB} MiB); primary RSS ${(before / MiB).toFixed(0)} → peak ${(peakRss / MiB).toFixed(0)} MiB; ${st.windowWaits} writes waited for room`);
    // THEN the writer was held back (it did not finish at memory speed) and memory did not follow the stream
    expect(st.windowWaits).toBeGreaterThan(0);
    expect(peakUnacked).toBeLessThanOrEqual(WINDOW + 2 * MiB);
    expect(peakRss - before).toBeLessThan(96 * MiB);
    expect(st.peer).toBe('synced');
    expect(compareTrees(backing(ROOT, 'a'), backing(ROOT, 'b'))).toEqual([]);
    tc('del');
  }, 240_000);

  it('a secondary that stops answering turns the primary ALONE after send_timeout; the writer goes on', async () => {
    const { a, b } = pair;
    // GIVEN the secondary frozen (SIGSTOP: its connection stays open, nothing is acknowledged)
    const lost = a.waitEvent('lost', 20_000);
    b.proc!.kill('SIGSTOP');
    try {
      // WHEN the primary keeps writing
      const writer = a.inside(['dd', 'if=/dev/zero', `of=${join(ROOT, 'a', 'data', 'alone.bin')}`, 'bs=1M', 'count=64', 'conv=fsync', 'status=none']);
      // THEN it goes ALONE and the writer completes
      await lost;
      await writer;
      const st = (await a.call('status')) as Status & { trackedBytes: number };
      expect(st.peer).not.toBe('synced');
      expect(st.trackedBytes).toBeGreaterThan(0);
    } finally {
      b.proc!.kill('SIGCONT');
    }
  }, 120_000);
});
