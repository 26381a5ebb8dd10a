import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import type { Lan } from '../../node-service/src/demo/lan.ts';

/**
 * Real etcd servers (Debian's etcd-server, scripts/packages/test-arbiter.txt) for the arbiter tests:
 * one on loopback, or a cluster with one member per namespace host of a test LAN.
 */
export interface EtcdServers {
  readonly endpoints: string[];
  /** member name -> process (a test may kill or restart one) */
  readonly procs: Map<string, ChildProcess>;
  stop(): Promise<void>;
}

function requireEtcd(): void {
  try {
    execFileSync('etcd', ['--version'], { stdio: 'ignore' });
  } catch {
    throw new Error('etcd is not installed: run `bash scripts/setup-system.sh test` (it installs etcd-server from scripts/packages/test-arbiter.txt)');
  }
}

/** fast elections (50 ms beats, 500 ms election timeout): a lost member's leadership moves in about a second */
const TUNING = ['--heartbeat-interval', '50', '--election-timeout', '500', '--log-level', 'error', '--logger', 'zap'];

function waitReady(endpoints: string[], procs: Map<string, ChildProcess>, timeoutMs: number, nsExec: (cmd: string[]) => string[] = (c) => c): Promise<void> {
  const t0 = Date.now();
  return new Promise((resolve, reject) => {
    const poll = () => {
      for (const [name, p] of procs) if (p.exitCode !== null) return reject(new Error(`etcd member ${name} exited with ${p.exitCode}`));
      try {
        const [bin, ...args] = nsExec(['etcdctl', '--endpoints', endpoints.join(','), '--dial-timeout', '500ms', '--command-timeout', '1s', 'endpoint', 'health']);
        execFileSync(bin, args, { stdio: 'ignore', env: { ...process.env, ETCDCTL_API: '3' } });
        return resolve();
      } catch {
        if (Date.now() - t0 > timeoutMs) return reject(new Error(`etcd not healthy within ${timeoutMs} ms at ${endpoints.join(',')}`));
        setTimeout(poll, 200);
      }
    };
    poll();
  });
}

async function stopAll(procs: Map<string, ChildProcess>): Promise<void> {
  await Promise.all(
    [...procs.values()].map(
      (p) =>
        new Promise<void>((r) => {
          if (p.exitCode !== null || p.signalCode !== null) return r();
          p.once('exit', () => r());
          p.kill('SIGKILL');
        }),
    ),
  );
}

/** One etcd member on 127.0.0.1 (ports from `port`, client and peer), its data under dir. */
export async function startLocalEtcd(dir: string, port: number): Promise<EtcdServers> {
  requireEtcd();
  mkdirSync(dir, { recursive: true });
  const client = `http://127.0.0.1:${port}`;
  const peer = `http://127.0.0.1:${port + 1}`;
  const p = spawn('etcd', ['--name', 'solo', '--data-dir', join(dir, 'solo'), '--listen-client-urls', client, '--advertise-client-urls', client, '--listen-peer-urls', peer, '--initial-advertise-peer-urls', peer, '--initial-cluster', `solo=${peer}`, ...TUNING], { stdio: 'ignore' });
  const procs = new Map([['solo', p]]);
  try {
    await waitReady([client], procs, 15_000);
  } catch (e) {
    await stopAll(procs);
    throw e;
  }
  return { endpoints: [client], procs, stop: () => stopAll(procs) };
}

/**
 * A cluster of etcd members, one in each named host of the LAN (client port 2379, peer 2380),
 * data under dir. Members can be killed (procs) or cut off (lan.cut / nftables) by the test.
 */
export async function startEtcdCluster(lan: Lan, members: readonly string[], dir: string): Promise<EtcdServers & { start(name: string): void }> {
  requireEtcd();
  const addr = (m: string) => lan.hosts.get(m)!.addr;
  const initial = members.map((m) => `${m}=http://${addr(m)}:2380`).join(',');
  const procs = new Map<string, ChildProcess>();
  const start = (m: string) => {
    mkdirSync(dir, { recursive: true });
    procs.set(
      m,
      lan.spawn(m, ['etcd', '--name', m, '--data-dir', join(dir, m), '--listen-client-urls', `http://${addr(m)}:2379`, '--advertise-client-urls', `http://${addr(m)}:2379`, '--listen-peer-urls', `http://${addr(m)}:2380`, '--initial-advertise-peer-urls', `http://${addr(m)}:2380`, '--initial-cluster', initial, '--initial-cluster-state', 'new', '--initial-cluster-token', lan.prefix, ...TUNING], { stdio: 'ignore' }),
    );
  };
  for (const m of members) start(m);
  const endpoints = members.map((m) => `http://${addr(m)}:2379`);
  try {
    await waitReady(endpoints, procs, 30_000, (cmd) => ['ip', 'netns', 'exec', lan.ns(members[0]), ...cmd]);
  } catch (e) {
    await stopAll(procs);
    throw e;
  }
  return { endpoints, procs, start, stop: () => stopAll(procs) };
}
