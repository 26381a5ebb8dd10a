import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';

const BIN = join(import.meta.dirname, '../../bin/vigil.mjs');

function demo(args: string[]): Promise<{ code: number; out: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [BIN, 'demo', '--fast', ...args], { timeout: 280_000, maxBuffer: 16 << 20 }, (err, stdout, stderr) => {
      resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, out: stdout + stderr });
    });
  });
}

// The README's main job: the demos must run to the end and exit 0 on this machine.
describe('vigil demo', () => {
  it('mirror in namespaces: failover by link cut with no acknowledged record lost, resync, swap', async () => {
    const r = await demo([]);
    expect(r.out).toMatch(/Demo complete/);
    expect(r.out).toMatch(/missing on node\d: 0/);
    expect(r.out).toMatch(/never on both nodes at once/);
    expect(r.code, r.out.slice(-3000)).toBe(0);
  }, 300_000);

  it('farm: three nodes share the VIP, the spread moves on a link cut and comes back', async () => {
    const r = await demo(['--farm']);
    expect(r.out).toMatch(/Farm demo complete/);
    expect(r.code, r.out.slice(-3000)).toBe(0);
  }, 300_000);
});
