import type { Context } from 'hono';
import { streamSSE } from 'hono/streaming';

export const SSE_PING_MS = 1000;

/**
 * A server-sent-event stream fed by `subscribe` until the client goes away. A comment line every
 * second lets the far end tell a silent-but-alive stream from a dead one.
 */
export function sseStream(c: Context, subscribe: (send: (event: string, data: unknown) => void, end: () => void) => () => void, alive: () => boolean = () => true): Response {
  c.header('Cache-Control', 'no-store');
  c.header('X-Accel-Buffering', 'no');
  return streamSSE(c, async (stream) => {
    let end = () => {};
    const closed = new Promise<void>((resolve) => {
      end = resolve;
      stream.onAbort(resolve);
    });
    // the ping also asks whether the stream may go on (a console session whose token was withdrawn may not)
    const ping = setInterval(() => (alive() ? void stream.write(': ping\n\n').catch(() => {}) : end()), SSE_PING_MS);
    const unsubscribe = subscribe((event, data) => void stream.writeSSE({ event, data: JSON.stringify(data) }).catch(() => {}), end);
    await closed;
    clearInterval(ping);
    unsubscribe();
    await stream.close().catch(() => {});
  });
}
