import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createLan, type Lan } from '../../node-service/src/demo/lan.ts';
import { startKeepalived, type Keepalived } from '../helpers/keepalived.ts';

const ROOT = join(import.meta.dirname, '../..');
const VIP = '198.18.180.100';

function run(cmd: string, args: string[], timeoutMs: number): Promise<{ code: number; out: string }> {
  return new Promise((resolve) => {
    // VIGIL_SETUP_SKIP_NPM: the working tree's node_modules is shared with other runs; the package step is what is under test
    execFile(cmd, args, { cwd: ROOT, timeout: timeoutMs, maxBuffer: 32 << 20, env: { ...process.env, VIGIL_SETUP_SKIP_NPM: '1' } }, (err, stdout, stderr) => {
      resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, out: stdout + stderr });
    });
  });
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/**
 * An administrator's keepalived runs on the machine (here: one of this test's, in a namespace of its
 * own, with its own config and pidfiles, so the host's network is never touched). Running the demo,
 * and the test and benchmark setups, must leave it running and holding its address.
 */
describe('setup leaves services it did not start alone', () => {
  let lan: Lan;
  let ka: Keepalived;
  let pids: number[] = [];

  const holdsVip = async () => (await lan.tryExec('ka', ['ip', '-4', '-o', 'addr', 'show', 'dev', 'eth0'])).stdout.includes(`${VIP}/`);
  const stillRunning = async (after: string) => {
    for (const pid of pids) expect(alive(pid), `keepalived pid ${pid} after ${after}`).toBe(true);
    expect(await holdsVip(), `keepalived's address after ${after}`).toBe(true);
  };

  beforeAll(async () => {
    lan = await createLan('vgis', [{ name: 'ka', addr: '198.18.180.1/24' }]);
    ka = startKeepalived(lan, { nodes: [{ host: 'ka', addr: '198.18.180.1', priority: 100 }], vip: `${VIP}/24`, routerId: 180 });
    for (let i = 0; i < 100 && !(await holdsVip()); i++) await new Promise((r) => setTimeout(r, 100));
    expect(await holdsVip(), ka.output.get('ka')?.join('\n')).toBe(true);
    // the parent and its VRRP child, as keepalived itself recorded them
    pids = ['ka.pid', 'ka.vrrp.pid'].map((f) => Number(readFileSync(join(ka.dir, f), 'utf8').trim()));
    expect(pids.every((p) => p > 1 && alive(p))).toBe(true);
  }, 60_000);

  afterAll(async () => {
    await ka?.stop();
    await lan?.destroy();
  });

  it('npm run demo: the demo runs to the end and the keepalived is still running', async () => {
    const r = await run('npm', ['run', 'demo', '--', '--fast'], 280_000);
    expect(r.out).toMatch(/Demo complete/);
    expect(r.code, r.out.slice(-3000)).toBe(0);
    await stillRunning('npm run demo');
  }, 300_000);

  it('the test and benchmark setups leave it running too', async () => {
    for (const mode of [['test'], ['bench', 'vip']]) {
      const r = await run('bash', ['scripts/setup-system.sh', ...mode], 280_000);
      expect(r.code, r.out).toBe(0);
      await stillRunning(`setup-system.sh ${mode.join(' ')}`);
    }
  }, 600_000);
});
