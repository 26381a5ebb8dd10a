import { execFile, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { NsCluster } from '../../node-service/src/demo/ns-cluster.ts';

const REPO = resolve(import.meta.dirname, '../..');
const CAPTURE = join(REPO, 'test/helpers/secure-capture.py');
const EVIL = join(REPO, 'test/helpers/secure-evil-peer.ts');
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

const TAG = randomBytes(6).toString('hex');
/** written through the view on the primary: in a file's contents, and in file and directory names */
const CONTENT = `VGX-CONTENT-MARKER-${TAG}`;
const NAME = `vgx-name-marker-${TAG}`;
/** the module's name, which every heartbeat carries (sealed) */
const MODULE = `vgx-module-marker-${TAG}`;

function run(cmd: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((done) => execFile(cmd[0], cmd.slice(1), { timeout: 60_000, maxBuffer: 64 << 20 }, (err, stdout, stderr) => done({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stdout, stderr })));
}

interface Payload {
  readonly proto: 'tcp' | 'udp';
  readonly sport: number;
  readonly dport: number;
  readonly data: Buffer;
}

/** The transport payloads of the captured IPv4 frames (records of <u32 length><Ethernet frame>). */
function payloads(file: string): Payload[] {
  const buf = readFileSync(file);
  const out: Payload[] = [];
  for (let at = 0; at + 4 <= buf.length; ) {
    const len = buf.readUInt32BE(at);
    const f = buf.subarray(at + 4, at + 4 + len);
    at += 4 + len;
    if (f.length < 34 || f.readUInt16BE(12) !== 0x0800) continue;
    const ip = f.subarray(14);
    const ihl = (ip[0] & 0x0f) * 4;
    const total = Math.min(ip.readUInt16BE(2), ip.length);
    const l4 = ip.subarray(ihl, total);
    if (ip[9] === 6 && l4.length >= 20) out.push({ proto: 'tcp', sport: l4.readUInt16BE(0), dport: l4.readUInt16BE(2), data: l4.subarray((l4[12] >> 4) * 4) });
    if (ip[9] === 17 && l4.length >= 8) out.push({ proto: 'udp', sport: l4.readUInt16BE(0), dport: l4.readUInt16BE(2), data: l4.subarray(8) });
  }
  return out;
}

function count(hay: Buffer, needle: string): number {
  const n = Buffer.from(needle);
  let c = 0;
  for (let i = hay.indexOf(n); i !== -1; i = hay.indexOf(n, i + 1)) c++;
  return c;
}

/**
 * Item 1 of issue 13, on the wire: two real daemons in network namespaces replicate through the FUSE
 * view while everything node1 sends and receives is captured on its interface. A marker written
 * through the view (contents and names) and the module name the heartbeats carry never appear in the
 * capture, which does hold the replicated bytes (TLS records) and does find a marker sent in clear
 * (the capture's own control). Then a host without the secret is refused on both channels.
 */
describe('encrypted inter-node traffic (capture)', () => {
  let c: NsCluster;
  let cap: ChildProcess | undefined;
  const capFile = () => join(c.dir, 'node1.frames');
  const pid = (n: string) => c.node(n).proc!.pid!;
  const inView = (n: string, script: string) => run(['nsenter', '-t', String(pid(n)), '-m', 'sh', '-c', script]);

  beforeAll(async () => {
    c = await NsCluster.create({
      prefix: 'vgx',
      subnet: '198.18.113',
      extraHosts: ['evil'],
      privatePath: '/srv/vgx',
      module: { name: MODULE, default_primary: 'node1', replication: { dirs: ['/srv/vgx/data'] } },
    });
    c.start('node1');
    c.start('node2');
    await c.waitFor({ node1: 'PRIM', node2: 'SECOND' }, 90_000);
  }, 120_000);
  afterAll(async () => {
    cap?.kill('SIGKILL');
    await c?.destroy();
  });

  it('a marker written through the view, and the heartbeats, cross the wire encrypted', async () => {
    cap = c.lan.spawn('node1', ['python3', CAPTURE, c.lan.hosts.get('node1')!.ifname, capFile()]);
    await new Promise<void>((ok, fail) => {
      cap!.stdout!.once('data', () => ok());
      cap!.once('exit', (code) => fail(new Error(`capture exited ${code}`)));
    });
    // 2 MiB of the marker in a file, a file and a directory named after it, a rename, an fsync
    const w = await inView(
      'node1',
      `set -e; cd /srv/vgx/data; mkdir ${NAME}-dir; yes '${CONTENT}' | head -c 2097152 > ${NAME}-dir/${NAME}.txt; ` +
        `printf '%s' '${CONTENT}' > small-${NAME}; mv small-${NAME} ${NAME}-renamed; sync ${NAME}-dir/${NAME}.txt`,
    );
    expect(w.code, w.stderr).toBe(0);
    // the secondary holds it (so it crossed the wire)
    let got = '';
    for (let i = 0; i < 100 && !got.includes(CONTENT); i++) {
      got = (await inView('node2', `cat /srv/vgx/data/${NAME}-renamed 2>/dev/null; true`)).stdout;
      if (!got.includes(CONTENT)) await sleep(100);
    }
    expect(got).toBe(CONTENT);
    const big = await inView('node2', `wc -c < /srv/vgx/data/${NAME}-dir/${NAME}.txt`);
    expect(Number(big.stdout)).toBe(2097152);
    // the capture's control: the same marker sent in clear is found
    await c.lan.exec('node1', ['bash', '-c', `printf 'control ${CONTENT}' > /dev/udp/${c.node('node2').addr}/9`]);
    await sleep(1500); // heartbeats keep flowing meanwhile
    let capOut = '';
    cap.stdout!.on('data', (b: Buffer) => (capOut += b.toString()));
    cap.kill('SIGTERM');
    await new Promise((r) => cap!.once('exit', r));
    cap = undefined;
    expect(capOut).toMatch(/drops 0\b/);

    const all = payloads(capFile());
    const repl = all.filter((p) => p.proto === 'tcp' && (p.sport === 5600 || p.dport === 5600));
    const hb = all.filter((p) => p.proto === 'udp' && (p.sport === 8888 || p.dport === 8888));
    const control = all.filter((p) => p.proto === 'udp' && p.dport === 9);
    const replBytes = repl.reduce((n, p) => n + p.data.length, 0);
    const everything = Buffer.concat(all.map((p) => p.data));
    console.log(`RESULT capture_frames=${all.length} replication_bytes=${replBytes} heartbeats=${hb.length} marker_in_replication=${count(Buffer.concat(repl.map((p) => p.data)), CONTENT)} marker_in_heartbeats=${count(Buffer.concat(hb.map((p) => p.data)), MODULE)} marker_anywhere=${count(everything, CONTENT) + count(everything, NAME) + count(everything, MODULE) - control.length} control_found=${count(Buffer.concat(control.map((p) => p.data)), CONTENT)}`);
    // the capture saw the traffic: the replicated bytes and the heartbeats both ways
    expect(replBytes).toBeGreaterThan(2_000_000);
    expect(hb.filter((p) => p.sport === 8888 && p.dport === 8888).length).toBeGreaterThan(10);
    expect(repl.some((p) => p.data.length > 5 && p.data[0] === 0x17 && p.data[1] === 0x03 && p.data[2] === 0x03)).toBe(true); // TLS application data records
    expect(count(Buffer.concat(control.map((p) => p.data)), CONTENT)).toBe(1);
    // and nothing readable of it: not the contents, not the names, not the heartbeats' fields
    for (const marker of [CONTENT, NAME, MODULE, 'SECOND', '"state"']) {
      expect(count(Buffer.concat([...repl, ...hb].map((p) => p.data)), marker), marker).toBe(0);
    }
    expect(count(everything, CONTENT)).toBe(1); // the control datagram only
  }, 120_000);

  it('a host without the cluster secret is refused on the replication port and on the heartbeat port, and both are logged', async () => {
    const evil = c.lan.spawn('evil', [process.execPath, '--import', 'tsx', EVIL, c.node('node2').addr, '5600', '8888', MODULE, 'vgx'], { cwd: REPO });
    let out = '';
    evil.stdout!.on('data', (b: Buffer) => (out += b.toString()));
    evil.stderr!.on('data', (b: Buffer) => (out += b.toString()));
    await new Promise((r) => evil.once('exit', r));
    const r = JSON.parse(out.trim().split('\n').at(-1)!) as { replication: string; heartbeats: number };
    expect(r.replication).toMatch(/^refused: .*TLS handshake refused/);
    await sleep(500);
    const log = readFileSync(join(c.dir, 'node2.log'), 'utf8');
    expect(log).toMatch(/"from":"198\.18\.113\.10".*replication peer refused|replication peer refused.*"from":"198\.18\.113\.10"/);
    expect(log).toMatch(/datagram from 198\.18\.113\.10 refused: sealed with a secret this node does not hold/);
    const metrics = await c.get('node2', `http://${c.node('node2').addr}:9010/metrics`);
    expect(metrics?.body).toMatch(new RegExp(`vigil_heartbeats_dropped_total\\{module="${MODULE}",reason="bad_key"\\} 5`));
    // nothing changed
    expect((await c.status('node1'))?.state).toBe('PRIM');
    expect((await c.status('node2'))?.state).toBe('SECOND');
  }, 60_000);
});
