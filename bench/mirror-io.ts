/**
 * `node --import tsx bench/mirror-io.ts MODE DIR ARGS…`: one I/O measurement in DIR, printed as one JSON line.
 *   seq DIR MiB                      1 MiB writes, one fsync at the end
 *   fsync4k DIR SECONDS [NAME START] 4 KiB write + fdatasync in a loop; with START (epoch ms) it waits
 *                                    until then, so concurrent writers measure the same window
 *   read DIR MiB SECONDS             writes and syncs a file of MiB, then reads it sequentially (1 MiB
 *                                    reads, fresh open) and at random 4 KiB offsets (pread) for SECONDS
 *   tree DIR MiB COUNT               one file of MiB and COUNT small files (the resync benchmark's data)
 */
import * as fs from 'node:fs';
import { join } from 'node:path';

const [mode, dir, arg, name, start] = process.argv.slice(2);
const out = (o: object) => process.stdout.write(`${JSON.stringify({ mode, ...o })}\n`);
const seconds = (t0: bigint) => Number(process.hrtime.bigint() - t0) / 1e9;

if (mode === 'seq') {
  const mib = Number(arg ?? 1024);
  const buf = Buffer.alloc(1 << 20, 7);
  const f = join(dir, 'seq.bin');
  const t0 = process.hrtime.bigint();
  const fd = fs.openSync(f, 'w');
  for (let i = 0; i < mib; i++) fs.writeSync(fd, buf, 0, buf.length, i * buf.length);
  fs.fsyncSync(fd);
  fs.closeSync(fd);
  const s = seconds(t0);
  fs.unlinkSync(f);
  out({ bytes: mib << 20, seconds: s, mbps: mib / s });
} else if (mode === 'fsync4k') {
  const secs = Number(arg ?? 10);
  const buf = Buffer.alloc(4096, 3);
  const f = join(dir, `fsync-${name ?? '0'}.bin`);
  const fd = fs.openSync(f, 'w');
  if (start) while (Date.now() < Number(start)) Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 1);
  const t0 = Date.now();
  let n = 0;
  while (Date.now() - t0 < secs * 1000) {
    fs.writeSync(fd, buf, 0, buf.length, (n % 2560) * 4096);
    fs.fdatasyncSync(fd);
    n++;
  }
  const s = (Date.now() - t0) / 1000;
  fs.closeSync(fd);
  fs.unlinkSync(f);
  out({ ops: n, seconds: s, opsps: n / s });
} else if (mode === 'read') {
  const mib = Number(arg ?? 256);
  const secs = Number(name ?? 5);
  const f = join(dir, 'read.bin');
  const buf = Buffer.alloc(1 << 20);
  for (let i = 0; i < buf.length; i += 4096) buf.writeUInt32LE(i, i);
  const w = fs.openSync(f, 'w');
  for (let i = 0; i < mib; i++) fs.writeSync(w, buf, 0, buf.length, i * buf.length);
  fs.fsyncSync(w);
  fs.closeSync(w);
  // sequential: a fresh open, 1 MiB reads to the end
  let t0 = process.hrtime.bigint();
  let fd = fs.openSync(f, 'r');
  let bytes = 0;
  for (;;) {
    const n = fs.readSync(fd, buf, 0, buf.length, null);
    if (n === 0) break;
    bytes += n;
  }
  fs.closeSync(fd);
  const seqS = seconds(t0);
  // random 4 KiB reads (a database's index and heap lookups)
  fd = fs.openSync(f, 'r');
  const pages = (mib << 20) / 4096;
  let seed = 12345;
  let n = 0;
  const small = Buffer.alloc(4096);
  t0 = process.hrtime.bigint();
  const end = Date.now() + secs * 1000;
  while ((n & 255) !== 0 || Date.now() < end) {
    seed = (seed * 1103515245 + 12345) >>> 0;
    fs.readSync(fd, small, 0, 4096, (seed % pages) * 4096);
    n++;
  }
  const randS = seconds(t0);
  fs.closeSync(fd);
  fs.unlinkSync(f);
  if (bytes !== mib << 20) throw new Error(`read ${bytes} bytes of ${mib << 20}`);
  out({ seqMbps: bytes / (1 << 20) / seqS, randOpsps: n / randS });
} else if (mode === 'tree') {
  // the resync benchmark's data: one large file of MiB and COUNT small files (1-8 KiB) in 100 folders
  const mib = Number(arg);
  const count = Number(name);
  const buf = Buffer.alloc(1 << 20);
  for (let i = 0; i < buf.length; i += 8) buf.writeDoubleLE(Math.random(), i);
  fs.mkdirSync(dir, { recursive: true });
  const fd = fs.openSync(join(dir, 'large.bin'), 'w');
  for (let i = 0; i < mib; i++) fs.writeSync(fd, buf, 0, buf.length, i * buf.length);
  fs.fsyncSync(fd);
  fs.closeSync(fd);
  let bytes = mib << 20;
  for (let i = 0; i < count; i++) {
    const d = join(dir, `small${i % 100}`);
    if (i < 100) fs.mkdirSync(d, { recursive: true });
    const len = 1024 * (1 + (i % 8));
    fs.writeFileSync(join(d, `f${i}`), buf.subarray(i % 1000, (i % 1000) + len));
    bytes += len;
  }
  out({ bytes });
} else {
  throw new Error(`unknown mode ${mode}`);
}
