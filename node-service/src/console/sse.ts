import type { Context } from 'hono';
import { streamSSE } from 'hono/streaming';

export const SSE_PING_MS = 1000;

/**
 * A server-sent-event stream fed by `subscribe` until the client goes away. A comment line every
 * second lets the far end tell a silent-but-alive stream from a dead one.
 */
export function sseStream(c: Context, subscribe: (send: (event: string, data: unknown) => void) => () => void): Response {
  c.header('Cache-Control', 'no-store');
  c.header('X-Accel-Buffering', 'no');
  return streamSSE(c, async (stream) => {
    let unsubscribe = () => {};
    const ping = setInterval(() => void stream.write(': ping\n\n').catch(() => {}), SSE_PING_MS);
    const closed = new Promise<void>((resolve) => stream.onAbort(resolve));
    unsubscribe = subscribe((event, data) => void stream.writeSSE({ event, data: JSON.stringify(data) }).catch(() => {}));
    await closed;
    clearInterval(ping);
    unsubscribe();
  });
}
