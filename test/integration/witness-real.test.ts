import { createServer, type Server } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { silentLogger } from '../../node-service/src/log/logger.ts';
import { createWitness } from '../../node-service/src/witness/index.ts';
import { createLan, type Lan } from '../helpers/netns.ts';

const log = silentLogger();
let srv: Server;
let base: string;

describe('witness', () => {
  beforeAll(async () => {
    srv = createServer((req, res) => {
      if (req.url === '/ok') res.end('OK');
      else if (req.url === '/hang') return; // never answers
      else { res.statusCode = 503; res.end('no'); }
    });
    await new Promise<void>((r) => srv.listen(0, '127.0.0.1', () => r()));
    base = `http://127.0.0.1:${(srv.address() as { port: number }).port}`;
  });
  afterAll(() => {
    srv.closeAllConnections();
    srv.close();
  });

  it('reachable when one HTTP witness answers 2xx, even if another hangs', async () => {
    const w = createWitness({ ping: [], http: [`${base}/hang`, `${base}/ok`] }, log, { timeout: 2000 });
    const t0 = Date.now();
    expect(await w.ask()).toMatchObject({ reachable: true, by: `http ${base}/ok` });
    expect(Date.now() - t0).toBeLessThan(500);
  });

  it('not reachable on non-2xx, refused connection or timeout, with each reason', async () => {
    const closed = createServer();
    await new Promise<void>((r) => closed.listen(0, '127.0.0.1', () => r()));
    const dead = `http://127.0.0.1:${(closed.address() as { port: number }).port}/`;
    await new Promise<void>((r) => closed.close(() => r()));
    const w = createWitness({ ping: [], http: [`${base}/bad`, dead, `${base}/hang`] }, log, { timeout: 300 });
    const a = await w.ask();
    expect(a.reachable).toBe(false);
    expect(a.reasons).toEqual(expect.arrayContaining([`http ${base}/bad: status 503`, `http ${dead}: ECONNREFUSED`, `http ${base}/hang: no answer within 300 ms`]));
    expect(a.ms).toBeLessThan(1000);
  });

  it('no witness configured: always reachable, configured false', async () => {
    const w = createWitness(undefined, log);
    expect(w.configured).toBe(false);
    expect(await w.reachable()).toBe(true);
  });

  describe('ping witnesses in namespaces', () => {
    let lan: Lan;
    beforeAll(async () => {
      lan = await createLan('vgv', [
        { name: 'n1', addr: '198.18.4.1/24' },
        { name: 'wit', addr: '198.18.4.9/24' },
      ]);
    });
    afterAll(async () => {
      await lan?.destroy();
    });

    it('answers while the witness is reachable, not once the node is cut off', async () => {
      const w = createWitness({ ping: ['198.18.4.9', '198.18.4.77'], http: [] }, log, { timeout: 500, netns: lan.ns('n1') });
      expect(await w.ask()).toMatchObject({ reachable: true, by: 'ping 198.18.4.9' });
      await lan.cut('n1');
      try {
        const t0 = Date.now();
        expect(await w.reachable()).toBe(false);
        expect(Date.now() - t0).toBeLessThan(1500);
      } finally {
        await lan.restore('n1');
      }
      // carrier-up reaches the bridge port through linkwatch (up to 1 s)
      let back = false;
      for (let i = 0; i < 10 && !back; i++) back = await w.reachable();
      expect(back).toBe(true);
    });
  });
});
