import { Hono } from 'hono';
import { z } from 'zod';
import { NOT_READY_BODY, READY_BODY } from '../contract/health.ts';
import type { Command } from '../core/types.ts';
import type { ModuleRunner } from '../daemon/module-runner.ts';
import type { Metrics } from '../metrics/metrics.ts';
import { bearerAuth, requireRole } from './auth.ts';
import { jsonBody } from './json-body.ts';
import { registerMirrorRoutes } from './mirror-routes.ts';
import type { MirrorReplicator } from '../mirror/index.ts';
import type { KeyStatus } from '../secure/keyring.ts';
import { buildInfo } from '../version.ts';
import type { TokenSet } from './tokens.ts';
import type { Logger } from '../log/logger.ts';
import { type ConsoleSetup, consoleApp, registerNodeRoutes } from '../console/index.ts';

export interface ApiDeps {
  readonly runners: ReadonlyMap<string, ModuleRunner>;
  /** the replication engine of each mirror module (resync bandwidth, verify and diff) */
  readonly mirrors?: ReadonlyMap<string, MirrorReplicator>;
  /** the API tokens and their roles */
  readonly tokens: TokenSet;
  /** logs every API request with its role */
  readonly log?: Logger;
  /** the web console at /console and the routes it relays (overview, watch, config) */
  readonly console?: ConsoleSetup;
  readonly metrics: Metrics;
  readonly node: string;
  readonly cluster: string;
  /** the cluster secrets: which keys this node seals with and accepts; reload after a rotation step */
  readonly secrets?: { status(): KeyStatus; reload(): KeyStatus };
}

const VERBS = ['start', 'stop', 'restart', 'prim', 'second', 'swap', 'forcestop', 'stopstart', 'failover'] as const;
const commandBody = z
  .object({ force: z.boolean().optional(), fullsync: z.boolean().optional(), on: z.boolean().optional() })
  .strict()
  .refine((b) => b.on === undefined || Object.keys(b).length === 1, { message: '"on" goes alone, with failover' });

function toCommand(verb: (typeof VERBS)[number], body: z.infer<typeof commandBody>): Command {
  switch (verb) {
    case 'prim':
      return { type: 'prim', force: body.force ?? false, fullSync: body.fullsync };
    case 'second':
      return { type: 'second', fullSync: body.fullsync ?? false };
    case 'failover':
      return { type: 'failover', on: body.on! };
    default:
      return { type: verb };
  }
}

/**
 * The node's HTTP surface: the open health URL and metrics (load balancers and Prometheus probe
 * them), and the admin API behind the bearer token.
 */
export function createApi(d: ApiDeps): Hono {
  const app = new Hono();

  // Contract: 200 "OK" in PRIM/ALONE/UP, 404 "NOT FOUND" otherwise and for unknown modules.
  app.on(['GET', 'HEAD'], '/var/modules/:m/ready.txt', (c) => {
    const r = d.runners.get(c.req.param('m'));
    c.header('Cache-Control', 'no-store');
    return r?.ready ? c.text(READY_BODY, 200) : c.text(NOT_READY_BODY, 404);
  });

  app.get('/metrics', async (c) => {
    c.header('Content-Type', d.metrics.registry.contentType);
    return c.body(await d.metrics.registry.metrics());
  });

  const api = new Hono();
  api.use('*', bearerAuth(d.tokens, d.log));
  api.get('/node', (c) => c.json({ node: d.node, cluster: d.cluster, version: buildInfo().version, modules: [...d.runners.keys()] }));
  api.get('/version', (c) => c.json(buildInfo()));
  if (d.secrets) {
    const secrets = d.secrets;
    api.get('/secret', (c) => c.json(secrets.status()));
    api.post('/secret/reload', requireRole('admin'), (c) => {
      try {
        return c.json(secrets.reload());
      } catch (e) {
        return c.json({ error: `${(e as Error).message}; nothing changed, the node keeps its keys` }, 400);
      }
    });
  }
  api.get('/modules', (c) => c.json([...d.runners.values()].map((r) => r.status())));
  api.get('/modules/:m', (c) => {
    const r = d.runners.get(c.req.param('m'));
    return r ? c.json(r.status()) : c.json({ error: `unknown module "${c.req.param('m')}" (modules: ${[...d.runners.keys()].join(', ')})` }, 404);
  });
  api.get('/modules/:m/log', (c) => {
    const r = d.runners.get(c.req.param('m'));
    if (!r) return c.json({ error: `unknown module "${c.req.param('m')}"` }, 404);
    const n = Number(c.req.query('n') ?? '50');
    if (!Number.isInteger(n) || n < 1 || n > 500) return c.json({ error: 'n must be an integer from 1 to 500' }, 400);
    return c.json(r.events.recent(n));
  });
  // before the verbs: POST /modules/M/resync-bandwidth is not a state-machine command
  registerMirrorRoutes(api, d.runners, d.mirrors ?? new Map());
  api.post('/modules/:m/:verb', async (c) => {
    const r = d.runners.get(c.req.param('m'));
    if (!r) return c.json({ error: `unknown module "${c.req.param('m')}"` }, 404);
    const verb = c.req.param('verb');
    if (!(VERBS as readonly string[]).includes(verb)) return c.json({ error: `unknown command "${verb}" (one of ${VERBS.join(', ')})` }, 404);
    const body = await jsonBody(c, commandBody, '{} or {"force":true} / {"fullsync":true} / {"on":true}', true);
    if (body instanceof Response) return body;
    if ((verb === 'failover') !== (body.on !== undefined)) return c.json({ error: verb === 'failover' ? 'failover needs a body {"on": true} or {"on": false}' : `"on" applies to failover, not ${verb}` }, 400);
    const reply = r.command(toCommand(verb as (typeof VERBS)[number], body));
    return c.json({ ...reply, state: r.state }, reply.ok ? 200 : 409);
  });
  d.metrics.observeStatuses(d.cluster, d.node, () => [...d.runners.values()].map((r) => r.status()));
  if (d.console) registerNodeRoutes(api, d.console.feed, d.console.config);
  app.route('/api/v1', api);
  if (d.console) app.route('/console', consoleApp({ ...d.console, cluster: d.cluster, tokens: d.tokens, log: d.log, fetchSelf: (req) => app.fetch(req) }));
  app.notFound((c) => c.json({ error: 'not found' }, 404));
  return app;
}
