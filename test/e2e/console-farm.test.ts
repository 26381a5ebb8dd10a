import { mkdirSync } from 'node:fs';
import { join, resolve } from 'node:path';
import type { Browser, Page } from 'puppeteer-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { NsCluster } from '../../node-service/src/demo/ns-cluster.ts';
import { launchChromium, loginConsole } from '../helpers/browser.ts';

const REPO = resolve(import.meta.dirname, '../..');
const SHOTS = join(REPO, 'test-artifacts/console');
const SUBNET = '198.18.148';

// The console on a three-node farm in network namespaces (real nftables filter): every node UP, the
// VIP held by all, each node's share of the buckets by its power, and the shares moving when a node dies.
describe('web console on a farm (namespaces, real browser)', () => {
  let c: NsCluster;
  let browser: Browser;
  let page: Page;
  let closeBrowser: () => Promise<void>;
  const cell = (node: string) => `#grid td.cell[data-node="${node}"][data-module="web"]`;
  const share = (node: string) => page.$eval(cell(node), (e) => /share (\d+)% \((\d+)\/256 buckets\)/.exec(e.textContent ?? '')?.slice(1).map(Number) ?? []);

  beforeAll(async () => {
    mkdirSync(SHOTS, { recursive: true });
    c = await NsCluster.create({
      prefix: 'vgq',
      subnet: SUBNET,
      nodes: 3,
      extraHosts: ['client'],
      module: { name: 'web', mode: 'farm', id: 2, heartbeat: { pulse: '100ms', timeout: '1s' }, vip: [{ addr: `${SUBNET}.200/24`, interface: 'eth0' }], farm: { rules: [{ port: 8080, proto: 'tcp', balance: 'client_ip' }], power: { node1: 2, node2: 1, node3: 1 } } },
    });
    for (const n of c.nodes) c.start(n.name);
    await c.waitFor({ node1: 'UP', node2: 'UP', node3: 'UP' }, 60_000);
    ({ browser, close: closeBrowser } = await launchChromium({ netns: c.lan.ns('client') }));
    page = await browser.newPage();
  }, 120_000);

  afterAll(async () => {
    await closeBrowser?.();
    await c?.destroy();
  });

  it('shows the three nodes UP, the VIP on all of them and the shares by power', async () => {
    await loginConsole(page, `http://${c.node('node2').addr}:9010/console`, c.token);
    for (const n of ['node1', 'node2', 'node3']) await page.waitForSelector(`${cell(n)} .state[data-state="UP"]`);
    expect(await page.$eval('#via', (e) => e.textContent)).toBe('via node2');
    // each node reports its own share, and the three views converge within a few pulses of the last
    // node's arrival: wait for all three, then check the figures
    await page.waitForFunction((sel) => /share 50% \(128\/256 buckets\)/.test(document.querySelector(sel)?.textContent ?? ''), { timeout: 10_000 }, cell('node1'));
    for (const n of ['node2', 'node3']) {
      await page.waitForFunction((sel) => /share 25% \(64\/256 buckets\)/.test(document.querySelector(sel)?.textContent ?? ''), { timeout: 10_000 }, cell(n)).catch(() => undefined);
      expect(await share(n)).toEqual([25, 64]);
    }
    const vipHeld = `${SUBNET}.200/24held by node1, node2, node3`;
    await page.waitForFunction((want) => document.querySelector('#grid tr[data-module="web"] td.vip')?.textContent === want, { timeout: 10_000 }, vipHeld).catch(() => undefined);
    expect(await page.$eval('#grid tr[data-module="web"] td.vip', (e) => e.textContent)).toBe(vipHeld);
    // a farm has no primary: only start, stop and restart
    expect(await page.$$eval(`button.act[data-node="node1"][data-module="web"]`, (b) => b.map((x) => x.textContent))).toEqual(['start', 'stop', 'restart']);
    await page.screenshot({ path: join(SHOTS, 'farm-up.png'), fullPage: true });
  });

  it('moves node3\'s share to the others when its daemon is killed', async () => {
    await c.kill('node3');
    await page.waitForSelector('#grid th.node.unreachable[data-node="node3"]', { timeout: 5000 });
    await page.waitForFunction((sel) => /share 67% \(171\/256 buckets\)/.test(document.querySelector(sel)?.textContent ?? ''), { timeout: 10_000 }, cell('node1'));
    await page.waitForFunction((sel) => /share 33% \(85\/256 buckets\)/.test(document.querySelector(sel)?.textContent ?? ''), { timeout: 10_000 }, cell('node2'));
    expect(await page.$eval('#grid tr[data-module="web"] td.vip', (e) => e.textContent)).toBe(`${SUBNET}.200/24held by node1, node2`);
    await page.screenshot({ path: join(SHOTS, 'farm-node3-killed.png'), fullPage: true });
  });
});
