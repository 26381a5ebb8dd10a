import { readFileSync } from 'node:fs';
import { type Context, Hono } from 'hono';
import { deleteCookie, getCookie, setCookie } from 'hono/cookie';
import { z } from 'zod';
import { allows, ROLE_RIGHTS, type TokenSet } from '../api/tokens.ts';
import { forbidden } from '../api/auth.ts';
import { jsonBody } from '../api/json-body.ts';
import type { Logger } from '../log/logger.ts';
import { watchCluster } from './cluster-view.ts';
import type { NodeFeed } from './feed.ts';
import { type PeerTarget, peerRequest } from './peers.ts';
import { type Session, SessionStore, sameSecret } from './sessions.ts';
import { sseStream } from './sse.ts';

export interface ConsoleDeps {
  readonly cluster: string;
  readonly self: { readonly node: string; readonly addr: string };
  readonly feed: NodeFeed;
  readonly peers: readonly PeerTarget[];
  readonly order?: readonly string[];
  readonly tokens: TokenSet;
  readonly log?: Logger;
  /** served over HTTPS (api.tls): the session cookie is Secure */
  readonly secure: boolean;
  /** this node's own app, so an action on this node goes through the same API routes, roles and log as one relayed to a peer */
  readonly fetchSelf: (req: Request) => Response | Promise<Response>;
}

export const COOKIE = 'vigil_console';
export const CONSOLE_VERBS = ['start', 'stop', 'restart', 'prim', 'second', 'swap'] as const;

const ASSETS: Record<string, { type: string; body: string }> = Object.fromEntries(
  [
    ['index.html', 'text/html; charset=utf-8'],
    ['console.js', 'text/javascript; charset=utf-8'],
    ['console.css', 'text/css; charset=utf-8'],
    ['favicon.svg', 'image/svg+xml'],
  ].map(([f, type]) => [f, { type, body: readFileSync(new URL(`./assets/${f}`, import.meta.url), 'utf8') }]),
);

const SECURITY_HEADERS = {
  'Content-Security-Policy': "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
  'X-Content-Type-Options': 'nosniff',
  'Referrer-Policy': 'no-referrer',
  'X-Frame-Options': 'DENY',
};

const loginBody = z.object({ token: z.string().min(1).max(4096) }).strict();
const actionBody = z
  .object({ node: z.string().min(1), module: z.string().min(1), verb: z.enum(CONSOLE_VERBS), force: z.boolean().optional() })
  .strict();

/**
 * The web console at /console: static page and assets, token login into an HttpOnly SameSite=Strict
 * session cookie, a server-sent-event view of the whole cluster (this node relays its peers), and
 * actions that need the control role and the session's CSRF token.
 */
export function consoleApp(d: ConsoleDeps): Hono {
  const app = new Hono();
  const sessions = new SessionStore();
  const targets = new Map(d.peers.map((p) => [p.node, p]));

  app.use('*', async (c, next) => {
    await next();
    for (const [k, v] of Object.entries(SECURITY_HEADERS)) c.header(k, v);
  });

  const page = (c: Context) => c.body(ASSETS['index.html'].body, 200, { 'Content-Type': ASSETS['index.html'].type, 'Cache-Control': 'no-cache' });
  app.get('/', page);
  app.get('/assets/:file', (c) => {
    const a = ASSETS[c.req.param('file')];
    if (!a || c.req.param('file') === 'index.html') return c.json({ error: 'not found' }, 404);
    return c.body(a.body, 200, { 'Content-Type': a.type, 'Cache-Control': 'no-cache' });
  });

  /** a session lives only as long as its token keeps the role it logged in with (token files are followed) */
  const tokenStillGood = (s: Session) => d.tokens.roleOf(s.token) === s.role;

  /** the session of this request, or undefined */
  const sessionOf = (c: Context): Session | undefined => sessions.get(getCookie(c, COOKIE));

  /** a POST from another origin never acts, whatever cookie the browser attaches */
  const sameOrigin = (c: Context): boolean => {
    const origin = c.req.header('origin');
    return origin === undefined || origin === new URL(c.req.url).origin;
  };

  app.post('/login', async (c) => {
    if (!sameOrigin(c)) return c.json({ error: 'login from another origin refused' }, 403);
    const parsed = loginBody.safeParse(await c.req.json().catch(() => undefined));
    if (!parsed.success) return c.json({ error: 'send {"token": "<API token>"} as JSON' }, 400);
    const role = d.tokens.roleOf(parsed.data.token.trim());
    if (!role) {
      d.log?.warn({ role: 'unknown', via: 'console' }, 'console login refused: unknown token');
      await new Promise((r) => setTimeout(r, 300)); // slows guessing down; tokens are long anyway
      return c.json({ error: 'unknown token: give a token from api.admin_token_file or api.tokens' }, 401);
    }
    const s = sessions.create(role, parsed.data.token.trim());
    setCookie(c, COOKIE, s.id, { httpOnly: true, secure: d.secure, sameSite: 'Strict', path: '/console' });
    d.log?.info({ role, via: 'console' }, 'console login');
    return c.json({ role, csrf: s.csrf, node: d.self.node, cluster: d.cluster });
  });

  // Everything below needs a session.
  const api = new Hono<{ Variables: { session: Session } }>();
  api.use('*', async (c, next) => {
    const s = sessionOf(c);
    if (!s) return c.json({ error: 'not logged in (or the session expired): log in with a token' }, 401);
    if (!tokenStillGood(s)) {
      sessions.delete(s.id);
      d.log?.warn({ role: s.role, via: 'console' }, 'console session ended: its token was withdrawn or its role changed');
      return c.json({ error: 'the token of this session was withdrawn (or its role changed): log in again' }, 401);
    }
    c.set('session', s);
    if (c.req.method !== 'GET') {
      if (!sameOrigin(c)) return c.json({ error: 'request from another origin refused' }, 403);
      if (!sameSecret(c.req.header('x-csrf-token'), s.csrf)) {
        d.log?.warn({ role: s.role, via: 'console', path: c.req.path }, 'console request refused: missing or wrong CSRF token');
        return c.json({ error: 'missing or wrong CSRF token (X-CSRF-Token): reload the console' }, 403);
      }
    }
    await next();
  });

  api.get('/session', (c) => {
    const s = c.get('session');
    return c.json({ role: s.role, rights: ROLE_RIGHTS[s.role], csrf: s.csrf, node: d.self.node, cluster: d.cluster, canAct: allows(s.role, 'control'), canConfig: allows(s.role, 'admin') });
  });

  api.post('/logout', (c) => {
    sessions.delete(c.get('session').id);
    deleteCookie(c, COOKIE, { path: '/console', secure: d.secure });
    return c.json({ ok: true });
  });

  api.get('/events', (c) => {
    const s = c.get('session');
    return sseStream(
      c,
      (send) => watchCluster({ cluster: d.cluster, self: d.self, feed: d.feed, peers: d.peers, token: s.token, order: d.order }, (v) => send('cluster', v)),
      () => tokenStillGood(s),
    );
  });

  api.get('/config', async (c) => {
    const s = c.get('session');
    if (!allows(s.role, 'admin')) return c.json({ error: forbidden(s.role, 'the configuration view', 'admin') }, 403);
    const r = await d.fetchSelf(new Request('http://self/api/v1/config', { headers: { authorization: `Bearer ${s.token}` } }));
    return c.json(await r.json(), r.status as 200);
  });

  api.post('/action', async (c) => {
    const s = c.get('session');
    const parsed = await jsonBody(c, actionBody, '{"node": "node1", "module": "app", "verb": "swap"}');
    if (parsed instanceof Response) return parsed;
    const { node, module, verb, force } = parsed;
    const what = `${verb} ${module} on ${node}`;
    if (!allows(s.role, 'control')) {
      d.log?.warn({ role: s.role, via: 'console', action: what }, 'console action refused: role too small');
      return c.json({ error: forbidden(s.role, what, 'control') }, 403);
    }
    const path = `/api/v1/modules/${encodeURIComponent(module)}/${verb}`;
    const body = force ? { force: true } : {};
    let result: { status: number; body: unknown };
    if (node === d.self.node) {
      const r = await d.fetchSelf(new Request(`http://self${path}`, { method: 'POST', headers: { authorization: `Bearer ${s.token}`, 'content-type': 'application/json' }, body: JSON.stringify(body) }));
      result = { status: r.status, body: await r.json() };
    } else {
      const t = targets.get(node);
      if (!t) return c.json({ error: `unknown node "${node}" (nodes: ${[d.self.node, ...targets.keys()].join(', ')})` }, 404);
      result = await peerRequest(t, 'POST', path, s.token, body);
    }
    d.log?.info({ role: s.role, via: 'console', action: what, status: result.status }, 'console action');
    return c.json(result.body as object, result.status as 200);
  });

  app.route('/api', api);
  return app;
}
