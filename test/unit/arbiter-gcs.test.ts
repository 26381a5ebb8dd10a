import { createServer, type IncomingMessage, type Server } from 'node:http';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { GcsLeaseStore } from '../../node-service/src/arbiter/gcs.ts';
import { silentLogger } from '../../node-service/src/log/logger.ts';

// The Cloud Storage lease through the real SDK against a local JSON API that applies generation
// preconditions as Cloud Storage does, recording every request (method, path, ifGenerationMatch).
const TTL = 6000;
let srv: Server;
let endpoint: string;
let object: { generation: number; metadata: Record<string, string> } | undefined;
let nextGen = 1000;
let fail: number | undefined;
let hang = false;
const requests: { method: string; path: string; ifGenerationMatch?: string }[] = [];
let clock = 0;

const body = (req: IncomingMessage) => new Promise<string>((r) => { let b = ''; req.on('data', (d) => (b += d)); req.on('end', () => r(b)); });

function resource() {
  return { kind: 'storage#object', bucket: 'vigil-leases', name: 'c1/db.lease', generation: String(object!.generation), metageneration: '1', metadata: object!.metadata };
}

function store(node: string): GcsLeaseStore {
  return new GcsLeaseStore({ type: 'gcs', bucket: 'vigil-leases', ttl: TTL }, { cluster: 'c1', module: 'db', node, log: silentLogger(), now: () => clock }, endpoint);
}

describe('gcs lease store (SDK against a JSON API with generation preconditions)', () => {
  beforeAll(async () => {
    srv = createServer(async (req, res) => {
      const url = new URL(req.url!, 'http://x');
      const ifGen = url.searchParams.get('ifGenerationMatch') ?? undefined;
      requests.push({ method: req.method!, path: url.pathname, ...(ifGen !== undefined ? { ifGenerationMatch: ifGen } : {}) });
      const text = await body(req);
      if (hang) return;
      const send = (code: number, json: unknown) => { res.writeHead(code, { 'content-type': 'application/json' }); res.end(JSON.stringify(json)); };
      if (fail) return send(fail, { error: { code: fail, message: fail === 429 ? 'The object exceeded the rate limit for object mutation operations' : 'error' } });
      if (req.method === 'GET' && url.pathname === '/storage/v1/b/vigil-leases/o/c1%2Fdb.lease') return object ? send(200, resource()) : send(404, { error: { code: 404, message: 'No such object' } });
      if (req.method === 'POST' && url.pathname === '/upload/storage/v1/b/vigil-leases/o') {
        if (ifGen === undefined || Number(ifGen) !== (object?.generation ?? 0)) return send(412, { error: { code: 412, message: 'At least one of the pre-conditions you specified did not hold.' } });
        const meta = JSON.parse(/\{"[^\n]*\}/.exec(text)![0]) as { metadata?: Record<string, string> };
        object = { generation: nextGen++, metadata: meta.metadata ?? {} };
        return send(200, resource());
      }
      send(400, { error: { code: 400, message: `unexpected ${req.method} ${url.pathname}` } });
    });
    await new Promise<void>((r) => srv.listen(0, '127.0.0.1', () => r()));
    endpoint = `http://127.0.0.1:${(srv.address() as { port: number }).port}`;
  });
  afterAll(() => {
    srv.closeAllConnections();
    srv.close();
  });
  beforeEach(() => {
    object = undefined;
    fail = undefined;
    hang = false;
    requests.length = 0;
    clock = 0;
  });

  it('creates with ifGenerationMatch=0, renews with its own generation, records {node, gen, fence}', async () => {
    const a = store('node1');
    const first = await a.claim(2, false);
    expect(first, first.reason).toMatchObject({ outcome: 'held' });
    expect(requests.filter((r) => r.method === 'POST')[0]).toMatchObject({ path: '/upload/storage/v1/b/vigil-leases/o', ifGenerationMatch: '0' });
    expect(object!.metadata).toEqual({ node: 'node1', gen: '2', fence: '2' });
    const g = object!.generation;
    expect(await a.claim(3, false)).toMatchObject({ outcome: 'held' });
    expect(requests.filter((r) => r.method === 'POST')[1]).toMatchObject({ ifGenerationMatch: String(g) });
    expect(object!.metadata).toMatchObject({ gen: '3', fence: '3' });
  });

  it('conflict: another holder is waited out for ttl unchanged, then taken with ifGenerationMatch = the generation seen (412 for the old holder)', async () => {
    const a = store('node1');
    const b = store('node2');
    await a.claim(1, false);
    expect(await b.claim(1, false)).toMatchObject({ outcome: 'taken', holder: 'node1' });
    clock = TTL - 1;
    expect(await b.claim(1, false)).toMatchObject({ outcome: 'taken' });
    clock = TTL + 1;
    const seen = object!.generation;
    expect(await b.claim(1, false)).toMatchObject({ outcome: 'held' });
    expect(requests.filter((r) => r.method === 'POST').at(-1)).toMatchObject({ ifGenerationMatch: String(seen) });
    expect(await a.claim(1, false)).toMatchObject({ outcome: 'taken', holder: 'node2' });
  });

  it('release clears the holder and keeps the fence: older generations are fenced, force overrides', async () => {
    const a = store('node1');
    const b = store('node2');
    await a.claim(5, false);
    await a.release();
    expect(object!.metadata).toEqual({ gen: '5', fence: '5' });
    expect(await b.claim(4, false)).toMatchObject({ outcome: 'fenced', gen: 5 });
    expect(await b.claim(4, true)).toMatchObject({ outcome: 'held' });
    expect(object!.metadata).toEqual({ node: 'node2', gen: '4', fence: '4' });
  });

  it('throttling (429) and a store that never answers: unreachable, with the reason', async () => {
    fail = 429;
    const throttled = await store('node1').claim(1, false);
    expect(throttled, throttled.reason).toMatchObject({ outcome: 'unreachable', reason: expect.stringMatching(/throttled by Cloud Storage \(429\)/) });
    fail = undefined;
    hang = true;
    expect(await store('node1').claim(1, false)).toMatchObject({ outcome: 'unreachable', reason: 'no answer within 2000 ms' });
  }, 10_000);
});
