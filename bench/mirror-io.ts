/**
 * `node --import tsx bench/mirror-io.ts MODE DIR ARGS…`: one I/O measurement in DIR, printed as one JSON line.
 *   seq DIR MiB                      1 MiB writes, one fsync at the end
 *   fsync4k DIR SECONDS [NAME START] 4 KiB write + fdatasync in a loop; with START (epoch ms) it waits
 *                                    until then, so concurrent writers measure the same window
 *   read DIR MiB SECONDS             writes and syncs a file of MiB, then reads it sequentially (1 MiB
 *                                    reads, a fresh open each pass) for SECONDS, then at random 4 KiB
 *                                    offsets (pread) for SECONDS
 *   tree DIR MiB COUNT               one file of MiB and COUNT small files (the resync benchmark's data)
 *   write FILE MiB                   writes and syncs FILE (kept, for readfile elsewhere)
 *   readfile FILE SECONDS            reads an existing FILE as `read` does (sequential passes, then random)
 */
import * as fs from 'node:fs';
import { join } from 'node:path';

const [mode, dir, arg, name, start] = process.argv.slice(2);
/** a file of mib MiB whose every 4 KiB page starts with its offset, synced */
function writeFile(f: string, mib: number): void {
  const buf = Buffer.alloc(1 << 20);
  for (let i = 0; i < buf.length; i += 4096) buf.writeUInt32LE(i, i);
  const w = fs.openSync(f, 'w');
  for (let i = 0; i < mib; i++) fs.writeSync(w, buf, 0, buf.length, i * buf.length);
  fs.fsyncSync(w);
  fs.closeSync(w);
}

/**
 * Sequential 1 MiB reads to the end, a fresh open each pass, passes repeated for secs (one pass of a
 * cached file takes ~50 ms: measured once, a preemption on this shared machine halved the figure);
 * then random 4 KiB reads (a database's index and heap lookups) for secs.
 */
function readFile(f: string, secs: number): { seqMbps: number; passes: number; randOpsps: number } {
  const size = fs.statSync(f).size;
  const buf = Buffer.alloc(1 << 20);
  let t0 = process.hrtime.bigint();
  let bytes = 0;
  let passes = 0;
  const seqEnd = Date.now() + secs * 1000;
  do {
    const fd = fs.openSync(f, 'r');
    let got = 0;
    for (;;) {
      const n = fs.readSync(fd, buf, 0, buf.length, null);
      if (n === 0) break;
      got += n;
    }
    fs.closeSync(fd);
    if (got !== size) throw new Error(`read ${got} bytes of ${size}`);
    bytes += got;
    passes++;
  } while (Date.now() < seqEnd);
  const seqS = seconds(t0);
  const fd = fs.openSync(f, 'r');
  const pages = Math.floor(size / 4096);
  let seed = 12345;
  let n = 0;
  const small = Buffer.alloc(4096);
  t0 = process.hrtime.bigint();
  const end = Date.now() + secs * 1000;
  while ((n & 255) !== 0 || Date.now() < end) {
    seed = (seed * 1103515245 + 12345) >>> 0;
    const page = seed % pages;
    fs.readSync(fd, small, 0, 4096, page * 4096);
    if (small.readUInt32LE(0) !== (page * 4096) % (1 << 20)) throw new Error(`page ${page} of ${f} holds other data`);
    n++;
  }
  const randS = seconds(t0);
  fs.closeSync(fd);
  return { seqMbps: bytes / (1 << 20) / seqS, passes, randOpsps: n / randS };
}

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
  const f = join(dir, 'read.bin');
  writeFile(f, mib);
  const r = readFile(f, Number(name ?? 5));
  fs.unlinkSync(f);
  out(r);
} else if (mode === 'write') {
  writeFile(dir, Number(arg));
  out({ bytes: Number(arg) << 20 });
} else if (mode === 'readfile') {
  out(readFile(dir, Number(arg)));
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
