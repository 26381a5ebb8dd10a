import { closeSync, constants as C, lstatSync, openSync, readSync, type Stats } from 'node:fs';
import * as fsp from 'node:fs/promises';
import type { Excludes } from './excludes.ts';
import { allXattrs } from './fuse/libc.ts';
import type { Op } from './ops.ts';
import { abs } from './paths.ts';
import { copiesContents, key, splitKey, type Dirt, type Key, type Tracking } from './tracking.ts';

/** files up to this size are read in one synchronous call */
const SMALL = 64 * 1024;

/** the first size bytes of a small file (fewer if it shrank meanwhile) */
function readSmall(p: string, size: number): Buffer {
  const fd = openSync(p, C.O_RDONLY | C.O_NOFOLLOW);
  try {
    const buf = Buffer.allocUnsafe(size);
    return buf.subarray(0, size === 0 ? 0 : readSync(fd, buf, 0, size, 0));
  } finally {
    closeSync(fd);
  }
}

/** What copying one entry needs: the stream to the secondary, and the tracking it works from. */
export interface CopyContext {
  tracking: Tracking;
  backings: readonly string[];
  /** sends one operation; `done` runs when the secondary acknowledged it (or the session ended) */
  send(op: Op, done?: () => void): void;
  /** file bytes sent (progress) */
  sent(bytes: number): void;
  /** resolves when there is room in the window for more */
  room(): Promise<void>;
  /** false once the session is gone */
  alive(): boolean;
  /** resolves when n more file bytes may go out (replication.resync_bandwidth) */
  pace(n: number): Promise<void>;
  /** the largest data operation to send (a multiple of 4 KiB; see PrimaryRole's copyChunk) */
  chunk: number;
  /** a buffer of c.chunk bytes to read into; it comes back to the role once its operation is written */
  buffer(): Buffer;
  /** what the module leaves out of replication: never copied, never removed on the secondary */
  excludes: Excludes;
  /** the entry's last operation was acknowledged (or nothing needed sending) */
  finished(): void;
  k: string;
  d: Dirt;
}

/** an lstat's answer for a tracked entry: a file's size, null for another type, nothing when it is gone (removed since it was marked) */
function record(out: Map<Key, number | null>, k: Key, st: Stats | undefined): void {
  if (st) out.set(k, st.isFile() ? st.size : null);
}
function gone(e: NodeJS.ErrnoException): undefined {
  if (e.code === 'ENOENT' || e.code === 'ENOTDIR') return undefined;
  throw e;
}

/**
 * The sizes of tracked entries on the primary (see `record`), stat'ed a few hundred at a time off the
 * event loop, so the view keeps being served while a large tracking is counted.
 */
export async function entrySizes(keys: readonly Key[], backings: readonly string[]): Promise<Map<Key, number | null>> {
  const out = new Map<Key, number | null>();
  for (let i = 0; i < keys.length; i += 256) {
    await Promise.all(
      keys.slice(i, i + 256).map(async (k) => {
        const { dir, rel } = splitKey(k);
        record(out, k, await fsp.lstat(abs(backings[dir], rel)).catch(gone));
      }),
    );
  }
  return out;
}

/** the same, on the event loop: for a handful of entries, where a thread-pool round trip each costs more */
function entrySizesNow(keys: readonly Key[], backings: readonly string[]): Map<Key, number | null> {
  const out = new Map<Key, number | null>();
  for (const k of keys) {
    const { dir, rel } = splitKey(k);
    let st: Stats | undefined;
    try {
      st = lstatSync(abs(backings[dir], rel));
    } catch (e) {
      st = gone(e as NodeJS.ErrnoException);
    }
    record(out, k, st);
  }
  return out;
}

/** tracked entries with contents to copy (whose size matters) */
function withContents(t: Tracking): Key[] {
  return [...t.entries, ...t.inflight].filter(([, d]) => copiesContents(d)).map(([k]) => k);
}

/** up to this many, status() sizes the tracked entries at once; beyond, in the background */
const SIZE_NOW = 1000;

/** file bytes still to copy (progress, ETA, trackedBytes): whole files at their size, marked zones */
export async function estimate(t: Tracking, backings: readonly string[]): Promise<number> {
  const sizes = await entrySizes(withContents(t), backings);
  return t.bytesToCopy((k) => sizes.get(k) ?? null);
}

/** estimate() on the event loop, for a tracking of at most SIZE_NOW entries; undefined beyond */
export function estimateNow(t: Tracking, backings: readonly string[]): number | undefined {
  const keys = withContents(t);
  if (keys.length > SIZE_NOW) return undefined;
  const sizes = entrySizesNow(keys, backings);
  return t.bytesToCopy((k) => sizes.get(k) ?? null);
}

/** sorted zone numbers as byte ranges [from, to) of a file of size bytes, consecutive zones joined */
export function ranges(zones: readonly number[], zoneSize: number, size: number): [number, number][] {
  const out: [number, number][] = [];
  for (const z of zones) {
    const from = z * zoneSize;
    const to = Math.min(from + zoneSize, size);
    const last = out[out.length - 1];
    if (last && last[1] === from) last[1] = to;
    else if (from < to) out.push([from, to]);
  }
  return out;
}

/**
 * Makes the secondary's copy of one entry equal to the primary's current one (resync). An entry that
 * disappears while it is copied is left alone: the change that removed it marked it again (it was
 * being copied), so the next round sends its removal.
 */
export async function copyEntry(c: CopyContext): Promise<void> {
  try {
    await copy(c);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
    c.finished();
  }
}

async function copy(c: CopyContext): Promise<void> {
  const { dir: d, rel } = splitKey(c.k);
  const p = abs(c.backings[d], rel);
  let last: Op | null = null;
  // each operation goes out when the next one is known, so the last one carries `finished`
  const out = (op: Op) => {
    if (last) c.send(last);
    last = op;
  };
  const end = () => {
    if (last) c.send(last, c.finished);
    else c.finished();
  };
  let st;
  try {
    // nanosecond times for the meta operation; sizes and ids fit a number. Synchronous, as the reads
    // of small files below: a large tree is mostly small files, and a thread-pool round trip per call
    // would cost more than the call
    st = lstatSync(p, { bigint: true });
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
    if (rel !== '' && !c.excludes.skips(d, rel, () => false)) out({ t: 'remove', d, p: rel });
    return end();
  }
  const size = Number(st.size);
  const ty = st.isFile() ? 'f' : st.isDirectory() ? 'd' : st.isSymbolicLink() ? 'l' : null;
  // devices, FIFOs, sockets: never created through the view, and meaningless on the peer; left-out
  // entries are neither sent nor removed (the secondary's own are its business)
  if (!ty || c.excludes.skips(d, rel, () => ty === 'd')) return end();
  if (c.d.tree && rel !== '') out({ t: 'remove', d, p: rel });
  const tg = ty === 'l' ? await fsp.readlink(p) : undefined;
  out({ t: 'ensure', d, p: rel, ty, m: Number(st.mode) & 0o7777, u: Number(st.uid), g: Number(st.gid), s: ty === 'f' ? size : 0, ...(tg !== undefined ? { tg } : {}) });
  if (ty === 'f') {
    const zs = c.tracking.zoneSize;
    const nz = Math.ceil(size / zs);
    let zones: number[];
    if (c.d.all || c.d.tree) zones = Array.from({ length: nz }, (_, i) => i);
    else {
      const set = new Set([...(c.d.zones ?? [])].filter((z) => z < nz));
      if (c.d.from !== undefined) for (let z = Math.floor(c.d.from / zs); z < nz; z++) set.add(z);
      zones = [...set].sort((a, b) => a - b);
    }
    if (zones.length && size <= SMALL) {
      await c.pace(size);
      const data = readSmall(p, size);
      if (data.length > 0) out({ t: 'data', d, p: rel, o: 0, data });
      c.sent(data.length);
      await c.room();
      if (!c.alive()) return;
    } else if (zones.length) {
      const fh = await fsp.open(p, C.O_RDONLY | C.O_NOFOLLOW);
      try {
        // consecutive zones go out as one range, in chunks of c.chunk (a whole file: one range)
        for (const [from, to] of ranges(zones, zs, size)) {
          for (let off = from; off < to; off += c.chunk) {
            const len = Math.min(c.chunk, to - off);
            await c.pace(len);
            const buf = c.buffer();
            const { bytesRead } = await fh.read(buf, 0, len, off);
            if (bytesRead === 0) break;
            out({ t: 'data', d, p: rel, o: off, data: buf.subarray(0, bytesRead) });
            c.sent(bytesRead);
            await c.room();
            if (!c.alive()) return;
          }
        }
      } finally {
        await fh.close();
      }
    }
  }
  if (ty === 'd' && c.d.tree) {
    for (const n of await fsp.readdir(p)) {
      const r = rel === '' ? n : `${rel}/${n}`;
      if (!c.excludes.skips(d, r)) c.tracking.markTree(key(d, r));
    }
  }
  const x = ty === 'l' ? undefined : Object.fromEntries(Object.entries(allXattrs(p)).map(([n, v]) => [n, v.toString('base64')]));
  out({ t: 'meta', d, p: rel, a: String(st.atimeNs), mt: String(st.mtimeNs), ...(x ? { x } : {}) });
  end();
}
