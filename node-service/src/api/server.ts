import { serve, type ServerType } from '@hono/node-server';
import type { Hono } from 'hono';

/** Listens on each address (a node's own addresses by default, so two nodes can share a machine). */
export async function listen(app: Hono, addrs: readonly string[], port: number): Promise<ServerType[]> {
  return Promise.all(
    addrs.map(
      (hostname) =>
        new Promise<ServerType>((resolve, reject) => {
          const server = serve({ fetch: app.fetch, port, hostname }, () => resolve(server));
          server.once('error', (e: Error) => reject(new Error(`cannot listen on ${hostname}:${port}: ${e.message}`)));
        }),
    ),
  );
}

export function close(servers: readonly ServerType[]): Promise<void> {
  return Promise.all(
    servers.map((s) => new Promise<void>((r) => {
      (s as unknown as { closeAllConnections?: () => void }).closeAllConnections?.();
      s.close(() => r());
    })),
  ).then(() => undefined);
}
