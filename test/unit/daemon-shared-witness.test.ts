import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ModuleConfig } from '../../node-service/src/config/types.ts';
import { SharedWitnesses } from '../../node-service/src/daemon/shared-witness.ts';
import { silentLogger } from '../../node-service/src/log/logger.ts';
import { createWitness } from '../../node-service/src/witness/index.ts';

// A real HTTP witness on loopback that answers after 100 ms and counts the questions it gets.
let server: Server;
let url: string;
let asked = 0;
beforeAll(async () => {
  server = createServer((_req, res) => {
    asked += 1;
    setTimeout(() => res.end('ok'), 100);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/`;
});
afterAll(() => new Promise<void>((r) => server.close(() => r())));

const moduleWith = (name: string, http: string[]) => ({ name, witness: { ping: [], http, grace: 1000 } }) as unknown as ModuleConfig;

describe('SharedWitnesses', () => {
  it('modules with the same witnesses asking at once share one question; other witnesses get their own', async () => {
    const shared = new SharedWitnesses();
    const mods = Array.from({ length: 8 }, (_, i) => moduleWith(`m${i}`, [url]));
    const ws = mods.map((m) => shared.share(m, createWitness(m.witness, silentLogger(), { timeout: 1000 })));
    const other = moduleWith('x', [`${url}other`]);
    const wx = shared.share(other, createWitness(other.witness, silentLogger(), { timeout: 1000 }));
    asked = 0;
    const answers = await Promise.all([...ws.map((w) => w.reachable()), wx.reachable()]);
    expect(answers.every((a) => a)).toBe(true);
    expect(asked).toBe(2);
    // answered: the next question is a new one
    expect(await ws[3].reachable()).toBe(true);
    expect(asked).toBe(3);
  });

  it('an unreachable answer reaches every module that asked', async () => {
    const shared = new SharedWitnesses();
    const dead = 'http://127.0.0.1:1/';
    const ws = ['a', 'b', 'c'].map((n) => moduleWith(n, [dead])).map((m) => shared.share(m, createWitness(m.witness, silentLogger(), { timeout: 500 })));
    expect(await Promise.all(ws.map((w) => w.reachable()))).toEqual([false, false, false]);
  });
});
