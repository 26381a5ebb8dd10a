import { describe, expect, it } from 'vitest';
import { createCloudEventPoster, type PosterLogger } from '../../node-service/src/cloud-events/poster.ts';
import { cloudEventSchema, signEvent, verifySignature, SIGNATURE_HEADER, TIMESTAMP_HEADER } from '../../node-service/src/contract/events.ts';

const SECRET = Buffer.from('s3cret-s3cret-s3cret\n');
const T = 1_764_000_000_000;

function recordingLog() {
  const lines: string[] = [];
  const rec = (level: string) => (obj: object, msg?: string) => lines.push(`${level} ${msg ?? ''} ${JSON.stringify(obj)}`);
  const log: PosterLogger = { info: rec('info'), warn: rec('warn'), error: rec('error'), debug: rec('debug') };
  return { log, lines };
}

type Call = { url: string; headers: Record<string, string>; body: string };
function fakeFetch(statuses: number[]) {
  const calls: Call[] = [];
  const f = (async (url: string, init: RequestInit) => {
    calls.push({ url, headers: init.headers as Record<string, string>, body: init.body as string });
    const status = statuses.shift() ?? 200;
    if (status === 0) throw new TypeError('fetch failed: ECONNREFUSED');
    return new Response(JSON.stringify({ status }), { status });
  }) as unknown as typeof fetch;
  return { f, calls };
}

const until = async (cond: () => boolean, ms = 2000) => {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error('timed out');
    await new Promise((r) => setTimeout(r, 2));
  }
};

describe('event signing (shared by node and function)', () => {
  it('round-trips, ignores a trailing newline in the secret file, and rejects tampering', () => {
    const body = '{"a":1}';
    const h = signEvent(SECRET, body, T);
    expect(h[SIGNATURE_HEADER]).toMatch(/^v1=[0-9a-f]{64}$/);
    const hdr = { timestamp: h[TIMESTAMP_HEADER], signature: h[SIGNATURE_HEADER] };
    expect(verifySignature(Buffer.from('s3cret-s3cret-s3cret'), body, hdr, T + 1000)).toEqual({ ok: true, timestamp: T });
    expect(verifySignature(SECRET, '{"a":2}', hdr, T)).toMatchObject({ ok: false, status: 401, reason: expect.stringMatching(/bad signature/) });
    expect(verifySignature(Buffer.from('other-secret-xxxxxxx'), body, hdr, T)).toMatchObject({ ok: false, reason: expect.stringMatching(/bad signature/) });
  });

  it('rejects stale, future, unsigned and malformed requests with a clear reason', () => {
    const body = '{}';
    const h = signEvent(SECRET, body, T);
    const hdr = { timestamp: h[TIMESTAMP_HEADER], signature: h[SIGNATURE_HEADER] };
    expect(verifySignature(SECRET, body, hdr, T + 61_000)).toMatchObject({ ok: false, reason: expect.stringMatching(/stale or future timestamp: 61 s/) });
    expect(verifySignature(SECRET, body, hdr, T - 61_000)).toMatchObject({ ok: false });
    expect(verifySignature(SECRET, body, { timestamp: hdr.timestamp, signature: undefined }, T)).toMatchObject({ reason: expect.stringMatching(/must be signed/) });
    expect(verifySignature(SECRET, body, { timestamp: 'yesterday', signature: hdr.signature }, T)).toMatchObject({ reason: expect.stringMatching(/milliseconds/) });
    expect(verifySignature(SECRET, body, { timestamp: hdr.timestamp, signature: 'sha256=abc' }, T)).toMatchObject({ reason: expect.stringMatching(/v1=/) });
    // a valid signature with a re-stamped timestamp fails: the timestamp is signed
    expect(verifySignature(SECRET, body, { timestamp: String(T + 1), signature: hdr.signature }, T)).toMatchObject({ reason: expect.stringMatching(/bad signature/) });
  });
});

describe('createCloudEventPoster', () => {
  it('publish returns at once; the post is signed, schema-valid and verifiable', async () => {
    const { f, calls } = fakeFetch([200]);
    const { log } = recordingLog();
    const p = createCloudEventPoster({ url: 'https://fn.example/events', secret: SECRET, cluster: 'demo', node: 'node2', log, fetch: f });
    p.publish({ module: 'mirror', from: 'SECOND', to: 'ALONE', reason: 'peer node1 lost' });
    expect(calls).toHaveLength(0); // nothing happened synchronously
    await until(() => calls.length === 1);
    const c = calls[0];
    const e = cloudEventSchema.parse(JSON.parse(c.body));
    expect(e).toMatchObject({ cluster: 'demo', node: 'node2', module: 'mirror', from: 'SECOND', to: 'ALONE', reason: 'peer node1 lost', seq: 0 });
    expect(verifySignature(SECRET, c.body, { timestamp: c.headers[TIMESTAMP_HEADER], signature: c.headers[SIGNATURE_HEADER] }, Date.now())).toMatchObject({ ok: true });
    await p.close();
  });

  it('retries network errors and 5xx with backoff, re-signing each attempt; 409 counts as delivered; order is kept', async () => {
    const { f, calls } = fakeFetch([0, 503, 200, 409]);
    const { log } = recordingLog();
    const p = createCloudEventPoster({ url: 'https://fn.example/events', secret: SECRET, cluster: 'demo', node: 'node1', log, fetch: f, retryBaseMs: 5 });
    p.publish({ module: 'mirror', from: 'PRIM', to: 'STOP' });
    p.publish({ module: 'mirror', from: 'STOP', to: 'WAIT' });
    await until(() => calls.length === 4);
    const events = calls.map((c) => JSON.parse(c.body));
    expect(events.map((e) => `${e.seq}:${e.to}`)).toEqual(['0:STOP', '0:STOP', '0:STOP', '1:WAIT']);
    expect(new Set(events.slice(0, 3).map((e) => e.id)).size).toBe(1); // same id on every retry
    await p.close();
    expect(calls).toHaveLength(4);
  });

  it('a 401 is permanent (no retry) and logged without the secret or the URL query string', async () => {
    const { f, calls } = fakeFetch([401, 200]);
    const { log, lines } = recordingLog();
    const p = createCloudEventPoster({ url: 'https://fn.example/api/events?code=FUNCTION-KEY', secret: SECRET, cluster: 'demo', node: 'node1', log, fetch: f, retryBaseMs: 5 });
    p.publish({ module: 'mirror', from: 'PRIM', to: 'SECOND' });
    p.publish({ module: 'mirror', from: 'SECOND', to: 'PRIM' });
    await until(() => calls.length === 2);
    await p.close();
    expect(calls.map((c) => JSON.parse(c.body).seq)).toEqual([0, 1]);
    const all = lines.join('\n');
    expect(all).toMatch(/rejected \(HTTP 401\)/);
    expect(all).not.toContain('s3cret');
    expect(all).not.toContain('FUNCTION-KEY');
    expect(all).toContain('https://fn.example/api/events?[redacted]');
  });

  it('never throws from publish, bounds its queue, and close() stops retrying', async () => {
    const { f, calls } = fakeFetch(Array(1000).fill(503));
    const { log, lines } = recordingLog();
    const p = createCloudEventPoster({ url: 'https://fn.example/events', secret: SECRET, cluster: 'demo', node: 'node1', log, fetch: f, retryBaseMs: 50, maxQueue: 3, closeTimeoutMs: 50 });
    for (let i = 0; i < 10; i++) expect(() => p.publish({ module: 'mirror', from: 'SECOND', to: i % 2 ? 'PRIM' : 'ALONE' })).not.toThrow();
    expect(lines.filter((l) => l.includes('queue full'))).toHaveLength(7);
    await until(() => calls.length >= 1);
    const t0 = Date.now();
    await p.close();
    expect(Date.now() - t0).toBeLessThan(1000);
    const n = calls.length;
    await new Promise((r) => setTimeout(r, 120));
    expect(calls.length).toBe(n);
    p.publish({ module: 'mirror', from: 'SECOND', to: 'PRIM' }); // ignored after close
    await new Promise((r) => setTimeout(r, 20));
    expect(calls.length).toBe(n);
  });

  it('drops events older than maxAgeMs instead of delivering them late', async () => {
    let clock = T;
    const { f, calls } = fakeFetch([503, 503, 503]);
    const { log, lines } = recordingLog();
    const p = createCloudEventPoster({ url: 'https://fn.example/events', secret: SECRET, cluster: 'demo', node: 'node1', log, fetch: (async (u: string, i: RequestInit) => { clock += 60_000; return f(u, i); }) as typeof fetch, now: () => clock, retryBaseMs: 1, maxAgeMs: 90_000 });
    p.publish({ module: 'mirror', from: 'PRIM', to: 'STOP' });
    await until(() => lines.some((l) => l.includes('too old')));
    expect(calls).toHaveLength(2);
    await p.close();
  });
});
