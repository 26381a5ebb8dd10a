import { execFile } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LocalCluster } from '../../node-service/src/demo/local-cluster.ts';

const BIN = join(import.meta.dirname, '../../bin/vigil.mjs');

function vigil(args: string[], timeout = 60_000): Promise<{ code: number; stdout: string; stderr: string; ms: number }> {
  const t0 = Date.now();
  return new Promise((resolve) => {
    execFile(process.execPath, [BIN, ...args], { timeout }, (err, stdout, stderr) => {
      resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stdout, stderr, ms: Date.now() - t0 });
    });
  });
}

const alive = (pid: number) => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};

/**
 * The operator verbs against two real daemons (separate processes on loopback addresses): each one
 * used as meant, and misused (unknown module, wrong state, stopped daemon), with the error naming
 * what to do.
 */
describe('operator verbs against real daemons', () => {
  let c: LocalCluster;
  let on1: string[];
  let on2: string[];
  let all: string[];
  beforeAll(async () => {
    c = new LocalCluster({
      module: { default_primary: 'node1' },
      // start_second hangs on node2 while the file ../hang exists: what forcestop is for
      scripts: { start_second: 'if [ "$VIGIL_NODE" = node2 ] && [ -f ../hang ]; then echo $$ > ../hang.pid; sleep 600; fi' },
    });
    c.start('node1');
    c.start('node2');
    await c.waitFor({ node1: 'PRIM', node2: 'SECOND' }, 45_000);
    on1 = ['--config', c.configFile, '--node', 'node1'];
    on2 = ['--config', c.configFile, '--node', 'node2'];
    all = ['--config', c.configFile, '--all-nodes'];
  }, 60_000);
  afterAll(() => c?.destroy());

  describe('waitstate', () => {
    it('returns at once when the state is reached', async () => {
      const r = await vigil(['waitstate', '-m', 'app', 'PRIM', ...on1]);
      expect(r.code, r.stderr).toBe(0);
      expect(r.stdout).toMatch(/^app: PRIM on node1/);
    });

    it('exits 1 at the timeout, saying which state the module is in', async () => {
      const r = await vigil(['waitstate', '-m', 'app', 'SECOND', '--timeout', '1500ms', ...on1]);
      expect(r.code).toBe(1);
      expect(r.stderr).toMatch(/app: still PRIM on node1 after 1500ms \(waiting for SECOND; .*\): see vigil log -m app/);
      expect(r.ms).toBeGreaterThanOrEqual(1500);
    });

    it('misuse: unknown state, a state the mode never has, unknown module, bad timeout, stopped daemon', async () => {
      const bad = await vigil(['waitstate', '-m', 'app', 'RUNNING', ...on1]);
      expect([bad.code, bad.stderr.trim()]).toEqual([1, 'vigil: unknown state "RUNNING": give one of STOP, WAIT, ALONE, PRIM, SECOND, UP']);
      const up = await vigil(['waitstate', '-m', 'app', 'UP', ...on1]);
      expect([up.code, up.stderr.trim()]).toEqual([1, 'vigil: a mirror module is never UP: give one of STOP, WAIT, ALONE, PRIM, SECOND']);
      const mod = await vigil(['waitstate', '-m', 'nosuch', 'PRIM', ...on1]);
      expect(mod.code).toBe(1);
      expect(mod.stderr).toMatch(/unknown module "nosuch" \(modules: app\)/);
      const t = await vigil(['waitstate', '-m', 'app', 'PRIM', '--timeout', 'soon', ...on1]);
      expect(t.stderr).toMatch(/--timeout soon: give a duration such as 30s/);
      const down = await vigil(['waitstate', '-m', 'app', 'PRIM', '--api', 'http://127.0.0.1:1', '--token-file', join(c.dir, 'admin.token')]);
      expect(down.code).toBe(1);
      expect(down.stderr).toMatch(/cannot reach the vigil daemon at http:\/\/127\.0\.0\.1:1 .*is it running\?/);
    });
  });

  describe('--all-nodes', () => {
    it('state runs on each node and reports per node', async () => {
      const r = await vigil(['state', '-m', 'app', ...all]);
      expect(r.code, r.stderr).toBe(0);
      expect(r.stdout).toMatch(/^node1: MODULE/m);
      expect(r.stdout).toMatch(/^node1: app\s+node1\s+mirror\s+PRIM/m);
      expect(r.stdout).toMatch(/^node2: app\s+node2\s+mirror\s+SECOND/m);
      const j = await vigil(['state', '-m', 'app', '--json', ...all]);
      const objs = j.stdout.trim().split('\n').map((l) => JSON.parse(l) as { node: string; state: string });
      expect(objs.map((o) => [o.node, o.state]).sort()).toEqual([['node1', 'PRIM'], ['node2', 'SECOND']]);
    });

    it('a refused command fails on the node that refused it, and says so', async () => {
      const r = await vigil(['prim', '-m', 'app', ...all]);
      expect(r.code).toBe(1);
      expect(r.stderr).toMatch(/^node1: already primary/m);
      expect(r.stderr).toMatch(/^node2: node1 is primary \(PRIM\): use vigil swap/m);
      expect(r.stderr).toMatch(/failed on node1, node2 \(2 of 2 nodes\)/);
    });

    it('misuse: --all-nodes with --api, unknown module', async () => {
      const both = await vigil(['state', ...all, '--api', c.url('node1', '')]);
      expect(both.stderr).toMatch(/--all-nodes and --api exclude each other/);
      const mod = await vigil(['stopstart', '-m', 'nosuch', ...all]);
      expect(mod.code).toBe(1);
      expect(mod.stderr).toMatch(/unknown module "nosuch" in .*cluster\.yaml \(modules: app\)/);
    });
  });

  describe('failover on|off', () => {
    it('failover off on every node: the primary dies, the survivor waits for an operator; prim takes over', async () => {
      const off = await vigil(['failover', 'off', '-m', 'app', ...all]);
      expect(off.code, off.stderr).toBe(0);
      expect(off.stdout).toMatch(/^node1: app: automatic failover off/m);
      expect(off.stdout).toMatch(/^node2: app: automatic failover off/m);
      const st = await vigil(['state', '-m', 'app', '--json', ...all]);
      expect(st.stdout.trim().split('\n').map((l) => (JSON.parse(l) as { failover: string }).failover)).toEqual(['off', 'off']);
      await c.kill('node1');
      // well past the 1 s heartbeat timeout: still waiting, not ready
      const w = await vigil(['waitstate', '-m', 'app', 'WAIT', '--timeout', '10s', ...on2]);
      expect(w.code, w.stderr).toBe(0);
      const still = await vigil(['waitstate', '-m', 'app', 'ALONE', '--timeout', '3s', ...on2]);
      expect(still.code).toBe(1);
      expect(still.stderr).toMatch(/still WAIT on node2 .*failover is off: waiting for an operator/);
      expect(await c.ready('node2')).toBe(false);
      const prim = await vigil(['prim', '-m', 'app', ...on2]);
      expect(prim.code, prim.stderr).toBe(0);
      expect((await vigil(['waitstate', '-m', 'app', 'ALONE', '--timeout', '10s', ...on2])).code).toBe(0);
      // node1 comes back: kept failover off (persisted), joins as SECOND
      c.start('node1');
      await c.waitFor({ node1: 'SECOND', node2: 'PRIM' }, 30_000);
      const on = await vigil(['failover', 'on', '-m', 'app', ...all]);
      expect(on.code, on.stderr).toBe(0);
      expect(on.stdout.match(/automatic failover on/g)).toHaveLength(2);
    }, 90_000);

    it('misuse: neither on nor off, unknown module', async () => {
      const r = await vigil(['failover', 'maybe', '-m', 'app', ...on1]);
      expect([r.code, r.stderr.trim()]).toEqual([1, 'vigil: failover maybe: give on or off']);
      const m = await vigil(['failover', 'on', '-m', 'nosuch', ...on1]);
      expect(m.stderr).toMatch(/unknown module "nosuch"/);
    });
  });

  describe('stopstart and forcestop', () => {
    it('stopstart on the primary: the secondary takes over and the node comes back SECOND', async () => {
      // roles now: node2 PRIM, node1 SECOND
      const r = await vigil(['stopstart', '-m', 'app', ...on2]);
      expect(r.code, r.stderr).toBe(0);
      expect(r.stdout).toMatch(/stopping and starting again; node1 takes over/);
      await c.waitFor({ node1: 'PRIM', node2: 'SECOND' }, 30_000);
      const log = await vigil(['log', '-m', 'app', '-n', '30', ...on2]);
      expect(log.stdout).toMatch(/-> STOP begin: operator stopstart: stopping/);
      expect(log.stdout).toMatch(/STOP -> WAIT begin: operator stopstart: starting again/);
    }, 60_000);

    it('forcestop kills a hanging script at once and stops without running any', async () => {
      writeFileSync(join(c.dir, 'hang'), '');
      const restart = await vigil(['restart', '-m', 'app', ...on2]);
      expect(restart.code, restart.stderr).toBe(0);
      for (let i = 0; i < 100 && !existsSync(join(c.dir, 'hang.pid')); i++) await new Promise((r) => setTimeout(r, 100));
      const pid = Number(readFileSync(join(c.dir, 'hang.pid'), 'utf8'));
      expect(alive(pid)).toBe(true);
      // a plain stop would queue behind the hanging script; forcestop does not wait
      const t0 = Date.now();
      const r = await vigil(['forcestop', '-m', 'app', ...on2]);
      expect(r.code, r.stderr).toBe(0);
      expect(r.stdout).toMatch(/app: force-stopping \(no script runs\)/);
      expect((await vigil(['waitstate', '-m', 'app', 'STOP', '--timeout', '5s', ...on2])).code).toBe(0);
      expect(Date.now() - t0).toBeLessThan(8000);
      expect(alive(pid)).toBe(false);
      const log = await vigil(['log', '-m', 'app', '-n', '30', ...on2]);
      expect(log.stdout).toMatch(/abandoned by forcestop/);
      expect(log.stdout).not.toMatch(/script (stop_second|poststop)/);
      // the primary keeps serving
      expect(await c.ready('node1')).toBe(true);
    }, 60_000);

    it('misuse: forcestop twice, stopstart on a stopped module, a stopped daemon', async () => {
      const again = await vigil(['forcestop', '-m', 'app', ...on2]);
      expect([again.code, again.stderr.trim()]).toEqual([1, 'vigil: app: already stopped']);
      const ss = await vigil(['stopstart', '-m', 'app', ...on2]);
      expect([ss.code, ss.stderr.trim()]).toEqual([1, 'vigil: app: the module is stopped: run vigil start']);
      await c.kill('node2');
      const dead = await vigil(['forcestop', '-m', 'app', ...on2]);
      expect(dead.code).toBe(1);
      expect(dead.stderr).toMatch(/cannot reach the vigil daemon at http:\/\/[\d.]+:9010 .*is it running\?/);
      const some = await vigil(['state', ...all]);
      expect(some.code).toBe(1);
      expect(some.stdout).toMatch(/^node1: app\s+node1/m);
      expect(some.stderr).toMatch(/^node2: cannot reach the vigil daemon/m);
      expect(some.stderr).toMatch(/failed on node2 \(1 of 2 nodes\)/);
    }, 30_000);
  });
});
