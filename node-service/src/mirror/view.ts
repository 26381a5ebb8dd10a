import { createRequire } from 'node:module';
import * as fs from 'node:fs';
import { constants as C } from 'node:fs';
import { execFile } from 'node:child_process';
import { dirname } from 'node:path';
import { abs, fromFuse, parentRel } from './paths.ts';

const require = createRequire(import.meta.url);
// eslint-disable-next-line @typescript-eslint/no-explicit-any
const Fuse: any = require('fuse-native');
// eslint-disable-next-line @typescript-eslint/no-explicit-any
const FuseBase = Fuse as new (mnt: string, ops: object, opts: object) => any;

/** What a mutation means for replication; the view calls the sink after the local change succeeded. */
export type Mutation =
  | { t: 'write'; p: string; o: number; data: Buffer }
  | { t: 'truncate'; p: string; s: number }
  | { t: 'create' | 'mkdir'; p: string; m: number; u: number; g: number }
  | { t: 'unlink' | 'rmdir'; p: string }
  | { t: 'rename' | 'link'; p: string; t2: string }
  | { t: 'symlink'; p: string; tg: string; u: number; g: number }
  | { t: 'chmod'; p: string; m: number }
  | { t: 'chown'; p: string; u: number; g: number }
  | { t: 'utimens'; p: string; a: number; mt: number }
  | { t: 'fsync'; p: string; ds: boolean };

export interface ViewSink {
  /** false: the view refuses every change with EROFS */
  writable(): boolean;
  /** resolves when the change is replicated (or tracked, when alone); rejects with an errno name */
  replicate(dir: number, m: Mutation): Promise<void>;
  /** fsync: local and remote run together */
  replicateFsync(dir: number, m: Mutation, local: Promise<void>): Promise<void>;
}

const WRITE_ACCESS = C.O_WRONLY | C.O_RDWR;
const EROFS = -30;
const EIO = -5;

function errno(e: unknown): number {
  const n = (e as NodeJS.ErrnoException)?.errno;
  return typeof n === 'number' && n < 0 ? n : EIO;
}

/**
 * fuse-native builds its `-o` string from a fixed list of options and has no big_writes/max_write;
 * libfuse 2 then splits 4 KiB writes. This subclass appends them (libfuse 2.9 caps max_write at
 * 128 KiB, the kernel's FUSE_MAX_PAGES_PER_REQ without max_pages negotiation).
 */
class VigilFuse extends FuseBase {
  _fuseOptions(): string {
    const base: string = super._fuseOptions();
    const extra = ['big_writes', 'max_write=131072', 'max_read=131072', 'default_permissions', 'allow_other', 'fsname=vigil', 'subtype=vigil', 'use_ino', 'attr_timeout=1', 'entry_timeout=1'];
    return base ? `${base},${extra.join(',')}` : `-o${extra.join(',')}`;
  }
}

/**
 * The FUSE view of one replicated directory over its backing directory: reads go straight to the
 * backing directory; every change is made there and then handed to the sink, and the application's
 * call returns when the sink says it is replicated (or tracked).
 */
export class View {
  private fuse: VigilFuse | null = null;

  constructor(
    readonly dir: number,
    readonly mountpoint: string,
    readonly backing: string,
    private readonly sink: ViewSink,
  ) {}

  async mount(): Promise<void> {
    await unmountStale(this.mountpoint);
    const fuse = new VigilFuse(this.mountpoint, this.ops(), { timeout: false, force: false, mkdir: true });
    await new Promise<void>((resolve, reject) => fuse.mount((err: Error | null) => (err ? reject(err) : resolve())));
    this.fuse = fuse;
  }

  async unmount(): Promise<void> {
    const fuse = this.fuse;
    if (!fuse) return;
    this.fuse = null;
    await new Promise<void>((resolve) => {
      fuse.unmount((err: Error | null) => {
        if (!err) return resolve();
        execFile('umount', ['-l', this.mountpoint], () => resolve());
      });
    });
  }

  private ops(): Record<string, unknown> {
    const root = this.backing;
    const d = this.dir;
    const sink = this.sink;
    const P = (p: string) => abs(root, fromFuse(p));
    const done = (cb: (n: number) => void) => (e: unknown) => cb(e ? errno(e) : 0);
    /** runs the local change, then waits for replication */
    const mutate = (cb: (n: number) => void, local: (k: (e: NodeJS.ErrnoException | null) => void) => void, m: () => Mutation) => {
      if (!sink.writable()) return cb(EROFS);
      local((e) => {
        if (e) return cb(errno(e));
        sink.replicate(d, m()).then(() => cb(0), (err) => cb(errno(err)));
      });
    };
    /** new entries take the owner of their directory (fuse-native does not give the caller's uid) */
    const inherit = (p: string, k: (e: NodeJS.ErrnoException | null, u: number, g: number) => void) => {
      fs.stat(dirname(p), (e, st) => {
        if (e) return k(e, 0, 0);
        fs.lchown(p, st.uid, st.gid, (e2) => k(e2, st.uid, st.gid));
      });
    };

    return {
      init: (cb: (n: number) => void) => cb(0),
      statfs: (_p: string, cb: (n: number, s?: object) => void) =>
        fs.statfs(root, (e, s) => (e ? cb(errno(e)) : cb(0, { bsize: s.bsize, frsize: s.bsize, blocks: s.blocks, bfree: s.bfree, bavail: s.bavail, files: s.files, ffree: s.ffree, favail: s.ffree, fsid: 0, flag: 0, namemax: 255 }))),
      getattr: (p: string, cb: (n: number, st?: fs.Stats) => void) => fs.lstat(P(p), (e, st) => (e ? cb(errno(e)) : cb(0, st))),
      fgetattr: (p: string, _fd: number, cb: (n: number, st?: fs.Stats) => void) => fs.lstat(P(p), (e, st) => (e ? cb(errno(e)) : cb(0, st))),
      readdir: (p: string, cb: (n: number, names?: string[]) => void) => fs.readdir(P(p), (e, names) => (e ? cb(errno(e)) : cb(0, names))),
      readlink: (p: string, cb: (n: number, t?: string) => void) => fs.readlink(P(p), (e, t) => (e ? cb(errno(e)) : cb(0, t))),
      open: (p: string, flags: number, cb: (n: number, fd?: number) => void) => {
        if ((flags & WRITE_ACCESS) !== 0 && !sink.writable()) return cb(EROFS);
        fs.open(P(p), flags & ~(C.O_APPEND | C.O_CREAT | C.O_EXCL | C.O_TRUNC) | C.O_NOFOLLOW, (e, fd) => (e ? cb(errno(e)) : cb(0, fd)));
      },
      opendir: (_p: string, _flags: number, cb: (n: number, fd?: number) => void) => cb(0, 0),
      releasedir: (_p: string, _fd: number, cb: (n: number) => void) => cb(0),
      release: (_p: string, fd: number, cb: (n: number) => void) => fs.close(fd, done(cb)),
      flush: (_p: string, _fd: number, cb: (n: number) => void) => cb(0),
      create: (p: string, mode: number, cb: (n: number, fd?: number) => void) => {
        if (!sink.writable()) return cb(EROFS);
        const path = P(p);
        fs.open(path, C.O_CREAT | C.O_RDWR | C.O_NOFOLLOW, 0o600, (e, fd) => {
          if (e) return cb(errno(e));
          const m = mode & 0o7777;
          fs.fchmod(fd, m, (e2) => {
            if (e2) return fs.close(fd, () => cb(errno(e2)));
            inherit(path, (e3, u, g) => {
              if (e3) return fs.close(fd, () => cb(errno(e3)));
              sink.replicate(d, { t: 'create', p: fromFuse(p), m, u, g }).then(
                () => cb(0, fd),
                (err) => fs.close(fd, () => cb(errno(err))),
              );
            });
          });
        });
      },
      read: (_p: string, fd: number, buf: Buffer, len: number, pos: number, cb: (n: number) => void) =>
        fs.read(fd, buf, 0, len, pos, (e, n) => cb(e ? errno(e) : n)),
      write: (p: string, fd: number, buf: Buffer, len: number, pos: number, cb: (n: number) => void) => {
        if (!sink.writable()) return cb(EROFS);
        // page-cache writes are a memcpy: synchronous is faster than a thread-pool round trip
        let n: number;
        try {
          n = fs.writeSync(fd, buf, 0, len, pos);
        } catch (e) {
          return cb(errno(e));
        }
        // the kernel's buffer is only valid until cb: the sink copies it into its frame synchronously
        sink.replicate(d, { t: 'write', p: fromFuse(p), o: pos, data: buf.subarray(0, n) }).then(() => cb(n), (err) => cb(errno(err)));
      },
      truncate: (p: string, size: number, cb: (n: number) => void) =>
        mutate(cb, (k) => fs.truncate(P(p), size, k), () => ({ t: 'truncate', p: fromFuse(p), s: size })),
      ftruncate: (p: string, fd: number, size: number, cb: (n: number) => void) =>
        mutate(cb, (k) => fs.ftruncate(fd, size, k), () => ({ t: 'truncate', p: fromFuse(p), s: size })),
      fsync: (p: string, datasync: number, fd: number, cb: (n: number) => void) => {
        const local = new Promise<void>((resolve, reject) => {
          const k = (e: NodeJS.ErrnoException | null) => (e ? reject(e) : resolve());
          if (fd) (datasync ? fs.fdatasync(fd, k) : fs.fsync(fd, k));
          else resolve();
        });
        if (!sink.writable()) return local.then(() => cb(0), (e) => cb(errno(e)));
        sink.replicateFsync(d, { t: 'fsync', p: fromFuse(p), ds: !!datasync }, local).then(() => cb(0), (e) => cb(errno(e)));
      },
      fsyncdir: (p: string, datasync: number, _fd: number, cb: (n: number) => void) => {
        const local = new Promise<void>((resolve, reject) => {
          fs.open(P(p), C.O_RDONLY | C.O_DIRECTORY, (e, fd) => {
            if (e) return reject(e);
            fs.fsync(fd, (e2) => fs.close(fd, () => (e2 ? reject(e2) : resolve())));
          });
        });
        if (!sink.writable()) return local.then(() => cb(0), (e) => cb(errno(e)));
        sink.replicateFsync(d, { t: 'fsync', p: fromFuse(p), ds: !!datasync }, local).then(() => cb(0), (e) => cb(errno(e)));
      },
      unlink: (p: string, cb: (n: number) => void) => mutate(cb, (k) => fs.unlink(P(p), k), () => ({ t: 'unlink', p: fromFuse(p) })),
      rmdir: (p: string, cb: (n: number) => void) => mutate(cb, (k) => fs.rmdir(P(p), k), () => ({ t: 'rmdir', p: fromFuse(p) })),
      mkdir: (p: string, mode: number, cb: (n: number) => void) => {
        let u = 0;
        let g = 0;
        mutate(
          cb,
          (k) =>
            fs.mkdir(P(p), 0o700, (e) => {
              if (e) return k(e);
              fs.chmod(P(p), mode & 0o7777, (e2) => (e2 ? k(e2) : inherit(P(p), (e3, uu, gg) => ((u = uu), (g = gg), k(e3)))));
            }),
          () => ({ t: 'mkdir', p: fromFuse(p), m: mode & 0o7777, u, g }),
        );
      },
      rename: (src: string, dest: string, cb: (n: number) => void) =>
        mutate(cb, (k) => fs.rename(P(src), P(dest), k), () => ({ t: 'rename', p: fromFuse(src), t2: fromFuse(dest) })),
      link: (src: string, dest: string, cb: (n: number) => void) =>
        // libfuse: link(existing, new); the wire carries the new name as p and the existing one as t
        mutate(cb, (k) => fs.link(P(src), P(dest), k), () => ({ t: 'link', p: fromFuse(dest), t2: fromFuse(src) })),
      symlink: (target: string, dest: string, cb: (n: number) => void) => {
        let u = 0;
        let g = 0;
        mutate(
          cb,
          (k) => fs.symlink(target, P(dest), (e) => (e ? k(e) : inherit(P(dest), (e3, uu, gg) => ((u = uu), (g = gg), k(e3))))),
          () => ({ t: 'symlink', p: fromFuse(dest), tg: target, u, g }),
        );
      },
      chmod: (p: string, mode: number, cb: (n: number) => void) =>
        mutate(cb, (k) => fs.chmod(P(p), mode & 0o7777, k), () => ({ t: 'chmod', p: fromFuse(p), m: mode & 0o7777 })),
      chown: (p: string, uid: number, gid: number, cb: (n: number) => void) =>
        mutate(cb, (k) => fs.lchown(P(p), uid, gid, k), () => ({ t: 'chown', p: fromFuse(p), u: uid, g: gid })),
      utimens: (p: string, atime: number, mtime: number, cb: (n: number) => void) => {
        // fuse-native passes the atime twice and turns UTIME_NOW into a bogus value: fall back to now
        const sane = (x: number) => (x > 1e11 ? x : Date.now());
        const a = sane(atime);
        const m = sane(mtime);
        mutate(cb, (k) => fs.lutimes(P(p), a / 1000, m / 1000, k), () => ({ t: 'utimens', p: fromFuse(p), a, mt: m }));
      },
    };
  }
}

/** A mount left by a process that died ("Transport endpoint is not connected") is detached first. */
export async function unmountStale(mnt: string): Promise<void> {
  try {
    fs.statSync(mnt);
    const mounts = fs.readFileSync('/proc/self/mounts', 'utf8');
    if (!mounts.split('\n').some((l) => l.split(' ')[1] === mnt)) return;
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return;
  }
  await new Promise<void>((resolve) => execFile('umount', ['-l', mnt], () => resolve()));
}

export { parentRel };
