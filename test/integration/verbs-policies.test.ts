import { readFileSync } from 'node:fs';

import { afterEach, describe, expect, it } from 'vitest';
import { LocalCluster } from '../../node-service/src/demo/local-cluster.ts';

/** swap_back and max_failovers with two real daemons (separate processes, loopback addresses). */
describe('failover policies against real daemons', () => {
  let c: LocalCluster | undefined;
  afterEach(async () => {
    await c?.destroy();
    c = undefined;
  });

  it('default_primary + swap_back: after a failover the default primary returns, resyncs, and gets the role back by itself', async () => {
    c = new LocalCluster({ module: { default_primary: 'node1', swap_back: true } });
    c.start('node1');
    c.start('node2');
    await c.waitFor({ node1: 'PRIM', node2: 'SECOND' }, 45_000);
    await c.kill('node1');
    await c.waitFor({ node2: 'ALONE' }, 15_000);
    c.start('node1');
    await c.waitFor({ node1: 'PRIM', node2: 'SECOND' }, 45_000);
    expect(readFileSync(c.node('node2').logFile, 'utf8')).toMatch(/PRIM -> SECOND: swap_back: default_primary node1 is back and in sync/);
  }, 120_000);

  it('max_failovers: the takeover beyond the limit stops the module, with a clear log line', async () => {
    c = new LocalCluster({ module: { default_primary: 'node1', max_failovers: { count: 1, window: '1h' } } });
    c.start('node1');
    c.start('node2');
    await c.waitFor({ node1: 'PRIM', node2: 'SECOND' }, 45_000);
    // takeover 1: allowed
    await c.kill('node1');
    await c.waitFor({ node2: 'ALONE' }, 15_000);
    c.start('node1');
    await c.waitFor({ node1: 'SECOND', node2: 'PRIM' }, 45_000);
    expect((await c.command('node2', 'swap')).status).toBe(200);
    await c.waitFor({ node1: 'PRIM', node2: 'SECOND' }, 30_000);
    // takeover 2 within the hour: refused, node2 stops
    await c.kill('node1');
    await c.waitFor({ node2: 'STOP' }, 15_000);
    const log = readFileSync(c.node('node2').logFile, 'utf8');
    expect(log).toMatch(/max_failovers reached: 1 automatic failovers or restarts within 1h; stopping the module instead of taking over\. Find the cause, then run vigil start/);
    expect((await c.status('node2'))?.reason).toMatch(/max_failovers reached/);
    // and `vigil start` is what the line says to do
    expect((await c.command('node2', 'start')).status).toBe(200);
  }, 150_000);
});

// the config keys are validated like every other: a swap_back without default_primary is named
describe('policy keys in the config', () => {
  it('swap_back needs default_primary; failover takes on/off', async () => {
    const { parseConfigText } = await import('../../node-service/src/config/load.ts');
    const base = (extra: string) => `cluster: c\nsecret_file: /x\napi: { admin_token_file: /y }\nnodes: [{ name: a, addrs: [198.18.0.1] }, { name: b, addrs: [198.18.0.2] }]\nmodules:\n  - { name: m, mode: mirror, id: 1, ${extra} }\n`;
    expect(() => parseConfigText(base('swap_back: true'), 'c.yaml', { skipFileChecks: true })).toThrow(/modules\[0\]\.swap_back: swap_back needs default_primary/);
    expect(() => parseConfigText(base('failover: maybe'), 'c.yaml', { skipFileChecks: true })).toThrow(/modules\[0\]\.failover: must be on or off/);
    expect(() => parseConfigText(base('max_failovers: { count: 0 }'), 'c.yaml', { skipFileChecks: true })).toThrow(/modules\[0\]\.max_failovers\.count/);
    expect(() => parseConfigText(base('replication: { dirs: [/srv/d], encryption: aes }'), 'c.yaml', { skipFileChecks: true })).toThrow(/modules\[0\]\.replication\.encryption: must be "tls" or "none"/);
    expect(parseConfigText(base('replication: { dirs: [/srv/d] }'), 'c.yaml', { skipFileChecks: true }).modules[0].replication?.encryption).toBe('tls');
    const ok = parseConfigText(base('failover: off, default_primary: a, swap_back: true, max_failovers: { count: 5, window: 2h }'), 'c.yaml', { skipFileChecks: true });
    expect(ok.modules[0]).toMatchObject({ failover: false, swap_back: true, max_failovers: { count: 5, window: 7_200_000 } });
    expect(parseConfigText(base(''), 'c.yaml', { skipFileChecks: true }).modules[0]).toMatchObject({ failover: true, swap_back: false, max_failovers: { count: 3, window: 86_400_000 } });
  });
});


