/**
 * Google Cloud Functions (functions-framework) entry point: HTTP function `vigil`
 * (deploy with --entry-point=vigil). Routes: POST /events, GET /status, POST /reconcile; point Cloud
 * Scheduler at POST /reconcile with the cluster's bearer token for the periodic reconcile.
 */
import { cloudEvent, http, type Request as FfRequest, type Response as FfResponse } from '@google-cloud/functions-framework';
import { gcpAdapterFor } from './adapters/gcp.ts';
import { getRuntime } from './runtime.ts';

/** Translation only: express request (raw body kept by the framework) → fetch Request → hono → express response. */
export async function vigil(req: FfRequest, res: FfResponse): Promise<void> {
  const url = new URL(req.originalUrl || req.url, `http://${req.headers.host ?? 'localhost'}`);
  const headers = new Headers();
  for (const [k, v] of Object.entries(req.headers)) if (v !== undefined) headers.set(k, Array.isArray(v) ? v.join(', ') : v);
  const hasBody = req.method !== 'GET' && req.method !== 'HEAD';
  // the signature covers the exact bytes: use rawBody, never a re-serialisation of the parsed req.body
  const body = hasBody ? (req.rawBody ?? Buffer.from(typeof req.body === 'string' ? req.body : req.body ? JSON.stringify(req.body) : '')) : undefined;
  const out = await getRuntime({ gcp: gcpAdapterFor }, 'cloud-functions').app.fetch(new Request(url, { method: req.method, headers, body: body ? new Uint8Array(body) : undefined }));
  res.status(out.status);
  out.headers.forEach((v, k) => res.setHeader(k, v));
  res.send(Buffer.from(await out.arrayBuffer()));
}

http('vigil', vigil);

/** Pub/Sub-triggered (Cloud Scheduler, every minute): reconcile every cluster. Throws on failure (logged; the trigger does not retry). */
export async function vigilReconcile(): Promise<void> {
  const results = await getRuntime({ gcp: gcpAdapterFor }, 'cloud-functions').controller.reconcileAll();
  const failed = results.filter((r) => r.error);
  if (failed.length) throw new Error(`reconcile failed for ${failed.map((r) => `${r.cluster}/${r.module}`).join(', ')}`);
}

cloudEvent('vigilReconcile', vigilReconcile);
