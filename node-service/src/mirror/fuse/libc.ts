import { createRequire } from 'node:module';

/**
 * The few system calls Node has no API for, through koffi (an FFI whose npm package ships its
 * prebuilt binary): extended attributes and fallocate. Each returns the result or a negative errno,
 * the way the FUSE reply wants it.
 */
const require = createRequire(import.meta.url);
const koffi = require('koffi') as typeof import('koffi');
const libc = koffi.load('libc.so.6');

const lgetxattr = libc.func('long lgetxattr(const char *path, const char *name, _Out_ uint8_t *value, size_t size)');
const lsetxattr = libc.func('int lsetxattr(const char *path, const char *name, const uint8_t *value, size_t size, int flags)');
const llistxattr = libc.func('long llistxattr(const char *path, _Out_ uint8_t *list, size_t size)');
const lremovexattr = libc.func('int lremovexattr(const char *path, const char *name)');
const fallocateFn = libc.func('int fallocate(int fd, int mode, int64_t offset, int64_t len)');

function result(n: number | bigint): number {
  const v = Number(n);
  return v < 0 ? -koffi.errno() : v;
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
