import { describe, expect, it } from 'vitest';
import { silentLogger } from '../../node-service/src/log/logger.ts';
import { IpBatch } from '../../node-service/src/vip/batch.ts';

// Read-only commands against the host's own namespace: nothing is changed.
describe('IpBatch', () => {
  it('resolves a command that succeeds, rejects one that fails with ip\'s message, keeps going', async () => {
    const b = new IpBatch(['ip', '-force', '-batch', '-'], silentLogger());
    try {
      await b.run(['link', 'show', 'dev', 'lo']);
      await expect(b.run(['link', 'show', 'dev', 'vigil-absent0'])).rejects.toThrow(/vigil-absent0/);
      await Promise.all([b.run(['addr', 'show', 'dev', 'lo']), b.run(['route', 'show', 'table', 'local'])]);
      const t0 = Date.now();
      for (let i = 0; i < 20; i++) await b.run(['link', 'show', 'dev', 'lo']);
      expect(Date.now() - t0).toBeLessThan(2000);
    } finally {
      b.close();
    }
  });

  it('a helper restarted after a reset is not failed by the exit of the one before', async () => {
    const b = new IpBatch(['ip', '-force', '-batch', '-'], silentLogger());
    try {
      await b.run(['link', 'show', 'dev', 'lo']);
      b.close();
      await b.run(['link', 'show', 'dev', 'lo']);
      await new Promise((r) => setTimeout(r, 100));
      await b.run(['addr', 'show', 'dev', 'lo']);
    } finally {
      b.close();
    }
  });

  it('rejects (so the caller falls back) when the helper cannot start', async () => {
    const b = new IpBatch(['/nonexistent/ip'], silentLogger(), 500);
    await expect(b.run(['link', 'show'])).rejects.toThrow(/ip batch/);
    b.close();
  });

  it('shared(): one helper for every user of the same argv, stopped with its last user', async () => {
    const argv = ['ip', '-force', '-batch', '-'];
    const a = IpBatch.shared(argv, silentLogger());
    const b = IpBatch.shared(argv, silentLogger());
    expect(b).toBe(a);
    await Promise.all([a.run(['link', 'show', 'dev', 'lo']), b.run(['addr', 'show', 'dev', 'lo'])]);
    a.release();
    await b.run(['link', 'show', 'dev', 'lo']);
    b.release();
    const c = IpBatch.shared(argv, silentLogger());
    expect(c).not.toBe(a);
    await c.run(['link', 'show', 'dev', 'lo']);
    c.release();
  });
});
