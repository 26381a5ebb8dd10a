/**
 * The failover tests' writer, as plain JavaScript for `node -e FILE ACKLOG EVERY` (it starts in ~50 ms,
 * against ~1 s with tsx). It appends numbered fixed-size records to FILE (through the view); after each
 * write() returned it logs "w N" to ACKLOG (outside the view), and every EVERY records it fdatasyncs and,
 * once that returned, logs "s N". Runs until killed or until a call fails.
 */
export const WRITER_JS = `
const fs = require('node:fs');
const [file, acklog, every] = process.argv.slice(1);
const fd = fs.openSync(file, 'a');
const log = fs.openSync(acklog, 'a');
for (let seq = 1; ; seq++) {
  try { fs.writeSync(fd, seq + ' ' + 'x'.repeat(40) + '\\n'); } catch { process.exit(1); }
  fs.writeSync(log, 'w ' + seq + '\\n');
  if (seq % Number(every) !== 0) continue;
  try { fs.fdatasyncSync(fd); } catch { process.exit(1); }
  fs.writeSync(log, 's ' + seq + '\\n');
}`;

/** the bytes of records 1..n, exactly as the writer wrote them */
export function records(n: number): string {
  let s = '';
  for (let seq = 1; seq <= n; seq++) s += `${seq} ${'x'.repeat(40)}\n`;
  return s;
}

/** what the writer saw acknowledged: the last record whose write returned, and whose fdatasync returned */
export function acknowledged(acklog: string): { written: number; synced: number } {
  let written = 0;
  let synced = 0;
  for (const line of acklog.split('\n')) {
    const [k, n] = line.split(' ');
    const v = Number(n);
    if (!Number.isInteger(v)) continue;
    if (k === 'w') written = Math.max(written, v);
    if (k === 's') synced = Math.max(synced, v);
  }
  return { written, synced };
}
