import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../node-service/src/config/load.ts';

const BIN = join(import.meta.dirname, '../../bin/vigil.mjs');
const tmp = mkdtempSync(join(tmpdir(), 'vigil-init-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

function vigil(args: string[], input?: string): Promise<{ code: number; out: string; err: string }> {
  return new Promise((resolve) => {
    const child = execFile(process.execPath, [BIN, ...args], { timeout: 30_000 }, (e, stdout, stderr) => {
      resolve({ code: e ? ((e as { code?: number }).code ?? 1) : 0, out: stdout, err: stderr });
    });
    child.stdin!.end(input ?? '');
  });
}

const mode = (f: string) => statSync(f).mode & 0o777;
const MIRROR = ['--cluster', 'shop', '--node', 'n1=198.18.0.1', '--node', 'n2=198.18.0.2', '--module', 'db', '--mode', 'mirror', '--vip', '198.18.0.100/24', '--interface', 'eth0', '--replicate', '/srv/db'];

describe('vigil init', () => {
  const dir = join(tmp, 'etc-vigil');

  it('writes cluster.yaml, a random secret and admin token (mode 600) and the script hooks; the config passes vigil config check', async () => {
    const r = await vigil(['init', ...MIRROR, '--dir', dir]);
    expect(r.code, r.err).toBe(0);
    expect(mode(join(dir, 'cluster.key'))).toBe(0o600);
    expect(mode(join(dir, 'admin.token'))).toBe(0o600);
    expect(mode(join(dir, 'monitor.token'))).toBe(0o600);
    expect(mode(join(dir, 'scripts/db/start_prim'))).toBe(0o755);
    const key = readFileSync(join(dir, 'cluster.key'), 'utf8').trim();
    expect(Buffer.from(key, 'base64url').length).toBe(32);
    const tokens = ['admin.token', 'monitor.token'].map((f) => readFileSync(join(dir, f), 'utf8').trim());
    expect(new Set([key, ...tokens]).size).toBe(3);
    // the next steps name the copy to the other node and the service
    expect(r.out).toContain(`rsync -a ${dir}/ root@198.18.0.2:${dir}/`);
    expect(r.out).toContain(`vigil daemon --config ${join(dir, 'cluster.yaml')} (the packaged service reads /etc/vigil/cluster.yaml)`);
    expect(r.out).toContain('n1 becomes PRIM and n2 SECOND');
    const check = await vigil(['config', 'check', '--config', join(dir, 'cluster.yaml')]);
    expect(check.code, check.err).toBe(0);
    const c = loadConfig(join(dir, 'cluster.yaml'));
    expect(c.nodes.map((n) => [n.name, n.addrs[0]])).toEqual([['n1', '198.18.0.1'], ['n2', '198.18.0.2']]);
    const m = c.modules[0];
    expect([m.name, m.mode, m.default_primary, m.vip[0].addr, m.vip[0].interface, m.replication?.dirs]).toEqual(['db', 'mirror', 'n1', '198.18.0.100/24', 'eth0', ['/srv/db']]);
    expect(c.api.tokens).toEqual([{ role: 'monitor', file: join(dir, 'monitor.token') }]);
    // no key material in what is printed
    for (const s of [key, ...tokens]) expect(r.out).not.toContain(s);
  });

  it('refuses to overwrite without --force and changes nothing; --force replaces the secrets and keeps the operator\'s scripts', async () => {
    const before = readFileSync(join(dir, 'cluster.key'), 'utf8');
    const script = join(dir, 'scripts/db/start_prim');
    writeFileSync(script, '#!/bin/sh\nsystemctl start postgresql\n');
    const r = await vigil(['init', ...MIRROR, '--dir', dir]);
    expect(r.code).toBe(1);
    expect(r.err).toContain(`${join(dir, 'cluster.yaml')}, ${join(dir, 'cluster.key')}, ${join(dir, 'admin.token')}, ${join(dir, 'monitor.token')} already exist: nothing was written`);
    expect(r.err).toContain('--force');
    expect(readFileSync(join(dir, 'cluster.key'), 'utf8')).toBe(before);

    const f = await vigil(['init', ...MIRROR, '--dir', dir, '--force']);
    expect(f.code, f.err).toBe(0);
    expect(readFileSync(join(dir, 'cluster.key'), 'utf8')).not.toBe(before);
    expect(mode(join(dir, 'cluster.key'))).toBe(0o600);
    expect(readFileSync(script, 'utf8')).toContain('systemctl start postgresql');
    expect(f.out).toMatch(/kept \(yours already\):\n.*start_prim/);
    expect(readdirSync(dir).filter((n) => n.endsWith('.tmp'))).toEqual([]);
  });

  it('the secret files are 600 whatever the umask', async () => {
    const d = join(tmp, 'umask');
    const r = await new Promise<number>((resolve) => {
      execFile('sh', ['-c', `umask 000; exec "${process.execPath}" "${BIN}" init ${MIRROR.join(' ')} --dir ${d} </dev/null`], (e) => resolve(e ? 1 : 0));
    });
    expect(r).toBe(0);
    expect(mode(join(d, 'cluster.key'))).toBe(0o600);
    expect(mode(join(d, 'admin.token'))).toBe(0o600);
  });

  it.each([
    [['--node', 'n1', '--node', 'n2=198.18.0.2'], '--node n1: write NAME=ADDRESS'],
    [['--node', 'n1=198.18.0.1', '--node', 'n2=198.18.0.300'], '"198.18.0.300" is not an IPv4 or IPv6 address'],
    [['--node', 'n1=198.18.0.1', '--node', 'n2=198.18.0.2', '--node', 'n3=198.18.0.3'], 'a mirror module runs on exactly 2 nodes (got 3)'],
    [['--node', 'n1=198.18.0.1', '--node', 'n2=198.18.0.1'], 'address 198.18.0.1 is already used by node "n1"'],
    [['--node', 'n1=198.18.0.1', '--node', 'n2=198.18.0.2', '--vip', '198.18.0.100/24'], 'missing --interface (for --vip)'],
    [['--node', 'n1=198.18.0.1', '--node', 'n2=198.18.0.2', '--vip', '198.18.0.100', '--interface', 'eth0'], 'must be an address with its prefix length'],
    [['--node', 'n1=198.18.0.1', '--node', 'n2=198.18.0.2', '--replicate', 'srv/db'], '"srv/db" must be an absolute path'],
  ])('bad input %j: a clear error and nothing written', async (nodes, message) => {
    const d = join(tmp, `bad-${Math.random().toString(36).slice(2)}`);
    const r = await vigil(['init', '--cluster', 'shop', '--module', 'db', '--mode', 'mirror', ...nodes, '--dir', d]);
    expect(r.code).toBe(1);
    expect(r.err).toContain(message);
    expect(existsSync(d)).toBe(false);
  });

  it('on a terminal, with some flags given, asks only for the missing answers', async () => {
    const d = join(tmp, 'tty');
    // script(1) runs vigil on a pseudo-terminal; the answers are typed into it (Enter = the default)
    const out = await new Promise<string>((resolve) => {
      const child = execFile('script', ['-qec', `"${process.execPath}" "${BIN}" init --cluster tty --mode mirror --module db --dir ${d}`, '/dev/null'], { timeout: 30_000 }, (_e, stdout) => resolve(stdout));
      child.stdin!.end('n1=198.18.0.1\rn2=198.18.0.2\r\r\r');
    });
    expect(out).toContain('This node, NAME=ADDRESS');
    expect(out).not.toContain('Cluster name');
    expect(out).not.toContain('Module name');
    const c = loadConfig(join(d, 'cluster.yaml'));
    expect([c.cluster, c.modules[0].name, c.nodes.map((n) => n.addrs[0])]).toEqual(['tty', 'db', ['198.18.0.1', '198.18.0.2']]);
  });

  it('asks for what no flag gave (answers on stdin) and writes a farm that passes vigil config check', async () => {
    const d = join(tmp, 'asked');
    const answers = ['web-farm', 'farm', 'a=198.18.0.1', 'b=198.18.0.2', 'c=198.18.0.3', '', 'web', '198.18.0.200/24', 'eth1'].join('\n');
    const r = await vigil(['init', '--dir', d], `${answers}\n`);
    expect(r.code, r.err).toBe(0);
    expect(r.out).toContain('Mode: mirror (active/passive, replicated) or farm (active/active) [mirror]:');
    const c = loadConfig(join(d, 'cluster.yaml'));
    expect([c.cluster, c.nodes.length, c.modules[0].mode, c.modules[0].vip[0].interface]).toEqual(['web-farm', 3, 'farm', 'eth1']);
    expect(existsSync(join(d, 'scripts/web/start_both'))).toBe(true);
    // input that stops early: a clear error, nothing written
    const e = await vigil(['init', '--dir', join(tmp, 'short')], 'x\nmirror\n');
    expect(e.code).toBe(1);
    expect(e.err).toContain('input ended before the answer to "This node, NAME=ADDRESS');
    expect(existsSync(join(tmp, 'short'))).toBe(false);
  });
});
