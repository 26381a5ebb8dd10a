import { execFileSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { LocalCluster } from '../../node-service/src/demo/local-cluster.ts';
import { logOf, type RoleTokens, startConsoleCluster } from '../helpers/console-cluster.ts';

const REPO = resolve(import.meta.dirname, '../..');

// Admin tokens with roles (issue 13, item 7) against two real daemons: monitor reads, control also
// runs the verbs, admin also sees the configuration; every request is logged with its role and
// never with its token.
describe('API token roles (real daemons)', () => {
  let c: LocalCluster;
  let t: RoleTokens;
  const call = async (node: string, method: string, path: string, token?: string) => {
    const r = await fetch(c.url(node, path), {
      method,
      headers: { ...(token ? { authorization: `Bearer ${token}` } : {}), ...(method === 'POST' ? { 'content-type': 'application/json' } : {}) },
      body: method === 'POST' ? '{}' : undefined,
    });
    return { status: r.status, body: (await r.json()) as Record<string, unknown> };
  };

  beforeAll(async () => {
    ({ cluster: c, tokens: t } = await startConsoleCluster());
  }, 60_000);
  afterAll(async () => {
    await c?.destroy();
  });

  it('refuses a request without a token (401) or with an unknown one (403)', async () => {
    const none = await call('node1', 'GET', '/api/v1/modules');
    expect(none.status).toBe(401);
    expect(none.body.error).toMatch(/Authorization: Bearer/);
    const wrong = await call('node1', 'GET', '/api/v1/modules', 'not-a-token-of-this-cluster');
    expect(wrong.status).toBe(403);
    expect(wrong.body.error).toMatch(/wrong token/);
  });

  it('lets both monitor tokens read, on both nodes, and refuses them every verb and the config', async () => {
    for (const token of [t.monitor, t.monitor2]) {
      for (const node of ['node1', 'node2']) {
        expect((await call(node, 'GET', '/api/v1/modules', token)).status).toBe(200);
        expect((await call(node, 'GET', '/api/v1/modules/app/log?n=5', token)).status).toBe(200);
        expect((await call(node, 'GET', '/api/v1/overview', token)).status).toBe(200);
      }
      for (const verb of ['start', 'stop', 'restart', 'prim', 'second', 'swap']) {
        const r = await call('node1', 'POST', `/api/v1/modules/app/${verb}`, token);
        expect(r.status).toBe(403);
        expect(r.body.error).toBe(`this token has role monitor (read states, logs and metrics); POST /api/v1/modules/app/${verb} needs role control`);
      }
      const cfg = await call('node1', 'GET', '/api/v1/config', token);
      expect(cfg.status).toBe(403);
      expect(cfg.body.error).toMatch(/needs role admin/);
    }
    await c.waitFor({ node1: 'PRIM', node2: 'SECOND' }, 1000); // nothing happened
  });

  it('lets a control token run a verb (swap) but not see the config; the second control token acts too', async () => {
    const swap = await call('node1', 'POST', '/api/v1/modules/app/swap', t.control);
    expect(swap.status).toBe(200);
    await c.waitFor({ node1: 'SECOND', node2: 'PRIM' });
    // a verb the state does not allow is refused with the daemon's reason, not with a role error
    const prim = await call('node1', 'POST', '/api/v1/modules/app/prim', t.control2);
    expect(prim.status).toBe(409);
    expect(prim.body.message).toBe('node2 is primary (PRIM): use vigil swap');
    expect((await call('node1', 'GET', '/api/v1/config', t.control)).status).toBe(403);
    expect((await call('node1', 'GET', '/api/v1/config', t.control2)).status).toBe(403);
  });

  it('shows the admin the configuration, with file paths and no secret', async () => {
    const cfg = await call('node1', 'GET', '/api/v1/config', t.admin);
    expect(cfg.status).toBe(200);
    expect((cfg.body.api as { tokens: { role: string }[] }).tokens.map((x) => x.role)).toEqual(['control', 'control', 'monitor']);
    const text = JSON.stringify(cfg.body);
    for (const secret of Object.values(t)) expect(text).not.toContain(secret);
  });

  it('logs every request with its role and never a token', async () => {
    await new Promise((r) => setTimeout(r, 300)); // pino writes asynchronously
    const log = logOf(c, 'node1');
    const lines = log.split('\n').filter((l) => l.includes('"api request'));
    const entries = lines.map((l) => JSON.parse(l) as { role: string; method: string; path: string; status: number; msg: string });
    expect(entries.some((e) => e.role === 'monitor' && e.method === 'GET' && e.path === '/api/v1/modules' && e.status === 200)).toBe(true);
    expect(entries.some((e) => e.role === 'monitor' && e.path === '/api/v1/modules/app/swap' && e.status === 403)).toBe(true);
    expect(entries.some((e) => e.role === 'control' && e.path === '/api/v1/modules/app/swap' && e.status === 200)).toBe(true);
    expect(entries.some((e) => e.role === 'admin' && e.path === '/api/v1/config' && e.status === 200)).toBe(true);
    expect(entries.some((e) => e.role === 'none' && e.status === 401)).toBe(true);
    expect(entries.some((e) => e.role === 'unknown' && e.status === 403)).toBe(true);
    for (const node of ['node1', 'node2']) {
      const all = logOf(c, node);
      for (const secret of [...Object.values(t), 'not-a-token-of-this-cluster']) expect(all).not.toContain(secret);
    }
  });

  it('follows the token files: a token added works and a withdrawn one stops, without a restart', async () => {
    const added = 'added-monitor-token-7f3c9a';
    writeFileSync(join(c.dir, 'monitor.token'), `${t.monitor}\n${added}\n`); // monitor2 withdrawn
    await new Promise((r) => setTimeout(r, 2300)); // the files are looked at every 2 s
    expect((await call('node1', 'GET', '/api/v1/modules', added)).status).toBe(200);
    expect((await call('node1', 'GET', '/api/v1/modules', t.monitor2)).status).toBe(403);
    expect((await call('node1', 'GET', '/api/v1/modules', t.monitor)).status).toBe(200);
    expect((await call('node1', 'POST', '/api/v1/modules/app/stop', added)).status).toBe(403);
  });

  it('rejects a bad api.tokens entry with its key path', () => {
    const bad = join(c.dir, 'bad.yaml');
    writeFileSync(bad, `cluster: x\nsecret_file: ${c.dir}/cluster.key\napi:\n  admin_token_file: ${c.dir}/admin.token\n  tokens: [ { role: root, file: ${c.dir}/control.token }, { role: monitor, file: ${c.dir}/missing.token } ]\nnodes: [ { name: n1, addrs: [127.0.0.1] } ]\n`);
    let out = '';
    try {
      execFileSync(process.execPath, [join(REPO, 'bin/vigil.mjs'), 'config', 'check', '--config', bad], { stdio: 'pipe' });
    } catch (e) {
      out = String((e as { stderr: Buffer }).stderr);
    }
    expect(out).toMatch(/api\.tokens\[0\]\.role/);
    writeFileSync(bad, `cluster: x\nsecret_file: ${c.dir}/cluster.key\napi:\n  admin_token_file: ${c.dir}/admin.token\n  tokens: [ { role: monitor, file: ${c.dir}/missing.token } ]\nnodes: [ { name: n1, addrs: [127.0.0.1] } ]\n`);
    try {
      execFileSync(process.execPath, [join(REPO, 'bin/vigil.mjs'), 'config', 'check', '--config', bad], { stdio: 'pipe' });
      out = '';
    } catch (e) {
      out = String((e as { stderr: Buffer }).stderr);
    }
    expect(out).toMatch(/api\.tokens\[0\]\.file: .*missing\.token does not exist/);
  });
});
