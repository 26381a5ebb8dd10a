/**
 * The functions' hono app on a plain Node HTTP server (@hono/node-server): local development, the
 * cloud bench and the integration tests. Same app, same routes as the platform entry points.
 */
import type { AddressInfo } from 'node:net';
import { serve } from '@hono/node-server';
import { createApp } from './app.ts';
import type { Controller } from './controller.ts';

export interface LocalFunctionServer {
  /** base URL, e.g. http://127.0.0.1:43125 (POST /events, GET /status, POST /reconcile) */
  readonly url: string;
  close(): Promise<void>;
}

export function serveLocal(controller: Controller, opts: { hostname?: string; port?: number } = {}): Promise<LocalFunctionServer> {
  const app = createApp(controller);
  const hostname = opts.hostname ?? '127.0.0.1';
  return new Promise((resolve, reject) => {
    const server = serve({ fetch: app.fetch, hostname, port: opts.port ?? 0 }, (info: AddressInfo) => {
      resolve({
        url: `http://${hostname}:${info.port}`,
        close: () => new Promise<void>((r) => server.close(() => r())),
      });
    });
    server.once('error', reject);
  });
}
