import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { templateChecker } from './app-checker.ts';
import { type MirrorDb, runMirrorStory } from './app-dbs.ts';

/**
 * The e2e of a mirror database template: the failover story through real daemons and the VIP, then
 * the template's checker against a wedged (SIGSTOP) server.
 */
export function mirrorTemplateSuite(name: string, create: () => Promise<MirrorDb>, opts: { setupTimeoutMs?: number } = {}): void {
  describe(`template ${name}: a mirrored database through real daemons and the VIP`, () => {
    let db: MirrorDb | undefined;
    beforeAll(async () => {
      db = await create();
    }, opts.setupTimeoutMs ?? 180_000);
    afterAll(() => db?.app.destroy(), 60_000);

    it("kill -9 of the primary's namespace: the survivor takes over, every logged commit is there, the node returns SECOND, a swap keeps them all", async () => {
      const r = await runMirrorStory(db!, { swapBack: true, log: console.log });
      expect(r.loggedAtFailover).toBeGreaterThan(30);
      expect(r.missingAtFailover).toEqual([]);
      expect(r.missing).toEqual([]);
      expect(r.failoverMs).toBeLessThan(60_000);
    }, 300_000);

    it('the checker detects a wedged server (SIGSTOP) and passes again once it runs (SIGCONT)', async () => {
      const probe = templateChecker(db!.app, 'node1', db!.app.mod);
      expect((await probe.once()).ok).toBe(true);
      const pid = await db!.serverPid('node1');
      process.kill(pid, 'SIGSTOP');
      try {
        const wedged = await probe.once();
        expect(wedged.ok).toBe(false);
        expect(wedged.reason).toMatch(new RegExp(`no answer within ${probe.timeoutMs} ms`));
      } finally {
        process.kill(pid, 'SIGCONT');
      }
      expect((await probe.once()).ok).toBe(true);
    }, 60_000);
  });
}
