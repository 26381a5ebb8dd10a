import { createServer as createHttpServer, type Server } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import { createServer as createNetServer, type Socket } from 'node:net';
import { Duplex } from 'node:stream';
import { readFileSync } from 'node:fs';
import { getRequestListener } from '@hono/node-server';
import type { Hono } from 'hono';

export interface ListenTls {
  readonly cert: string;
  readonly key: string;
}

/** What stays readable over plain HTTP when the API is HTTPS: load balancers probe ready.txt, Prometheus scrapes /metrics. */
export const OPEN_OVER_HTTP = (path: string): boolean => path === '/metrics' || /^\/var\/modules\/[^/]+\/ready\.txt$/.test(path);

export interface ApiServer {
  close(): Promise<void>;
}

/**
 * Listens on each address (a node's own addresses by default, so two nodes can share a machine).
 * With TLS, one port serves both: a connection whose first byte opens a TLS handshake goes to the
 * HTTPS server, any other to a plain HTTP server that answers only the open paths (the health URL is
 * plain HTTP in the contract, and load balancers keep probing it there).
 */
export async function listen(app: Hono, addrs: readonly string[], port: number, tls?: ListenTls): Promise<ApiServer[]> {
  const listener = getRequestListener(app.fetch);
  const plain = tls
    ? getRequestListener((req: Request) => {
        const url = new URL(req.url);
        if (OPEN_OVER_HTTP(url.pathname)) return app.fetch(req);
        return Response.json({ error: `this node serves its API and console over HTTPS only (api.tls): use https://${url.host}${url.pathname}` }, { status: 403 });
      })
    : listener;
  return Promise.all(
    addrs.map(async (hostname) => {
      const http = createHttpServer(plain);
      const https = tls ? createHttpsServer({ cert: readFileSync(tls.cert), key: readFileSync(tls.key), minVersion: 'TLSv1.2' }, listener) : undefined;
      const front = https
        ? createNetServer((socket) => {
            socket.once('data', (first) => {
              socket.pause();
              if (first[0] === 0x16) return void https.emit('connection', replay(socket, first));
              socket.unshift(first);
              http.emit('connection', socket);
              socket.resume();
            });
            socket.on('error', () => socket.destroy());
          })
        : http;
      await new Promise<void>((resolve, reject) => {
        front.once('error', (e: Error) => reject(new Error(`cannot listen on ${hostname}:${port}: ${e.message}`)));
        front.listen(port, hostname, () => resolve());
      });
      const servers: Server[] = https ? [http, https] : [http];
      return {
        close: () =>
          new Promise<void>((r) => {
            for (const s of servers) s.closeAllConnections();
            front.close(() => r());
            if (front !== http) http.close();
            https?.close();
          }),
      };
    }),
  );
}

/**
 * The socket as a plain stream that starts with the bytes already read. TLS reads a real socket
 * through its handle and would miss bytes pushed back with unshift(); over a stream it reads them.
 */
function replay(socket: Socket, first: Buffer): Duplex {
  const d = new Duplex({
    read: () => void socket.resume(),
    write: (chunk, enc, cb) => void socket.write(chunk, enc, cb),
    final: (cb) => void socket.end(cb),
    destroy: (err, cb) => {
      socket.destroy(err ?? undefined);
      cb(err);
    },
  });
  d.push(first);
  socket.on('data', (c) => {
    if (!d.push(c)) socket.pause();
  });
  socket.on('end', () => d.push(null));
  socket.on('close', () => d.destroy());
  socket.on('error', (e) => d.destroy(e));
  return d;
}

export function close(servers: readonly ApiServer[]): Promise<void> {
  return Promise.all(servers.map((s) => s.close())).then(() => undefined);
}
