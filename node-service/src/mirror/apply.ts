import { chmodSync, closeSync, constants as C, fchmodSync, write as fsWrite, fchownSync, fdatasyncSync, fsyncSync, ftruncateSync, lchownSync, linkSync, lstatSync, mkdirSync, openSync, readlinkSync, renameSync, rmdirSync, symlinkSync, unlinkSync, writeSync, type Stats } from 'node:fs';
import * as fsp from 'node:fs/promises';
import { type FileHandle } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { confinedParent } from './paths.ts';
import { alignedBuffer, allXattrs, isAligned, check, fallocate, removeXattr, setTimes, setXattr, syncFs } from './fuse/libc.ts';
import type { FsyncOp, Op, PathOp } from './ops.ts';
import { FrameError } from './protocol.ts';

const MAX_OPEN = 128;
/**
 * Resync data from this size on, at an offset that is a multiple of DIRECT_ALIGN, is written with
 * O_DIRECT: straight from the frame's aligned buffer (protocol.ts POOLED_DATA) to the disk. Through the page cache every byte is copied
 * into a freshly allocated page (on this VM the largest CPU cost of a resync: 54% of the secondary's
 * samples for a 256 MiB file) and then written back anyway by the sync that ends the resync.
 */
const DIRECT_MIN = 256 * 1024;
/** memory, offset and length alignment of O_DIRECT writes (4 KiB covers 512-byte and 4 KiB sector disks) */
const DIRECT_ALIGN = 4096;
/**
 * While resync data arrives, a syncfs runs in the background at most this often, so the one that ends
 * the resync (the secondary is in sync only after it) has about this much left to write, not the
 * whole resync: its acknowledgement must come within send_timeout.
 */
const FLUSH_MS = 500;

function writeAt(fd: number, buf: Buffer, off: number, len: number, pos: number): Promise<number> {
  return new Promise((resolve, reject) => fsWrite(fd, buf, off, len, pos, (e, n) => (e ? reject(e) : resolve(n))));
}

/**
 * Applies the primary's operations to this node's backing directories, one at a time, in sequence
 * order. Metadata calls and page-cache writes are synchronous: each costs microseconds, and a
 * thread-pool round trip per call (several per file) would make a resync of small files crawl; only
 * opens, syncs and recursive removals go to the thread pool. Every path is checked (relative, no '..', parents resolved inside the directory) and the last
 * component is never followed. With a backup folder set (divergent resync), what a resync overwrites
 * or deletes is first moved or copied there.
 */
export class Applier {
  private fds = new Map<string, FileHandle>();
  /** O_DIRECT descriptors of files being resynced (same keys as fds, dropped with them) */
  private direct = new Map<string, number>();
  /** directories whose filesystem refused O_DIRECT: resync data goes through the page cache there */
  private noDirect = new Set<number>();
  private dio: Buffer | null = null;
  /** the background syncfs (see FLUSH_MS), when it started, and the error it met (reported by syncAll) */
  private flushing: Promise<void> | null = null;
  private flushedAt = 0;
  private flushErr: unknown = null;
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
    for (const fd of this.direct.values()) closeSync(fd);
    this.direct.clear();
    // a close error after writes means nothing here: durability comes from the fsync operations
    await Promise.allSettled(fds.map((f) => f.close()));
  }

  /** Operations that may name the replicated directory itself; every other one must name an entry in it. */
  private static readonly ROOT_OK = new Set<Op['t']>(['chmod', 'chown', 'utimens', 'setxattr', 'removexattr', 'meta', 'fsync', 'ensure']);

  private root(d: number): number {
    if (d >= this.roots.length) throw new FrameError(`directory index ${d} out of range (this node replicates ${this.roots.length})`);
    return d;
  }

  private async path(op: PathOp, rel = op.p, named = true): Promise<{ d: number; rel: string; p: string }> {
    const d = this.root(op.d);
    if (rel === '' && (!named || !Applier.ROOT_OK.has(op.t))) throw new FrameError(`${op.t} cannot apply to the replicated directory itself`);
    const p = await confinedParent(this.roots[d], rel, this.rootsReal[d]);
    return { d, rel, p };
  }

  /**
   * Fast path: the descriptor of a file written before. Descriptors are dropped on every namespace
   * change, so the path was confined when it was opened and still names the same file.
   */
  private cached(op: PathOp): FileHandle | undefined {
    return this.fds.get(`${this.root(op.d)}:${op.p}`);
  }

  private async handle(d: number, rel: string, p: string, create: boolean): Promise<FileHandle> {
    const k = `${d}:${rel}`;
    const f = this.fds.get(k);
    if (f) return f;
    const fh = await fsp.open(p, C.O_WRONLY | C.O_NOFOLLOW | (create ? C.O_CREAT : 0), 0o600);
    // an fsync runs beside the writes that follow it: another operation may have opened the file
    // meanwhile, and a handle dropped from the map would be left for the garbage collector (DEP0137)
    const won = this.fds.get(k);
    if (won) {
      await fh.close();
      return won;
    }
    if (this.fds.size >= MAX_OPEN) await this.closeAll();
    this.fds.set(k, fh);
    return fh;
  }

  /**
   * Applies one operation (already validated by `decodeToSecondary`). An fsync returns the sync as a
   * promise without waiting for it, so the caller can go on applying what follows while the disk
   * works; everything else is done when the returned promise resolves.
   */
  async apply(op: Op): Promise<void> {
    switch (op.t) {
      case 'nop':
      case 'base':
      case 'synced':
        return;
      case 'write':
      case 'data': {
        if (op.p === '') throw new FrameError('write to the replicated directory itself');
        let fh = this.cached(op);
        const data = op.data;
        let done = 0;
        if (!fh || op.t === 'data') {
          const { d, rel, p } = await this.path(op);
          if (op.t === 'data') await this.backup(d, rel, p, false);
          fh = await this.handle(d, rel, p, op.t === 'data');
          if (op.t === 'data') {
            done = await this.writeDirect(d, rel, p, op.o, data);
            this.flushSoon();
          }
        }
        // page-cache writes are a memcpy: synchronous is faster than a thread-pool round trip
        while (done < data.length) done += writeSync(fh.fd, data, done, data.length - done, op.o + done);
        this.bytesApplied += data.length;
        return;
      }
      case 'truncate': {
        const { d, rel, p } = await this.path(op);
        const fh = await this.handle(d, rel, p, false);
        ftruncateSync(fh.fd, op.s);
        return;
      }
      case 'create': {
        const { d, rel, p } = await this.path(op);
        const fd = openSync(p, C.O_WRONLY | C.O_CREAT | C.O_NOFOLLOW, 0o600);
        try {
          // chown clears set-ID bits: owner first, then the mode
          fchownSync(fd, op.u, op.g);
          fchmodSync(fd, op.m);
        } finally {
          closeSync(fd);
        }
        this.drop(`${d}:${rel}`);
        return;
      }
      case 'mkdir': {
        const { p } = await this.path(op);
        mkdirSync(p, 0o700);
        lchownSync(p, op.u, op.g);
        chmodSync(p, op.m);
        return;
      }
      case 'unlink':
      case 'rmdir': {
        const { p } = await this.path(op);
        await this.closeAll();
        if (op.t === 'unlink') unlinkSync(p);
        else rmdirSync(p);
        return;
      }
      case 'rename': {
        const a = await this.path(op);
        const b = await this.path(op, op.to, false);
        await this.closeAll();
        renameSync(a.p, b.p);
        return;
      }
      case 'symlink': {
        const { p } = await this.path(op);
        symlinkSync(op.tg, p);
        lchownSync(p, op.u, op.g);
        return;
      }
      case 'link': {
        const a = await this.path(op);
        const b = await this.path(op, op.to, false);
        if (lstatSync(b.p).isDirectory()) throw new FrameError('hard link to a directory');
        linkSync(b.p, a.p);
        return;
      }
      case 'chmod': {
        const { p } = await this.path(op);
        if (!lstatSync(p).isSymbolicLink()) chmodSync(p, op.m);
        return;
      }
      case 'chown': {
        const { p } = await this.path(op);
        lchownSync(p, op.u, op.g);
        return;
      }
      case 'utimens':
      case 'meta': {
        const { p } = await this.path(op);
        if (op.t === 'meta' && op.x !== undefined) this.setAllXattrs(p, op.x);
        check(setTimes({ path: p }, BigInt(op.a), BigInt(op.mt)), 'utimensat');
        return;
      }
      case 'fallocate': {
        const { d, rel, p } = await this.path(op);
        const fh = await this.handle(d, rel, p, false);
        check(fallocate(fh.fd, op.mode, op.o, op.l), 'fallocate');
        return;
      }
      case 'setxattr': {
        const { p } = await this.path(op);
        check(setXattr(p, op.n, op.v, op.fl), 'setxattr');
        return;
      }
      case 'removexattr': {
        const { p } = await this.path(op);
        check(removeXattr(p, op.n), 'removexattr');
        return;
      }
      case 'fsync':
        return this.fsync(op);
      case 'ensure':
        return this.ensure(op);
      case 'remove': {
        const { d, rel, p } = await this.path(op);
        if (rel === '') throw new FrameError('remove of the replicated directory itself');
        await this.remove(d, rel, p);
        return;
      }
    }
  }

  /**
   * The aligned head of a resync chunk written with O_DIRECT (see DIRECT_MIN): the bytes written, the
   * rest (an unaligned tail, or all of it where the filesystem refuses O_DIRECT) for the caller.
   */
  private async writeDirect(d: number, rel: string, p: string, o: number, data: Buffer): Promise<number> {
    if (data.length < DIRECT_MIN || o % DIRECT_ALIGN !== 0 || this.noDirect.has(d)) return 0;
    const k = `${d}:${rel}`;
    let fd = this.direct.get(k);
    if (fd === undefined) {
      try {
        fd = openSync(p, C.O_WRONLY | C.O_NOFOLLOW | C.O_DIRECT);
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== 'EINVAL') throw e;
        this.noDirect.add(d);
        return 0;
      }
      this.direct.set(k, fd);
    }
    const len = data.length - (data.length % DIRECT_ALIGN);
    // the stream's decoder puts large data at an aligned address (protocol.ts POOLED_DATA): no copy
    let src = data;
    if (!isAligned(data, DIRECT_ALIGN)) {
      if (!this.dio || this.dio.length < len) this.dio = alignedBuffer(len, DIRECT_ALIGN);
      data.copy(this.dio, 0, 0, len);
      src = this.dio;
    }
    let done = 0;
    try {
      // on the thread pool: the disk works while the event loop receives what follows
      while (done < len) done += await writeAt(fd, src, done, len - done, o + done);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EINVAL') throw e;
      // an alignment this device does not take: the page cache from now on
      this.noDirect.add(d);
    }
    return done;
  }

  /** forgets the descriptors of an entry that was replaced (they name the old file) */
  private drop(k: string): void {
    const f = this.fds.get(k);
    this.fds.delete(k);
    if (f) void f.close().catch(() => undefined);
    const fd = this.direct.get(k);
    this.direct.delete(k);
    if (fd !== undefined) closeSync(fd);
  }

  /** starts a background syncfs of what the resync wrote so far, unless one ran within FLUSH_MS */
  private flushSoon(): void {
    const now = performance.now();
    if (this.flushing || now - this.flushedAt < FLUSH_MS) return;
    this.flushedAt = now;
    this.flushing = this.syncFilesystems()
      // a writeback error is reported once per descriptor: kept here for syncAll, which must fail
      .catch((e: unknown) => void (this.flushErr ??= e))
      .finally(() => (this.flushing = null));
  }

  /**
   * Makes everything applied so far durable: one syncfs per filesystem holding a replicated directory
   * (a resync writes thousands of files; syncing each would cost a disk round trip per file). The
   * secondary is declared in sync only after this.
   */
  async syncAll(): Promise<void> {
    await this.flushing;
    const err = this.flushErr;
    this.flushErr = null;
    if (err) throw err;
    await this.syncFilesystems();
  }

  private async syncFilesystems(): Promise<void> {
    const seen = new Set<number>();
    for (const root of this.roots) {
      const fh = await fsp.open(root, C.O_RDONLY | C.O_DIRECTORY);
      try {
        const dev = (await fh.stat()).dev;
        if (seen.has(dev)) continue;
        seen.add(dev);
        await syncFs(fh.fd);
      } finally {
        await fh.close();
      }
    }
  }

  /** the sync of a file being written, on the calling thread (throws its error); false: not open here, use apply() */
  syncNow(op: FsyncOp): boolean {
    const open = this.cached(op);
    if (!open) return false;
    (op.ds ? fdatasyncSync : fsyncSync)(open.fd);
    return true;
  }

  /** syncs p (file or directory); the descriptor of a file being written is reused */
  private async fsync(op: FsyncOp): Promise<void> {
    const open = this.cached(op);
    if (open) return op.ds ? open.datasync() : open.sync();
    const { d, rel, p } = await this.path(op);
    const st = await fsp.lstat(p);
    if (st.isDirectory()) {
      const fh = await fsp.open(p, C.O_RDONLY | C.O_DIRECTORY);
      try {
        await fh.sync();
      } finally {
        await fh.close();
      }
    } else if (st.isFile()) {
      const fh = await this.handle(d, rel, p, false);
      await (op.ds ? fh.datasync() : fh.sync());
    }
  }

  /** resync: the entry's extended attributes become x (name → base64 value) */
  private setAllXattrs(p: string, x: Record<string, string>): void {
    const want = new Map<string, Buffer>();
    for (const [name, v] of Object.entries(x)) want.set(name, Buffer.from(v, 'base64'));
    // best effort: a name this filesystem refuses (another security module) must not stop the resync
    for (const name of Object.keys(allXattrs(p))) if (!want.has(name)) removeXattr(p, name);
    for (const [name, v] of want) setXattr(p, name, v, 0);
  }

  /** Makes rel exist with the given type and metadata (resync). */
  private async ensure(op: Extract<Op, { t: 'ensure' }>): Promise<void> {
    const { d, rel, p } = await this.path(op);
    const ty = op.ty;
    let st: Stats | undefined = lstatSync(p, { throwIfNoEntry: false });
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
      ftruncateSync(fh.fd, op.s);
    } else if (ty === 'd') {
      if (!st) mkdirSync(p, 0o700);
    } else if (ty === 'l') {
      const tg = op.tg ?? '';
      if (st && readlinkSync(p) !== tg) {
        await this.remove(d, rel, p);
        st = undefined;
      }
      if (!st) symlinkSync(tg, p);
    }
    // owner first, then the mode: chown clears a file's set-ID bits
    lchownSync(p, op.u, op.g);
    if (ty !== 'l') chmodSync(p, op.m);
  }

  /** mkdir -p that never follows a symlink out of the directory (the parent was confined already). */
  private async mkdirs(d: number, dir: string): Promise<void> {
    const root = this.roots[d];
    if (dir === root || dir.length < root.length) return;
    // synchronous: the parent exists nearly always (a resync creates thousands of files in it)
    const st = lstatSync(dir, { throwIfNoEntry: false });
    if (st?.isDirectory()) return;
    if (st) throw new FrameError(`${dir} is not a directory`);
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
