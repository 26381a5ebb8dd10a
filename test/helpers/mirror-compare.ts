import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import { join } from 'node:path';
import { allXattrs } from '../../node-service/src/mirror/fuse/libc.ts';

/** Every difference between two trees: names, types, sizes, modes, owners, symlink targets, bytes and xattrs. */
export function compareTrees(a: string, b: string): string[] {
  const diffs: string[] = [];
  const describe = (p: string) => {
    const st = fs.lstatSync(p);
    const type = st.isDirectory() ? 'dir' : st.isSymbolicLink() ? 'symlink' : st.isFile() ? 'file' : 'other';
    return {
      type,
      mode: st.mode & 0o7777,
      owner: `${st.uid}:${st.gid}`,
      xattrs: type === 'symlink' ? '' : JSON.stringify(Object.entries(allXattrs(p)).map(([k, v]) => [k, v.toString('base64')]).sort()),
      size: type === 'file' ? st.size : 0,
      target: type === 'symlink' ? fs.readlinkSync(p) : undefined,
      hash: type === 'file' ? createHash('sha1').update(fs.readFileSync(p)).digest('hex') : undefined,
    };
  };
  const walk = (rel: string) => {
    const pa = join(a, rel);
    const pb = join(b, rel);
    const na = new Set(fs.readdirSync(pa));
    const nb = new Set(fs.readdirSync(pb));
    for (const n of nb) if (!na.has(n)) diffs.push(`only in second: ${join(rel, n)}`);
    for (const n of na) {
      const r = join(rel, n);
      if (!nb.has(n)) {
        diffs.push(`only in first: ${r}`);
        continue;
      }
      const da = describe(join(a, r));
      const db = describe(join(b, r));
      for (const k of ['type', 'mode', 'owner', 'size', 'target', 'hash', 'xattrs'] as const) {
        if (da[k] !== db[k]) diffs.push(`${r}: ${k} ${String(da[k])} != ${String(db[k])}`);
      }
      if (da.type === 'dir' && db.type === 'dir') walk(r);
    }
  };
  walk('');
  return diffs;
}

export function countEntries(root: string): number {
  let n = 0;
  const walk = (p: string) => {
    for (const e of fs.readdirSync(p, { withFileTypes: true })) {
      n++;
      if (e.isDirectory()) walk(join(p, e.name));
    }
  };
  walk(root);
  return n;
}
