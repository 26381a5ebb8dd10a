import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { closePair, startPair, type Pair } from '../helpers/mirror-cluster.ts';

const ROOT = `/tmp/vgm-e2e-security-${process.pid}`;
const FUZZ = resolve(import.meta.dirname, '../helpers/mirror-fuzz.ts');

describe('mirror: the replication port refuses strangers and survives hostile frames', () => {
  let pair: Pair;
  beforeAll(async () => {
    pair = await startPair({ root: ROOT, sendTimeoutMs: 2000, secretB: 'ab'.repeat(32), prefix: 'vgms' }, false);
    mkdirSync(join(ROOT, 'outside'), { recursive: true });
    writeFileSync(join(ROOT, 'outside', 'sentinel'), 'must stay');
  }, 60_000);
  afterAll(() => closePair(pair), 60_000);

  it('a primary holding another secret is refused', async () => {
    // a and b were given different secrets
    await pair.a.call('primary');
    await new Promise((r) => setTimeout(r, 2500));
    const st = (await pair.a.call('status')) as { peer: string };
    expect(st.peer).toBe('disconnected');
    expect(pair.a.events.some((e) => e.type === 'synced')).toBe(false);
    expect(pair.b.stderr).toMatch(/replication peer refused/);
    await pair.a.call('stop');
  });

  it('fuzzed and malformed frames never crash the secondary nor write outside its directory', async () => {
    const out = await new Promise<string>((res, rej) => {
      const p = pair.lan.spawn('a', [process.execPath, '--import', 'tsx', FUZZ, '198.18.3.2', '5600', 'ab'.repeat(32), join(ROOT, 'outside')], { cwd: resolve(import.meta.dirname, '../..') });
      let o = '';
      p.stdout!.on('data', (d) => (o += d));
      p.stderr!.on('data', (d) => (o += d));
      p.on('exit', (c) => (c === 0 ? res(o) : rej(new Error(o))));
    });
    const r = JSON.parse(out.trim().split('\n').pop()!) as Record<string, unknown>;
    console.log('fuzz:', r);
    expect(String(r.wrongSecret)).toMatch(/^refused/);
    expect(r.framesSent).toBe(3000);
    expect(r.closedAfterMalformed).toBe(true);
    // the secondary still answers and still serves
    const st = (await pair.b.call('status')) as { role: string };
    expect(st.role).toBe('secondary');
    // nothing escaped: the outside folder holds only its sentinel (nothing written, nothing removed),
    // no stray file next to the data
    expect(readdirSync(join(ROOT, 'outside'))).toEqual(['sentinel']);
    expect(existsSync('/etc/passwd') && readFileSync('/etc/passwd', 'utf8').includes('root')).toBe(true);
    expect(readdirSync(join(ROOT, 'b')).sort()).toEqual(['.data.vigil-data', 'data', 'state']);
  }, 180_000);
});
