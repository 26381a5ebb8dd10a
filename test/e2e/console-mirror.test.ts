import { execFile } from 'node:child_process';
import { copyFileSync, mkdirSync, rmdirSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import type { Browser, Page } from 'puppeteer-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { NsCluster } from '../../node-service/src/demo/ns-cluster.ts';
import { launchChromium, loginConsole } from '../helpers/browser.ts';

const run = promisify(execFile);
const REPO = resolve(import.meta.dirname, '../..');
const SHOTS = join(REPO, 'test-artifacts/console');
const PRIV = '/srv/vigil-vgc';
const SUBNET = '198.18.147';

// The console on a real mirror (FUSE views, replication) in network namespaces: the VIP holder, the
// replication column, the bytes tracked while ALONE and a live resync with bytes, rate and ETA.
// Chromium itself runs in the LAN's client namespace (the only way it can reach 198.18.147.x).
describe('web console on a replicating mirror (namespaces, real browser)', () => {
  let c: NsCluster;
  let browser: Browser;
  let page: Page;
  let closeBrowser: () => Promise<void>;
  const url = (node: string, path: string) => `http://${c.node(node).addr}:9010${path}`;
  const cell = (node: string) => `#grid td.cell[data-node="${node}"][data-module="db"]`;
  const inside = (node: string, cmd: string) => run('nsenter', ['-t', String(c.node(node).proc!.pid), '-m', '-n', '--', 'sh', '-c', cmd], { timeout: 120_000 });

  beforeAll(async () => {
    mkdirSync(SHOTS, { recursive: true });
    c = await NsCluster.create({
      prefix: 'vgc',
      subnet: SUBNET,
      extraHosts: ['client'],
      privatePath: PRIV,
      module: { name: 'db', mode: 'mirror', id: 1, heartbeat: { pulse: '100ms', timeout: '1s' }, vip: [{ addr: `${SUBNET}.100/24`, interface: 'eth0' }], replication: { dirs: [`${PRIV}/data`] } },
    });
    for (const n of c.nodes) mkdirSync(join(n.root, 'private/data'), { recursive: true });
    c.start('node1');
    c.start('node2');
    await c.waitFor({ node1: 'WAIT', node2: 'WAIT' });
    await c.command('node1', 'prim');
    await c.waitFor({ node1: 'PRIM', node2: 'SECOND' }, 60_000);
    // chromium in the client's namespace; puppeteer talks to it over pipes, which `ip netns exec` passes on
    ({ browser, close: closeBrowser } = await launchChromium({ netns: c.lan.ns('client') }));
    page = await browser.newPage();
  }, 120_000);

  afterAll(async () => {
    await closeBrowser?.();
    await c?.destroy();
    try {
      rmdirSync(PRIV);
    } catch {
      /* not there */
    }
  });

  it('shows who holds the VIP and that the secondary is in sync', async () => {
    await loginConsole(page, url('node1', '/console'), c.token);
    await page.waitForSelector(`${cell('node1')} .state[data-state="PRIM"]`);
    await page.waitForSelector(`${cell('node2')} .state[data-state="SECOND"]`);
    expect(await page.$eval('#grid tr[data-module="db"] td.vip', (e) => e.textContent)).toBe(`${SUBNET}.100/24held by node1`);
    expect(await page.$eval(cell('node1'), (e) => e.textContent)).toContain('replicating synchronously to node2');
    expect(await page.$eval(cell('node2'), (e) => e.textContent)).toContain('in sync');
    // admin sees the configuration as loaded
    await page.click('#config-view summary');
    await page.waitForFunction(() => (document.getElementById('config-text')?.textContent ?? '').includes('"cluster": "vgc"'));
    await page.screenshot({ path: join(SHOTS, 'mirror-in-sync.png'), fullPage: true });
    await page.click('#config-view summary');
  });

  it('shows the bytes tracked while ALONE, then the resync with bytes, rate and ETA, then in sync again', async () => {
    // node2's daemon goes down (the page marks it UNREACHABLE) and comes back later
    await c.kill('node2', 'SIGTERM');
    await page.waitForSelector(`${cell('node1')} .state[data-state="ALONE"]`, { timeout: 10_000 });
    await page.waitForSelector(`#grid th.node.unreachable[data-node="node2"]`);
    await inside('node1', `dd if=/dev/urandom of=${PRIV}/data/big bs=1M count=160 status=none && sync`);
    await page.waitForFunction((sel) => /not replicated: [\d.]+ (MiB|KiB|B) to resync/.test(document.querySelector(sel)?.textContent ?? ''), { timeout: 10_000 }, cell('node1'));
    await page.screenshot({ path: join(SHOTS, 'mirror-alone.png'), fullPage: true });
    // slow node1's link so the resync lasts a few seconds (160 MiB at ~25 MB/s)
    await inside('node1', 'tc qdisc add dev eth0 root tbf rate 200mbit burst 64kb latency 200ms');
    await page.evaluate(() => {
      const seen: string[] = [];
      (window as unknown as { resyncSeen: string[] }).resyncSeen = seen;
      new MutationObserver(() => {
        for (const e of document.querySelectorAll('#grid .resync')) if (!seen.includes(e.textContent ?? '')) seen.push(e.textContent ?? '');
      }).observe(document.getElementById('grid')!, { childList: true, subtree: true });
    });
    c.start('node2');
    await page.waitForSelector('#grid .resync', { timeout: 20_000 });
    await page.waitForSelector('#grid th.node[data-node="node2"]:not(.unreachable)', { timeout: 5000 });
    await page.screenshot({ path: join(SHOTS, 'mirror-resync.png'), fullPage: true });
    if (process.env.VIGIL_UPDATE_SCREENSHOT) copyFileSync(join(SHOTS, 'mirror-resync.png'), join(REPO, 'docs/console.png'));
    const metrics = await c.get('client', url('node1', '/metrics'));
    const metrics2 = await c.get('client', url('node2', '/metrics'));
    await page.waitForSelector(`${cell('node1')} .state[data-state="PRIM"]`, { timeout: 60_000 });
    await page.waitForSelector(`${cell('node2')} .state[data-state="SECOND"]`);
    await page.waitForFunction((sel) => (document.querySelector(sel)?.textContent ?? '').includes('in sync'), {}, cell('node2'));
    const seen = await page.evaluate(() => (window as unknown as { resyncSeen: string[] }).resyncSeen);
    console.log(`resync as the page showed it: ${seen.join(' | ')}`);
    expect(seen.some((t) => /^resync \d+% — [\d.]+ MiB \/ 1[0-9]{2}\.\d MiB, [\d.]+ MiB\/s, ETA \d+ s$/.test(t))).toBe(true);
    expect(`${metrics?.body}\n${metrics2?.body}`).toMatch(/^vigil_resync_size_bytes\{module="db"\} [1-9]\d+$/m);
    await page.screenshot({ path: join(SHOTS, 'mirror-resynced.png'), fullPage: true });
  }, 120_000);
});
