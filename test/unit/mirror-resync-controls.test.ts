import { closeSync, mkdirSync, mkdtempSync, openSync, readSync, rmSync, statSync, truncateSync, utimesSync, writeFileSync, writeSync, cpSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { parseConfigText } from '../../node-service/src/config/index.ts';
import { entrySizes } from '../../node-service/src/mirror/copy.ts';
import { Excludes } from '../../node-service/src/mirror/excludes.ts';
import { buildManifest } from '../../node-service/src/mirror/manifest.ts';
import { key, Tracking } from '../../node-service/src/mirror/tracking.ts';
import { checksumPlan, compareListings, type MirrorListing } from '../../node-service/src/mirror/verify.ts';

const MiB = 1 << 20;
const dir = mkdtempSync(join(tmpdir(), 'vigil-rc-unit-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function config(replication: Record<string, unknown>) {
  writeFileSync(join(dir, 'k'), 'x'.repeat(44), { mode: 0o600 });
  writeFileSync(join(dir, 't'), 'token-token-token', { mode: 0o600 });
  const raw = {
    cluster: 'c',
    secret_file: join(dir, 'k'),
    api: { admin_token_file: join(dir, 't') },
    nodes: [
      { name: 'n1', addrs: ['198.18.0.1'] },
      { name: 'n2', addrs: ['198.18.0.2'] },
    ],
    modules: [{ name: 'm', mode: 'mirror', id: 1, replication }],
  };
  return parseConfigText(stringify(raw), join(dir, 'cluster.yaml')).modules[0].replication!;
}

describe('config: replication.resync_bandwidth and include/exclude patterns', () => {
  it('parses bandwidths in decimal and binary units, unlimited by default', () => {
    expect(config({ dirs: ['/srv/a'] }).resync_bandwidth).toBeNull();
    expect(config({ dirs: ['/srv/a'], resync_bandwidth: '50MB/s' }).resync_bandwidth).toBe(50e6);
    expect(config({ dirs: ['/srv/a'], resync_bandwidth: '20 MiB/s' }).resync_bandwidth).toBe(20 * MiB);
    expect(config({ dirs: ['/srv/a'], resync_bandwidth: 'unlimited' }).resync_bandwidth).toBeNull();
  });

  it('refuses a bandwidth without a rate unit or below 64KiB/s, saying what to write', () => {
    for (const bad of ['50MB', 'fast', '1KB/s']) {
      expect(() => config({ dirs: ['/srv/a'], resync_bandwidth: bad })).toThrow(`modules[0].replication.resync_bandwidth: "${bad}" is not a bandwidth: write e.g. 50MB/s, 20MiB/s or 800KB/s (at least 64KiB/s), or unlimited`);
    }
  });

  it('reads replication.window in the same units as the bandwidth (decimal, binary, fractions), and refuses what is not a size', () => {
    expect(config({ dirs: ['/srv/a'] }).window).toBe(16 * MiB);
    expect(config({ dirs: ['/srv/a'], window: '1.5MiB' }).window).toBe(1.5 * MiB);
    expect(config({ dirs: ['/srv/a'], window: '64 MB' }).window).toBe(64e6);
    expect(config({ dirs: ['/srv/a'], window: 131072 }).window).toBe(131072);
    for (const bad of ['16MiB/s', 'big', '4KiB', '2GiB']) {
      expect(() => config({ dirs: ['/srv/a'], window: bad })).toThrow(`modules[0].replication.window: "${bad}" must be a size between 64KiB and 1GiB, e.g. 16MiB`);
    }
  });

  it('keeps the plain form of dirs, accepts { path, exclude, include }, refuses absolute or ".." patterns and nested paths', () => {
    expect(config({ dirs: ['/srv/a', { path: '/srv/b', exclude: ['*.tmp', 'cache/**'] }] }).dirs).toEqual(['/srv/a', { path: '/srv/b', exclude: ['*.tmp', 'cache/**'] }]);
    expect(() => config({ dirs: [{ path: '/srv/b', exclude: ['/srv/b/x'] }] })).toThrow(/dirs\[0\]\.exclude\[0\]: "\/srv\/b\/x" must be relative to the replicated directory/);
    expect(() => config({ dirs: [{ path: '/srv/b', include: ['../x'] }] })).toThrow(/without "\.\."/);
    expect(() => config({ dirs: [{ path: '/srv/a' }, { path: '/srv/a/b' }] })).toThrow(/dirs\[1\]: \/srv\/a\/b overlaps \/srv\/a/);
  });
});

describe('include/exclude patterns', () => {
  const root = join(dir, 'backing');
  mkdirSync(join(root, 'd2'), { recursive: true });
  mkdirSync(join(root, 'x'), { recursive: true });
  const ex = new Excludes([{ backing: root, spec: { path: '/srv/b', exclude: ['*.tmp', 'cache/**'] } }]);

  it('a name pattern matches at any depth, a path pattern from the root, and what is under a match is out too', () => {
    const out = ['a.tmp', 'x/y/a.tmp', 'cache', 'cache/a/b', 'dir.tmp/f'];
    const kept = ['', 'a.txt', 'x/cache/a', 'cachex', 'tmp'];
    expect(out.filter((p) => ex.skips(0, p))).toEqual(out);
    expect(kept.filter((p) => ex.skips(0, p))).toEqual([]);
  });

  it('live changes: excluded ones are dropped; a rename across the boundary becomes a copy or a removal', () => {
    const w = (p: string) => ({ t: 'write' as const, d: 0, p, o: 0, data: Buffer.from('x') });
    expect(ex.live(w('a.tmp'))).toEqual({});
    expect(ex.live(w('a.txt'))).toEqual({ op: w('a.txt') });
    expect(ex.live({ t: 'rename', d: 0, p: 'f.tmp', to: 'f' })).toEqual({ copy: 'f' });
    expect(ex.live({ t: 'rename', d: 0, p: 'f', to: 'f.tmp' })).toEqual({ op: { t: 'remove', d: 0, p: 'f' } });
    expect(ex.live({ t: 'rename', d: 0, p: 'a.tmp', to: 'b.tmp' })).toEqual({});
    expect(ex.live({ t: 'link', d: 0, p: 'hard', to: 'a.tmp' })).toEqual({ copy: 'hard' });
    // cache/** depends on where an entry is: a renamed directory is copied again under its new name
    expect(ex.live({ t: 'rename', d: 0, p: 'd1', to: 'd2' })).toEqual({ op: { t: 'rename', d: 0, p: 'd1', to: 'd2' }, copy: 'd2' });
  });

  it('include: only matching files, with every directory kept so they have their parents', () => {
    const inc = new Excludes([{ backing: root, spec: { path: '/srv/b', exclude: [], include: ['*.db'] } }]);
    expect(['x/y.db', 'x', 'z.db'].filter((p) => inc.skips(0, p))).toEqual([]);
    expect(inc.skips(0, 'x/y.txt')).toBe(true);
    expect(inc.live({ t: 'mkdir', d: 0, p: 'new', m: 0o755, u: 0, g: 0 })).toEqual({ op: { t: 'mkdir', d: 0, p: 'new', m: 0o755, u: 0, g: 0 } });
  });

  it('a plain directory leaves nothing out and passes every change through', () => {
    const none = new Excludes([{ backing: root, spec: '/srv/b' }]);
    expect(none.none).toBe(true);
    expect(none.skips(0, 'a.tmp')).toBe(false);
  });
});

describe('tracked bytes', () => {
  it('a file created while ALONE and then written counts at its size, not as one zone (160 MiB reported as 1 MiB before)', async () => {
    const root = join(dir, 'tracked');
    mkdirSync(root, { recursive: true });
    writeFileSync(join(root, 'big'), '');
    truncateSync(join(root, 'big'), 160 * MiB);
    writeFileSync(join(root, 'old'), '');
    truncateSync(join(root, 'old'), 10 * MiB);
    const t = new Tracking(MiB);
    // what the primary marks while ALONE: the create marks the entry whole, the writes then add nothing
    t.markAll(key(0, 'big'));
    for (let o = 0; o < 160 * MiB; o += MiB) t.markZones(key(0, 'big'), o, MiB);
    // an existing file: two zones written, then truncated at 9.5 MiB and extended back
    t.markZones(key(0, 'old'), 0, 2 * MiB);
    t.markTruncate(key(0, 'old'), 9.5 * MiB);
    t.markMeta(key(0, ''));
    t.markAll(key(0, 'gone'));
    // big: 160 MiB whole; old: zones 0 and 1, and zone 9 (from the truncation point to its 10 MiB end); meta and gone: nothing
    const sizes = await entrySizes([...t.entries.keys()], [root]);
    expect(t.bytesToCopy((k) => sizes.get(k) ?? null)).toBe(160 * MiB + 3 * MiB);
  });
});

describe('verify and diff: comparing two listings', () => {
  it('finds a byte changed with size and mtime kept, extras, modes; the checksum plan copies that one zone', async () => {
    const a = join(dir, 'a');
    const b = join(dir, 'b');
    mkdirSync(join(a, 'sub'), { recursive: true });
    const buf = Buffer.alloc(3 * MiB, 7);
    writeFileSync(join(a, 'f.bin'), buf);
    writeFileSync(join(a, 'sub', 'x.tmp'), 'left out');
    writeFileSync(join(a, 'sub', 'm.txt'), 'mode');
    cpSync(a, b, { recursive: true, preserveTimestamps: true });
    const st = statSync(join(b, 'f.bin'));
    const fd = openSync(join(b, 'f.bin'), 'r+');
    const one = Buffer.alloc(1);
    readSync(fd, one, 0, 1, 2 * MiB + 5);
    writeSync(fd, Buffer.from([one[0] ^ 1]), 0, 1, 2 * MiB + 5);
    closeSync(fd);
    utimesSync(join(b, 'f.bin'), st.atime, st.mtime);
    writeFileSync(join(b, 'extra'), 'e');
    writeFileSync(join(b, 'sub', 'y.tmp'), 'the secondary\'s own');
    const { chmodSync } = await import('node:fs');
    chmodSync(join(b, 'sub', 'm.txt'), 0o600);
    const ex = (root: string) => new Excludes([{ backing: root, spec: { path: '/srv/d', exclude: ['*.tmp'] } }]);
    const list = async (root: string): Promise<MirrorListing> => ({ dirs: ['/srv/d'], zoneSize: MiB, entries: await buildManifest([root], MiB, undefined, ex(root)) });
    const [la, lb] = [await list(a), await list(b)];
    expect(compareListings(la, lb).map((d) => [d.kind, d.path, d.detail])).toEqual([
      ['content', '/srv/d/f.bin', 'same size, different bytes in 1 zone(s): 2097152-3145727'],
      ['meta', '/srv/d/sub/m.txt', `mode ${(statSync(join(a, 'sub', 'm.txt')).mode & 0o7777).toString(8)} vs 600`],
      ['extra', '/srv/d/extra', 'file only on the secondary'],
    ]);
    const plan = checksumPlan(la, lb);
    expect(plan.bytes).toBe(MiB);
    expect(plan.items.map((i) => [i.what, i.path]).sort()).toEqual([
      ['meta', '/srv/d/sub/m.txt'],
      ['remove', '/srv/d/extra'],
      ['zones', '/srv/d/f.bin'],
    ]);
  });
});
