/**
 * The one hono app behind every platform entry point (aws-lambda.ts, azure.ts, gcp.ts).
 *
 *   POST /reconcile   {"cluster": "demo", "module"?: "mirror", "dryRun"?: false}   bearer: the cluster's admin token
 *   GET  /status?cluster=demo[&module=mirror]                                      bearer: the cluster's admin token
 *   POST /events      a signed CloudEvent from a node service (see node-service/src/contract/events.ts)
 *   GET  /healthz     liveness of the function itself
 */
import { Hono, type Context } from 'hono';
import { SIGNATURE_HEADER, TIMESTAMP_HEADER } from '../../node-service/src/contract/index.ts';
import { RequestError, type Controller, type Logger } from './controller.ts';

function fail(c: Context, status: number, error: string) {
  return c.json({ error }, status as 400);
}

export function createApp(ctl: Controller, log?: Logger): Hono {
  const app = new Hono();

  app.onError((err, c) => {
    if (err instanceof RequestError) return fail(c, err.status, err.message);
    // the cause goes to the log only: an error body never names configuration or secrets
    log?.error({ err: err.message, path: c.req.path }, 'internal error');
    return fail(c, 500, 'internal error (see the function log)');
  });
  app.notFound((c) => fail(c, 404, `no route ${c.req.method} ${c.req.path} (routes: POST /reconcile, GET /status, POST /events)`));

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
    await ctl.authorize(cluster, c.req.header('authorization'));
    const results = await ctl.reconcile(cluster!, module, dryRun);
    const failed = results.some((r) => r.error);
    return c.json({ results }, failed ? 502 : 200);
  });

  app.get('/status', async (c) => {
    const cluster = c.req.query('cluster');
    await ctl.authorize(cluster, c.req.header('authorization'));
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
