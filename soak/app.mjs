// The soak's application, started by start_prim on the primary (node soak/app.mjs DATA_DIR PORT).
// It makes records durable the way a database does and answers 200 only once they are:
//   POST /append?seq=N        append "N\n" to records.log, fdatasync
//   POST /put?seq=N&slot=K    write slots/.K.tmp, fsync, rename over slots/K, fsync the directory
//   POST /bulk?mb=M           a file of M MiB of random bytes (gives a resync something to copy)
//   GET  /state               {node, ranges: [[a,b]...] of records.log, bad: unparsable lines, slots: {K: N}}
// Any failing call answers 500: the client then does not count the record as durable.
import { createServer } from 'node:http';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';

const [data, port] = process.argv.slice(2);
const node = process.env.VIGIL_NODE;

/** all of it or an error: a short write (a full disk takes what fits) is not a record */
function writeAll(fd, text) {
  const buf = Buffer.from(text);
  const n = fs.writeSync(fd, buf);
  if (n !== buf.length) throw new Error(`short write: ${n} of ${buf.length} bytes`);
}

function fsyncPath(p, flags = 'r') {
  const fd = fs.openSync(p, flags);
  try { fs.fsyncSync(fd); } finally { fs.closeSync(fd); }
}

function append(seq) {
  const fd = fs.openSync(`${data}/records.log`, 'a');
  try {
    const size = fs.fstatSync(fd).size;
    try {
      writeAll(fd, `${seq}\n`);
    } catch (e) {
      // a database takes a torn record back: the next one must not be glued to its first bytes
      try { fs.ftruncateSync(fd, size); } catch {}
      throw e;
    }
    fs.fdatasyncSync(fd);
  } finally { fs.closeSync(fd); }
}

function put(seq, slot) {
  fs.mkdirSync(`${data}/slots`, { recursive: true });
  const tmp = `${data}/slots/.${slot}.tmp`;
  const fd = fs.openSync(tmp, 'w');
  try {
    writeAll(fd, `${seq}\n`);
    fs.fsyncSync(fd);
  } finally { fs.closeSync(fd); }
  fs.renameSync(tmp, `${data}/slots/${slot}`);
  fsyncPath(`${data}/slots`);
}

function bulk(mb) {
  fs.mkdirSync(`${data}/bulk`, { recursive: true });
  const name = `${data}/bulk/${Date.now()}`;
  const fd = fs.openSync(name, 'w');
  try {
    for (let i = 0; i < mb; i++) fs.writeSync(fd, randomBytes(1 << 20));
    fs.fsyncSync(fd);
  } finally { fs.closeSync(fd); }
  // keep the two newest: the disk stays bounded over an hour
  const all = fs.readdirSync(`${data}/bulk`).sort((a, b) => Number(a) - Number(b));
  for (const f of all.slice(0, -2)) fs.rmSync(`${data}/bulk/${f}`, { force: true });
}

function state() {
  let text = '';
  let statSize = -1;
  try {
    statSize = fs.statSync(`${data}/records.log`).size;
    text = fs.readFileSync(`${data}/records.log`, 'utf8');
  } catch (e) { if (e.code !== 'ENOENT') throw e; }
  const seqs = [];
  let bad = 0;
  for (const l of text.split('\n')) {
    if (l === '') continue;
    if (/^\d+$/.test(l)) seqs.push(Number(l)); else bad += 1;
  }
  seqs.sort((a, b) => a - b);
  const ranges = [];
  for (const s of seqs) {
    const last = ranges.at(-1);
    if (last && s <= last[1] + 1) last[1] = Math.max(last[1], s);
    else ranges.push([s, s]);
  }
  const slots = {};
  let names = [];
  try { names = fs.readdirSync(`${data}/slots`); } catch (e) { if (e.code !== 'ENOENT') throw e; }
  for (const f of names) {
    if (f.startsWith('.')) continue;
    const v = fs.readFileSync(`${data}/slots/${f}`, 'utf8');
    slots[f] = /^\d+\n$/.test(v) ? Number(v) : -1;
  }
  // what the view said: its size and what a read gave (a short view shows here against the backing file)
  return { node, ranges, bad, slots, statSize, readBytes: Buffer.byteLength(text) };
}

createServer((q, s) => {
  const u = new URL(q.url, 'http://x');
  const n = (k) => Number(u.searchParams.get(k));
  try {
    if (q.method === 'POST' && u.pathname === '/append') append(n('seq'));
    else if (q.method === 'POST' && u.pathname === '/put') put(n('seq'), n('slot'));
    else if (q.method === 'POST' && u.pathname === '/bulk') bulk(n('mb'));
    else if (u.pathname === '/state') return s.end(JSON.stringify(state()));
    else { s.statusCode = 404; return s.end('no such route'); }
    s.end(`ok ${node}`);
  } catch (e) {
    s.statusCode = 500;
    s.end(`${node}: ${e.message}`);
  }
}).listen(Number(port));
