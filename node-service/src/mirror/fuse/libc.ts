import { createRequire } from 'node:module';
import { constants as osConstants } from 'node:os';
import { getSystemErrorName } from 'node:util';
import { Worker } from 'node:worker_threads';

/**
 * The few system calls Node has no API for, through koffi (an FFI whose npm package ships its
 * prebuilt binary): extended attributes, fallocate, utimensat, poll and syncfs. Each returns the result or a negative errno,
 * the way the FUSE reply wants it.
 */
const require = createRequire(import.meta.url);
const koffi = require('koffi') as typeof import('koffi');
const libc = koffi.load('libc.so.6');
const osErrno = osConstants.errno;

const lgetxattr = libc.func('long lgetxattr(const char *path, const char *name, _Out_ uint8_t *value, size_t size)');
const lsetxattr = libc.func('int lsetxattr(const char *path, const char *name, const uint8_t *value, size_t size, int flags)');
const llistxattr = libc.func('long llistxattr(const char *path, _Out_ uint8_t *list, size_t size)');
const lremovexattr = libc.func('int lremovexattr(const char *path, const char *name)');
const fallocateFn = libc.func('int fallocate(int fd, int mode, int64_t offset, int64_t len)');
const ioctlFn = libc.func('int ioctl(int fd, unsigned long request, _Inout_ uint8_t *arg)');
// the buffer is passed by reference (no _Out_ copy): the kernel writes straight into it
const readFn = libc.func('long read(int fd, uint8_t *buf, size_t count)');
const syncfsFn = libc.func('int syncfs(int fd)');

function result(n: number | bigint): number {
  const v = Number(n);
  return v < 0 ? -koffi.errno() : v;
}

/** a negative errno as the error Node's own fs calls throw (errno < 0, code 'ENOENT', …) */
export function sysError(errno: number, syscall: string): NodeJS.ErrnoException {
  const code = getSystemErrorName(errno);
  return Object.assign(new Error(`${code}: ${syscall}`), { errno, code, syscall });
}

/** r, or the error for it when it is a negative errno */
export function check(r: number, syscall: string): number {
  if (r < 0) throw sysError(r, syscall);
  return r;
}

/** value length, or -errno; with size 0 only the length is asked */
export function getXattr(path: string, name: string, out: Buffer | null): number {
  return result(lgetxattr(path, name, out, out?.length ?? 0));
}

export function setXattr(path: string, name: string, value: Buffer, flags: number): number {
  return result(lsetxattr(path, name, value, value.length, flags));
}

/** NUL-separated names' length, or -errno */
export function listXattr(path: string, out: Buffer | null): number {
  return result(llistxattr(path, out, out?.length ?? 0));
}

export function removeXattr(path: string, name: string): number {
  return result(lremovexattr(path, name));
}

export function fallocate(fd: number, mode: number, offset: number, length: number): number {
  return result(fallocateFn(fd, mode, offset, length));
}

/** ioctl with a struct argument: the result, or -errno */
export function ioctl(fd: number, request: number, arg: Buffer): number {
  return result(ioctlFn(fd, request, arg));
}

/**
 * read(2) into buf: bytes read or -errno. Unlike fs.readSync, "nothing there" (-EAGAIN on a
 * non-blocking descriptor) is a number, not a thrown Error with a captured stack (~5 µs each).
 */
export function readInto(fd: number, buf: Buffer): number {
  return result(readFn(fd, buf, buf.length));
}

/**
 * syncfs(2) on a thread-pool thread: every dirty page and inode of the filesystem holding fd reaches
 * the disk (one pass for a whole resync, where a sync per file would cost a disk round trip each).
 */
export function syncFs(fd: number): Promise<void> {
  return new Promise((resolve, reject) => {
    syncfsFn.async(fd, (err: unknown, r: number) => {
      if (err) reject(err as Error);
      // errno of another thread: koffi may not have it, EIO says enough (the disk refused the flush)
      else if (r < 0) reject(sysError(-(koffi.errno() || osErrno.EIO), 'syncfs'));
      else resolve();
    });
  });
}

/** a buffer of size bytes whose memory starts at a multiple of align (what O_DIRECT writes need) */
export function alignedBuffer(size: number, align: number): Buffer {
  const raw = Buffer.allocUnsafeSlow(size + align);
  const a = BigInt(align);
  const pad = Number((a - (koffi.address(raw) % a)) % a);
  return raw.subarray(pad, pad + size);
}

/** true when buf's memory starts at a multiple of align */
export function isAligned(buf: Buffer, align: number): boolean {
  return koffi.address(buf) % BigInt(align) === 0n;
}

/** every xattr of path as name → value (for resync); empty where the filesystem has none */
export function allXattrs(path: string): Record<string, Buffer> {
  const out: Record<string, Buffer> = {};
  const n = listXattr(path, null);
  if (n <= 0) return out;
  const list = Buffer.alloc(n);
  const m = listXattr(path, list);
  if (m <= 0) return out;
  for (const name of list.subarray(0, m).toString('utf8').split('\0')) {
    if (!name) continue;
    const len = getXattr(path, name, null);
    if (len < 0) continue;
    const v = Buffer.alloc(len);
    const got = getXattr(path, name, v);
    if (got >= 0) out[name] = v.subarray(0, got);
  }
  return out;
}

/**
 * Waits for fd to become readable without holding a libuv thread-pool thread (koffi's async calls run
 * on that pool, and a view's waiter would hold one of its four threads for as long as it waits, so
 * four views would stall every fs call): a worker thread of its own does the blocking poll(2) and
 * tells the event loop. wait() calls back once fd is readable, has failed, or timeoutMs passed.
 */
export class ReadableWaiter {
  private readonly worker: Worker;
  private cb: (() => void) | null = null;

  constructor(fd: number) {
    this.worker = new Worker(POLL_WORKER, { eval: true, workerData: { fd, koffi: require.resolve('koffi') } });
    this.worker.unref();
    this.worker.on('message', () => {
      const cb = this.cb;
      this.cb = null;
      cb?.();
    });
  }

  wait(timeoutMs: number, cb: () => void): void {
    this.cb = cb;
    this.worker.postMessage(timeoutMs);
  }

  close(): void {
    this.cb = null;
    void this.worker.terminate();
  }
}

const POLL_WORKER = `
const { parentPort, workerData } = require('node:worker_threads');
const koffi = require(workerData.koffi);
const poll = koffi.load('libc.so.6').func('int poll(_Inout_ uint8_t *fds, unsigned long nfds, int timeout)');
const pfd = Buffer.alloc(8);
pfd.writeInt32LE(workerData.fd, 0);
pfd.writeInt16LE(1, 4); // POLLIN
parentPort.on('message', (timeoutMs) => {
  poll(pfd, 1, timeoutMs);
  parentPort.postMessage(0);
});
`;

const utimensatFn = libc.func('int utimensat(int dirfd, const char *path, const uint8_t *times, int flags)');
const futimensFn = libc.func('int futimens(int fd, const uint8_t *times)');
const AT_FDCWD = -100;
const AT_SYMLINK_NOFOLLOW = 0x100;
const UTIME_NOW = (1 << 30) - 1;
const UTIME_OMIT = (1 << 30) - 2;

/** a time to set: nanoseconds since the epoch, the current time, or left as it is */
export type TimeSpec = bigint | 'now' | 'omit';

function timespecs(a: TimeSpec, m: TimeSpec): Buffer {
  const b = Buffer.alloc(32);
  const put = (t: TimeSpec, off: number) => {
    if (typeof t === 'bigint') {
      b.writeBigInt64LE(t / 1_000_000_000n, off);
      b.writeBigInt64LE(t % 1_000_000_000n, off + 8);
    } else {
      b.writeBigInt64LE(BigInt(t === 'now' ? UTIME_NOW : UTIME_OMIT), off + 8);
    }
  };
  put(a, 0);
  put(m, 16);
  return b;
}

/**
 * Sets atime and mtime to the nanosecond (Node's utimes goes through a double of seconds and loses
 * the last digits) on a descriptor, or on a path without following a final symlink.
 */
export function setTimes(target: { fd: number } | { path: string }, atime: TimeSpec, mtime: TimeSpec): number {
  const ts = timespecs(atime, mtime);
  return result('fd' in target ? futimensFn(target.fd, ts) : utimensatFn(AT_FDCWD, target.path, ts, AT_SYMLINK_NOFOLLOW));
}
