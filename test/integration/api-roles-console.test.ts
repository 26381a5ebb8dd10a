import { execFileSync } from 'node:child_process';
import { request } from 'node:https';
import { writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { LocalCluster } from '../../node-service/src/demo/local-cluster.ts';
import { TokenSet } from '../../node-service/src/api/tokens.ts';
import { SESSION_IDLE_MS, SESSION_MAX_MS, SessionStore } from '../../node-service/src/console/sessions.ts';
import { logOf, type RoleTokens, startConsoleCluster } from '../helpers/console-cluster.ts';

interface Reply {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: string;
}

/** one HTTP(S) request with full control of the headers (fetch hides Set-Cookie details and Origin) */
async function send(url: string, o: { method?: string; headers?: Record<string, string>; body?: string; ca?: Buffer } = {}): Promise<Reply> {
  if (url.startsWith('http:')) {
    const r = await fetch(url, { method: o.method ?? 'GET', headers: o.headers, body: o.body });
    return { status: r.status, headers: { 'set-cookie': r.headers.getSetCookie(), 'content-type': r.headers.get('content-type') ?? undefined }, body: await r.text() };
  }
  return new Promise((resolve, reject) => {
    const req = request(url, { method: o.method ?? 'GET', headers: o.headers, ca: o.ca }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (body += c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
    });
    req.on('error', reject);
    req.end(o.body);
  });
}

const json = { 'content-type': 'application/json' };
const cookieOf = (r: Reply) => String((r.headers['set-cookie'] as string[])[0]).split(';')[0];

async function login(base: string, token: string, ca?: Buffer): Promise<{ cookie: string; csrf: string; setCookie: string; role: string }> {
  const r = await send(`${base}/console/login`, { method: 'POST', headers: json, body: JSON.stringify({ token }), ca });
  expect(r.status, r.body).toBe(200);
  const b = JSON.parse(r.body) as { csrf: string; role: string };
  return { cookie: cookieOf(r), csrf: b.csrf, setCookie: String((r.headers['set-cookie'] as string[])[0]), role: b.role };
}

// Console security over real daemons: sessions, cookie flags, CSRF, roles, and HTTPS.
describe('console security (real daemons, HTTP)', () => {
  let c: LocalCluster;
  let t: RoleTokens;
  let base: string;
  beforeAll(async () => {
    ({ cluster: c, tokens: t } = await startConsoleCluster());
    base = c.url('node1', '');
  }, 60_000);
  afterAll(async () => {
    await c?.destroy();
  });

  it('serves the page and assets with a strict content security policy, and nothing else without a session', async () => {
    const page = await send(`${base}/console`);
    expect(page.status).toBe(200);
    expect(page.body).toContain('/console/assets/console.js');
    const csp = (await fetch(`${base}/console`)).headers.get('content-security-policy') ?? '';
    expect(csp).toContain("script-src 'self'");
    expect(csp).toContain("frame-ancestors 'none'");
    for (const path of ['/console/api/session', '/console/api/events', '/console/api/config']) {
      const r = await send(`${base}${path}`);
      expect(r.status, path).toBe(401);
    }
    const act = await send(`${base}/console/api/action`, { method: 'POST', headers: json, body: JSON.stringify({ node: 'node1', module: 'app', verb: 'stop' }) });
    expect(act.status).toBe(401);
    const forged = await send(`${base}/console/api/session`, { headers: { cookie: 'vigil_console=forged-session-id' } });
    expect(forged.status).toBe(401);
  });

  it('refuses a wrong token at login and sets an HttpOnly SameSite=Strict cookie (not Secure over HTTP) for a good one', async () => {
    const bad = await send(`${base}/console/login`, { method: 'POST', headers: json, body: JSON.stringify({ token: 'guess-guess-guess' }) });
    expect(bad.status).toBe(401);
    expect(bad.headers['set-cookie']).toEqual([]);
    const s = await login(base, t.monitor);
    expect(s.role).toBe('monitor');
    expect(s.setCookie).toMatch(/^vigil_console=[A-Za-z0-9_-]{43}; Path=\/console; HttpOnly; SameSite=Strict$/);
    expect(s.setCookie).not.toContain(t.monitor);
    const cross = await send(`${base}/console/login`, { method: 'POST', headers: { ...json, origin: 'http://evil.example' }, body: JSON.stringify({ token: t.admin }) });
    expect(cross.status).toBe(403);
  });

  it('refuses an action without the CSRF token, with a wrong one, or from another origin', async () => {
    const s = await login(base, t.control);
    const body = JSON.stringify({ node: 'node2', module: 'app', verb: 'restart' });
    const none = await send(`${base}/console/api/action`, { method: 'POST', headers: { ...json, cookie: s.cookie }, body });
    expect(none.status).toBe(403);
    expect(JSON.parse(none.body).error).toMatch(/CSRF/);
    const wrong = await send(`${base}/console/api/action`, { method: 'POST', headers: { ...json, cookie: s.cookie, 'x-csrf-token': `${s.csrf.slice(0, -1)}x` }, body });
    expect(wrong.status).toBe(403);
    const other = await login(base, t.control2);
    const stolen = await send(`${base}/console/api/action`, { method: 'POST', headers: { ...json, cookie: s.cookie, 'x-csrf-token': other.csrf }, body });
    expect(stolen.status).toBe(403); // another session's token does not fit this session
    const cross = await send(`${base}/console/api/action`, { method: 'POST', headers: { ...json, cookie: s.cookie, 'x-csrf-token': s.csrf, origin: 'http://evil.example' }, body });
    expect(cross.status).toBe(403);
    const logout = await send(`${base}/console/api/logout`, { method: 'POST', headers: { ...json, cookie: s.cookie }, body: '{}' });
    expect(logout.status).toBe(403); // logging out needs the CSRF token too
    await c.waitFor({ node1: 'PRIM', node2: 'SECOND' }, 1000);
    expect(logOf(c, 'node1')).toMatch(/"role":"control","via":"console".*missing or wrong CSRF token/);
  });

  it('relays a control action with the CSRF token to the peer, which answers with its own reason', async () => {
    const s = await login(base, t.control);
    const h = { ...json, cookie: s.cookie, 'x-csrf-token': s.csrf };
    const refused = await send(`${base}/console/api/action`, { method: 'POST', headers: h, body: JSON.stringify({ node: 'node2', module: 'app', verb: 'prim' }) });
    expect(refused.status).toBe(409);
    expect(JSON.parse(refused.body).message).toBe('node1 is primary (PRIM): use vigil swap');
    // node2 logged the relayed request with the operator's role
    await new Promise((r) => setTimeout(r, 300));
    expect(logOf(c, 'node2')).toMatch(/"role":"control","method":"POST","path":"\/api\/v1\/modules\/app\/prim","status":409/);
    const unknown = await send(`${base}/console/api/action`, { method: 'POST', headers: h, body: JSON.stringify({ node: 'node9', module: 'app', verb: 'stop' }) });
    expect(unknown.status).toBe(404);
    const badVerb = await send(`${base}/console/api/action`, { method: 'POST', headers: h, body: JSON.stringify({ node: 'node1', module: 'app', verb: 'format' }) });
    expect(badVerb.status).toBe(400);
    expect((JSON.parse(badVerb.body) as { error: string }).error).toMatch(/^bad body: verb: .*\(send \{"node": "node1", "module": "app", "verb": "swap"\}\)$/);
  });

  it('logs out with the CSRF token: the cookie is cleared and the session is gone', async () => {
    const s = await login(base, t.monitor);
    const out = await send(`${base}/console/api/logout`, { method: 'POST', headers: { ...json, cookie: s.cookie, 'x-csrf-token': s.csrf }, body: '{}' });
    expect(out.status).toBe(200);
    expect(String((out.headers['set-cookie'] as string[])[0])).toMatch(/^vigil_console=; Max-Age=0; Path=\/console/);
    expect((await send(`${base}/console/api/session`, { headers: { cookie: s.cookie } })).status).toBe(401);
  });

  it('never lets a monitor act, even with its CSRF token, and shows the config only to admin', async () => {
    const m = await login(base, t.monitor2);
    const r = await send(`${base}/console/api/action`, { method: 'POST', headers: { ...json, cookie: m.cookie, 'x-csrf-token': m.csrf }, body: JSON.stringify({ node: 'node1', module: 'app', verb: 'stop' }) });
    expect(r.status).toBe(403);
    expect(JSON.parse(r.body).error).toMatch(/role monitor/);
    expect((await send(`${base}/console/api/config`, { headers: { cookie: m.cookie } })).status).toBe(403);
    const ctl = await login(base, t.control);
    expect((await send(`${base}/console/api/config`, { headers: { cookie: ctl.cookie } })).status).toBe(403);
    const adm = await login(base, t.admin);
    const cfg = await send(`${base}/console/api/config`, { headers: { cookie: adm.cookie } });
    expect(cfg.status).toBe(200);
    expect(JSON.parse(cfg.body).cluster).toBe('local');
    await c.waitFor({ node1: 'PRIM', node2: 'SECOND' }, 1000);
  });
});

describe('console sessions follow the token files (real daemons)', () => {
  let c: LocalCluster;
  let t: RoleTokens;
  beforeAll(async () => {
    ({ cluster: c, tokens: t } = await startConsoleCluster());
  }, 60_000);
  afterAll(async () => {
    await c?.destroy();
  });

  it('ends a session and its live stream once its token is withdrawn from the file', async () => {
    const base = c.url('node1', '');
    const s = await login(base, t.control2);
    const events = await fetch(`${base}/console/api/events`, { headers: { cookie: s.cookie } });
    expect(events.status).toBe(200);
    const reader = events.body!.getReader();
    await reader.read(); // the first view
    const withdrawnAt = Date.now();
    writeFileSync(join(c.dir, 'control2.token'), '# withdrawn\n', { mode: 0o600 });
    for (;;) {
      const { done } = await reader.read();
      if (done) break;
      if (Date.now() - withdrawnAt > 10_000) throw new Error('the stream outlived its token');
    }
    expect(Date.now() - withdrawnAt).toBeLessThan(5000); // files looked at every 2 s, the stream asked every 1 s
    const after = await send(`${base}/console/api/session`, { headers: { cookie: s.cookie } });
    expect(after.status).toBe(401);
    expect(JSON.parse(after.body).error).toMatch(/withdrawn|not logged in/);
    expect((await send(`${base}/console/login`, { method: 'POST', headers: json, body: JSON.stringify({ token: t.control2 }) })).status).toBe(401);
  });
});

describe('console and API over HTTPS (api.tls from vigil tls selfsigned)', () => {
  let c: LocalCluster;
  let t: RoleTokens;
  let ca: Buffer;
  beforeAll(async () => {
    let got;
    ({ cluster: c, tokens: t, ca: got } = await startConsoleCluster({ tls: true }));
    ca = got!;
  }, 60_000);
  afterAll(async () => {
    await c?.destroy();
  });
  const https = (node: string, path: string) => c.url(node, path).replace('http:', 'https:');

  it('keeps ready.txt and /metrics on plain HTTP, and refuses the API and console there', async () => {
    expect((await send(c.url('node1', '/metrics'))).status).toBe(200);
    expect([200, 404]).toContain((await send(c.url('node1', '/var/modules/app/ready.txt'))).status);
    const api = await send(c.url('node1', '/api/v1/modules'), { headers: { authorization: `Bearer ${t.admin}` } });
    expect(api.status).toBe(403);
    expect(JSON.parse(api.body).error).toMatch(/HTTPS only.*https:\/\//);
    expect((await send(c.url('node1', '/console'))).status).toBe(403);
    const overTls = await send(https('node1', '/api/v1/modules'), { headers: { authorization: `Bearer ${t.monitor}` }, ca });
    expect(overTls.status).toBe(200);
  });

  it('lets the vigil CLI reach the HTTPS API with the config\'s certificate', () => {
    const bin = join(resolve(import.meta.dirname, '../..'), 'bin/vigil.mjs');
    const out = execFileSync(process.execPath, [bin, 'state', '--json', '--config', c.configFile, '--node', 'node2'], { encoding: 'utf8' });
    expect(JSON.parse(out.trim().split('\n')[0])).toMatchObject({ module: 'app', node: 'node2' });
  });

  it('flags the session cookie Secure and relays the peer over HTTPS', async () => {
    const s = await login(https('node1', ''), t.control, ca);
    expect(s.setCookie).toMatch(/^vigil_console=[A-Za-z0-9_-]{43}; Path=\/console; HttpOnly; Secure; SameSite=Strict$/);
    const h = { ...json, cookie: s.cookie, 'x-csrf-token': s.csrf };
    const r = await send(https('node1', '/console/api/action'), { method: 'POST', headers: h, body: JSON.stringify({ node: 'node2', module: 'app', verb: 'start' }), ca });
    // the peer's own answer over HTTPS (its state decides ok or not), never a relay error
    expect([200, 409]).toContain(r.status);
    expect(JSON.parse(r.body).error ?? '').not.toMatch(/does not answer|certificate/);
    // the live view of node1 shows node2 reachable: node1 follows node2's watch stream over HTTPS
    const seen = await new Promise<string>((resolve, reject) => {
      const req = request(https('node1', '/console/api/events'), { headers: { cookie: s.cookie }, ca }, (res) => {
        let buf = '';
        res.setEncoding('utf8');
        res.on('data', (chunk: string) => {
          buf += chunk;
          const m = [...buf.matchAll(/^data: (.*)$/gm)].map((x) => JSON.parse(x[1]) as { nodes: { node: string; reachable: boolean }[] });
          if (m.some((v) => v.nodes.find((n) => n.node === 'node2')?.reachable)) {
            req.destroy();
            resolve('node2 reachable');
          }
        });
      });
      req.on('error', (e) => (e.message.includes('socket hang up') ? undefined : reject(e)));
      setTimeout(() => reject(new Error('node2 never reachable in the HTTPS console view')), 5000);
      req.end();
    });
    expect(seen).toBe('node2 reachable');
  });
});

describe('sessions and token lookup (in process)', () => {
  it('ends a session after 30 minutes idle or 12 hours in all', () => {
    let now = 1_000_000;
    const store = new SessionStore(() => now);
    const a = store.create('control', 'tok');
    now += SESSION_IDLE_MS - 1;
    expect(store.get(a.id)?.role).toBe('control'); // used: idle time starts again
    now += SESSION_IDLE_MS + 1;
    expect(store.get(a.id)).toBeUndefined();
    const b = store.create('admin', 'tok');
    for (let t = 0; t < SESSION_MAX_MS; t += SESSION_IDLE_MS / 2) {
      now += SESSION_IDLE_MS / 2;
      if (t + SESSION_IDLE_MS / 2 < SESSION_MAX_MS) expect(store.get(b.id)).toBeDefined();
    }
    now += SESSION_IDLE_MS / 2;
    expect(store.get(b.id)).toBeUndefined();
    expect(store.get(undefined)).toBeUndefined();
  });

  it('gives a token listed under several roles its highest, and an unknown one none', () => {
    const set = new TokenSet([
      { token: 'shared-token-1', role: 'monitor' },
      { token: 'shared-token-1', role: 'admin' },
      { token: 'ctl-token-22', role: 'control' },
    ]);
    expect(set.roleOf('shared-token-1')).toBe('admin');
    expect(set.roleOf('ctl-token-22')).toBe('control');
    expect(set.roleOf('ctl-token-2')).toBeUndefined();
    expect(JSON.stringify({ set })).toBe('{"set":"[tokens]"}');
  });
});
