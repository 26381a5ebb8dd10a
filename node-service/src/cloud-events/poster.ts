/**
 * Node side of the cloud path: pushes each module state transition to the cloud function's POST /events,
 * signed with the module's cloud_events secret (contract/events.ts, shared with the function).
 *
 *   const poster = createCloudEventPoster({ url, secret, cluster, node, log });
 *   poster.publish({ module: 'mirror', from: 'SECOND', to: 'ALONE', reason: 'peer node1 lost' });
 *   ...
 *   await poster.close();
 *
 * publish() never blocks and never throws: it stamps the event (id, time, sequence number) and queues
 * it; one sender loop posts the queue in order, re-signing every attempt (fresh timestamp), retrying
 * network errors, 5xx, 408 and 429 with exponential backoff and jitter. A 409 (the function had already
 * received this id) counts as delivered; any other 4xx is permanent and logged. The queue is bounded
 * (oldest dropped) and events older than `maxAgeMs` are dropped rather than delivered late: the
 * function's scheduled reconcile and the load balancer's own probes cover what they would have said.
 * Timers are unref'd: the poster never keeps the process alive. Neither the secret nor the URL's query
 * string (an Azure function key lives there) is ever logged.
 */
import { randomUUID } from 'node:crypto';
import { normalizeSecret, signEvent, type CloudEvent } from '../contract/events.ts';
import type { ModuleState } from '../contract/states.ts';

export interface PosterLogger {
  info(obj: object, msg?: string): void;
  warn(obj: object, msg?: string): void;
  error(obj: object, msg?: string): void;
  debug?(obj: object, msg?: string): void;
}

export interface CloudEventInput {
  module: string;
  from: ModuleState;
  to: ModuleState;
  reason?: string;
}

export interface CloudEventPoster {
  publish(e: CloudEventInput): void;
  /** delivers what is queued (up to `closeTimeoutMs`), then stops; publish() after close() is ignored */
  close(): Promise<void>;
}

export interface CloudEventPosterOptions {
  /** the function's POST /events URL */
  readonly url: string;
  /** contents of the module's cloud_events.secret_file (trailing newline ignored) */
  readonly secret: Buffer;
  readonly cluster: string;
  readonly node: string;
  readonly log: PosterLogger;
  /** per-attempt timeout, ms @default 5000 */
  readonly timeoutMs?: number;
  /** first retry delay, ms; doubles each attempt @default 200 */
  readonly retryBaseMs?: number;
  /** @default 10000 */
  readonly retryMaxMs?: number;
  /** attempts per event before it is dropped @default 8 */
  readonly maxAttempts?: number;
  /** events older than this are dropped, not delivered late, ms @default 120000 */
  readonly maxAgeMs?: number;
  /** queued events beyond this drop the oldest @default 100 */
  readonly maxQueue?: number;
  /** how long close() waits for the queue to drain, ms @default 3000 */
  readonly closeTimeoutMs?: number;
  /** injectable for tests */
  readonly fetch?: typeof fetch;
  readonly now?: () => number;
}

/** the URL without credentials or query string, for logs */
export function redactUrl(url: string): string {
  try {
    const u = new URL(url);
    return `${u.protocol}//${u.host}${u.pathname}${u.search ? '?[redacted]' : ''}`;
  } catch {
    return '[invalid url]';
  }
}

const RETRYABLE = new Set([408, 425, 429]);

export function createCloudEventPoster(opts: CloudEventPosterOptions): CloudEventPoster {
  const secret = normalizeSecret(Buffer.from(opts.secret)); // copy: the caller may zero its buffer
  const doFetch = opts.fetch ?? fetch;
  const now = opts.now ?? Date.now;
  const timeoutMs = opts.timeoutMs ?? 5000;
  const base = opts.retryBaseMs ?? 200;
  const maxDelay = opts.retryMaxMs ?? 10_000;
  const maxAttempts = opts.maxAttempts ?? 8;
  const maxAge = opts.maxAgeMs ?? 120_000;
  const maxQueue = opts.maxQueue ?? 100;
  const where = redactUrl(opts.url);
  const log = opts.log;

  const queue: CloudEvent[] = [];
  let seq = 0;
  let running: Promise<void> | undefined;
  let closed = false;
  let abort = new AbortController();
  let sleeping: { timer: NodeJS.Timeout; resolve: () => void } | undefined;

  const sleep = (ms: number) =>
    new Promise<void>((resolve) => {
      const timer = setTimeout(() => {
        sleeping = undefined;
        resolve();
      }, ms);
      timer.unref();
      sleeping = { timer, resolve };
    });

  async function attempt(e: CloudEvent): Promise<'delivered' | 'retry' | 'permanent'> {
    const body = JSON.stringify(e);
    const signal = AbortSignal.any([abort.signal, AbortSignal.timeout(timeoutMs)]);
    try {
      const res = await doFetch(opts.url, {
        method: 'POST',
        headers: { 'content-type': 'application/json', ...signEvent(secret, body, now()) },
        body,
        signal,
      });
      const text = await res.text().catch(() => '');
      if (res.ok || res.status === 409) return 'delivered';
      const reason = text.slice(0, 300);
      if (res.status >= 500 || RETRYABLE.has(res.status)) {
        log.warn({ url: where, status: res.status, reason, event: e.id }, 'cloud event not accepted, will retry');
        return 'retry';
      }
      log.error({ url: where, status: res.status, reason, event: e.id, module: e.module }, `cloud event rejected (HTTP ${res.status}): dropped`);
      return 'permanent';
    } catch (err) {
      log.warn({ url: where, err: (err as Error).message, event: e.id }, 'cloud event post failed, will retry');
      return 'retry';
    }
  }

  function cancelSleep(): void {
    if (!sleeping) return;
    clearTimeout(sleeping.timer);
    const { resolve } = sleeping;
    sleeping = undefined;
    resolve();
  }

  async function run(): Promise<void> {
    while (queue.length > 0 && !abort.signal.aborted) {
      const e = queue[0];
      let done = false;
      for (let i = 1; i <= maxAttempts && !done; i++) {
        if (now() - e.at > maxAge) {
          log.warn({ event: e.id, module: e.module, ageMs: now() - e.at }, 'cloud event too old: dropped (reconcile will converge)');
          break;
        }
        const r = await attempt(e);
        if (r === 'delivered') {
          log.debug?.({ event: e.id, module: e.module, from: e.from, to: e.to, attempts: i }, 'cloud event delivered');
          done = true;
        } else if (r === 'permanent') break;
        else if (i === maxAttempts) log.error({ event: e.id, module: e.module, attempts: i }, 'cloud event undeliverable: dropped');
        else {
          if (abort.signal.aborted) return;
          const backoff = Math.min(maxDelay, base * 2 ** (i - 1));
          await sleep(backoff / 2 + Math.random() * (backoff / 2));
        }
      }
      if (queue[0] === e) queue.shift();
    }
  }

  function kick(): void {
    if (running) return;
    running = run()
      .catch((err) => log.error({ err: (err as Error).message }, 'cloud event sender crashed'))
      .finally(() => {
        running = undefined;
        if (queue.length > 0 && !abort.signal.aborted) kick();
      });
  }

  return {
    publish(input: CloudEventInput): void {
      try {
        if (closed) return;
        const e: CloudEvent = {
          id: randomUUID(),
          cluster: opts.cluster,
          node: opts.node,
          module: input.module,
          from: input.from,
          to: input.to,
          ...(input.reason !== undefined ? { reason: String(input.reason).slice(0, 1000) } : {}),
          at: Math.trunc(now()),
          seq: seq++,
        };
        queue.push(e);
        while (queue.length > maxQueue) {
          const dropped = queue.splice(1, 1)[0]; // never the head: it may be in flight
          log.warn({ event: dropped?.id, module: dropped?.module }, 'cloud event queue full: oldest dropped');
        }
        queueMicrotask(kick);
      } catch (err) {
        log.error({ err: (err as Error).message }, 'cloud event publish failed');
      }
    },
    async close(): Promise<void> {
      closed = true;
      if (running) {
        const deadline = new Promise<void>((r) => setTimeout(r, opts.closeTimeoutMs ?? 3000).unref());
        // cut a backoff short: deliver what can be delivered now
        cancelSleep();
        await Promise.race([running, deadline]);
      }
      abort.abort();
      cancelSleep();
      queue.length = 0;
      if (running) await running;
      abort = new AbortController();
    },
  };
}
