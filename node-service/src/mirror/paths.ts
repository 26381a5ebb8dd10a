import { realpathSync } from 'node:fs';
import { dirname, join, sep } from 'node:path';
import { FrameError } from './protocol.ts';

/**
 * A path inside a replicated directory, as carried on the wire: relative, '/'-separated, without '.',
 * '..', empty components or NUL. "" is the directory itself.
 */
export function checkRel(rel: unknown): string {
  if (typeof rel !== 'string') throw new FrameError('path must be a string');
  if (rel === '') return rel;
  if (rel.length > 4096 || rel.includes('\0') || rel.startsWith('/') || rel.endsWith('/')) throw new FrameError(`bad path ${JSON.stringify(rel.slice(0, 80))}`);
  for (const c of rel.split('/')) {
    if (c === '' || c === '.' || c === '..' || c.length > 255) throw new FrameError(`bad path component in ${JSON.stringify(rel.slice(0, 80))}`);
  }
  return rel;
}

/** FUSE hands "/a/b"; the wire and the tracking use "a/b". */
export function fromFuse(p: string): string {
  return p === '/' ? '' : p.startsWith('/') ? p.slice(1) : p;
}

export function parentRel(rel: string): string {
  const i = rel.lastIndexOf('/');
  return i < 0 ? '' : rel.slice(0, i);
}

export function abs(root: string, rel: string): string {
  return rel === '' ? root : join(root, rel);
}

/**
 * Resolves the parent of rel inside root and refuses it when a symlink among the parent components
 * leads outside root. The last component itself is never followed by the callers (O_NOFOLLOW, lstat,
 * lchown, lutimes), so a symlink there cannot escape either.
 */
export async function confinedParent(root: string, rel: string, rootReal: string): Promise<string> {
  const p = abs(root, rel);
  if (rel === '') return p;
  const parent = dirname(p);
  let real: string;
  try {
    // synchronous: the parent is in the dentry cache, and a thread-pool round trip costs more; the
    // libc realpath (Node's JS one lstats every component, ~10 µs each, for every operation applied)
    real = realpathSync.native(parent);
  } catch {
    return p; // parent missing: the operation itself will fail with ENOENT (or create it)
  }
  if (real !== rootReal && !real.startsWith(rootReal + sep)) throw new FrameError(`path ${rel} escapes the replicated directory`);
  return p;
}
