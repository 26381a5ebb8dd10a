import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chmodSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Secret } from '../../node-service/src/config/secret.ts';
import { LocalCluster } from '../../node-service/src/demo/local-cluster.ts';
import { KeyRing } from '../../node-service/src/secure/keyring.ts';

const BIN = join(import.meta.dirname, '../../bin/vigil.mjs');

function vigil(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [BIN, ...args], { timeout: 60_000 }, (err, stdout, stderr) => {
      resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stdout, stderr });
    });
  });
}

const fp = (secret: string) => new KeyRing(new Secret(Buffer.from(secret))).sending.fingerprint;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function metric(c: LocalCluster, node: string, re: RegExp): Promise<number> {
  const m = re.exec(await (await fetch(c.url(node, '/metrics'))).text());
  return m ? Number(m[1]) : 0;
}

/**
 * Key rotation on a running pair, the three documented steps (`vigil secret --help`), each node
 * reloaded in turn with more than a heartbeat timeout between them, so the pair runs mixed at every
 * step: never a lost peer, a failover, or a refused heartbeat.
 */
describe('secret rotation on a running pair', () => {
  let c: LocalCluster;
  const samples: [boolean, boolean][] = [];
  let sampler: NodeJS.Timeout | undefined;
  let sampling: Promise<void> = Promise.resolve();
  const oldSecret = () => readFileSync(join(c.dir, 'cluster.key'), 'utf8').trim();
  const NEW = randomBytes(32).toString('base64');
  let OLD = '';
  const nodeConfig = (n: string) => join(c.dir, `cluster-${n}.yaml`);
  const reload = (n: string) => vigil(['secret', 'reload', '--api', c.url(n, ''), '--token-file', join(c.dir, 'admin.token')]);

  beforeAll(async () => {
    c = new LocalCluster({ module: { default_primary: 'node1' } });
    c.start('node1');
    c.start('node2');
    await c.waitFor({ node1: 'PRIM', node2: 'SECOND' }, 45_000);
    OLD = oldSecret();
    sampler = setInterval(() => {
      sampling = Promise.all([c.ready('node1'), c.ready('node2')]).then((r) => void samples.push(r));
    }, 50);
  }, 60_000);
  afterAll(async () => {
    clearInterval(sampler);
    await c?.destroy();
  });

  it('step 1: next_secret_file added on each node in turn: both secrets accepted, the old one still sent', async () => {
    writeFileSync(join(c.dir, 'cluster.key.next'), NEW, { mode: 0o600 });
    for (const n of ['node1', 'node2']) {
      writeFileSync(nodeConfig(n), `${readFileSync(nodeConfig(n), 'utf8')}next_secret_file: ${join(c.dir, 'cluster.key.next')}\n`);
      const r = await reload(n);
      expect(r.code, r.stderr).toBe(0);
      expect(r.stdout.trim()).toBe(`reloaded: sending with key ${fp(OLD)}; accepting ${fp(OLD)}, ${fp(NEW)}`);
      await sleep(1500);
    }
  }, 60_000);

  it('a reload that cannot read a file changes nothing and says which file', async () => {
    chmodSync(join(c.dir, 'cluster.key.next'), 0o644);
    const r = await reload('node1');
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/next_secret_file: .*cluster\.key\.next is world-readable: chmod 600 .*nothing changed, the node keeps its keys/);
    chmodSync(join(c.dir, 'cluster.key.next'), 0o600);
    const s = await vigil(['secret', 'status', '--config', c.configFile, '--all-nodes']);
    expect(s.stdout.trim().split('\n').sort()).toEqual([`node1: sending with key ${fp(OLD)}; accepting ${fp(OLD)}, ${fp(NEW)}`, `node2: sending with key ${fp(OLD)}; accepting ${fp(OLD)}, ${fp(NEW)}`]);
  });

  it('step 2: the files swapped, each node in turn sends with the new secret', async () => {
    writeFileSync(join(c.dir, 'cluster.key'), NEW, { mode: 0o600 });
    writeFileSync(join(c.dir, 'cluster.key.next'), OLD, { mode: 0o600 });
    for (const n of ['node1', 'node2']) {
      const r = await reload(n);
      expect(r.stdout.trim()).toBe(`reloaded: sending with key ${fp(NEW)}; accepting ${fp(NEW)}, ${fp(OLD)}`);
      await sleep(1500);
    }
  }, 60_000);

  it('step 3: next_secret_file removed, each node in turn accepts only the new secret', async () => {
    for (const n of ['node1', 'node2']) {
      writeFileSync(nodeConfig(n), readFileSync(nodeConfig(n), 'utf8').replace(/^next_secret_file: .*\n/m, ''));
      const r = await reload(n);
      expect(r.stdout.trim()).toBe(`reloaded: sending with key ${fp(NEW)}; accepting ${fp(NEW)}`);
      await sleep(1500);
    }
  }, 60_000);

  it('through all of it: no peer lost, no failover, no refused heartbeat, the primary always ready', async () => {
    clearInterval(sampler);
    await sampling;
    expect(samples.length).toBeGreaterThan(100);
    expect(samples.every(([a, b]) => a && !b)).toBe(true);
    expect((await c.status('node1'))?.state).toBe('PRIM');
    expect((await c.status('node2'))?.state).toBe('SECOND');
    for (const n of ['node1', 'node2']) {
      const log = readFileSync(c.node(n).logFile, 'utf8');
      expect(log).not.toMatch(/peer lost/);
      expect(log).toMatch(/cluster secrets reloaded/);
      expect(await metric(c, n, /vigil_heartbeats_dropped_total\{module="app",reason="bad_key"\} (\d+)/)).toBe(0);
      expect(await metric(c, n, /vigil_peer_lost_total\{[^}]*\} (\d+)/)).toBe(0);
    }
  });
});
