import { createHash } from 'node:crypto';
import { closeSync, constants as C, lstatSync, openSync, readSync } from 'node:fs';
import * as fsp from 'node:fs/promises';
import { join } from 'node:path';
import type { Excludes } from './excludes.ts';
import { allXattrs } from './fuse/libc.ts';
import { key, type Tracking } from './tracking.ts';

/** One entry of a tree listing used by the checksum comparison. */
export interface Entry {
  /** dir index and relative path */
  k: string;
  ty: 'f' | 'd' | 'l';
  m: number;
  u: number;
  g: number;
  s: number;
  tg?: string;
  /** per-zone digests (first 16 hex digits of SHA-1), files only */
  h?: string[];
  /** digest of the extended attributes (names and values), when there are any */
  x?: string;
}

/** the entry's extended attributes as one short digest; undefined when it has none */
function xattrDigest(p: string): string | undefined {
  const all = Object.entries(allXattrs(p));
  if (all.length === 0) return undefined;
  const h = createHash('sha1');
  for (const [n, v] of all.sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))) h.update(n).update('\0').update(String(v.length)).update('\0').update(v);
  return h.digest('hex').slice(0, 16);
}

function withXattrs(e: Entry, p: string): Entry {
  const x = e.ty === 'l' ? undefined : xattrDigest(p);
  return x ? { ...e, x } : e;
}

const PARALLEL = 16;
const SMALL = 64 * 1024;

/**
 * Lists every entry of the given roots with per-zone digests of file contents, parents before their
 * children. Entries that are neither files, directories nor symlinks (sockets, fifos) are skipped, and
 * so is what the module leaves out of replication (`excludes`), with everything under it. A file for
 * which `digests` says false is listed with its size only (the primary's resync: a file the secondary
 * does not have is copied whole, reading it for digests first would double the work).
 */
export async function buildManifest(
  roots: readonly string[],
  zoneSize: number,
  onEntry?: (e: Entry) => void,
  excludes?: Excludes,
  digests: (k: string, size: number) => boolean | Promise<boolean> = () => true,
): Promise<Entry[]> {
  const out: Entry[] = [];
  const buf = Buffer.allocUnsafe(zoneSize * PARALLEL);
  let slot = 0;
  const freeSlots: number[] = [];
  for (let i = 0; i < PARALLEL; i++) freeSlots.push(i);
  for (let d = 0; d < roots.length; d++) {
    // breadth-first by directory; files of one directory hashed PARALLEL at a time
    const queue: string[] = [''];
    while (queue.length > 0) {
      const rel = queue.shift()!;
      const dirPath = rel === '' ? roots[d] : join(roots[d], rel);
      let names: string[];
      try {
        names = (await fsp.readdir(dirPath)).sort();
      } catch (e) {
        vanished(e);
        continue;
      }
      if (rel === '') {
        const st = await fsp.lstat(dirPath);
        const e = withXattrs({ k: key(d, ''), ty: 'd', m: st.mode & 0o7777, u: st.uid, g: st.gid, s: 0 }, dirPath);
        out.push(e);
        onEntry?.(e);
      }
      const entries: (Entry | undefined)[] = new Array(names.length);
      let next = 0;
      const worker = async () => {
        const s = freeSlots.pop()!;
        const zbuf = buf.subarray(s * zoneSize, (s + 1) * zoneSize);
        for (;;) {
          const i = next++;
          if (i >= names.length) break;
          const r = rel === '' ? names[i] : `${rel}/${names[i]}`;
          const k = key(d, r);
          entries[i] = excludes?.skips(d, r) ? undefined : await describe(join(roots[d], r), k, zoneSize, zbuf, digests);
        }
        freeSlots.push(s);
      };
      await Promise.all(Array.from({ length: Math.min(PARALLEL, names.length) }, worker));
      for (let i = 0; i < names.length; i++) {
        const e = entries[i];
        if (!e) continue;
        out.push(e);
        onEntry?.(e);
        if (e.ty === 'd') queue.push(rel === '' ? names[i] : `${rel}/${names[i]}`);
      }
    }
  }
  void slot;
  return out;
}

let sinceYield = 0;

/**
 * An entry that disappeared while the tree was listed (the application goes on writing during a
 * resync) is simply not listed: whatever removed it is replicated or tracked. Any other error (EIO,
 * EACCES) is thrown: leaving the entry out would make the resync delete the peer's copy.
 */
function vanished(e: unknown): undefined {
  const code = (e as NodeJS.ErrnoException).code;
  if (code === 'ENOENT' || code === 'ENOTDIR') return undefined;
  throw e;
}

async function describe(p: string, k: string, zoneSize: number, zbuf: Buffer, digests: (k: string, size: number) => boolean | Promise<boolean>): Promise<Entry | undefined> {
  let st;
  try {
    st = lstatSync(p);
  } catch (e) {
    return vanished(e);
  }
  if (st.isFile() && !(await digests(k, st.size))) return withXattrs({ k, m: st.mode & 0o7777, u: st.uid, g: st.gid, ty: 'f', s: st.size }, p);
  // small files (the common case in large trees): synchronous calls, no thread-pool round trips;
  // the event loop is handed back every 2 ms so FUSE requests and acknowledgements keep flowing
  if (st.isFile() && st.size <= SMALL) {
    const t0 = performance.now();
    let e: Entry | undefined;
    try {
      const fd = openSync(p, C.O_RDONLY | C.O_NOFOLLOW);
      try {
        const n = readSync(fd, zbuf, 0, Math.min(zbuf.length, SMALL + 1), 0);
        const h = n === 0 ? [] : [createHash('sha1').update(zbuf.subarray(0, n)).digest('hex').slice(0, 16)];
        e = withXattrs({ k, m: st.mode & 0o7777, u: st.uid, g: st.gid, ty: 'f', s: n, h }, p);
      } finally {
        closeSync(fd);
      }
    } catch (err) {
      e = vanished(err);
    }
    sinceYield += performance.now() - t0;
    if (sinceYield > 2) {
      sinceYield = 0;
      await new Promise((r) => setImmediate(r));
    }
    if (!e || e.s <= SMALL) return e;
  }
  const base = { k, m: st.mode & 0o7777, u: st.uid, g: st.gid };
  if (st.isDirectory()) return withXattrs({ ...base, ty: 'd', s: 0 }, p);
  if (st.isSymbolicLink()) return { ...base, ty: 'l', s: 0, tg: await fsp.readlink(p).catch((e: unknown) => vanished(e) ?? '') };
  if (!st.isFile()) return undefined;
  const h: string[] = [];
  let size = 0;
  let fh;
  try {
    fh = await fsp.open(p, C.O_RDONLY | C.O_NOFOLLOW);
  } catch (e) {
    return vanished(e);
  }
  try {
    for (;;) {
      let filled = 0;
      while (filled < zoneSize) {
        const { bytesRead } = await fh.read(zbuf, filled, zoneSize - filled, size + filled);
        if (bytesRead === 0) break;
        filled += bytesRead;
      }
      if (filled === 0) break;
      h.push(createHash('sha1').update(zbuf.subarray(0, filled)).digest('hex').slice(0, 16));
      size += filled;
      if (filled < zoneSize) break;
    }
  } finally {
    await fh.close();
  }
  return withXattrs({ ...base, ty: 'f', s: size, h }, p);
}

/**
 * Compares the primary's listing with the secondary's and marks in tracking what the resync must copy:
 * missing or different entries, differing zones, and (through the parent's listing) what the secondary
 * has in excess. Returns the number of file bytes to copy.
 */
export function diffManifests(primary: readonly Entry[], secondary: ReadonlyMap<string, Entry>, tracking: Tracking): number {
  const zs = tracking.zoneSize;
  const seen = new Set<string>();
  let bytes = 0;
  for (const e of primary) {
    seen.add(e.k);
    const o = secondary.get(e.k);
    if (!o || o.ty !== e.ty) {
      tracking.markAll(e.k);
      bytes += e.s;
      continue;
    }
    if (e.ty === 'f') {
      const zones: number[] = [];
      const n = e.h?.length ?? 0;
      for (let z = 0; z < n; z++) if (!o.h || o.h[z] !== e.h![z]) zones.push(z);
      for (const z of zones) {
        tracking.markZones(e.k, z * zs, 1);
        bytes += Math.min(zs, e.s - z * zs);
      }
      if (o.s !== e.s || zones.length > 0) tracking.markMeta(e.k);
    }
    if (e.m !== o.m || e.u !== o.u || e.g !== o.g || e.tg !== o.tg || e.x !== o.x) tracking.markMeta(e.k);
  }
  for (const k of secondary.keys()) {
    if (!seen.has(k)) tracking.markMeta(k); // resync finds it absent on the primary and removes it
  }
  return bytes;
}
