// npm run bench:secure — what encryption costs the inter-node traffic, measured against the same path
// in clear in the same run (medians of 3 runs):
//   * the replication channel (mirror/channel.ts frames over loopback TCP): 1 MiB frames streamed with
//     8 in flight (throughput), and 4 KiB frames each waiting for its acknowledgement (round trip), plain
//     TCP vs TLS 1.3 with the cluster PSK (mirror/secure-socket.ts);
//   * heartbeats: sealing and opening one with AES-256-GCM vs the HMAC-SHA256 signature it replaced.
//   * the whole mirror (as root: two daemons in network namespaces, writes through the FUSE view on the
//     primary): sequential 1 MiB writes and fsync'd 4 KiB writes with replication.encryption tls and
//     none, and a plain (not replicated) directory of the same node as the baseline.
// Last line: RESULT tls_throughput_ratio=R ... mirror_seq_tls_over_none=R mirror_fsync_tls_over_none=R ...
import { createHmac } from 'node:crypto';
import { execFile } from 'node:child_process';
import { createServer, connect, type Server, type Socket } from 'node:net';
import { NsCluster } from '../node-service/src/demo/ns-cluster.ts';
import { Secret } from '../node-service/src/config/secret.ts';
import { decodeHeartbeat, encodeHeartbeat, type Heartbeat } from '../node-service/src/heartbeat/packet.ts';
import { Channel } from '../node-service/src/mirror/channel.ts';
import { encodeFrame } from '../node-service/src/mirror/protocol.ts';
import { secureConnect, secureServer } from '../node-service/src/mirror/secure-socket.ts';
import { datagramKeys, KeyRing } from '../node-service/src/secure/keyring.ts';
import { median, round } from './stats.ts';

const ring = new KeyRing(new Secret(Buffer.from('bench-secret-bench-secret-bench!')));
const RUNS = 3;

async function pair(tls: boolean): Promise<{ client: Channel; server: Channel; close: () => void }> {
  let server!: Server;
  const accepted = new Promise<Socket>((resolve) => {
    server = tls ? secureServer({ ring, module: 'bench', onSocket: resolve, refused: (_f, r) => console.error(r) }) : createServer(resolve);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  const port = (server.address() as { port: number }).port;
  const sock: Socket = tls ? await secureConnect({ host: '127.0.0.1', port, ring, module: 'bench', timeoutMs: 5000 }) : await new Promise((r) => { const s = connect(port, '127.0.0.1', () => r(s)); });
  const client = new Channel(sock);
  const srv = new Channel(await accepted);
  client.authenticated();
  srv.authenticated();
  return { client, server: srv, close: () => { client.close('done'); srv.close('done'); server.close(); } };
}

/** MB/s of 1 MiB frames, 8 in flight, each acknowledged by the receiver */
async function throughput(tls: boolean, frames = 200): Promise<number> {
  const p = await pair(tls);
  const data = Buffer.alloc(1 << 20, 0x5a);
  p.server.start(() => p.server.sendFrame({ t: 'ack' }));
  let acked = 0;
  let sent = 0;
  const t0 = performance.now();
  await new Promise<void>((done) => {
    const pump = () => { while (sent < frames && sent - acked < 8) { p.client.sendFrame({ t: 'w', q: sent++ }, data); } };
    p.client.start(() => { acked++; if (acked === frames) done(); else pump(); });
    pump();
  });
  const s = (performance.now() - t0) / 1000;
  p.close();
  return (frames * data.length) / s / 1e6;
}

/** median µs of a 4 KiB frame and its acknowledgement */
async function roundTrip(tls: boolean, n = 2000): Promise<number> {
  const p = await pair(tls);
  const data = Buffer.alloc(4096, 0x33);
  p.server.start(() => p.server.sendFrame({ t: 'ack' }));
  const times: number[] = [];
  let waiting: (() => void) | undefined;
  p.client.start(() => waiting?.());
  for (let i = 0; i < n; i++) {
    const t0 = performance.now();
    await new Promise<void>((r) => { waiting = r; p.client.sendFrame({ t: 'w', q: i }, data); });
    times.push((performance.now() - t0) * 1000);
  }
  p.close();
  return median(times);
}

function heartbeats(n = 20000): { sealed: number; hmac: number } {
  const keys = datagramKeys(ring, 'heartbeat', 'bench', 'm');
  const hb: Heartbeat = { v: 1, cluster: 'bench', module: 'm', node: 'node1', net: 0, counter: 1, state: 'PRIM', target: 'PRIM', gen: 3, epoch: 3, inSync: true, handover: false, swapRequest: false, isolated: false };
  let t0 = performance.now();
  for (let i = 0; i < n; i++) {
    const b = encodeHeartbeat({ ...hb, counter: i + 1 }, keys.seal('node1'));
    if (!decodeHeartbeat(b, (id, node) => keys.open(id, node)).ok) throw new Error('heartbeat did not open');
  }
  const sealed = ((performance.now() - t0) * 1000) / n;
  const key = ring.sending.secret.key;
  t0 = performance.now();
  for (let i = 0; i < n; i++) {
    const body = Buffer.from(JSON.stringify({ ...hb, counter: i + 1 }));
    const mac = createHmac('sha256', key).update(body).digest();
    const check = createHmac('sha256', key).update(body).digest();
    if (!mac.equals(check)) throw new Error('mac');
    JSON.parse(body.toString());
  }
  return { sealed, hmac: ((performance.now() - t0) * 1000) / n };
}

const r = { plainMBps: [] as number[], tlsMBps: [] as number[], plainUs: [] as number[], tlsUs: [] as number[], sealUs: [] as number[], hmacUs: [] as number[] };
for (let i = 0; i < RUNS; i++) {
  r.plainMBps.push(await throughput(false));
  r.tlsMBps.push(await throughput(true));
  r.plainUs.push(await roundTrip(false));
  r.tlsUs.push(await roundTrip(true));
  const h = heartbeats();
  r.sealUs.push(h.sealed);
  r.hmacUs.push(h.hmac);
  console.log(`run ${i + 1}: 1 MiB frames ${round(r.plainMBps.at(-1)!)} MB/s plain, ${round(r.tlsMBps.at(-1)!)} MB/s TLS; 4 KiB round trip ${round(r.plainUs.at(-1)!)} µs plain, ${round(r.tlsUs.at(-1)!)} µs TLS; heartbeat ${round(h.sealed, 1)} µs sealed, ${round(h.hmac, 1)} µs HMAC`);
}
const m = Object.fromEntries(Object.entries(r).map(([k, v]) => [k, median(v)])) as Record<keyof typeof r, number>;

// ---- the whole mirror, encryption tls vs none (root: namespaces and FUSE)
const WRITER = `import os, sys, time
d, mib, n = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
buf = os.urandom(1 << 20)
f = os.open(d + '/seq.bin', os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
t = time.time()
for i in range(mib): os.write(f, buf)
os.fsync(f); os.close(f)
seq = mib * 1.048576 / (time.time() - t)
g = os.open(d + '/small.bin', os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
small = b'x' * 4096
t = time.time()
for i in range(n):
    os.write(g, small); os.fsync(g)
print(seq, n / (time.time() - t))`;

function sh(cmd: string[]): Promise<string> {
  return new Promise((ok, fail) => execFile(cmd[0], cmd.slice(1), { timeout: 300_000 }, (e, out, err) => (e ? fail(new Error(`${cmd.join(' ')}: ${err || e.message}`)) : ok(out))));
}

async function mirrorRuns(encryption: 'tls' | 'none'): Promise<{ seq: number[]; fsync: number[]; plainSeq: number[]; plainFsync: number[] }> {
  const c = await NsCluster.create({ prefix: 'vgx', subnet: '198.18.115', privatePath: '/srv/vgxb', module: { name: 'bench', default_primary: 'node1', replication: { dirs: ['/srv/vgxb/data'], encryption } } });
  const out = { seq: [] as number[], fsync: [] as number[], plainSeq: [] as number[], plainFsync: [] as number[] };
  try {
    c.start('node1');
    c.start('node2');
    await c.waitFor({ node1: 'PRIM', node2: 'SECOND' }, 120_000);
    const pid = String(c.node('node1').proc!.pid!);
    await sh(['nsenter', '-t', pid, '-m', 'mkdir', '-p', '/srv/vgxb/plain']);
    for (let i = 0; i < RUNS; i++) {
      for (const [dir, seqs, fsyncs] of [['/srv/vgxb/data', out.seq, out.fsync], ['/srv/vgxb/plain', out.plainSeq, out.plainFsync]] as const) {
        const [seq, ops] = (await sh(['nsenter', '-t', pid, '-m', 'python3', '-c', WRITER, dir, '64', '400'])).trim().split(' ').map(Number);
        seqs.push(seq);
        fsyncs.push(ops);
      }
      console.log(`mirror ${encryption} run ${i + 1}: view ${round(out.seq.at(-1)!)} MB/s, ${round(out.fsync.at(-1)!)} fsync'd 4 KiB/s; plain directory ${round(out.plainSeq.at(-1)!)} MB/s, ${round(out.plainFsync.at(-1)!)}/s`);
    }
  } finally {
    await c.destroy();
  }
  return out;
}

let mirrorPart = '';
if (process.getuid?.() === 0 && !process.argv.includes('--channel-only')) {
  const tlsRun = await mirrorRuns('tls');
  const noneRun = await mirrorRuns('none');
  const md = (x: number[]) => median(x);
  const a = md([...tlsRun.plainSeq, ...noneRun.plainSeq]);
  const af = md([...tlsRun.plainFsync, ...noneRun.plainFsync]);
  mirrorPart = ` mirror_seq_tls_over_none=${round(md(tlsRun.seq) / md(noneRun.seq), 2)} mirror_fsync_tls_over_none=${round(md(tlsRun.fsync) / md(noneRun.fsync), 2)} mirror_seq_tls_over_plain_dir=${round(md(tlsRun.seq) / a, 2)} mirror_seq_none_over_plain_dir=${round(md(noneRun.seq) / a, 2)} mirror_fsync_tls_over_plain_dir=${round(md(tlsRun.fsync) / af, 2)} mirror_fsync_none_over_plain_dir=${round(md(noneRun.fsync) / af, 2)}`;
} else {
  console.log('mirror part skipped (needs root for namespaces and FUSE, or --channel-only given)');
}
console.log(
  `RESULT tls_throughput_ratio=${round(m.tlsMBps / m.plainMBps, 2)} tls_rtt_ratio=${round(m.tlsUs / m.plainUs, 2)} plain_MBps=${round(m.plainMBps)} tls_MBps=${round(m.tlsMBps)} rtt_plain_us=${round(m.plainUs)} rtt_tls_us=${round(m.tlsUs)} heartbeat_sealed_us=${round(m.sealUs, 1)} heartbeat_hmac_us=${round(m.hmacUs, 1)}${mirrorPart}`,
);
process.exit(0);
