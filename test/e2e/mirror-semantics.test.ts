import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import { join } from 'node:path';
import { backing, closePair, drained, startPair, type MirrorNode, type Pair } from '../helpers/mirror-cluster.ts';
import { compareTrees } from '../helpers/mirror-compare.ts';
import { allXattrs } from '../../node-service/src/mirror/fuse/libc.ts';

const ROOT = `/tmp/vgm-e2e-semantics-${process.pid}`;
const VA = join(ROOT, 'a', 'data');
const VB = join(ROOT, 'b', 'data');
const MiB = 1024 * 1024;
/** run as nobody:nogroup, without supplementary groups */
const NOBODY = 'setpriv --reuid=65534 --regid=65534 --clear-groups --';

/**
 * runs a shell script inside the node's namespaces (cwd = that node's view); never rejects. On the
 * primary it returns once the secondary acknowledged everything (ack: fsync returns writes before).
 */
async function sh(node: MirrorNode, script: string, cwd = node.name === 'a' ? VA : VB): Promise<{ code: number; out: string }> {
  const r = await new Promise<{ code: number; out: string }>((res) => {
    const p = node.spawnInside(['sh', '-c', `export LC_ALL=C; cd '${cwd}' && { ${script}\n}`]);
    let out = '';
    p.stdout!.on('data', (d) => (out += d));
    p.stderr!.on('data', (d) => (out += d));
    p.on('exit', (c) => res({ code: c ?? -1, out }));
  });
  if (node.name === 'a') await drained(node).catch(() => undefined);
  return r;
}

/** like sh, but the script must succeed; returns its output */
async function ok(node: MirrorNode, script: string): Promise<string> {
  const r = await sh(node, script);
  if (r.code !== 0) throw new Error(`script failed (exit ${r.code}): ${script}\n${r.out}`);
  return r.out;
}

const A = (rel: string) => join(backing(ROOT, 'a'), rel);
const B = (rel: string) => join(backing(ROOT, 'b'), rel);

describe('mirror: POSIX semantics through the view, replicated exactly', () => {
  let pair: Pair;
  /** where this test's part of a's log starts */
  let logMark = 0;

  /** the two backing trees are identical, the pair stayed in sync, and no live change failed on b */
  async function expectReplicated(): Promise<void> {
    expect(compareTrees(backing(ROOT, 'a'), backing(ROOT, 'b'))).toEqual([]);
    const st = (await pair.a.call('status')) as { peer: string };
    expect(st.peer).toBe('synced');
    // a change the secondary failed to apply is silently re-copied by a resync: that must not happen
    expect(pair.a.stderr.slice(logMark)).not.toMatch(/failed to apply/);
  }

  beforeAll(async () => {
    pair = await startPair({ root: ROOT, sendTimeoutMs: 3000, prefix: 'vgmz' }, true);
  }, 60_000);
  afterAll(() => closePair(pair), 60_000);
  beforeEach(() => {
    logMark = pair.a.stderr.length;
  });
  // a test that broke the sync (a change b refused is re-copied by a resync) must not spill into the next
  afterEach(async () => {
    for (let i = 0; i < 100; i++) {
      if (((await pair.a.call('status')) as { peer: string }).peer === 'synced') return;
      await new Promise((r) => setTimeout(r, 100));
    }
  }, 20_000);

  it('1 MiB writes arrive in one request and replicate byte for byte', async () => {
    // (first: largestWrite is a maximum since start, so no earlier test may have set it)
    const out = await ok(pair.a, 'dd if=/dev/urandom of=big.bin bs=1M count=4 oflag=direct 2>&1 && dd if=/dev/urandom of=big2.bin bs=1M count=3 conv=fsync 2>&1');
    expect(out).toMatch(/4194304 bytes/);
    expect(out).toMatch(/3145728 bytes/);
    const st = (await pair.a.call('status')) as { largestWrite: number };
    expect(st.largestWrite).toBe(MiB);
    expect(fs.statSync(B('big.bin')).size).toBe(4 * MiB);
    expect(fs.readFileSync(B('big.bin')).equals(fs.readFileSync(A('big.bin')))).toBe(true);
    expect((await ok(pair.a, 'sha1sum big.bin big2.bin | cut -c1-40')).trim().split('\n')).toEqual(
      ['big.bin', 'big2.bin'].map((f) => createHash('sha1').update(fs.readFileSync(B(f))).digest('hex')),
    );
    await expectReplicated();
  });

  it('fallocate allocates, punches holes and keeps the size, on both sides', async () => {
    // GIVEN a 3 MiB file made by fallocate, THEN b has 3 MiB of zeros
    await ok(pair.a, 'fallocate -l 3M fa.bin');
    expect(fs.statSync(B('fa.bin')).size).toBe(3 * MiB);
    expect(fs.readFileSync(B('fa.bin')).equals(Buffer.alloc(3 * MiB))).toBe(true);

    // WHEN it is filled and its second MiB punched out, THEN that MiB reads as zeros on b, the rest is kept
    await ok(pair.a, 'dd if=/dev/urandom of=fa.bin bs=1M count=3 conv=notrunc status=none && fallocate -p -o 1M -l 1M fa.bin');
    const data = fs.readFileSync(B('fa.bin'));
    expect(data.length).toBe(3 * MiB);
    expect(data.subarray(MiB, 2 * MiB).equals(Buffer.alloc(MiB))).toBe(true);
    expect(data.subarray(0, MiB).equals(Buffer.alloc(MiB))).toBe(false);
    expect(data.subarray(2 * MiB).equals(Buffer.alloc(MiB))).toBe(false);
    // a real hole on b: about 2 MiB allocated, not 3
    expect(fs.statSync(B('fa.bin')).blocks * 512).toBeLessThan(3 * MiB);
    // the view reads the hole as zeros too
    expect((await ok(pair.a, "dd if=fa.bin bs=1M skip=1 count=1 status=none | tr -d '\\000' | wc -c")).trim()).toBe('0');
    expect((await ok(pair.a, 'dd if=fa.bin bs=1M skip=1 count=1 status=none | wc -c')).trim()).toBe(String(MiB));

    // zero range (FALLOC_FL_ZERO_RANGE) over data
    await ok(pair.a, 'fallocate -z -o 2621440 -l 65536 fa.bin');
    const z = fs.readFileSync(B('fa.bin'));
    expect(z.subarray(2621440, 2621440 + 65536).equals(Buffer.alloc(65536))).toBe(true);
    expect(z.subarray(2621440 + 65536, 2621440 + 65536 + 4096).equals(Buffer.alloc(4096))).toBe(false);
    expect(z.subarray(2 * MiB, 2621440).equals(data.subarray(2 * MiB, 2621440))).toBe(true);

    await ok(pair.a, 'fallocate -n -l 8M fa.bin');
    expect((await ok(pair.a, 'stat -c %s fa.bin')).trim()).toBe(String(3 * MiB));
    const st = fs.statSync(B('fa.bin'));
    expect(st.size).toBe(3 * MiB);
    expect(st.blocks * 512).toBeGreaterThanOrEqual(8 * MiB);
    await expectReplicated();
  });

  it('extended attributes: set, replace, binary values, list, remove, XATTR_CREATE', async () => {
    await ok(pair.a, 'echo x > xa.txt && mkdir xd');
    await ok(pair.a, "setfattr -n user.k -v v xa.txt && setfattr -n user.second -v 'hello world' xa.txt && setfattr -n user.bin -v 0x00ff0102 xa.txt && setfattr -n user.onDir -v d xd && setfattr -n user.empty xd");
    const dump = await ok(pair.a, "getfattr -d -m '^user\\.' -e hex xa.txt");
    expect(dump).toContain('user.k=0x76');
    expect(dump).toContain('user.bin=0x00ff0102');
    expect(dump).toContain(`user.second=0x${Buffer.from('hello world').toString('hex')}`);
    expect((await ok(pair.a, 'getfattr --only-values -n user.k xa.txt'))).toBe('v');
    expect(allXattrs(B('xa.txt'))).toEqual({ 'user.k': Buffer.from('v'), 'user.second': Buffer.from('hello world'), 'user.bin': Buffer.from([0, 0xff, 1, 2]) });
    expect(allXattrs(B('xd'))).toEqual({ 'user.onDir': Buffer.from('d'), 'user.empty': Buffer.alloc(0) });

    // replace a value, remove a name; XATTR_CREATE on an existing name fails
    await ok(pair.a, 'setfattr -n user.k -v longer-value xa.txt && setfattr -x user.second xa.txt');
    const excl = await sh(pair.a, `python3 -c 'import os; os.setxattr("xa.txt", "user.k", b"z", os.XATTR_CREATE)'`);
    expect(excl.code).not.toBe(0);
    expect(excl.out).toMatch(/File exists/);
    const missing = await sh(pair.a, 'getfattr -n user.second xa.txt');
    expect(missing.out).toMatch(/No such attribute/);
    expect(allXattrs(B('xa.txt'))).toEqual({ 'user.k': Buffer.from('longer-value'), 'user.bin': Buffer.from([0, 0xff, 1, 2]) });
    // the secondary serves them read-only through its own view
    expect(await ok(pair.b, 'getfattr --only-values -n user.k xa.txt')).toBe('longer-value');
    expect((await ok(pair.a, "getfattr -d -m '^user\\.' --absolute-names xa.txt")).split('\n').filter((l) => l.startsWith('user.')).sort()).toEqual(['user.bin=0sAP8BAg==', 'user.k="longer-value"']);
    await expectReplicated();
  });

  it('extended attributes of the replicated directory itself replicate like any other', async () => {
    await ok(pair.a, 'setfattr -n user.top -v here . && setfattr -n user.gone -v 1 . && setfattr -x user.gone .');
    expect(allXattrs(backing(ROOT, 'b'))).toEqual({ 'user.top': Buffer.from('here') });
    expect(await ok(pair.a, 'getfattr --only-values -n user.top .')).toBe('here');
    await expectReplicated();
  });

  it('new entries belong to the caller; set-group-ID directories give their group; permissions are enforced', async () => {
    // GIVEN a world-writable, a root-only and a set-group-ID (group 12345) directory, all made through the view
    await ok(pair.a, 'mkdir pub && chmod 0777 pub && mkdir -m 0755 priv && mkdir sg && chgrp 12345 sg && chmod 2777 sg');
    // WHEN nobody (65534) creates entries there, THEN they are its own on both sides
    await ok(pair.a, `${NOBODY} sh -c 'echo hi > pub/nf && mkdir pub/nd && ln -s nf pub/nl && touch sg/f && mkdir sg/d'`);
    for (const rel of ['pub/nf', 'pub/nd', 'pub/nl']) {
      const st = fs.lstatSync(B(rel));
      expect(`${rel} ${st.uid}:${st.gid}`).toBe(`${rel} 65534:65534`);
    }
    expect((await ok(pair.a, 'stat -c %u:%g pub/nf pub/nd')).trim().split('\n')).toEqual(['65534:65534', '65534:65534']);
    const sf = fs.statSync(B('sg/f'));
    expect([sf.uid, sf.gid, sf.mode & 0o2000]).toEqual([65534, 12345, 0]);
    const sd = fs.statSync(B('sg/d'));
    expect([sd.uid, sd.gid, sd.mode & 0o2000]).toEqual([65534, 12345, 0o2000]);
    // root's new entries in the set-group-ID directory take its group too
    await ok(pair.a, 'touch sg/rootf && mkdir sg/rootd');
    expect(`${fs.statSync(B('sg/rootf')).uid}:${fs.statSync(B('sg/rootf')).gid}`).toBe('0:12345');
    const rd = fs.statSync(B('sg/rootd'));
    expect([rd.uid, rd.gid, rd.mode & 0o2000]).toEqual([0, 12345, 0o2000]);
    expect((await ok(pair.a, 'stat -c %u:%g:%a sg/d sg/rootd')).trim().split('\n')).toEqual(['65534:12345:2755', '0:12345:2755']);

    // an unprivileged user cannot create in root's 0755 directory, and nothing appears on b
    const denied = await sh(pair.a, `${NOBODY} sh -c 'touch priv/x; mkdir priv/y; echo z > pub/nf2 && chmod 0600 pub/nf2'`);
    expect(denied.out).toMatch(/touch: cannot touch 'priv\/x': Permission denied/);
    expect(denied.out).toMatch(/mkdir: cannot create directory 'priv\/y': Permission denied/);
    expect(fs.readdirSync(B('priv'))).toEqual([]);
    expect(fs.statSync(B('pub/nf2')).mode & 0o7777).toBe(0o600);

    // chown through the view replicates
    await ok(pair.a, 'chown 1234:5678 pub/nf && chgrp 4321 pub/nd');
    expect(`${fs.statSync(B('pub/nf')).uid}:${fs.statSync(B('pub/nf')).gid}`).toBe('1234:5678');
    expect(`${fs.statSync(B('pub/nd')).uid}:${fs.statSync(B('pub/nd')).gid}`).toBe('65534:4321');
    await expectReplicated();
  });

  it('a write or truncate by an unprivileged user clears set-ID bits on both sides; root keeps them', async () => {
    // GIVEN world-writable set-user-ID / set-group-ID executables, made through the view
    await ok(pair.a, 'for f in ks_u ks_g ks_t ks_r; do echo x > $f; done && chmod 6777 ks_u ks_g ks_t ks_r && chmod 2767 ks_g');
    // WHEN nobody writes to su and sg, truncates tr, and root writes to rootw
    await ok(pair.a, `${NOBODY} sh -c 'echo more >> ks_u && echo more >> ks_g && truncate -s 1 ks_t' && echo more >> ks_r`);
    // THEN like on a local filesystem: set-user-ID goes, set-group-ID goes only where the group may execute
    const modes = (await ok(pair.a, 'stat -c %a ks_u ks_g ks_t ks_r')).trim().split('\n');
    expect(modes).toEqual(['777', '2767', '777', '6777']);
    expect(['ks_u', 'ks_g', 'ks_t', 'ks_r'].map((f) => (fs.statSync(B(f)).mode & 0o7777).toString(8))).toEqual(modes);
    expect(fs.readFileSync(B('ks_u'), 'utf8')).toBe('x\nmore\n');
    await expectReplicated();
  });

  it('a write that fails on the primary after its frame left is copied again, so the secondary never keeps bytes the primary lacks', async () => {
    // GIVEN the primary's daemon limited to 64 KiB files (its writes past that fail with EFBIG)
    const pid = pair.a.proc!.pid!;
    const limit = (v: string) => new Promise<void>((res, rej) => {
      const p = spawn('prlimit', ['--pid', String(pid), `--fsize=${v}`]);
      p.on('exit', (c) => (c === 0 ? res() : rej(new Error(`prlimit exit ${c}`))));
    });
    await limit('65536:unlimited');
    try {
      // WHEN an application writes 128 KiB in one call
      const r = await sh(pair.a, 'dd if=/dev/urandom of=efbig.bin bs=128K count=1 2>&1');
      expect(r.out).toMatch(/File too large/);
    } finally {
      await limit('unlimited:unlimited');
    }
    // THEN the peer, which had applied the whole frame, gets the primary's version back
    for (let i = 0; i < 100 && fs.statSync(B('efbig.bin')).size !== fs.statSync(A('efbig.bin')).size; i++) await new Promise((r) => setTimeout(r, 50));
    expect(fs.statSync(A('efbig.bin')).size).toBeLessThan(128 * 1024);
    for (let i = 0; i < 100 && ((await pair.a.call('status')) as { peer: string }).peer !== 'synced'; i++) await new Promise((r) => setTimeout(r, 50));
    expect(compareTrees(backing(ROOT, 'a'), backing(ROOT, 'b'))).toEqual([]);
    expect(pair.a.stderr.slice(logMark)).toMatch(/failed locally; the entry is copied again/);
  });

  it('times: touch -d sets both times exactly, touch -m / -a change one, UTIME_NOW is now', async () => {
    const t1 = Date.UTC(2001, 1, 3, 4, 5, 6, 789);
    const t2 = Date.UTC(2010, 6, 8, 9, 10, 11, 250);
    const t3 = Date.UTC(1999, 11, 31, 23, 59, 58, 500);
    const ms = (p: string) => {
      const st = fs.lstatSync(p, { bigint: true });
      return { a: Number(st.atimeNs / 1_000_000n), m: Number(st.mtimeNs / 1_000_000n) };
    };
    await ok(pair.a, "echo t > tm.txt && echo u > tn.txt && TZ=UTC touch -d '2001-02-03 04:05:06.789' tm.txt");
    expect(ms(B('tm.txt'))).toEqual({ a: t1, m: t1 });
    expect(ms(A('tm.txt'))).toEqual({ a: t1, m: t1 });
    expect((await ok(pair.a, 'stat -c %Y tm.txt')).trim()).toBe(String(Math.floor(t1 / 1000)));

    await ok(pair.a, "TZ=UTC touch -m -d '2010-07-08 09:10:11.25' tm.txt");
    expect(ms(B('tm.txt'))).toEqual({ a: t1, m: t2 });
    await ok(pair.a, "TZ=UTC touch -a -d '1999-12-31 23:59:58.5' tm.txt");
    expect(ms(B('tm.txt'))).toEqual({ a: t3, m: t2 });

    // a directory and a symlink (touch -h: lutimes) too
    await ok(pair.a, "mkdir td && ln -s tm.txt tl && TZ=UTC touch -d '2001-02-03 04:05:06.789' td && TZ=UTC touch -h -d '2010-07-08 09:10:11.25' tl");
    expect(ms(B('td'))).toEqual({ a: t1, m: t1 });
    expect(ms(B('tl')).m).toBe(t2);

    const before = Date.now();
    await ok(pair.a, 'touch tn.txt');
    const after = Date.now();
    const now = ms(B('tn.txt'));
    expect(now.m).toBeGreaterThanOrEqual(before - 1000);
    expect(now.m).toBeLessThanOrEqual(after + 1000);
    expect(now).toEqual(ms(A('tn.txt')));
    // (compareTrees reads files, which moves their atime: times are checked first)
    await expectReplicated();
  });

  it('renames replace files and empty directories, refuse non-empty ones; links and symlinks replicate', async () => {
    await ok(pair.a, 'echo old > r1 && echo new > r2 && mv -f r2 r1');
    expect(fs.readFileSync(B('r1'), 'utf8')).toBe('new\n');
    expect(fs.existsSync(B('r2'))).toBe(false);

    await ok(pair.a, `mkdir d1 d2 && echo in > d1/f && python3 -c 'import os; os.rename("d1", "d2")'`);
    expect(fs.existsSync(B('d1'))).toBe(false);
    expect(fs.readFileSync(B('d2/f'), 'utf8')).toBe('in\n');
    expect((await ok(pair.a, 'cat d2/f'))).toBe('in\n');

    const full = await sh(pair.a, `mkdir n1 n2 && touch n1/a n2/b && python3 -c 'import os; os.rename("n1", "n2")'`);
    expect(full.code).not.toBe(0);
    expect(full.out).toMatch(/Directory not empty/);
    expect(fs.readdirSync(B('n1'))).toEqual(['a']);
    expect(fs.readdirSync(B('n2'))).toEqual(['b']);

    // RENAME_NOREPLACE (renameat2, x86_64 syscall 316) refuses an existing target and changes nothing
    const noreplace = await sh(pair.a, `echo keep > nr1 && echo other > nr2 && perl -e 'my ($f, $t) = ("nr1", "nr2"); my $r = syscall(316, -100, $f, -100, $t, 1); die "renameat2: $!\\n" if $r != 0'`);
    expect(noreplace.out).toMatch(/renameat2: File exists/);
    expect(fs.readFileSync(B('nr2'), 'utf8')).toBe('other\n');
    await ok(pair.a, `perl -e 'my ($f, $t) = ("nr1", "nr3"); my $r = syscall(316, -100, $f, -100, $t, 1); die "renameat2: $!\\n" if $r != 0'`);
    expect(fs.readFileSync(B('nr3'), 'utf8')).toBe('keep\n');
    expect(fs.existsSync(B('nr1'))).toBe(false);

    // a file still open across a rename keeps being written under its new name
    await ok(pair.a, 'exec 3>>ro1; echo one >&3; mv ro1 d2/ro2; echo two >&3; exec 3>&-');
    expect(fs.readFileSync(B('d2/ro2'), 'utf8')).toBe('one\ntwo\n');

    await ok(pair.a, 'echo linked > h1 && ln h1 h2 && echo more >> h2 && ln -s d2/f sl && ln -s /nowhere/at/all dangling');
    expect(fs.statSync(B('h1')).nlink).toBe(2);
    expect(fs.statSync(B('h1')).ino).toBe(fs.statSync(B('h2')).ino);
    expect(fs.readFileSync(B('h1'), 'utf8')).toBe('linked\nmore\n');
    expect(await ok(pair.a, 'cat h1')).toBe('linked\nmore\n');
    expect(fs.readlinkSync(B('sl'))).toBe('d2/f');
    expect(fs.readlinkSync(B('dangling'))).toBe('/nowhere/at/all');
    expect(await ok(pair.a, 'cat sl && readlink dangling')).toBe('in\n/nowhere/at/all\n');
    await ok(pair.a, 'rm h1');
    expect(fs.statSync(B('h2')).nlink).toBe(1);
    await expectReplicated();
  });

  it('hard links: every name of the file reports the new link count at once', async () => {
    // a local filesystem updates st_nlink of all names at link()/unlink(); tar and rsync -H rely on it
    const linked = await ok(pair.a, 'echo x > hl1 && stat -c %h hl1 && ln hl1 hl2 && stat -c %h hl1 hl2');
    expect(fs.statSync(B('hl1')).nlink).toBe(2);
    expect(linked.trim().split('\n')).toEqual(['1', '2', '2']);
    const unlinked = await ok(pair.a, 'rm hl1 && stat -c %h hl2');
    expect(fs.statSync(B('hl2')).nlink).toBe(1);
    expect(unlinked.trim()).toBe('1');
    await expectReplicated();
  });

  it('hard links: bytes written through one name are read at once through a descriptor open on the other', async () => {
    const out = await ok(pair.a, `printf aaaaaaaa > hd1 && ln hd1 hd2 && python3 -c '
import os
r = os.open("hd1", os.O_RDONLY)
os.pread(r, 8, 0)
w = os.open("hd2", os.O_WRONLY)
os.pwrite(w, b"ZZZZ", 0)
print(os.pread(r, 8, 0).decode())'`);
    expect(fs.readFileSync(B('hd1'), 'utf8')).toBe('ZZZZaaaa');
    expect(out.trim()).toBe('ZZZZaaaa');
    await expectReplicated();
  });

  it('times: any millisecond value given to touch -d is kept exactly (.123, .002)', async () => {
    await ok(pair.a, "echo p > tp1 && echo p > tp2 && TZ=UTC touch -d '2020-05-06 07:08:09.123' tp1 && TZ=UTC touch -d '2001-02-03 04:05:06.002' tp2");
    const ms = (p: string) => {
      const st = fs.lstatSync(p, { bigint: true });
      return [Number(st.atimeNs / 1_000_000n), Number(st.mtimeNs / 1_000_000n)];
    };
    const w1 = Date.UTC(2020, 4, 6, 7, 8, 9, 123);
    const w2 = Date.UTC(2001, 1, 3, 4, 5, 6, 2);
    expect((await ok(pair.a, 'TZ=UTC stat -c %y tp1 tp2')).trim().split('\n').map((l) => l.slice(0, 23))).toEqual(['2020-05-06 07:08:09.123', '2001-02-03 04:05:06.002']);
    expect([ms(A('tp1')), ms(A('tp2'))]).toEqual([[w1, w1], [w2, w2]]);
    expect([ms(B('tp1')), ms(B('tp2'))]).toEqual([[w1, w1], [w2, w2]]);
    await expectReplicated();
  });

  it('times keep their nanoseconds (touch -d with 9 decimals)', async () => {
    await ok(pair.a, "echo n > tns.txt && TZ=UTC touch -d '2001-02-03 04:05:06.123456789' tns.txt");
    const want = BigInt(Date.UTC(2001, 1, 3, 4, 5, 6)) * 1_000_000n + 123_456_789n;
    const nb = fs.lstatSync(B('tns.txt'), { bigint: true });
    const na = fs.lstatSync(A('tns.txt'), { bigint: true });
    expect((await ok(pair.a, 'TZ=UTC stat -c %y tns.txt')).trim()).toBe('2001-02-03 04:05:06.123456789 +0000');
    expect([na.mtimeNs, na.atimeNs]).toEqual([want, want]);
    expect([nb.mtimeNs, nb.atimeNs]).toEqual([want, want]);
    await expectReplicated();
  });

  it('set-ID bits given at creation (open O_CREAT mode 04755 / 02755) are kept, as on a local filesystem', async () => {
    await ok(pair.a, `mkdir plain && python3 -c 'import os
for n, m in (("plain/suid", 0o4755), ("plain/sgid", 0o2755), ("plain/sticky", 0o1755)): os.close(os.open(n, os.O_CREAT | os.O_WRONLY, m))'`);
    expect((await ok(pair.a, 'stat -c %a plain/suid plain/sgid plain/sticky')).trim().split('\n')).toEqual(['4755', '2755', '1755']);
    expect(['suid', 'sgid', 'sticky'].map((n) => (fs.statSync(B(`plain/${n}`)).mode & 0o7777).toString(8))).toEqual(['4755', '2755', '1755']);
    await expectReplicated();
  });

  it('errors through the view carry the right errno; the secondary view is read-only', async () => {
    await ok(pair.a, 'mkdir e && touch e/f && echo seen > e/g');
    expect((await sh(pair.a, 'rmdir e')).out).toMatch(/Directory not empty/);
    expect((await sh(pair.a, 'mkdir e')).out).toMatch(/File exists/);
    expect((await sh(pair.a, 'cat missing-file')).out).toMatch(/No such file or directory/);
    expect((await sh(pair.a, 'ln e/f e/g')).out).toMatch(/File exists/);
    expect((await sh(pair.a, 'rm e')).out).toMatch(/Is a directory/);
    expect(fs.readdirSync(B('e')).sort()).toEqual(['f', 'g']);

    // WHEN the secondary's view is asked for changes, THEN each fails with EROFS and b's backing stays as it was
    const before = compareTrees(backing(ROOT, 'a'), backing(ROOT, 'b'));
    expect(before).toEqual([]);
    const bList = fs.readdirSync(backing(ROOT, 'b')).sort();
    // b reads its copy through its view
    expect(await ok(pair.b, 'cat e/g')).toBe('seen\n');
    for (const cmd of ['touch x', 'mkdir y', 'echo over > e/g', 'rm e/f', 'mv e/f e/h', 'chmod 600 e/g', 'setfattr -n user.z -v 1 e/g', 'truncate -s 0 e/g', 'touch -d 2001-01-01 e/g']) {
      const r = await sh(pair.b, cmd);
      expect(`${cmd}: ${r.out}`).toMatch(/Read-only file system/);
    }
    expect(fs.readdirSync(backing(ROOT, 'b')).sort()).toEqual(bList);
    expect(fs.readFileSync(B('e/g'), 'utf8')).toBe('seen\n');
    expect(fs.readdirSync(B('e')).sort()).toEqual(['f', 'g']);
    expect(fs.statSync(B('e/g')).mode & 0o7777).toBe(fs.statSync(A('e/g')).mode & 0o7777);
    expect(allXattrs(B('e/g'))).toEqual({});
    await expectReplicated();
  });

  it('O_APPEND writes land at the end; truncate shrinks and grows', async () => {
    await ok(pair.a, 'echo first line >> ap.txt && echo second line >> ap.txt');
    expect(fs.readFileSync(B('ap.txt'), 'utf8')).toBe('first line\nsecond line\n');
    // an O_APPEND descriptor appends after what another writer added meanwhile
    await ok(pair.a, 'exec 3>>ap.txt; echo A >&3; echo B >> ap.txt; echo C >&3; exec 3>&-');
    expect(fs.readFileSync(B('ap.txt'), 'utf8')).toBe('first line\nsecond line\nA\nB\nC\n');

    await ok(pair.a, 'printf 0123456789abcdef > tr.txt && truncate -s 10 tr.txt');
    expect(fs.readFileSync(B('tr.txt'), 'utf8')).toBe('0123456789');
    await ok(pair.a, 'truncate -s 100 tr.txt');
    const grown = fs.readFileSync(B('tr.txt'));
    expect(grown.length).toBe(100);
    expect(grown.subarray(0, 10).toString()).toBe('0123456789');
    expect(grown.subarray(10).equals(Buffer.alloc(90))).toBe(true);
    // O_TRUNC on an existing file (a truncate to 0), then a write
    await ok(pair.a, 'echo short > tr.txt');
    expect(fs.readFileSync(B('tr.txt'), 'utf8')).toBe('short\n');
    expect((await ok(pair.a, 'cat ap.txt tr.txt'))).toBe('first line\nsecond line\nA\nB\nC\nshort\n');
    await expectReplicated();
  });

  it('O_DSYNC / O_SYNC writes and fdatasync are durability points: each waits for the secondary\'s sync', async () => {
    type St = { remoteSyncs: number };
    const before = ((await pair.a.call('status')) as St).remoteSyncs;
    // GIVEN 10 writes through an O_DSYNC descriptor and 5 through O_SYNC (the kernel turns each into a sync request)
    await ok(pair.a, `python3 -c 'import os
fd = os.open("dsync.bin", os.O_WRONLY | os.O_CREAT | os.O_DSYNC, 0o644)
for i in range(10): os.write(fd, b"d" * 4096)
os.close(fd)
fd = os.open("osync.bin", os.O_WRONLY | os.O_CREAT | os.O_SYNC, 0o644)
for i in range(5): os.write(fd, b"s" * 4096)
os.close(fd)'`);
    const after = ((await pair.a.call('status')) as St).remoteSyncs;
    // THEN each write waited for a sync on the secondary, and the data is there
    expect(after - before).toBeGreaterThanOrEqual(15);
    expect(fs.readFileSync(B('dsync.bin')).equals(Buffer.alloc(40960, 'd'))).toBe(true);
    expect(fs.readFileSync(B('osync.bin')).equals(Buffer.alloc(20480, 's'))).toBe(true);
    await expectReplicated();
  });

  it('the secondary\'s view reads through passthrough (Linux 6.9+) and always sees the current data', async () => {
    type St = { passthroughOpens: number };
    await ok(pair.a, 'printf first > pt.txt');
    const before = ((await pair.b.call('status')) as St).passthroughOpens;
    // GIVEN a reader holding the file open on the secondary's view
    expect(await ok(pair.b, 'cat pt.txt')).toBe('first');
    // WHEN the primary rewrites it
    await ok(pair.a, 'printf second > pt.txt && printf -- -more >> pt.txt');
    // THEN the secondary's view reads the new bytes at once (the backing file itself, no stale cache)
    expect(await ok(pair.b, 'exec 3<pt.txt; cat <&3; exec 3<&-')).toBe('second-more');
    const opens = ((await pair.b.call('status')) as St).passthroughOpens - before;
    const kernel = fs.readFileSync('/proc/sys/kernel/osrelease', 'utf8').trim();
    const [maj, min] = kernel.split('.').map(Number);
    // the kernels that have passthrough (6.9 and later, built with CONFIG_FUSE_PASSTHROUGH) must use it
    if (maj > 6 || (maj === 6 && min >= 9)) expect(opens).toBeGreaterThanOrEqual(2);
    else expect(opens).toBe(0);
  });
});
