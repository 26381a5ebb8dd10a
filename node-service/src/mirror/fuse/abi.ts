/**
 * The Linux FUSE kernel protocol (include/uapi/linux/fuse.h), the part Vigil speaks. Vigil talks to
 * /dev/fuse directly instead of through libfuse: that is what lets it negotiate 1 MiB writes
 * (max_pages), see the caller's uid/gid, and answer fallocate and xattr requests.
 * All integers are little-endian; every struct below is laid out as in fuse.h.
 */

export const FUSE_KERNEL_VERSION = 7;
/** the minor version Vigil implements; the kernel speaks min(its own, this) */
export const FUSE_KERNEL_MINOR = 40;
/** the first minor with passthrough (FUSE_PASSTHROUGH, backing ids: Linux 6.9) */
export const PASSTHROUGH_MINOR = 40;

export const Op = {
  LOOKUP: 1,
  FORGET: 2,
  GETATTR: 3,
  SETATTR: 4,
  READLINK: 5,
  SYMLINK: 6,
  MKNOD: 8,
  MKDIR: 9,
  UNLINK: 10,
  RMDIR: 11,
  RENAME: 12,
  LINK: 13,
  OPEN: 14,
  READ: 15,
  WRITE: 16,
  STATFS: 17,
  RELEASE: 18,
  FSYNC: 20,
  SETXATTR: 21,
  GETXATTR: 22,
  LISTXATTR: 23,
  REMOVEXATTR: 24,
  FLUSH: 25,
  INIT: 26,
  OPENDIR: 27,
  READDIR: 28,
  RELEASEDIR: 29,
  FSYNCDIR: 30,
  ACCESS: 34,
  CREATE: 35,
  INTERRUPT: 36,
  DESTROY: 38,
  BATCH_FORGET: 42,
  FALLOCATE: 43,
  RENAME2: 45,
} as const;

/** INIT flags (fuse_init_in.flags / fuse_init_out.flags) */
export const Init = {
  ASYNC_READ: 1 << 0,
  BIG_WRITES: 1 << 5,
  AUTO_INVAL_DATA: 1 << 12,
  MAX_PAGES: 1 << 22,
  CACHE_SYMLINKS: 1 << 23,
  /**
   * The filesystem clears set-ID bits itself on write and truncate (the kernel tells when, per
   * request); in exchange the kernel may mark inodes "no security xattrs" and stops asking for
   * security.capability before every write.
   */
  HANDLE_KILLPRIV_V2: 1 << 28,
  /** flags2 is valid (init_in and init_out), protocol 7.36 */
  INIT_EXT: 1 << 30,
} as const;

/** INIT flags2 (bits 32 and up of the flags) */
export const Init2 = {
  /** opens may name a backing file: reads and writes on it bypass the daemon (protocol 7.40) */
  PASSTHROUGH: 1 << (37 - 32),
} as const;

/** fuse_open_out.open_flags */
export const FOPEN_KEEP_CACHE = 1 << 1;
export const FOPEN_PASSTHROUGH = 1 << 7;

/** ioctls on /dev/fuse: register / release a backing file (struct fuse_backing_map { i32 fd; u32 flags; u64 padding }) */
export const FUSE_DEV_IOC_BACKING_OPEN = 0x4010e501;
export const FUSE_DEV_IOC_BACKING_CLOSE = 0x4004e502;

/** fuse_write_in.write_flags */
export const FUSE_WRITE_KILL_SUIDGID = 1 << 2;

/** fuse_setattr_in.valid */
export const Fattr = {
  MODE: 1 << 0,
  UID: 1 << 1,
  GID: 1 << 2,
  SIZE: 1 << 3,
  ATIME: 1 << 4,
  MTIME: 1 << 5,
  FH: 1 << 6,
  ATIME_NOW: 1 << 7,
  MTIME_NOW: 1 << 8,
  KILL_SUIDGID: 1 << 11,
} as const;

export const FSYNC_FDATASYNC = 1;
export const RENAME_NOREPLACE = 1;

export const IN_HEADER = 40;
export const OUT_HEADER = 16;
const ATTR = 88;
const ENTRY_OUT = 40 + ATTR;
const OPEN_OUT = 16;

export interface InHeader {
  len: number;
  opcode: number;
  unique: bigint;
  nodeid: number;
  uid: number;
  gid: number;
  pid: number;
}

export function readHeader(b: Buffer): InHeader {
  return {
    len: b.readUInt32LE(0),
    opcode: b.readUInt32LE(4),
    unique: b.readBigUInt64LE(8),
    // node ids are ours, handed out from 1 upwards: they stay far below 2^53
    nodeid: Number(b.readBigUInt64LE(16)),
    uid: b.readUInt32LE(24),
    gid: b.readUInt32LE(28),
    pid: b.readUInt32LE(32),
  };
}

export function u64(b: Buffer, off: number): number {
  return Number(b.readBigUInt64LE(off));
}

/** NUL-terminated names, as LOOKUP, MKDIR, RENAME… carry them */
export function cstrings(b: Buffer, off: number, count: number): string[] {
  const out: string[] = [];
  for (let i = 0; i < count; i++) {
    const end = b.indexOf(0, off);
    if (end < 0) throw new RangeError('name not terminated');
    out.push(b.toString('utf8', off, end));
    off = end + 1;
  }
  return out;
}

/** What the view knows of an entry: an lstat result in the fields FUSE wants. */
export interface Attr {
  ino: number;
  size: number;
  blocks: number;
  atimeNs: bigint;
  mtimeNs: bigint;
  ctimeNs: bigint;
  mode: number;
  nlink: number;
  uid: number;
  gid: number;
  rdev: number;
  blksize: number;
}

const NS = 1_000_000_000n;

export function writeAttr(out: Buffer, off: number, a: Attr): void {
  out.writeBigUInt64LE(BigInt(a.ino), off);
  out.writeBigUInt64LE(BigInt(a.size), off + 8);
  out.writeBigUInt64LE(BigInt(a.blocks), off + 16);
  out.writeBigUInt64LE(a.atimeNs / NS, off + 24);
  out.writeBigUInt64LE(a.mtimeNs / NS, off + 32);
  out.writeBigUInt64LE(a.ctimeNs / NS, off + 40);
  out.writeUInt32LE(Number(a.atimeNs % NS), off + 48);
  out.writeUInt32LE(Number(a.mtimeNs % NS), off + 52);
  out.writeUInt32LE(Number(a.ctimeNs % NS), off + 56);
  out.writeUInt32LE(a.mode >>> 0, off + 60);
  out.writeUInt32LE(a.nlink, off + 64);
  out.writeUInt32LE(a.uid >>> 0, off + 68);
  out.writeUInt32LE(a.gid >>> 0, off + 72);
  out.writeUInt32LE(a.rdev >>> 0, off + 76);
  out.writeUInt32LE(a.blksize, off + 80);
  out.writeUInt32LE(0, off + 84);
}

function validity(out: Buffer, off: number, seconds: number): void {
  out.writeBigUInt64LE(BigInt(Math.floor(seconds)), off);
}

/** fuse_entry_out */
export function entryOut(nodeid: number, a: Attr, validS: number): Buffer {
  const out = Buffer.alloc(ENTRY_OUT);
  out.writeBigUInt64LE(BigInt(nodeid), 0);
  out.writeBigUInt64LE(0n, 8);
  validity(out, 16, validS);
  validity(out, 24, validS);
  writeAttr(out, 40, a);
  return out;
}

/** fuse_attr_out */
export function attrOut(a: Attr, validS: number): Buffer {
  const out = Buffer.alloc(16 + ATTR);
  validity(out, 0, validS);
  writeAttr(out, 16, a);
  return out;
}

/** fuse_open_out; backingId with FOPEN_PASSTHROUGH */
export function openOut(fh: number, flags: number, backingId = 0): Buffer {
  const out = Buffer.alloc(OPEN_OUT);
  out.writeBigUInt64LE(BigInt(fh), 0);
  out.writeUInt32LE(flags, 8);
  out.writeInt32LE(backingId, 12);
  return out;
}

/** fuse_write_out, fuse_getxattr_out: one u32 and padding */
export function sizeOut(n: number): Buffer {
  const out = Buffer.alloc(8);
  out.writeUInt32LE(n, 0);
  return out;
}

export interface StatfsOut {
  blocks: number;
  bfree: number;
  bavail: number;
  files: number;
  ffree: number;
  bsize: number;
}

/** fuse_statfs_out (struct fuse_kstatfs) */
export function statfsOut(s: StatfsOut): Buffer {
  const out = Buffer.alloc(80);
  out.writeBigUInt64LE(BigInt(s.blocks), 0);
  out.writeBigUInt64LE(BigInt(s.bfree), 8);
  out.writeBigUInt64LE(BigInt(s.bavail), 16);
  out.writeBigUInt64LE(BigInt(s.files), 24);
  out.writeBigUInt64LE(BigInt(s.ffree), 32);
  out.writeUInt32LE(s.bsize, 40);
  out.writeUInt32LE(255, 44);
  out.writeUInt32LE(s.bsize, 48);
  return out;
}

/** one struct fuse_dirent, padded to 8 bytes; null when it does not fit in `room` */
export function dirent(ino: number, nextOff: number, type: number, name: string, room: number): Buffer | null {
  const nb = Buffer.from(name, 'utf8');
  const size = (24 + nb.length + 7) & ~7;
  if (size > room) return null;
  const out = Buffer.alloc(size);
  out.writeBigUInt64LE(BigInt(ino), 0);
  out.writeBigUInt64LE(BigInt(nextOff), 8);
  out.writeUInt32LE(nb.length, 16);
  out.writeUInt32LE(type, 20);
  nb.copy(out, 24);
  return out;
}

/** fuse_init_out for minor ≥ 23 (64 bytes); flags2 and max_stack_depth from 7.36 / 7.40 */
export function initOut(o: { minor: number; maxReadahead: number; flags: number; flags2: number; maxStackDepth: number; maxWrite: number; maxPages: number }): Buffer {
  const out = Buffer.alloc(64);
  out.writeUInt32LE(FUSE_KERNEL_VERSION, 0);
  out.writeUInt32LE(o.minor, 4);
  out.writeUInt32LE(o.maxReadahead, 8);
  out.writeUInt32LE(o.flags >>> 0, 12);
  out.writeUInt16LE(16, 16); // max_background
  out.writeUInt16LE(12, 18); // congestion_threshold
  out.writeUInt32LE(o.maxWrite, 20);
  out.writeUInt32LE(1, 24); // time_gran: nanoseconds
  out.writeUInt16LE(o.maxPages, 28);
  out.writeUInt32LE(o.flags2 >>> 0, 32);
  out.writeUInt32LE(o.maxStackDepth, 36);
  return out;
}
