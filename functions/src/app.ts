/**
 * The one hono app behind every platform entry point (aws-lambda.ts, azure.ts, gcp.ts).
 *
 *   POST /reconcile   {"cluster": "demo", "module"?: "mirror", "dryRun"?: false}   bearer: the cluster's admin token
 *   GET  /status?cluster=demo[&module=mirror]                                      bearer: the cluster's admin token
 *   POST /events      a signed CloudEvent from a node service (see node-service/src/cloud-events/signing.ts)
 *   GET  /healthz     liveness of the function itself
 */
import { timingSafeEqual } from 'node:crypto';
import { Hono, type Context } from 'hono';
import { SIGNATURE_HEADER, TIMESTAMP_HEADER } from '../../node-service/src/cloud-events/signing.ts';
import { resolveSecret } from './config.ts';
import { RequestError, type Controller } from './controller.ts';

function fail(c: Context, status: number, error: string) {
  return c.json({ error }, status as 400);
}

export function createApp(ctl: Controller, env: NodeJS.ProcessEnv = process.env): Hono {
  const app = new Hono();

  app.onError((err, c) => {
    if (err instanceof RequestError) return fail(c, err.status, err.message);
    return fail(c, 500, `internal error: ${err.message}`);
  });
  app.notFound((c) => fail(c, 404, `no route ${c.req.method} ${c.req.path} (routes: POST /reconcile, GET /status, POST /events)`));

  /** the cluster's admin token, compared in constant time */
  function authorize(c: Context, clusterName: string | undefined): void {
    const cfg = ctl.cluster(clusterName);
    if (!cfg.adminToken && !cfg.adminTokenEnv) throw new RequestError(403, `cluster "${clusterName}" has no adminToken configured: /reconcile and /status are disabled`);
    const expected = Buffer.from(resolveSecret(cfg.adminToken, cfg.adminTokenEnv, env, 'adminToken'));
    const m = /^Bearer (.+)$/.exec(c.req.header('authorization') ?? '');
    if (!m) throw new RequestError(401, 'missing "Authorization: Bearer <admin token>"');
    const given = Buffer.from(m[1]);
    if (given.length !== expected.length || !timingSafeEqual(given, expected)) throw new RequestError(401, 'bad admin token');
  }

  app.get('/healthz', (c) => c.text('OK'));

  app.post('/reconcile', async (c) => {
    const text = await c.req.text();
    let body: { cluster?: unknown; module?: unknown; dryRun?: unknown } = {};
    if (text.trim() !== '') {
      try {
        body = JSON.parse(text);
      } catch (err) {
        throw new RequestError(400, `malformed JSON: ${(err as Error).message}`);
      }
    }
    const cluster = typeof body.cluster === 'string' ? body.cluster : c.req.query('cluster');
    const module = typeof body.module === 'string' ? body.module : c.req.query('module');
    const dryRun = body.dryRun === true || c.req.query('dryRun') === 'true';
    authorize(c, cluster);
    const results = await ctl.reconcile(cluster!, module, dryRun);
    const failed = results.some((r) => r.error);
    return c.json({ results }, failed ? 502 : 200);
  });

  app.get('/status', async (c) => {
    const cluster = c.req.query('cluster');
    authorize(c, cluster);
    return c.json(await ctl.status(cluster!, c.req.query('module')));
  });

  app.post('/events', async (c) => {
    const body = await c.req.text();
    const result = await ctl.handleEvent(body, {
      timestamp: c.req.header(TIMESTAMP_HEADER),
      signature: c.req.header(SIGNATURE_HEADER),
    });
    return c.json(result);
  });

  return app;
}
