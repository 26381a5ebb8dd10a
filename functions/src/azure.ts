/**
 * Azure Functions entry point (v4 programming model). Registers
 *   vigil            HTTP, every route of the hono app under /api/* (POST /api/events, GET /api/status, POST /api/reconcile)
 *   vigil-reconcile  timer, reconciles every configured cluster (VIGIL_RECONCILE_SCHEDULE, default every minute)
 * authLevel is anonymous: /events is HMAC-signed and /status, /reconcile need the cluster's bearer token.
 * Deploy: bundle this file with esbuild (platform node) and point the function app's package.json "main" at it.
 */
import azureFunctions, { type HttpRequest, type HttpResponseInit, type InvocationContext, type Timer } from '@azure/functions';
import { azureAdapterFor } from './adapters/azure.ts';
import { getRuntime } from './runtime.ts';

const { app } = azureFunctions;
const runtime = () => getRuntime({ azure: azureAdapterFor }, 'azure-functions');

/** Translation only: Azure HttpRequest → fetch Request → hono → HttpResponseInit. */
export async function httpHandler(req: HttpRequest, _ctx: InvocationContext): Promise<HttpResponseInit> {
  const url = new URL(req.url);
  url.pathname = `/${req.params.path ?? url.pathname.replace(/^\/api\/?/, '')}`;
  const hasBody = req.method !== 'GET' && req.method !== 'HEAD';
  const request = new Request(url, { method: req.method, headers: req.headers as unknown as Headers, body: hasBody ? await req.text() : undefined });
  const res = await runtime().app.fetch(request);
  return { status: res.status, headers: Object.fromEntries(res.headers), body: await res.text() };
}

export async function timerHandler(_timer: Timer, ctx: InvocationContext): Promise<void> {
  const results = await runtime().controller.reconcileAll();
  const failed = results.filter((r) => r.error);
  for (const r of results) ctx.log(`${r.cluster}/${r.module}: ${r.error ? `failed: ${r.error}` : `${r.changes.length} change(s)`}`);
  if (failed.length) throw new Error(`reconcile failed for ${failed.map((r) => `${r.cluster}/${r.module}`).join(', ')}`);
}

app.http('vigil', { methods: ['GET', 'POST'], authLevel: 'anonymous', route: '{*path}', handler: httpHandler });
app.timer('vigil-reconcile', { schedule: process.env.VIGIL_RECONCILE_SCHEDULE ?? '0 */1 * * * *', handler: timerHandler });
