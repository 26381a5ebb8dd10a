import { afterAll, describe, expect, it } from 'vitest';
import type { AppCluster } from '../helpers/app-cluster.ts';
import { templateChecker } from '../helpers/app-checker.ts';
import { createWebFarm, runFarmStory, type WebServer } from '../helpers/app-farm.ts';

// nginx and Apache from Debian on three farm nodes, run by the templates' scripts under real Vigil
// daemons (each node in its own network and mount namespace); a client requests through the VIP.
describe.each([
  ['nginx', 'vgang', '198.18.62'],
  ['apache', 'vgaap', '198.18.63'],
] as const)('template %s: a farm of three web servers through real daemons and the VIP', (kind: WebServer, prefix, subnet) => {
  let app: AppCluster | undefined;
  afterAll(() => app?.destroy(), 60_000);

  it('web server stopped on a node: its share moves; started again: it returns; a node killed: its share moves', async () => {
    app = await createWebFarm(kind, prefix, subnet);
    const r = await runFarmStory(app, console.log);
    console.log(`${kind}: ${r.requests} requests, served by ${JSON.stringify(r.servedBy)}`);
    // after the checker took node3 out, every request succeeds and none reaches node3
    expect(r.afterLeaveBad).toBe(0);
    expect(r.stopGapMs).toBeLessThan(5000);
    // node3 serves again once its web server runs
    expect(r.returnedMs).toBeGreaterThan(0);
    // after the heartbeat timeout, every request succeeds and none reaches the killed node2
    expect(r.afterKillBad).toBe(0);
    expect(r.killGapMs).toBeLessThan(3000);
    expect(Object.keys(r.servedBy).sort()).toEqual(['node1', 'node2', 'node3']);
  }, 180_000);

  it('the checker detects a wedged server (SIGSTOP of every process) and passes again after SIGCONT', async () => {
    const probe = templateChecker(app!, 'node1', app!.mod);
    expect((await probe.once()).ok).toBe(true);
    const pid = Number((await app!.inside('node1', ['cat', app!.mod.values.PID_FILE])).trim());
    const pids = [pid, ...(await app!.inside('node1', ['pgrep', '-P', String(pid)])).split('\n').filter(Boolean).map(Number)];
    for (const p of pids) process.kill(p, 'SIGSTOP');
    try {
      const wedged = await probe.once();
      expect(wedged.ok, wedged.reason).toBe(false);
    } finally {
      for (const p of pids) process.kill(p, 'SIGCONT');
    }
    expect((await probe.once()).ok).toBe(true);
  }, 60_000);
});
