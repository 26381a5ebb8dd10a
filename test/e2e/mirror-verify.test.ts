import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parse, stringify } from 'yaml';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MirrorOpsCluster, sleep } from '../helpers/mirror-ops-cluster.ts';

const MiB = 1 << 20;

/**
 * Issue 13 item 4 against two real daemons in namespaces: vigil verify compares both copies by
 * content (a byte changed behind Vigil's back on the secondary, same size and mtime, is found) and
 * vigil diff says what a resync would copy; each with --json, and each misused (unknown module,
 * wrong state, stopped daemon, a token without the role) with an error that names what to do.
 */
describe('vigil verify and vigil diff against real daemons', () => {
  let m: MirrorOpsCluster;
  let monitorToken: string;
  const waitFor = (want: Record<string, string>, ms = 60_000) => m.c.waitFor(want, ms);
  beforeAll(async () => {
    m = await MirrorOpsCluster.create({ prefix: 'vf', subnet: '198.19.140', privatePath: '/srv/vf', replication: { dirs: [{ path: '/srv/vf/data', exclude: ['*.tmp'] }], resync_bandwidth: '32MB/s' } });
    // a read-only token beside the admin one
    monitorToken = join(m.c.dir, 'monitor.token');
    writeFileSync(monitorToken, randomBytes(16).toString('hex'), { mode: 0o600 });
    const cfg = parse(readFileSync(m.c.configFile, 'utf8')) as { api: Record<string, unknown> };
    cfg.api.tokens = [{ role: 'monitor', file: monitorToken }];
    writeFileSync(m.c.configFile, stringify(cfg));
    m.c.start('node1');
    m.c.start('node2');
    await waitFor({ node1: 'PRIM', node2: 'SECOND' }, 90_000);
  }, 120_000);
  afterAll(async () => {
    await m?.destroy();
  }, 60_000);

  it('verify: identical copies exit 0; a byte changed on the secondary with the same size and mtime exits 1, named with its zone; --json', async () => {
    await m.inside('node1', `cd ${m.view}; head -c ${5 * MiB} /dev/urandom > a.bin; mkdir d; echo hi > d/h.txt; ln -s a.bin link; echo t > only.tmp; sync`);
    const b2 = m.backing('node2');
    for (let i = 0; i < 100 && !(existsSync(join(b2, 'd/h.txt')) && existsSync(join(b2, 'link'))); i++) await sleep(100);
    const same = await m.vigil('node1', ['verify', '-m', 'vf']);
    expect(same.code, same.stderr).toBe(0);
    expect(same.stdout.trim()).toBe('vf: node1 (PRIM) and node2 (SECOND) hold the same data: 5 entries, 5.0 MiB compared by content');

    // one byte of the secondary's copy changed in place, its size and mtime kept to the nanosecond
    const f = join(b2, 'a.bin');
    const before = statSync(f, { bigint: true });
    execFileSync('python3', ['-c', `import os\nst=os.stat('${f}')\nfd=os.open('${f}', os.O_RDWR)\nb=os.pread(fd,1,${3 * MiB + 7})\nos.pwrite(fd,bytes([b[0]^255]),${3 * MiB + 7})\nos.close(fd)\nos.utime('${f}', ns=(st.st_atime_ns, st.st_mtime_ns))`]);
    const after = statSync(f, { bigint: true });
    expect([after.size, after.mtimeNs]).toEqual([before.size, before.mtimeNs]);
    writeFileSync(join(b2, 'stray.txt'), 'only here');
    const diff = await m.vigil('node1', ['verify', '-m', 'vf']);
    expect(diff.code, diff.stderr).toBe(1);
    expect(diff.stdout).toMatch(/^vf: node1 \(PRIM\) and node2 \(SECOND\) differ in 2 entries:$/m);
    expect(diff.stdout).toMatch(/^ {2}content {2}\/srv\/vf\/data\/a\.bin\s+same size, different bytes in 1 zone\(s\): 3145728-4194303$/m);
    expect(diff.stdout).toMatch(/^ {2}extra {4}\/srv\/vf\/data\/stray\.txt\s+file only on the secondary$/m);
    expect(diff.stdout).toMatch(/^to repair: vigil prim -m vf --fullsync --node node1/m);
    const json = await m.vigil('node2', ['verify', '-m', 'vf', '--json', '--token-file', monitorToken]);
    expect(json.code, json.stderr).toBe(1);
    const j = JSON.parse(json.stdout) as { same: boolean; primary: { node: string }; differences: { path: string; kind: string }[] };
    expect([j.same, j.primary.node, j.differences.map((d) => [d.kind, d.path])]).toEqual([false, 'node1', [['content', '/srv/vf/data/a.bin'], ['extra', '/srv/vf/data/stray.txt']]]);
    // nothing was changed by looking
    expect(readFileSync(join(b2, 'stray.txt'), 'utf8')).toBe('only here');

    // the repair verify names, then verify is clean again
    const full = await m.vigil('node1', ['prim', '-m', 'vf', '--fullsync']);
    expect(full.code, full.stderr).toBe(0);
    for (let i = 0; i < 200 && existsSync(join(b2, 'stray.txt')); i++) await sleep(100);
    await waitFor({ node1: 'PRIM', node2: 'SECOND' });
    const repaired = await m.vigil('node1', ['verify', '-m', 'vf', '--json']);
    expect(repaired.code, repaired.stdout + repaired.stderr).toBe(0);
    expect((JSON.parse(repaired.stdout) as { same: boolean }).same).toBe(true);
  }, 120_000);

  it('diff: nothing while in sync; while ALONE the delta it would copy, its size and time at the configured bandwidth (from either node); after --fullsync, what the checksum resync copies', async () => {
    const sync = await m.vigil('node2', ['diff', '-m', 'vf']);
    expect([sync.code, sync.stdout.trim()]).toEqual([0, 'vf: node1 (PRIM) and node2 are in sync: a resync would copy nothing']);
    const stop = await m.vigil('node2', ['stop', '-m', 'vf']);
    expect(stop.code, stop.stderr).toBe(0);
    await waitFor({ node1: 'ALONE', node2: 'STOP' });
    await m.inside('node1', `cd ${m.view}; head -c ${16 * MiB} /dev/urandom > b.bin; head -c ${MiB} /dev/urandom | dd of=a.bin bs=1M seek=1 conv=notrunc status=none; echo x > skip.tmp; chmod 600 d/h.txt`);
    const d = await m.vigil('node2', ['diff', '-m', 'vf']);
    expect(d.code, d.stderr).toBe(0);
    expect(d.stdout).toMatch(/^vf: a delta resync from node1 to node2 would copy 3 entries, 17\.0 MiB: about 0\.6 s at 32MB\/s \(node2 holds sync \w+ unchanged\)\n {2}whole {2}16\.0 MiB {2}\/srv\/vf\/data\/b\.bin\n {2}zones {2}1\.0 MiB {3}\/srv\/vf\/data\/a\.bin\n {2}meta {13}\/srv\/vf\/data\/d\/h\.txt\n$/);
    const j = JSON.parse((await m.vigil('node1', ['diff', '-m', 'vf', '--json'])).stdout) as { mode: string; bytes: number; estimateS: number; items: { path: string; what: string; bytes: number }[] };
    expect(j.mode).toBe('delta');
    expect(j.bytes).toBe(17 * MiB);
    expect(j.estimateS).toBeCloseTo((17 * MiB) / 32e6, 3);
    expect(j.items.map((i) => [i.what, i.path, i.bytes]).sort()).toEqual([
      ['meta', '/srv/vf/data/d/h.txt', 0],
      ['whole', '/srv/vf/data/b.bin', 16 * MiB],
      ['zones', '/srv/vf/data/a.bin', MiB],
    ]);

    // a full resync asked for: the next one compares checksums, and diff lists both copies to say what it copies
    const full = await m.vigil('node1', ['prim', '-m', 'vf', '--fullsync']);
    expect(full.code, full.stderr).toBe(0);
    const c = JSON.parse((await m.vigil('node1', ['diff', '-m', 'vf', '--json'])).stdout) as typeof j & { basis: string };
    expect([c.mode, c.bytes, c.basis]).toEqual(['checksum', 17 * MiB, "node1's tracking is not complete (crash, or edits while stopped)"]);
    expect(c.items.map((i) => [i.what, i.path, i.bytes]).sort()).toEqual([
      ['meta', '/srv/vf/data/d/h.txt', 0],
      ['whole', '/srv/vf/data/b.bin', 16 * MiB],
      ['zones', '/srv/vf/data/a.bin', MiB],
    ]);
  }, 60_000);

  it('misuse: unknown module, wrong state, a token without the role, stopped daemon: each error names what to do', async () => {
    // node1 is ALONE (from the test before)
    const alone = await m.vigil('node1', ['verify', '-m', 'vf']);
    expect([alone.code, alone.stderr.trim()]).toEqual([2, 'vigil: vf is ALONE on node1: the copies differ by design until the secondary is back and resynced. See what a resync would copy with vigil diff -m vf, or wait for PRIM (vigil waitstate -m vf PRIM)']);
    const mod = await m.vigil('node1', ['verify', '-m', 'nosuch']);
    expect(mod.code).toBe(2);
    expect(mod.stderr).toMatch(/unknown module "nosuch" in .*cluster\.yaml \(modules: vf\)/);
    expect((await m.vigil('node1', ['verify'])).code).toBe(2);
    const dmod = await m.vigil('node1', ['diff', '-m', 'nosuch']);
    expect(dmod.code).toBe(1);
    expect(dmod.stderr).toMatch(/unknown module "nosuch"/);
    const role = await m.vigil('node1', ['resync-bandwidth', '-m', 'vf', '10MB/s', '--token-file', monitorToken]);
    expect(role.code).toBe(1);
    expect(role.stderr).toMatch(/this token has role monitor .*; POST \/api\/v1\/modules\/vf\/resync-bandwidth needs role control/);

    // stopped on both nodes: no primary for diff; verify compares the stopped copies (node1 wrote while alone)
    expect((await m.vigil('node1', ['stop', '-m', 'vf'])).code).toBe(0);
    await waitFor({ node1: 'STOP', node2: 'STOP' });
    const none = await m.vigil('node1', ['diff', '-m', 'vf']);
    expect([none.code, none.stderr.trim()]).toEqual([1, 'vigil: vf is primary on no node (node1 STOP, node2 STOP): a resync copies from the primary. Start the module (vigil start -m vf), or compare the copies with vigil verify -m vf']);
    const stopped = await m.vigil('node1', ['verify', '-m', 'vf']);
    expect(stopped.code, stopped.stderr).toBe(1);
    expect(stopped.stdout).toMatch(/^vf: node1 \(STOP\) and node2 \(STOP\) differ in 3 entries:/);
    expect(stopped.stdout).toMatch(/missing {2}\/srv\/vf\/data\/b\.bin\s+file missing on the secondary/);

    await m.c.kill('node2', 'SIGTERM');
    const down = await m.vigil('node1', ['verify', '-m', 'vf']);
    expect(down.code).toBe(2);
    expect(down.stderr).toMatch(/^vigil: node2: cannot reach the vigil daemon at http:\/\/198\.19\.140\.2:9010 \(.*\): start vigil on node2 \(systemctl start vigil\), both copies are needed$/m);
    const ddown = await m.vigil('node1', ['diff', '-m', 'vf']);
    expect(ddown.code).toBe(1);
    expect(ddown.stderr).toMatch(/node2: cannot reach the vigil daemon .*start vigil on node2/);
  }, 90_000);
});
