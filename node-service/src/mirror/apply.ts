import { constants as C, writeSync } from 'node:fs';
import * as fsp from 'node:fs/promises';
import { type FileHandle } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { checkRel, confinedParent } from './paths.ts';
import { allXattrs, check, fallocate, removeXattr, setTimes, setXattr } from './fuse/libc.ts';
import { FrameError, int, str } from './protocol.ts';

/** a time on the wire: decimal nanoseconds since the epoch */
function nanos(h: Record<string, unknown>, k: string): bigint {
  const v = h[k];
  if (typeof v !== 'string' || !/^-?[0-9]{1,20}$/.test(v)) throw new FrameError(`field ${k} must be a time in decimal nanoseconds`);
  return BigInt(v);
}

/** Mutating operations, as sent on the wire (header fields; write/data/setxattr carry bytes). */
export const OPS = new Set(['write', 'data', 'truncate', 'create', 'mkdir', 'unlink', 'rmdir', 'rename', 'symlink', 'link', 'chmod', 'chown', 'utimens', 'fallocate', 'setxattr', 'removexattr', 'fsync', 'ensure', 'list', 'remove', 'meta', 'nop']);

const MAX_OPEN = 128;

/**
 * Applies the primary's operations to this node's backing directories, one at a time, in sequence
 * order. Every path is checked (relative, no '..', parents resolved inside the directory) and the last
 * component is never followed. With a backup folder set (divergent resync), what a resync overwrites
 * or deletes is first moved or copied there.
 */
export class Applier {
  private fds = new Map<string, FileHandle>();
  private rootsReal: string[] = [];
  backupDir: string | null = null;
  private backedUp = new Set<string>();
  bytesApplied = 0;

  constructor(readonly roots: readonly string[]) {}

  async init(): Promise<void> {
    this.rootsReal = await Promise.all(this.roots.map((r) => fsp.realpath(r)));
  }

  async close(): Promise<void> {
    await this.closeAll();
  }

  private async closeAll(): Promise<void> {
    const fds = [...this.fds.values()];
    this.fds.clear();
    await Promise.all(fds.map((f) => f.close().catch(() => undefined)));
  }

  /** Operations that may name the replicated directory itself; every other one must name an entry in it. */
  private static readonly ROOT_OK = new Set(['chmod', 'chown', 'utimens', 'setxattr', 'removexattr', 'meta', 'fsync', 'ensure', 'list']);

  private async path(h: Record<string, unknown>, field = 'p'): Promise<{ d: number; rel: string; p: string }> {
    const d = int(h, 'd', 0, this.roots.length - 1);
    const rel = checkRel(h[field]);
    if (rel === '' && (field !== 'p' || !Applier.ROOT_OK.has(h.t as string))) throw new FrameError(`${String(h.t)} cannot apply to the replicated directory itself`);
    const p = await confinedParent(this.roots[d], rel, this.rootsReal[d]);
    return { d, rel, p };
  }

  /**
   * Fast path: the descriptor of a file written before. Descriptors are dropped on every namespace
   * change, so the path was confined when it was opened and still names the same file.
   */
  private cached(h: Record<string, unknown>): FileHandle | undefined {
    return this.fds.get(`${int(h, 'd', 0, this.roots.length - 1)}:${checkRel(h.p)}`);
  }

  private async handle(d: number, rel: string, p: string, create: boolean): Promise<FileHandle> {
    const k = `${d}:${rel}`;
    const f = this.fds.get(k);
    if (f) return f;
    const fh = await fsp.open(p, C.O_WRONLY | C.O_NOFOLLOW | (create ? C.O_CREAT : 0), 0o600);
    if (this.fds.size >= MAX_OPEN) await this.closeAll();
    this.fds.set(k, fh);
    return fh;
  }

  async apply(h: Record<string, unknown>, data: Buffer): Promise<void> {
    const t = h.t as string;
    switch (t) {
      case 'nop':
        return;
      case 'write':
      case 'data': {
        const o = int(h, 'o');
        if (checkRel(h.p) === '') throw new FrameError('write to the replicated directory itself');
        let fh = this.cached(h);
        if (!fh || t === 'data') {
          const { d, rel, p } = await this.path(h);
          if (t === 'data') await this.backup(d, rel, p, false);
          fh = await this.handle(d, rel, p, t === 'data');
        }
        // page-cache writes are a memcpy: synchronous is faster than a thread-pool round trip
        let done = 0;
        while (done < data.length) done += writeSync(fh.fd, data, done, data.length - done, o + done);
        this.bytesApplied += data.length;
        return;
      }
      case 'truncate': {
        const { d, rel, p } = await this.path(h);
        const fh = await this.handle(d, rel, p, false);
        await fh.truncate(int(h, 's'));
        return;
      }
      case 'create': {
        const { d, rel, p } = await this.path(h);
        const fh = await fsp.open(p, C.O_WRONLY | C.O_CREAT | C.O_NOFOLLOW, 0o600);
        try {
          // chown clears set-ID bits: owner first, then the mode
          await this.own(h, p);
          await fh.chmod(int(h, 'm', 0, 0o7777));
        } finally {
          await fh.close();
        }
        this.fds.delete(`${d}:${rel}`);
        return;
      }
      case 'mkdir': {
        const { p } = await this.path(h);
        await fsp.mkdir(p, 0o700);
        await this.own(h, p);
        await fsp.chmod(p, int(h, 'm', 0, 0o7777));
        return;
      }
      case 'unlink':
      case 'rmdir': {
        const { p } = await this.path(h);
        await this.closeAll();
        await (t === 'unlink' ? fsp.unlink(p) : fsp.rmdir(p));
        return;
      }
      case 'rename': {
        const a = await this.path(h);
        const b = await this.path(h, 'to');
        if (a.d !== b.d) throw new FrameError('rename across directories');
        await this.closeAll();
        await fsp.rename(a.p, b.p);
        return;
      }
      case 'symlink': {
        const { p } = await this.path(h);
        await fsp.symlink(str(h, 'tg'), p);
        await this.own(h, p);
        return;
      }
      case 'link': {
        const a = await this.path(h);
        const b = await this.path(h, 'to');
        const st = await fsp.lstat(b.p);
        if (st.isDirectory()) throw new FrameError('hard link to a directory');
        await fsp.link(b.p, a.p);
        return;
      }
      case 'chmod': {
        const { p } = await this.path(h);
        const st = await fsp.lstat(p);
        if (!st.isSymbolicLink()) await fsp.chmod(p, int(h, 'm', 0, 0o7777));
        return;
      }
      case 'chown': {
        const { p } = await this.path(h);
        await fsp.lchown(p, int(h, 'u', 0, 0xffffffff), int(h, 'g', 0, 0xffffffff));
        return;
      }
      case 'utimens':
      case 'meta': {
        const { p } = await this.path(h);
        if (t === 'meta' && h.x !== undefined) this.setAllXattrs(p, h.x);
        check(setTimes({ path: p }, nanos(h, 'a'), nanos(h, 'mt')), 'utimensat');
        return;
      }
      case 'fallocate': {
        const { d, rel, p } = await this.path(h);
        const fh = await this.handle(d, rel, p, false);
        check(fallocate(fh.fd, int(h, 'mode', 0, 0xff), int(h, 'o'), int(h, 'l')), 'fallocate');
        return;
      }
      case 'setxattr':
      case 'removexattr': {
        const { p } = await this.path(h);
        const name = str(h, 'n', 255);
        check(t === 'setxattr' ? setXattr(p, name, data, int(h, 'fl', 0, 3)) : removeXattr(p, name), t);
        return;
      }
      case 'fsync': {
        const open = this.cached(h);
        if (open) return h.ds ? open.datasync() : open.sync();
        const { d, rel, p } = await this.path(h);
        const st = await fsp.lstat(p);
        if (st.isDirectory()) {
          const fh = await fsp.open(p, C.O_RDONLY | C.O_DIRECTORY);
          try { await fh.sync(); } finally { await fh.close(); }
        } else if (st.isFile()) {
          const fh = await this.handle(d, rel, p, false);
          await (h.ds ? fh.datasync() : fh.sync());
        }
        return;
      }
      case 'ensure':
        return this.ensure(h);
      case 'list': {
        const { d, rel, p } = await this.path(h);
        const names = h.n;
        if (!Array.isArray(names) || names.some((n) => typeof n !== 'string')) throw new FrameError('list names');
        const keep = new Set(names as string[]);
        // readdir follows a final symlink: only a real directory is listed (a symlink there could lead
        // outside, and the removals below would then happen there)
        const st = await fsp.lstat(p).catch(() => null);
        if (!st?.isDirectory()) return;
        let have: string[];
        try {
          have = await fsp.readdir(p);
        } catch {
          return;
        }
        for (const n of have) {
          if (!keep.has(n)) await this.remove(d, rel === '' ? n : `${rel}/${n}`, join(p, n));
        }
        return;
      }
      case 'remove': {
        const { d, rel, p } = await this.path(h);
        if (rel === '') throw new FrameError('remove of the replicated directory itself');
        await this.remove(d, rel, p);
        return;
      }
      default:
        throw new FrameError(`unknown operation ${t}`);
    }
  }

  /** the owner the primary gave a new entry (u, g), when the frame names one */
  private own(h: Record<string, unknown>, p: string): Promise<void> {
    if (typeof h.u !== 'number' || typeof h.g !== 'number') return Promise.resolve();
    // validated here, synchronously: a malformed owner is a bad frame even where chown errors are tolerated
    return fsp.lchown(p, int(h, 'u', 0, 0xffffffff), int(h, 'g', 0, 0xffffffff));
  }

  /** resync: the entry's extended attributes become x (name → base64 value) */
  private setAllXattrs(p: string, x: unknown): void {
    if (typeof x !== 'object' || x === null || Array.isArray(x)) throw new FrameError('xattrs must be an object');
    const want = new Map<string, Buffer>();
    for (const [name, v] of Object.entries(x)) {
      if (typeof v !== 'string' || name.length === 0 || name.length > 255 || name.includes('\0')) throw new FrameError('bad xattr');
      want.set(name, Buffer.from(v, 'base64'));
    }
    // best effort: a name this filesystem refuses (another security module) must not stop the resync
    for (const name of Object.keys(allXattrs(p))) if (!want.has(name)) removeXattr(p, name);
    for (const [name, v] of want) setXattr(p, name, v, 0);
  }

  /** Makes rel exist with the given type and metadata (resync). */
  private async ensure(h: Record<string, unknown>): Promise<void> {
    const { d, rel, p } = await this.path(h);
    const ty = str(h, 'ty', 1);
    const mode = int(h, 'm', 0, 0o7777);
    let st: import('node:fs').Stats | undefined;
    try {
      st = await fsp.lstat(p);
    } catch {
      st = undefined;
    }
    const same = st && ((ty === 'f' && st.isFile()) || (ty === 'd' && st.isDirectory()) || (ty === 'l' && st.isSymbolicLink()));
    if (st && !same) {
      if (rel === '') throw new FrameError('the replicated directory must stay a directory');
      await this.remove(d, rel, p);
      st = undefined;
    }
    if (!st) await this.mkdirs(d, dirname(p));
    if (ty === 'f') {
      if (st) await this.backup(d, rel, p, false);
      const fh = await this.handle(d, rel, p, true);
      await fh.truncate(int(h, 's'));
    } else if (ty === 'd') {
      if (!st) await fsp.mkdir(p, 0o700);
    } else if (ty === 'l') {
      const tg = str(h, 'tg');
      if (st && (await fsp.readlink(p)) !== tg) {
        await this.remove(d, rel, p);
        st = undefined;
      }
      if (!st) await fsp.symlink(tg, p);
    } else {
      throw new FrameError(`entry type ${ty}`);
    }
    // owner first, then the mode: chown clears a file's set-ID bits
    await this.own(h, p).catch(() => undefined);
    if (ty !== 'l') await fsp.chmod(p, mode);
  }

  /** mkdir -p that never follows a symlink out of the directory (the parent was confined already). */
  private async mkdirs(d: number, dir: string): Promise<void> {
    const root = this.roots[d];
    if (dir === root || dir.length < root.length) return;
    try {
      const st = await fsp.lstat(dir);
      if (st.isDirectory()) return;
      throw new FrameError(`${dir} is not a directory`);
    } catch (e) {
      if (e instanceof FrameError) throw e;
    }
    await this.mkdirs(d, dirname(dir));
    await fsp.mkdir(dir, 0o755).catch((e: NodeJS.ErrnoException) => {
      if (e.code !== 'EEXIST') throw e;
    });
  }

  private async remove(d: number, rel: string, p: string): Promise<void> {
    await this.closeAll();
    if (await this.backup(d, rel, p, true)) return;
    await fsp.rm(p, { recursive: true, force: true });
  }

  /** Divergent resync: keep what this node had. Returns true when the entry was moved away. */
  private async backup(d: number, rel: string, p: string, move: boolean): Promise<boolean> {
    if (!this.backupDir) return false;
    const k = `${d}:${rel}`;
    if (this.backedUp.has(k)) return false; // the first version this node had is already kept
    let st;
    try {
      st = await fsp.lstat(p);
    } catch {
      return false;
    }
    const dest = join(this.backupDir, `${d}-${basename(this.roots[d])}`, rel);
    await fsp.mkdir(dirname(dest), { recursive: true });
    if (move) {
      await this.closeAll();
      await fsp.rm(dest, { recursive: true, force: true });
      try {
        await fsp.rename(p, dest);
      } catch {
        await fsp.cp(p, dest, { recursive: true, verbatimSymlinks: true, preserveTimestamps: true });
        await fsp.rm(p, { recursive: true, force: true });
      }
    } else if (st.isFile()) {
      await fsp.copyFile(p, dest);
    }
    this.backedUp.add(k);
    return move;
  }
}
