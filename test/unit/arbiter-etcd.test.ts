import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EtcdLeaseStore } from '../../node-service/src/arbiter/etcd.ts';
import { silentLogger } from '../../node-service/src/log/logger.ts';
import { type EtcdServers, startLocalEtcd } from '../helpers/arbiter-etcd.ts';

// The etcd adapter against a real etcd (one member on loopback): the lease, the fence, expiry.
const DIR = `/tmp/vigil-arbiter-etcd-${process.pid}`;
const PORT = 23000 + (process.pid % 2000) * 2;
let etcd: EtcdServers;
const stores: EtcdLeaseStore[] = [];
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function store(node: string, module = 'web', ttl = 2000, endpoints = etcd.endpoints): EtcdLeaseStore {
  const s = new EtcdLeaseStore({ type: 'etcd', endpoints, ttl, key_prefix: '/vigil' }, { cluster: 'c1', module, node, log: silentLogger(), now: () => performance.now() });
  stores.push(s);
  return s;
}

const etcdctl = (...args: string[]) => execFileSync('etcdctl', ['--endpoints', etcd.endpoints[0], ...args], { env: { ...process.env, ETCDCTL_API: '3' } }).toString();

describe('etcd lease store (real etcd)', () => {
  beforeAll(async () => {
    etcd = await startLocalEtcd(DIR, PORT);
  }, 30_000);
  afterAll(async () => {
    await Promise.all(stores.map((s) => s.close()));
    await etcd?.stop();
    rmSync(DIR, { recursive: true, force: true });
  });

  it('grants a free lease, records {node, gen} on the leader key and the fence; the peer is told who holds it', async () => {
    const a = store('node1', 'm1');
    const b = store('node2', 'm1');
    expect(await a.claim(3, false)).toMatchObject({ outcome: 'held' });
    expect(JSON.parse(etcdctl('get', '--print-value-only', '/vigil/c1/m1/leader'))).toEqual({ node: 'node1', gen: 3 });
    expect(etcdctl('get', '--print-value-only', '/vigil/c1/m1/fence').trim()).toBe('3');
    expect(await b.claim(3, false)).toMatchObject({ outcome: 'taken', holder: 'node1', gen: 3 });
    // renewal records the new generation
    expect(await a.claim(4, false)).toMatchObject({ outcome: 'held' });
    expect(etcdctl('get', '--print-value-only', '/vigil/c1/m1/fence').trim()).toBe('4');
    // the leader key lives on an etcd lease of the configured ttl
    expect(etcdctl('get', '-w', 'json', '/vigil/c1/m1/leader')).toMatch(/"lease":\d+/);
  });

  it('the peer gets the lease only once it expired at the store', async () => {
    const a = store('node1', 'm2');
    const b = store('node2', 'm2');
    expect(await a.claim(1, false)).toMatchObject({ outcome: 'held' });
    // node1 stops renewing (it died): node2 is refused while the lease lives, granted after
    const t0 = performance.now();
    expect(await b.claim(1, false)).toMatchObject({ outcome: 'taken', holder: 'node1' });
    let answer = await b.claim(1, false);
    while (answer.outcome !== 'held' && performance.now() - t0 < 10_000) {
      // on a loaded machine a claim can miss its answer timeout (unreachable): never held early
      expect(['taken', 'unreachable']).toContain(answer.outcome);
      await sleep(200);
      answer = await b.claim(1, false);
    }
    expect(answer.outcome).toBe('held');
    // etcd counts whole seconds from its own grant: never sooner than our ttl after our claim
    expect(performance.now() - t0).toBeGreaterThanOrEqual(1000);
    // and the old holder's renewal now fails: its lease is gone, the key is node2's
    expect(await a.claim(1, false)).toMatchObject({ outcome: 'taken', holder: 'node2' });
  });

  it('release hands the lease over at once', async () => {
    const a = store('node1', 'm3', 10_000);
    const b = store('node2', 'm3', 10_000);
    expect(await a.claim(1, false)).toMatchObject({ outcome: 'held' });
    await a.release();
    expect(await b.claim(1, false)).toMatchObject({ outcome: 'held' });
  });

  it('fencing: a free lease is refused to an older generation than the last holder recorded; force overrides', async () => {
    const a = store('node1', 'm4', 10_000);
    const b = store('node2', 'm4', 10_000);
    expect(await a.claim(7, false)).toMatchObject({ outcome: 'held' });
    await a.release();
    expect(await b.claim(6, false)).toMatchObject({ outcome: 'fenced', gen: 7 });
    expect(await b.claim(7, false)).toMatchObject({ outcome: 'held' });
    await b.release();
    expect(await a.claim(2, true)).toMatchObject({ outcome: 'held' });
    expect(etcdctl('get', '--print-value-only', '/vigil/c1/m4/fence').trim()).toBe('2');
  });

  it('a lease revoked behind our back: the renewal notices and claims afresh', async () => {
    const a = store('node1', 'm5', 10_000);
    expect(await a.claim(1, false)).toMatchObject({ outcome: 'held' });
    // a 64-bit id: read it as text, not through JSON numbers
    const id = BigInt(/"lease":(\d+)/.exec(etcdctl('get', '-w', 'json', '/vigil/c1/m5/leader'))![1]);
    etcdctl('lease', 'revoke', id.toString(16));
    expect(await a.claim(1, false)).toMatchObject({ outcome: 'held' });
    expect(JSON.parse(etcdctl('get', '--print-value-only', '/vigil/c1/m5/leader'))).toEqual({ node: 'node1', gen: 1 });
  });

  it('no etcd answering: unreachable with a reason, within the claim timeout', async () => {
    const dead = store('node1', 'm6', 3000, [`http://127.0.0.1:${PORT + 5}`]);
    const a = await dead.claim(1, false);
    expect(a.outcome).toBe('unreachable');
    expect(a.reason).toBeTruthy();
  });
});

describe('etcd lease store over TLS with client certificates (real etcd)', () => {
  const TLS_DIR = `/tmp/vigil-arbiter-etcd-tls-${process.pid}`;
  const TLS_PORT = PORT + 10;
  let tlsEtcd: ChildProcess | undefined;
  const ssl = (...args: string[]) => execFileSync('openssl', args, { cwd: TLS_DIR, stdio: 'ignore' });

  beforeAll(async () => {
    mkdirSync(TLS_DIR, { recursive: true });
    writeFileSync(join(TLS_DIR, 'san.cnf'), 'subjectAltName=IP:127.0.0.1\n');
    ssl('req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', 'ca.key', '-out', 'ca.pem', '-days', '2', '-subj', '/CN=vigil-test-ca');
    for (const who of ['server', 'client']) {
      ssl('req', '-newkey', 'rsa:2048', '-nodes', '-keyout', `${who}.key`, '-out', `${who}.csr`, '-subj', `/CN=${who}`);
      ssl('x509', '-req', '-in', `${who}.csr`, '-CA', 'ca.pem', '-CAkey', 'ca.key', '-CAcreateserial', '-out', `${who}.pem`, '-days', '2', '-extfile', 'san.cnf');
    }
    const url = `https://127.0.0.1:${TLS_PORT}`;
    const peer = `http://127.0.0.1:${TLS_PORT + 1}`;
    tlsEtcd = spawn('etcd', ['--name', 'tls', '--data-dir', join(TLS_DIR, 'data'), '--listen-client-urls', url, '--advertise-client-urls', url, '--listen-peer-urls', peer, '--initial-advertise-peer-urls', peer, '--initial-cluster', `tls=${peer}`, '--cert-file', join(TLS_DIR, 'server.pem'), '--key-file', join(TLS_DIR, 'server.key'), '--trusted-ca-file', join(TLS_DIR, 'ca.pem'), '--client-cert-auth', '--log-level', 'error', '--logger', 'zap'], { stdio: 'ignore' });
    const t0 = Date.now();
    for (;;) {
      try {
        execFileSync('etcdctl', ['--endpoints', url, '--cacert', join(TLS_DIR, 'ca.pem'), '--cert', join(TLS_DIR, 'client.pem'), '--key', join(TLS_DIR, 'client.key'), 'endpoint', 'health'], { stdio: 'ignore', env: { ...process.env, ETCDCTL_API: '3' } });
        break;
      } catch {
        if (Date.now() - t0 > 15_000) throw new Error('etcd with TLS did not start');
        await sleep(200);
      }
    }
  }, 30_000);
  afterAll(() => {
    tlsEtcd?.kill('SIGKILL');
    rmSync(TLS_DIR, { recursive: true, force: true });
  });

  const tlsStore = (node: string, tls: { ca?: string; cert?: string; key?: string }) => {
    const s = new EtcdLeaseStore({ type: 'etcd', endpoints: [`https://127.0.0.1:${TLS_PORT}`], ttl: 3000, key_prefix: '/vigil', tls }, { cluster: 'c1', module: 'tls', node, log: silentLogger(), now: () => performance.now() });
    stores.push(s);
    return s;
  };

  it('with the tls files (ca, client cert and key) the lease is granted; without the client certificate etcd refuses: unreachable', async () => {
    const f = (n: string) => join(TLS_DIR, n);
    expect(await tlsStore('node1', { ca: f('ca.pem'), cert: f('client.pem'), key: f('client.key') }).claim(1, false)).toMatchObject({ outcome: 'held' });
    expect(await tlsStore('node2', { ca: f('ca.pem') }).claim(1, false)).toMatchObject({ outcome: 'unreachable' });
  });
});
