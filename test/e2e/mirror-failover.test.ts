import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { WRITER_JS } from '../helpers/mirror-writer.ts';
import { backing, closePair, startPair, type MirrorNode, type Pair } from '../helpers/mirror-cluster.ts';

const ROOT = `/tmp/vgm-e2e-failover-${process.pid}`;
const ITERATIONS = Number(process.env.MIRROR_FAILOVER_ITERATIONS ?? 20);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('mirror: zero loss of fsync-acknowledged records across failovers', () => {
  let pair: Pair;
  beforeAll(async () => {
    pair = await startPair({ root: ROOT, sendTimeoutMs: 1000, prefix: 'vgmf' }, true);
  }, 60_000);
  afterAll(() => closePair(pair), 60_000);

  it(`${ITERATIONS} primary kills (kill -9, or link cut then kill) at random moments: every acknowledged record survives`, async () => {
    let P: MirrorNode = pair.a;
    let S: MirrorNode = pair.b;
    let seed = 42;
    const rand = () => ((seed = (seed * 1103515245 + 12345) >>> 0) / 4294967296);
    let totalAcked = 0;
    let totalLost = 0;
    for (let i = 0; i < ITERATIONS; i++) {
      const ack = join(ROOT, `ack-${i}.log`);
      const file = `log-${i}`;
      const writer = P.spawnInside([process.execPath, '-e', WRITER_JS, join(ROOT, P.name, 'data', file), ack]);
      // wait until the writer is running, then a random moment
      for (let t = 0; t < 100 && !existsSync(ack); t++) await sleep(50);
      await sleep(100 + Math.floor(rand() * 800));
      const lost = S.waitEvent('lost', 15_000);
      const cut = i % 2 === 1;
      if (cut) {
        await pair.lan.cut(P.name);
        await sleep(30);
      }
      writer.kill('SIGKILL');
      P.kill9();
      await lost;
      if (cut) await pair.lan.restore(P.name);
      await S.call('primary');
      // GIVEN every record the writer saw acknowledged, THEN the new primary has it
      const acked = readFileSync(ack, 'utf8').split('\n').filter(Boolean).map(Number);
      const present = new Set(
        readFileSync(join(backing(ROOT, S.name), file), 'utf8')
          .split('\n')
          .map((l) => Number(l.split(' ')[0]))
          .filter((n) => Number.isInteger(n) && n > 0),
      );
      const missing = acked.filter((n) => !present.has(n));
      totalAcked += acked.length;
      totalLost += missing.length;
      console.log(`iteration ${i} (${cut ? 'cut+kill' : 'kill -9'} of ${P.name}): ${acked.length} acknowledged, ${missing.length} lost`);
      // the old primary comes back as secondary and is resynced
      P.start();
      await P.call('prepare');
      const synced = S.waitEvent('synced', 60_000);
      await P.call('secondary');
      await synced;
      [P, S] = [S, P];
    }
    console.log(`failover: ${ITERATIONS} iterations, ${totalAcked} records acknowledged, ${totalLost} lost`);
    expect(totalAcked).toBeGreaterThan(ITERATIONS);
    expect(totalLost).toBe(0);
  }, 300_000);
});
