import { execFile } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LocalCluster } from '../../node-service/src/demo/local-cluster.ts';

const BIN = join(import.meta.dirname, '../../bin/vigil.mjs');

function vigil(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [BIN, ...args], { timeout: 30_000 }, (err, stdout, stderr) => {
      resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stdout, stderr });
    });
  });
}

describe('vigil CLI against real daemons', () => {
  let c: LocalCluster;
  let cfg: string[];
  beforeAll(async () => {
    c = new LocalCluster({ module: { default_primary: 'node1' } });
    c.start('node1');
    c.start('node2');
    await c.waitFor({ node1: 'PRIM', node2: 'SECOND' }, 45_000);
    cfg = ['--config', c.configFile, '--node', 'node1'];
  }, 60_000);
  afterAll(() => c?.destroy());

  it('state --json prints the contract object', async () => {
    const r = await vigil(['state', '-m', 'app', '--json', ...cfg]);
    expect(r.code).toBe(0);
    const s = JSON.parse(r.stdout);
    expect(s).toMatchObject({ module: 'app', node: 'node1', mode: 'mirror', state: 'PRIM', ready: true, peers: [{ node: 'node2', state: 'SECOND' }] });
    expect(s).toHaveProperty('resync');
  });

  it('state prints an aligned table', async () => {
    const r = await vigil(['state', ...cfg]);
    expect(r.code).toBe(0);
    const [head, row] = r.stdout.trim().split('\n');
    expect(head).toMatch(/^MODULE\s+NODE\s+MODE\s+STATE\s+READY\s+PEERS/);
    expect(row.indexOf('PRIM')).toBe(head.indexOf('STATE'));
  });

  it('--api talks to another node', async () => {
    const tokenFile = join(c.dir, 'admin.token');
    const r = await vigil(['state', '-m', 'app', '--json', '--api', c.url('node2', ''), '--token-file', tokenFile]);
    expect(JSON.parse(r.stdout)).toMatchObject({ node: 'node2', state: 'SECOND' });
  });

  it('a refused command exits non-zero with a one-line reason', async () => {
    const r = await vigil(['prim', '-m', 'app', ...cfg]);
    expect(r.code).not.toBe(0);
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
    expect(r.stderr).toMatch(/already primary/);
  });

  it('an unknown module exits non-zero naming the modules', async () => {
    const r = await vigil(['state', '-m', 'nosuch', ...cfg]);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toMatch(/unknown module "nosuch" \(modules: app\)/);
  });

  it('a missing -m is a usage error', async () => {
    const r = await vigil(['swap', ...cfg]);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toMatch(/--module/);
  });

  it('swap, then log shows it', async () => {
    const r = await vigil(['swap', '-m', 'app', ...cfg]);
    expect(r.code).toBe(0);
    await c.waitFor({ node1: 'SECOND', node2: 'PRIM' }, 20_000);
    const log = await vigil(['log', '-m', 'app', '-n', '20', ...cfg]);
    expect(log.code).toBe(0);
    expect(log.stdout).toMatch(/PRIM -> SECOND begin: swap/);
  });

  it('a daemon that is not running is a clear error', async () => {
    const r = await vigil(['state', '--api', 'http://127.0.0.1:1', '--token-file', join(c.dir, 'admin.token')]);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toMatch(/cannot reach the vigil daemon at http:\/\/127\.0\.0\.1:1/);
  });
});

describe('vigil config check', () => {
  it('exit 0 on a good file, 1 with file and key path on a bad one', async () => {
    const c = new LocalCluster();
    try {
      expect((await vigil(['config', 'check', '--config', c.configFile])).code).toBe(0);
      const bad = join(c.dir, 'bad.yaml');
      writeFileSync(bad, (await import('node:fs')).readFileSync(c.configFile, 'utf8').replace('timeout: 1s', 'timeout: 150ms'));
      const r = await vigil(['config', 'check', '--config', bad]);
      expect(r.code).toBe(1);
      expect(r.stderr).toContain(`${bad}: modules[0].heartbeat.timeout: must be longer than 2 × pulse`);
    } finally {
      await c.destroy();
    }
  });
});
