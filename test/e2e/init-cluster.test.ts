import { execFile, type ChildProcess } from 'node:child_process';
import { createWriteStream, mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createLan, type Lan } from '../../node-service/src/demo/lan.ts';
import { waitForStates } from '../../node-service/src/demo/wait-for.ts';

/**
 * The newcomer's path end to end: `vigil init` with the contract's flags writes the configuration,
 * and two real daemons run it unchanged, each in its own network and mount namespace (the demo's LAN:
 * a bridge, 198.18.181.0/24), found by their addresses (no --node). Then what the README promises:
 * PRIM/SECOND by `vigil state`, a write replicated, the VIP and the role moving on a kill -9, the node's
 * return as SECOND, the version in the API and /metrics.
 */
const ROOT = join(import.meta.dirname, '../..');
const BIN = join(ROOT, 'bin/vigil.mjs');
const VERSION = (JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { version: string }).version;
const SUBNET = '198.18.181';
const VIP = `${SUBNET}.100`;
const PRIVATE = '/srv/vigil-vgii';
const DATA = `${PRIVATE}/data`;

describe('vigil init into a two-node cluster', () => {
  let lan: Lan;
  const dir = mkdtempSync(join(tmpdir(), 'vigil-vgii-'));
  const etc = join(dir, 'etc');
  const config = join(etc, 'cluster.yaml');
  const procs = new Map<string, ChildProcess>();

  const start = (name: string) => {
    const root = join(dir, name);
    mkdirSync(join(root, 'state'), { recursive: true });
    mkdirSync(join(root, 'private'), { recursive: true });
    // each node has its own /var/lib/vigil and its own copy of the replicated directory's parent
    const script = [
      `mkdir -p /var/lib/vigil ${PRIVATE}`,
      `mount --bind '${join(root, 'state')}' /var/lib/vigil`,
      `mount --bind '${join(root, 'private')}' ${PRIVATE}`,
      `mkdir -p ${DATA}`,
      `exec '${process.execPath}' '${BIN}' daemon --config '${config}'`,
    ].join(' && ');
    const p = lan.spawn(name, ['unshare', '-m', '--propagation', 'private', 'sh', '-c', script]);
    const log = createWriteStream(join(dir, `${name}.log`), { flags: 'a' });
    p.stdout!.pipe(log);
    p.stderr!.pipe(log);
    procs.set(name, p);
  };
  const kill = (name: string) =>
    new Promise<void>((resolve) => {
      const p = procs.get(name);
      if (!p || p.exitCode !== null || p.signalCode !== null) return resolve();
      p.once('exit', () => resolve());
      p.kill('SIGKILL');
    });
  /** `vigil` as an operator runs it on a node: in its namespace, with the config init wrote */
  const vigilOn = (name: string, args: string[]) => lan.exec(name, [process.execPath, BIN, ...args, '--config', config], { timeoutMs: 20_000 });
  const state = async (name: string): Promise<string | undefined> => {
    try {
      return (JSON.parse(await vigilOn(name, ['state', '--json', '-m', 'app'])) as { state: string }).state;
    } catch {
      return undefined;
    }
  };
  const waitFor = (want: Record<string, string>, timeoutMs = 45_000) =>
    waitForStates(want, state, { timeoutMs, everyMs: 250, hint: `logs in ${dir}` });
  /** runs a shell command in the mount namespace of a node's daemon (where its FUSE view is) */
  const inDaemon = (name: string, cmd: string) => lan.exec(name, ['nsenter', '-t', String(procs.get(name)!.pid), '-m', 'sh', '-c', cmd]);
  const holdsVip = async (name: string) => (await lan.tryExec(name, ['ip', '-4', '-o', 'addr', 'show', 'dev', 'eth0'])).stdout.includes(`${VIP}/`);

  beforeAll(async () => {
    lan = await createLan('vgii', [
      { name: 'node1', addr: `${SUBNET}.1/24` },
      { name: 'node2', addr: `${SUBNET}.2/24` },
      { name: 'client', addr: `${SUBNET}.10/24` },
    ]);
  });

  afterAll(async () => {
    for (const n of procs.keys()) await kill(n);
    await lan?.destroy();
    rmSync(PRIVATE, { recursive: true, force: true });
    rmSync(dir, { recursive: true, force: true });
  });

  it('init writes the configuration; both daemons run it and reach PRIM / SECOND (vigil state)', async () => {
    const init = await new Promise<{ code: number; out: string }>((resolve) => {
      execFile(process.execPath, [BIN, 'init', '--cluster', 'vgii', '--node', `node1=${SUBNET}.1`, '--node', `node2=${SUBNET}.2`, '--module', 'app', '--mode', 'mirror', '--vip', `${VIP}/24`, '--interface', 'eth0', '--replicate', DATA, '--dir', etc], (e, stdout, stderr) =>
        resolve({ code: e ? 1 : 0, out: stdout + stderr }),
      );
    });
    expect(init.code, init.out).toBe(0);
    expect(init.out).toContain('Next steps:');
    start('node1');
    start('node2');
    await waitFor({ node1: 'PRIM', node2: 'SECOND' });
    const table = await vigilOn('node1', ['state']);
    expect(table).toMatch(/app.*PRIM/);
    expect(await holdsVip('node1')).toBe(true);
    expect(await holdsVip('node2')).toBe(false);
  }, 90_000);

  it('a write on the primary is on the secondary', async () => {
    await inDaemon('node1', `echo "written on node1" > ${DATA}/hello.txt && sync ${DATA}/hello.txt`);
    expect((await inDaemon('node2', `cat ${DATA}/hello.txt`)).trim()).toBe('written on node1');
  });

  it('kill -9 of the primary: node2 takes the role and the VIP, with the data; node1 returns as SECOND', async () => {
    await kill('node1');
    await waitFor({ node2: 'ALONE' }, 15_000);
    expect(await holdsVip('node2')).toBe(true);
    const ready = await lan.exec('client', ['curl', '-s', '-m', '2', '-w', ' %{http_code}', `http://${SUBNET}.2:9010/var/modules/app/ready.txt`]);
    expect(ready.trim()).toBe('OK 200');
    expect((await inDaemon('node2', `cat ${DATA}/hello.txt`)).trim()).toBe('written on node1');
    start('node1');
    await waitFor({ node1: 'SECOND', node2: 'PRIM' });
    expect(await holdsVip('node1')).toBe(false);
  }, 90_000);

  it('the version is in the API and in /metrics; the monitor token reads but cannot act', async () => {
    const token = readFileSync(join(etc, 'admin.token'), 'utf8').trim();
    const v = await lan.exec('client', ['curl', '-s', '-m', '2', '-H', `authorization: Bearer ${token}`, `http://${SUBNET}.1:9010/api/v1/version`]);
    expect(JSON.parse(v)).toEqual({ version: VERSION, node: process.version });
    const noToken = await lan.exec('client', ['curl', '-s', '-m', '2', '-o', '/dev/null', '-w', '%{http_code}', `http://${SUBNET}.1:9010/api/v1/version`]);
    expect(noToken).toBe('401');
    // the read-only token init wrote: reads, never acts
    const monitor = readFileSync(join(etc, 'monitor.token'), 'utf8').trim();
    const read = await lan.exec('client', ['curl', '-s', '-m', '2', '-o', '/dev/null', '-w', '%{http_code}', '-H', `authorization: Bearer ${monitor}`, `http://${SUBNET}.1:9010/api/v1/modules/app`]);
    expect(read).toBe('200');
    const act = await lan.exec('client', ['curl', '-s', '-m', '2', '-o', '/dev/null', '-w', '%{http_code}', '-X', 'POST', '-H', `authorization: Bearer ${monitor}`, `http://${SUBNET}.1:9010/api/v1/modules/app/swap`]);
    expect(act).toBe('403');
    const metrics = await lan.exec('client', ['curl', '-s', '-m', '2', `http://${SUBNET}.2:9010/metrics`]);
    expect(metrics).toContain(`vigil_build_info{version="${VERSION}",node="${process.version}"} 1`);
    expect((await lan.exec('node1', [process.execPath, BIN, '--version'])).trim()).toBe(VERSION);
  });
});
