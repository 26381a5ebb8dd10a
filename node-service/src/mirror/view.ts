import * as fs from 'node:fs';
import { constants as C } from 'node:fs';
import { constants as osConstants } from 'node:os';
import type { FsyncOp, PathOp } from './ops.ts';
import { abs } from './paths.ts';
import { attrOut, cstrings, dirent, entryOut, Fattr, FOPEN_KEEP_CACHE, FOPEN_PASSTHROUGH, FSYNC_FDATASYNC, FUSE_WRITE_KILL_SUIDGID, openOut, Op, RENAME_NOREPLACE, sizeOut, statfsOut, u64, type Attr, type InHeader } from './fuse/abi.ts';
import { FuseDevice, shield, unmountStale, unshield, type Reply } from './fuse/device.ts';
import { check, fallocate, getXattr, listXattr, removeXattr, setTimes, setXattr, sysError, type TimeSpec } from './fuse/libc.ts';
import { NodeTable, type FuseNode } from './fuse/nodes.ts';

export interface ViewSink {
  /** false: the view refuses every change with EROFS */
  writable(): boolean;
  /**
   * Resolves when the change is replicated (or tracked, when alone); rejects with an errno. Called in
   * the order the changes are made locally (after the local change, except for writes, which are
   * handed over just before it); byte payloads are copied before it returns.
   */
  replicate(dir: number, op: PathOp): Promise<void>;
  /** fsync: local and remote run together (the remote one is started first, then `local()`) */
  replicateFsync(dir: number, op: FsyncOp, local: () => Promise<void>): Promise<void>;
  /** a change already handed over failed locally: the peer's copy of that entry must be made again */
  diverged(dir: number, op: PathOp): void;
}

const E = osConstants.errno;
const S_ISUID = 0o4000;
const S_ISGID = 0o2000;
const WRITE_ACCESS = C.O_WRONLY | C.O_RDWR;
const O_ACCMODE = 3;
/** flags the view handles itself: the kernel sends explicit offsets, truncates through SETATTR */
const OPEN_STRIP = C.O_APPEND | C.O_CREAT | C.O_EXCL | C.O_TRUNC | C.O_DIRECT | C.O_NOCTTY;
/** how long the kernel may cache names and attributes: only where every change goes through us */
const CACHE_S = 1;
/** two processes syncing within this many ms: their syncs are concurrent for this long (thread pool) */
const SYNCERS_MS = 50;

function errno(e: unknown): number {
  const n = (e as NodeJS.ErrnoException)?.errno;
  return typeof n === 'number' && n < 0 ? n : -E.EIO;
}

function toAttr(st: fs.BigIntStats): Attr {
  return {
    ino: Number(st.ino),
    size: Number(st.size),
    blocks: Number(st.blocks),
    atimeNs: st.atimeNs,
    mtimeNs: st.mtimeNs,
    ctimeNs: st.ctimeNs,
    mode: Number(st.mode),
    nlink: Number(st.nlink),
    uid: Number(st.uid),
    gid: Number(st.gid),
    rdev: Number(st.rdev),
    blksize: Number(st.blksize),
  };
}

/** fsync/fdatasync on the calling thread, as a settled promise */
function syncNow(fd: number, ds: boolean): Promise<void> {
  try {
    (ds ? fs.fdatasyncSync : fs.fsyncSync)(fd);
    return Promise.resolve();
  } catch (e) {
    return Promise.reject(e);
  }
}

function direntType(d: fs.Dirent): number {
  if (d.isDirectory()) return 4;
  if (d.isFile()) return 8;
  if (d.isSymbolicLink()) return 10;
  if (d.isFIFO()) return 1;
  if (d.isSocket()) return 12;
  if (d.isCharacterDevice()) return 2;
  if (d.isBlockDevice()) return 6;
  return 0;
}

interface FileHandle {
  fd: number;
  node: FuseNode;
  /** served by passthrough: the kernel reads the backing file itself */
  passthrough: boolean;
  /** opened while the view was writable (primary): a sync of it later promises what the primary wrote */
  primaryEra: boolean;
}

/** a backing file registered with the kernel for a node's passthrough opens */
interface Backing {
  id: number;
  opens: number;
}

interface DirHandle {
  node: FuseNode;
  entries: { name: string; type: number }[] | null;
  primaryEra: boolean;
}

/**
 * Finishes an entry just created at p (owner, mode); when that fails the entry is removed again, so a
 * failed call leaves nothing behind that the peer does not have.
 */
function made(p: string, finish: () => void, dir = false): void {
  try {
    finish();
  } catch (e) {
    try {
      if (dir) fs.rmdirSync(p);
      else fs.unlinkSync(p);
    } catch {
      // already gone
    }
    throw e;
  }
}

/**
 * The FUSE view of one replicated directory over its backing directory. Reads go straight to the
 * backing directory. Every change is made there first, synchronously on the event loop (so the
 * replication stream carries changes in exactly the order they were made), then handed to the sink;
 * the application's call returns when the sink says it is replicated (or tracked).
 *
 * What an application holding the view sees across a role change (stale connections, syncs of
 * primary-era handles, the shield between two mounts): README.md in this folder, "Role changes".
 */
export class View {
  private dev: FuseDevice | null = null;
  /** the connection this view serves now (a fresh token per mount): requests on an older one are stale */
  private conn: object | null = null;
  private nodes = new NodeTable();
  private readonly files = new Map<number, FileHandle>();
  private readonly dirs = new Map<number, DirHandle>();
  private nextFh = 1;
  /** opens served by the daemon, per node: while any is open, the kernel refuses passthrough opens of it */
  private readonly cachedOpens = new WeakMap<FuseNode, number>();
  private readonly backings = new WeakMap<FuseNode, Backing>();
  /** bumped at every role change: the first open of a node after it drops what the kernel cached before */
  private epoch = 0;
  private readonly openedIn = new WeakMap<FuseNode, number>();
  passthroughOpens = 0;
  /** who synced last, when, and until when syncs are taken as concurrent (several processes syncing) */
  private lastSyncPid = 0;
  private lastSyncAt = 0;
  private sharedUntil = 0;

  constructor(
    readonly dir: number,
    readonly mountpoint: string,
    readonly backing: string,
    private readonly sink: ViewSink,
  ) {}

  async mount(): Promise<void> {
    await unmountStale(this.mountpoint);
    fs.mkdirSync(this.mountpoint, { recursive: true });
    await shield(this.mountpoint, this.backing);
    this.nodes = new NodeTable();
    const conn = {};
    this.conn = conn;
    this.dev = await FuseDevice.mount(this.mountpoint, (h, body, reply) => (this.conn === conn ? this.handle(h, body, reply) : this.stale(h, body, reply)));
  }

  /**
   * A request on a connection this view no longer serves: one left alive by a lazy unmount (a process
   * held a file open across a role change). Its kernel state (sizes, append offsets, node ids) is from
   * the old role: served with the new one, a write could land at a stale offset over newer data, and a
   * sync could acknowledge what the role no longer owns (found by the soak: an application stopped
   * with its daemon wrote through the old mount after the node stepped down and became primary again,
   * over records written since). Only closing its files is served; everything else fails.
   */
  private stale(h: InHeader, b: Buffer, reply: Reply): void {
    if (h.opcode === Op.RELEASE || h.opcode === Op.RELEASEDIR) return this.handle(h, b, reply);
    // FORGET, BATCH_FORGET and INTERRUPT take no answer; the old connection's node ids are gone with its table
    reply(-E.EIO);
  }

  /** the engine changed roles: pages the kernel cached under the old role are not trusted any more */
  roleChanged(): void {
    this.epoch++;
    this.nodes.forgetInodes();
  }

  /** keep: the view is mounted again next (a role change): the shield stays under it meanwhile */
  async unmount(keep = false): Promise<void> {
    const dev = this.dev;
    this.dev = null;
    this.conn = null;
    if (dev) await dev.unmount();
    if (!keep) await unshield(this.mountpoint);
  }

  // ------------------------------------------------------------------ helpers

  private node(id: number): FuseNode {
    const n = this.nodes.get(id);
    if (!n) throw sysError(-E.ENOENT, 'lookup');
    return n;
  }

  /** the open file a request names by its fh (the first field of every fh-carrying request) */
  private file(b: Buffer): FileHandle {
    const f = this.files.get(u64(b, 0));
    if (!f) throw sysError(-E.EBADF, 'fh');
    return f;
  }

  private pathOf(n: FuseNode): { rel: string; p: string } {
    const rel = this.nodes.rel(n);
    if (rel === null) throw sysError(-E.ENOENT, 'lookup');
    return { rel, p: abs(this.backing, rel) };
  }

  private child(parent: FuseNode, name: string): { rel: string; p: string } {
    const rel = this.nodes.childRel(parent, name);
    if (rel === null) throw sysError(-E.ENOENT, 'lookup');
    return { rel, p: abs(this.backing, rel) };
  }

  private writableOrThrow(): void {
    if (!this.sink.writable()) throw sysError(-E.EROFS, 'write');
  }

  private valid(a: Attr): number {
    // a read-only view changes underneath (the replication stream): nothing may be cached there
    if (!this.sink.writable()) return 0;
    // a set-ID file loses its bits on a user's write, behind the kernel's cached mode: never cache it
    return (a.mode & C.S_IFMT) === C.S_IFREG && a.mode & (S_ISUID | S_ISGID) ? 0 : CACHE_S;
  }

  private entry(parent: FuseNode, name: string, p: string): Buffer {
    const st = fs.lstatSync(p, { bigint: true });
    const n = this.nodes.remember(parent, name, Number(st.ino), (Number(st.mode) & C.S_IFMT) === C.S_IFDIR, this.sink.writable());
    const a = toAttr(st);
    return entryOut(n.id, a, this.valid(a));
  }

  /** the owner of a new entry: the caller, with the group of a set-group-ID parent (as the kernel does) */
  private owner(h: InHeader, parentPath: string): { u: number; g: number; sgid: boolean } {
    const st = fs.statSync(parentPath);
    const sgid = (st.mode & S_ISGID) !== 0;
    return { u: h.uid, g: sgid ? st.gid : h.gid, sgid };
  }

  /** hands the changes (made locally already) to the sink; answers once all are replicated */
  private replicate(m: PathOp | null, reply: Reply, ...ok: Buffer[]): void {
    this.replicateAll(m ? [m] : [], reply, ...ok);
  }

  private replicateAll(ms: PathOp[], reply: Reply, ...ok: Buffer[]): void {
    if (ms.length === 0) return reply(0, ...ok);
    Promise.all(ms.map((m) => this.sink.replicate(this.dir, m))).then(
      () => reply(0, ...ok),
      (e) => reply(errno(e)),
    );
  }

  /** true when this fsync is the only request in flight and no other process synced in the last moments */
  private syncAlone(pid: number): boolean {
    const now = performance.now();
    if (pid !== this.lastSyncPid && now - this.lastSyncAt < SYNCERS_MS) this.sharedUntil = now + SYNCERS_MS;
    this.lastSyncPid = pid;
    this.lastSyncAt = now;
    return this.dev?.pending === 1 && now >= this.sharedUntil;
  }

  /**
   * primaryEra: the handle was opened while this node was primary. Once it is not any more, a sync of
   * such a handle fails (EIO): what it wrote may not be on the node that serves now, so the
   * application must not take it as durable (found by the soak). A secondary's own handles sync locally.
   */
  private fsyncBoth(rel: string | null, ds: boolean, primaryEra: boolean, local: () => Promise<void>, reply: Reply): void {
    if (!this.sink.writable() && primaryEra) return reply(-E.EIO);
    if (rel === null || !this.sink.writable()) return void local().then(() => reply(0), (e) => reply(errno(e)));
    this.sink.replicateFsync(this.dir, { t: 'fsync', d: this.dir, p: rel, ds }, local).then(
      () => reply(0),
      (e) => reply(errno(e)),
    );
  }

  // ------------------------------------------------------------------ dispatch

  private handle(h: InHeader, b: Buffer, reply: Reply): void {
    try {
      this.op(h, b, reply);
    } catch (e) {
      // RangeError: a request shorter than its opcode's struct
      reply(e instanceof RangeError ? -E.EINVAL : errno(e));
    }
  }

  private op(h: InHeader, b: Buffer, reply: Reply): void {
    switch (h.opcode) {
      case Op.LOOKUP: {
        const parent = this.node(h.nodeid);
        const [name] = cstrings(b, 0, 1);
        return reply(0, this.entry(parent, name, this.child(parent, name).p));
      }
      case Op.FORGET:
        return this.nodes.forget(h.nodeid, u64(b, 0));
      case Op.BATCH_FORGET: {
        const count = b.readUInt32LE(0);
        for (let i = 0; i < count && 8 + i * 16 + 16 <= b.length; i++) this.nodes.forget(u64(b, 8 + i * 16), u64(b, 16 + i * 16));
        return;
      }
      case Op.GETATTR: {
        const withFh = (b.readUInt32LE(0) & 1) !== 0 ? this.files.get(u64(b, 8)) : undefined;
        const st = withFh ? fs.fstatSync(withFh.fd, { bigint: true }) : fs.lstatSync(this.pathOf(this.node(h.nodeid)).p, { bigint: true });
        const a = toAttr(st);
        return reply(0, attrOut(a, this.valid(a)));
      }
      case Op.SETATTR:
        return this.setattr(h, b, reply);
      case Op.READLINK:
        return reply(0, Buffer.from(fs.readlinkSync(this.pathOf(this.node(h.nodeid)).p, { encoding: 'buffer' })));
      case Op.SYMLINK: {
        this.writableOrThrow();
        const parent = this.node(h.nodeid);
        const [name, target] = cstrings(b, 0, 2);
        const { rel, p } = this.child(parent, name);
        const { u, g } = this.owner(h, this.pathOf(parent).p);
        fs.symlinkSync(target, p);
        made(p, () => fs.lchownSync(p, u, g));
        return this.replicate({ t: 'symlink', d: this.dir, p: rel, tg: target, u, g }, reply, this.entry(parent, name, p));
      }
      case Op.MKNOD: {
        this.writableOrThrow();
        const mode = b.readUInt32LE(0);
        // only regular files replicate; devices, FIFOs and sockets have no meaning on the peer
        if ((mode & C.S_IFMT) !== C.S_IFREG) throw sysError(-E.EOPNOTSUPP, 'mknod');
        const parent = this.node(h.nodeid);
        const [name] = cstrings(b, 16, 1);
        const { rel, p } = this.child(parent, name);
        const { u, g } = this.owner(h, this.pathOf(parent).p);
        const m = mode & 0o7777;
        const fd = fs.openSync(p, C.O_CREAT | C.O_EXCL | C.O_WRONLY | C.O_NOFOLLOW, 0o600);
        try {
          // owner first: chown clears set-ID bits
          made(p, () => (fs.fchownSync(fd, u, g), fs.fchmodSync(fd, m)));
        } finally {
          fs.closeSync(fd);
        }
        return this.replicate({ t: 'create', d: this.dir, p: rel, m, u, g }, reply, this.entry(parent, name, p));
      }
      case Op.MKDIR: {
        this.writableOrThrow();
        const parent = this.node(h.nodeid);
        const [name] = cstrings(b, 8, 1);
        const { rel, p } = this.child(parent, name);
        const { u, g, sgid } = this.owner(h, this.pathOf(parent).p);
        const m = (b.readUInt32LE(0) & 0o7777) | (sgid ? S_ISGID : 0);
        fs.mkdirSync(p, 0o700);
        made(p, () => (fs.lchownSync(p, u, g), fs.chmodSync(p, m)), true);
        return this.replicate({ t: 'mkdir', d: this.dir, p: rel, m, u, g }, reply, this.entry(parent, name, p));
      }
      case Op.UNLINK:
      case Op.RMDIR: {
        this.writableOrThrow();
        const parent = this.node(h.nodeid);
        const [name] = cstrings(b, 0, 1);
        const { rel, p } = this.child(parent, name);
        if (h.opcode === Op.UNLINK) fs.unlinkSync(p);
        else fs.rmdirSync(p);
        this.nodes.detach(parent, name);
        return this.replicate({ t: h.opcode === Op.UNLINK ? 'unlink' : 'rmdir', d: this.dir, p: rel }, reply);
      }
      case Op.RENAME:
      case Op.RENAME2: {
        this.writableOrThrow();
        const flags = h.opcode === Op.RENAME2 ? b.readUInt32LE(8) : 0;
        const [from, to] = cstrings(b, h.opcode === Op.RENAME2 ? 16 : 8, 2);
        if (flags & ~RENAME_NOREPLACE) throw sysError(-E.EINVAL, 'rename'); // RENAME_EXCHANGE/WHITEOUT: not replicated
        const parent = this.node(h.nodeid);
        const newParent = this.node(u64(b, 0));
        const a = this.child(parent, from);
        const z = this.child(newParent, to);
        if (flags & RENAME_NOREPLACE && fs.lstatSync(z.p, { throwIfNoEntry: false })) throw sysError(-E.EEXIST, 'rename');
        fs.renameSync(a.p, z.p);
        this.nodes.move(parent, from, newParent, to);
        return this.replicate({ t: 'rename', d: this.dir, p: a.rel, to: z.rel }, reply);
      }
      case Op.LINK: {
        this.writableOrThrow();
        const target = this.pathOf(this.node(u64(b, 0)));
        const parent = this.node(h.nodeid);
        const [name] = cstrings(b, 8, 1);
        const { rel, p } = this.child(parent, name);
        fs.linkSync(target.p, p);
        // the wire carries the new name as p and the existing one as to
        return this.replicate({ t: 'link', d: this.dir, p: rel, to: target.rel }, reply, this.entry(parent, name, p));
      }
      case Op.OPEN: {
        const flags = b.readUInt32LE(0);
        if ((flags & WRITE_ACCESS) !== 0) this.writableOrThrow();
        const n = this.node(h.nodeid);
        const fd = fs.openSync(this.pathOf(n).p, (flags & ~OPEN_STRIP) | C.O_NOFOLLOW);
        return reply(0, this.opened(fd, n, (flags & O_ACCMODE) === C.O_RDONLY));
      }
      case Op.CREATE:
        return this.create(h, b, reply);
      case Op.READ: {
        const f = this.file(b);
        const size = b.readUInt32LE(16);
        const buf = Buffer.allocUnsafe(size);
        fs.read(f.fd, buf, 0, size, u64(b, 8), (e, n) => (e ? reply(errno(e)) : reply(0, buf.subarray(0, n))));
        return;
      }
      case Op.WRITE:
        return this.write(b, reply);
      case Op.STATFS: {
        const s = fs.statfsSync(this.backing);
        return reply(0, statfsOut({ blocks: s.blocks, bfree: s.bfree, bavail: s.bavail, files: s.files, ffree: s.ffree, bsize: s.bsize }));
      }
      case Op.RELEASE: {
        const fh = u64(b, 0);
        const f = this.files.get(fh);
        this.files.delete(fh);
        if (f) this.released(f);
        return reply(0);
      }
      case Op.FSYNC: {
        const f = this.file(b);
        const ds = (b.readUInt32LE(8) & FSYNC_FDATASYNC) !== 0;
        const fd = f.fd;
        // One process syncing alone (one writer, a database's only committing backend): the sync runs
        // right here, on the event loop, while the secondary's runs (its operation is sent first); a
        // thread-pool round trip would add two thread wake-ups to every commit. With other requests
        // waiting, or several processes syncing lately (concurrent commits about to arrive), it goes to
        // the thread pool so that concurrent syncs overlap.
        const local = this.syncAlone(h.pid) ? () => syncNow(fd, ds) : () => new Promise<void>((res, rej) => (ds ? fs.fdatasync : fs.fsync)(fd, (e) => (e ? rej(e) : res())));
        return this.fsyncBoth(this.nodes.rel(f.node), ds, f.primaryEra, local, reply);
      }
      case Op.FSYNCDIR: {
        const d = this.dirs.get(u64(b, 0));
        const n = d?.node ?? this.node(h.nodeid);
        const { rel, p } = this.pathOf(n);
        const local = () =>
          new Promise<void>((res, rej) => fs.open(p, C.O_RDONLY | C.O_DIRECTORY, (e, fd) => (e ? rej(e) : fs.fsync(fd, (e2) => fs.close(fd, () => (e2 ? rej(e2) : res()))))));
        return this.fsyncBoth(rel, (b.readUInt32LE(8) & FSYNC_FDATASYNC) !== 0, d?.primaryEra ?? false, local, reply);
      }
      case Op.SETXATTR: {
        this.writableOrThrow();
        const size = b.readUInt32LE(0);
        const fl = b.readUInt32LE(4);
        const [name] = cstrings(b, 8, 1);
        const start = 8 + Buffer.byteLength(name) + 1;
        if (start + size > b.length) throw sysError(-E.EINVAL, 'setxattr');
        const v = Buffer.from(b.subarray(start, start + size));
        const { rel, p } = this.pathOf(this.node(h.nodeid));
        check(setXattr(p, name, v, fl), 'setxattr');
        return this.replicate({ t: 'setxattr', d: this.dir, p: rel, n: name, v, fl }, reply);
      }
      case Op.GETXATTR:
      case Op.LISTXATTR: {
        const size = b.readUInt32LE(0);
        const { p } = this.pathOf(this.node(h.nodeid));
        const out = size > 0 ? Buffer.alloc(size) : null;
        const r = check(h.opcode === Op.GETXATTR ? getXattr(p, cstrings(b, 8, 1)[0], out) : listXattr(p, out), 'getxattr');
        return out ? reply(0, out.subarray(0, r)) : reply(0, sizeOut(r));
      }
      case Op.REMOVEXATTR: {
        this.writableOrThrow();
        const [name] = cstrings(b, 0, 1);
        const { rel, p } = this.pathOf(this.node(h.nodeid));
        check(removeXattr(p, name), 'removexattr');
        return this.replicate({ t: 'removexattr', d: this.dir, p: rel, n: name }, reply);
      }
      case Op.FLUSH:
        return reply(0);
      case Op.OPENDIR: {
        const n = this.node(h.nodeid);
        this.pathOf(n);
        const fh = this.nextFh++;
        this.dirs.set(fh, { node: n, entries: null, primaryEra: this.sink.writable() });
        return reply(0, openOut(fh, 0));
      }
      case Op.READDIR:
        return this.readdir(b, reply);
      case Op.RELEASEDIR:
        this.dirs.delete(u64(b, 0));
        return reply(0);
      case Op.FALLOCATE: {
        this.writableOrThrow();
        const f = this.file(b);
        const o = u64(b, 8);
        const l = u64(b, 16);
        const mode = b.readUInt32LE(24);
        check(fallocate(f.fd, mode, o, l), 'fallocate');
        const rel = this.nodes.rel(f.node);
        return this.replicate(rel === null ? null : { t: 'fallocate', d: this.dir, p: rel, o, l, mode }, reply);
      }
      case Op.DESTROY:
        return reply(0);
      default:
        // ACCESS (default_permissions checks in the kernel), locks (kept by the kernel), ioctl, poll,
        // lseek, copy_file_range (the kernel falls back to reads and writes): not ours to answer
        return reply(-E.ENOSYS);
    }
  }

  private create(h: InHeader, b: Buffer, reply: Reply): void {
    this.writableOrThrow();
    const flags = b.readUInt32LE(0);
    const parent = this.node(h.nodeid);
    const [name] = cstrings(b, 16, 1);
    const { rel, p } = this.child(parent, name);
    const access = (flags & ~OPEN_STRIP) | C.O_NOFOLLOW;
    let fd: number;
    let created = true;
    try {
      fd = fs.openSync(p, access | C.O_CREAT | C.O_EXCL, 0o600);
    } catch (e) {
      // the kernel's negative entry was stale: without O_EXCL this is a plain open of the file there
      if (errno(e) !== -E.EEXIST || (flags & C.O_EXCL) !== 0) throw e;
      fd = fs.openSync(p, access);
      created = false;
    }
    let m: PathOp | null = null;
    if (created) {
      try {
        // the kernel already applied the umask and the set-group-ID rules to the mode
        const { u, g } = this.owner(h, this.pathOf(parent).p);
        const mode = b.readUInt32LE(4) & 0o7777;
        made(p, () => (fs.fchownSync(fd, u, g), fs.fchmodSync(fd, mode)));
        m = { t: 'create', d: this.dir, p: rel, m: mode, u, g };
      } catch (e) {
        fs.closeSync(fd);
        throw e;
      }
    }
    const entry = this.entry(parent, name, p);
    this.replicate(m, reply, entry, this.opened(fd, this.nodes.get(entry.readUInt32LE(0))!, false));
  }

  /**
   * A file handle for fd, and the open reply. Reads of a read-only open on the secondary's view use
   * passthrough where the kernel has it: the kernel reads the backing file itself, always current (the
   * replication stream changes it underneath) and at native speed. Not on the primary: the kernel
   * refuses (EIO) any ordinary open of an inode while a passthrough open of it exists, so a reader
   * (a log tailer) would make the application's next open for writing fail. The primary's reads come
   * from the kernel's page cache instead, kept across opens (every change goes through the view, so
   * it is never stale); the first open after a role change drops what was cached before.
   */
  private opened(fd: number, node: FuseNode, readOnly: boolean): Buffer {
    const fh = this.nextFh++;
    if (readOnly && !this.sink.writable() && !this.cachedOpens.get(node)) {
      const id = this.backingFor(node, fd);
      if (id !== null) {
        this.files.set(fh, { fd, node, passthrough: true, primaryEra: false });
        this.passthroughOpens++;
        return openOut(fh, FOPEN_PASSTHROUGH, id);
      }
    }
    this.files.set(fh, { fd, node, passthrough: false, primaryEra: this.sink.writable() });
    this.cachedOpens.set(node, (this.cachedOpens.get(node) ?? 0) + 1);
    const keep = this.sink.writable() && this.openedIn.get(node) === this.epoch;
    this.openedIn.set(node, this.epoch);
    return openOut(fh, keep ? FOPEN_KEEP_CACHE : 0);
  }

  /** the node's backing id (registered on its first passthrough open), or null: no passthrough here */
  private backingFor(node: FuseNode, fd: number): number | null {
    const have = this.backings.get(node);
    if (have) {
      have.opens++;
      return have.id;
    }
    const id = this.dev?.openBacking(fd) ?? -1;
    if (id < 0) return null;
    this.backings.set(node, { id, opens: 1 });
    return id;
  }

  private released(f: FileHandle): void {
    if (f.passthrough) {
      const bk = this.backings.get(f.node);
      if (bk && --bk.opens === 0) {
        this.backings.delete(f.node);
        this.dev?.closeBacking(bk.id);
      }
    } else {
      const n = (this.cachedOpens.get(f.node) ?? 1) - 1;
      if (n > 0) this.cachedOpens.set(f.node, n);
      else this.cachedOpens.delete(f.node);
    }
    fs.close(f.fd, (err) => {
      // a close error reports nothing the application could act on (it closed already); log for the operator
      if (err) console.error(`vigil mirror: closing ${this.mountpoint} handle: ${err.message}`);
    });
  }

  private write(b: Buffer, reply: Reply): void {
    this.writableOrThrow();
    const f = this.file(b);
    const o = u64(b, 8);
    const data = b.subarray(40, 40 + b.readUInt32LE(16));
    const rel = this.nodes.rel(f.node);
    // an unlinked file that is still open has no copy on the peer
    const m: PathOp | null = rel === null ? null : { t: 'write', d: this.dir, p: rel, o, data };
    // The frame leaves first, so the network transfer overlaps the local copy; both happen in this
    // tick, so the order of the stream is still the order of the changes. The application's call
    // returns only once both are done.
    const replicated = m ? this.sink.replicate(this.dir, m) : Promise.resolve();
    let n = 0;
    try {
      // page-cache writes are a memcpy: synchronous beats a thread-pool round trip
      while (n < data.length) n += fs.writeSync(f.fd, data, n, data.length - n, o + n);
    } catch (e) {
      // the peer may now hold bytes this node does not: it gets this node's version again
      if (m) this.sink.diverged(this.dir, m);
      // the application gets the local error; the peer's copy is repaired by diverged() above
      replicated.catch(() => undefined);
      throw e;
    }
    // an unprivileged writer clears the set-ID bits (the kernel left that to us: HANDLE_KILLPRIV_V2)
    const kill = b.readUInt32LE(20) & FUSE_WRITE_KILL_SUIDGID ? this.killSuidgid(f.fd, rel) : null;
    Promise.all([replicated, kill && this.sink.replicate(this.dir, kill)]).then(
      () => reply(0, sizeOut(n)),
      (e) => reply(errno(e)),
    );
  }

  /** clears set-user-ID, and set-group-ID on a group-executable file, as a write or truncate by a user does */
  private killSuidgid(fd: number, rel: string | null): PathOp | null {
    const mode = fs.fstatSync(fd).mode;
    const clear = C.S_IFREG === (mode & C.S_IFMT) ? (mode & S_ISUID) | (mode & 0o010 ? mode & S_ISGID : 0) : 0;
    if (!clear) return null;
    const m = mode & 0o7777 & ~clear;
    fs.fchmodSync(fd, m);
    return rel === null ? null : { t: 'chmod', d: this.dir, p: rel, m };
  }

  private setattr(h: InHeader, b: Buffer, reply: Reply): void {
    this.writableOrThrow();
    const valid = b.readUInt32LE(0);
    const f = valid & Fattr.FH ? this.files.get(u64(b, 8)) : undefined;
    const n = f?.node ?? this.node(h.nodeid);
    const rel = this.nodes.rel(n);
    const p = rel === null ? null : abs(this.backing, rel);
    if (p === null && !f) throw sysError(-E.ENOENT, 'lookup');
    const stat = () => (f ? fs.fstatSync(f.fd, { bigint: true }) : fs.lstatSync(p!, { bigint: true }));
    const ms: PathOp[] = [];
    const before = stat();
    const isLink = (Number(before.mode) & C.S_IFMT) === C.S_IFLNK;
    if (valid & Fattr.MODE && !isLink) {
      const m = b.readUInt32LE(68) & 0o7777;
      if (f) fs.fchmodSync(f.fd, m);
      else fs.chmodSync(p!, m);
      if (rel !== null) ms.push({ t: 'chmod', d: this.dir, p: rel, m });
    }
    if (valid & (Fattr.UID | Fattr.GID)) {
      const u = valid & Fattr.UID ? b.readUInt32LE(76) : Number(before.uid);
      const g = valid & Fattr.GID ? b.readUInt32LE(80) : Number(before.gid);
      if (f) fs.fchownSync(f.fd, u, g);
      else fs.lchownSync(p!, u, g);
      if (rel !== null) ms.push({ t: 'chown', d: this.dir, p: rel, u, g });
    }
    if (valid & Fattr.SIZE) {
      const s = u64(b, 16);
      if (f) fs.ftruncateSync(f.fd, s);
      else fs.truncateSync(p!, s);
      if (rel !== null) ms.push({ t: 'truncate', d: this.dir, p: rel, s });
      if (valid & Fattr.KILL_SUIDGID) {
        const fd = f?.fd ?? fs.openSync(p!, C.O_RDONLY | C.O_NOFOLLOW);
        try {
          const kill = this.killSuidgid(fd, rel);
          if (kill) ms.push(kill);
        } finally {
          if (!f) fs.closeSync(fd);
        }
      }
    }
    if (valid & (Fattr.ATIME | Fattr.MTIME)) {
      const time = (set: number, now: number, off: number, nsOff: number): TimeSpec =>
        !(valid & set) ? 'omit' : valid & now ? 'now' : b.readBigInt64LE(off) * 1_000_000_000n + BigInt(b.readUInt32LE(nsOff));
      check(setTimes(f ? { fd: f.fd } : { path: p! }, time(Fattr.ATIME, Fattr.ATIME_NOW, 32, 56), time(Fattr.MTIME, Fattr.MTIME_NOW, 40, 60)), 'utimensat');
      // the peer gets the resulting times, so "now" and "unchanged" are the same there
      const after = stat();
      if (rel !== null) ms.push({ t: 'utimens', d: this.dir, p: rel, a: after.atimeNs.toString(), mt: after.mtimeNs.toString() });
    }
    const a = toAttr(stat());
    this.replicateAll(ms, reply, attrOut(a, this.valid(a)));
  }

  private readdir(b: Buffer, reply: Reply): void {
    const d = this.dirs.get(u64(b, 0));
    if (!d) throw sysError(-E.EBADF, 'readdir');
    const offset = u64(b, 8);
    const size = b.readUInt32LE(16);
    // the listing is taken at the first read (and again after a rewind), like a directory stream
    if (!d.entries || offset === 0) {
      const list = fs.readdirSync(this.pathOf(d.node).p, { withFileTypes: true });
      d.entries = [{ name: '.', type: 4 }, { name: '..', type: 4 }, ...list.map((e) => ({ name: e.name, type: direntType(e) }))];
    }
    const parts: Buffer[] = [];
    let room = size;
    for (let i = offset; i < d.entries.length; i++) {
      const e = d.entries[i];
      // the inode number is not known without a stat; any non-zero value keeps readdir users happy
      const part = dirent(i + 2, i + 1, e.type, e.name, room);
      if (!part) break;
      parts.push(part);
      room -= part.length;
    }
    reply(0, ...parts);
  }
}
