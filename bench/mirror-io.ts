/**
 * `node --import tsx bench/mirror-io.ts seq|fsync4k DIR [MiB|seconds]`: one I/O measurement in DIR,
 * printed as one JSON line. seq: 1 MiB writes, one fsync at the end. fsync4k: 4 KiB write + fdatasync.
 */
import * as fs from 'node:fs';
import { join } from 'node:path';

const [mode, dir, arg] = process.argv.slice(2);
if (mode === 'seq') {
  const mib = Number(arg ?? 1024);
  const buf = Buffer.alloc(1 << 20, 7);
  const f = join(dir, 'seq.bin');
  const t0 = process.hrtime.bigint();
  const fd = fs.openSync(f, 'w');
  for (let i = 0; i < mib; i++) fs.writeSync(fd, buf, 0, buf.length, i * buf.length);
  fs.fsyncSync(fd);
  fs.closeSync(fd);
  const s = Number(process.hrtime.bigint() - t0) / 1e9;
  fs.unlinkSync(f);
  process.stdout.write(`${JSON.stringify({ mode, bytes: mib << 20, seconds: s, mbps: mib / s })}\n`);
} else {
  const secs = Number(arg ?? 10);
  const buf = Buffer.alloc(4096, 3);
  const f = join(dir, 'fsync.bin');
  const fd = fs.openSync(f, 'w');
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
  process.stdout.write(`${JSON.stringify({ mode, ops: n, seconds: s, opsps: n / s })}\n`);
}
