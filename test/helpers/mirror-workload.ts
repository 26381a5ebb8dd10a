/**
 * Seeded random file-system workload: `node --import tsx mirror-workload.ts DIR SEED OPS`.
 * Runs create/write/truncate/rename (files and directories, over existing targets)/unlink/mkdir/rmdir/
 * symlink/link/chmod/utimes/fsync through DIR (the view) and prints a summary line as JSON. Errors
 * that the random choice makes legitimate (ENOENT, ENOTEMPTY, EEXIST...) are counted, not fatal.
 */
import * as fs from 'node:fs';
import { join } from 'node:path';

const [dir, seedText, opsText] = process.argv.slice(2);
let seed = Number(seedText) >>> 0 || 1;
const rand = () => {
  // mulberry32
  seed = (seed + 0x6d2b79f5) >>> 0;
  let t = seed;
  t = Math.imul(t ^ (t >>> 15), t | 1);
  t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
  return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
};
const pick = <T>(a: T[]): T => a[Math.floor(rand() * a.length)];
const ops = Number(opsText) || 10_000;

const dirs = [''];
const files: string[] = [];
const name = () => `n${Math.floor(rand() * 40)}`;
const forget = (r: string) => {
  for (const list of [files, dirs]) {
    for (let i = list.length - 1; i >= 0; i--) if (list[i] === r || list[i].startsWith(`${r}/`)) list.splice(i, 1);
  }
};
const inDir = () => {
  const d = pick(dirs);
  return d ? `${d}/${name()}` : name();
};
const P = (r: string) => join(dir, r);
const counts: Record<string, number> = {};
const errors: Record<string, number> = {};
const buf = Buffer.alloc(300_000);
for (let i = 0; i < buf.length; i++) buf[i] = Math.floor(rand() * 256);

function refresh(): void {
  dirs.length = 0;
  files.length = 0;
  const walk = (rel: string) => {
    dirs.push(rel);
    for (const e of fs.readdirSync(P(rel), { withFileTypes: true })) {
      const r = rel ? `${rel}/${e.name}` : e.name;
      if (e.isDirectory()) walk(r);
      else if (e.isFile()) files.push(r);
    }
  };
  walk('');
}

for (let i = 0; i < ops; i++) {
  if (i % 1000 === 0) refresh();
  const r = rand();
  let op = '';
  try {
    if (r < 0.25 || files.length === 0) {
      op = 'write';
      const f = files.length && rand() < 0.7 ? pick(files) : inDir();
      const fd = fs.openSync(P(f), rand() < 0.1 ? 'a' : fs.existsSync(P(f)) ? 'r+' : 'w');
      const len = Math.floor(rand() ** 3 * 300_000);
      const off = Math.floor(rand() * 2_000_000);
      fs.writeSync(fd, buf, Math.floor(rand() * 1000) % (buf.length - len + 1), len, rand() < 0.5 ? off : null);
      if (rand() < 0.03) fs.fsyncSync(fd);
      fs.closeSync(fd);
      if (!files.includes(f)) files.push(f);
    } else if (r < 0.32) {
      op = 'truncate';
      fs.truncateSync(P(pick(files)), Math.floor(rand() * 1_500_000));
    } else if (r < 0.42) {
      op = 'rename-file';
      const from = pick(files);
      const to = rand() < 0.5 && files.length ? pick(files) : inDir();
      fs.renameSync(P(from), P(to));
      forget(from);
      if (!files.includes(to)) files.push(to);
    } else if (r < 0.44) {
      op = 'rename-dir';
      const d = pick(dirs.filter(Boolean).concat(['']));
      const shallow = dirs.filter((x) => x.split('/').length < 3);
      const to = `${pick(shallow)}/${name()}`.replace(/^\//, '');
      if (d) {
        fs.renameSync(P(d), P(to));
        forget(to);
        for (const list of [files, dirs]) {
          for (let k = 0; k < list.length; k++) if (list[k] === d || list[k].startsWith(`${d}/`)) list[k] = to + list[k].slice(d.length);
        }
      }
    } else if (r < 0.54) {
      op = 'unlink';
      const f = rand() < 0.8 ? pick(files) : inDir();
      fs.unlinkSync(P(f));
      forget(f);
    } else if (r < 0.62) {
      op = 'mkdir';
      const d = inDir();
      fs.mkdirSync(P(d), { mode: pick([0o755, 0o700, 0o750]) });
      dirs.push(d);
    } else if (r < 0.66) {
      op = 'rmdir';
      const d = pick(dirs.filter(Boolean).concat(['']));
      if (d) {
        fs.rmdirSync(P(d));
        forget(d);
      }
    } else if (r < 0.72) {
      op = 'symlink';
      fs.symlinkSync(rand() < 0.5 ? pick(files) : `../${name()}`, P(inDir()));
    } else if (r < 0.76 && !process.env.NO_LINK) {
      op = 'link';
      const n = inDir();
      fs.linkSync(P(pick(files)), P(n));
      files.push(n);
    } else if (r < 0.84) {
      op = 'chmod';
      fs.chmodSync(P(pick(files)), pick([0o644, 0o600, 0o640, 0o755, 0o444]));
    } else if (r < 0.88) {
      op = 'utimes';
      const t = 1_600_000_000 + Math.floor(rand() * 1e8);
      fs.utimesSync(P(pick(files)), t, t);
    } else if (r < 0.89) {
      op = 'fsync';
      const fd = fs.openSync(P(pick(files)), 'r+');
      fs.fdatasyncSync(fd);
      fs.closeSync(fd);
    } else if (r < 0.96) {
      op = 'overwrite-whole';
      fs.writeFileSync(P(pick(files)), buf.subarray(0, Math.floor(rand() * 50_000)));
    } else {
      op = 'read';
      fs.readFileSync(P(pick(files)));
    }
    counts[op] = (counts[op] ?? 0) + 1;
  } catch (e) {
    const code = `${op}:${(e as NodeJS.ErrnoException).code ?? 'ERR'}`;
    errors[code] = (errors[code] ?? 0) + 1;
  }
}
process.stdout.write(`${JSON.stringify({ ops, counts, errors })}\n`);
