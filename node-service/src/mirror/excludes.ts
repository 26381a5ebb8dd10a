import { lstatSync } from 'node:fs';
import picomatch from 'picomatch';
import type { ReplicatedDir } from '../config/schema.ts';
import type { PathOp } from './ops.ts';
import { abs } from './paths.ts';

type Match = (s: string) => boolean;

/** patterns without "/" match a name at any depth ("*.tmp"); the others a path from the directory's root ("cache/**") */
function matcher(patterns: readonly string[]): { byName: Match | null; byPath: Match | null } {
  const names = patterns.filter((p) => !p.includes('/'));
  const paths = patterns.filter((p) => p.includes('/'));
  return { byName: names.length ? picomatch(names, { dot: true }) : null, byPath: paths.length ? picomatch(paths, { dot: true }) : null };
}

/** true when rel or one of its parent directories matches */
function matchesSelfOrParent(m: { byName: Match | null; byPath: Match | null }, rel: string): boolean {
  let end = -1;
  do {
    end = rel.indexOf('/', end + 1);
    const prefix = end < 0 ? rel : rel.slice(0, end);
    const name = prefix.slice(prefix.lastIndexOf('/') + 1);
    if (m.byName?.(name) || m.byPath?.(prefix)) return true;
  } while (end >= 0);
  return false;
}

/**
 * What one replicated directory leaves out (`dirs: [{ path, exclude, include }]`): an entry is left out
 * when it or a parent matches an exclude pattern, or, with include patterns, when it is not a
 * directory and neither it nor a parent matches one (directories are kept, so included files always
 * have their parents). The same rule serves live changes, every resync, verify and diff.
 */
class DirFilter {
  private readonly exclude;
  private readonly include;
  /** some pattern depends on where an entry is, not only on its name: a directory rename can change what is left out below it */
  readonly byLocation: boolean;

  constructor(
    readonly root: string,
    spec: { exclude: readonly string[]; include?: readonly string[] },
  ) {
    this.exclude = matcher(spec.exclude);
    this.include = spec.include ? matcher(spec.include) : null;
    this.byLocation = this.include !== null || spec.exclude.some((p) => p.includes('/'));
  }

  get empty(): boolean {
    return !this.exclude.byName && !this.exclude.byPath && !this.include;
  }

  skips(rel: string, isDir: () => boolean): boolean {
    if (rel === '') return false;
    if (matchesSelfOrParent(this.exclude, rel)) return true;
    return this.include !== null && !matchesSelfOrParent(this.include, rel) && !isDir();
  }

  /** whether the entry now at rel (in the backing directory) is a directory */
  isDir(rel: string): boolean {
    try {
      return lstatSync(abs(this.root, rel)).isDirectory();
    } catch {
      return false;
    }
  }
}

/** A live change as it goes to the secondary: the operation to send (if any), the entry to copy anew (if any). */
export interface LiveChange {
  op?: PathOp;
  copy?: string;
}

const DIR_OPS = new Set<PathOp['t']>(['mkdir', 'rmdir']);
const FILE_OPS = new Set<PathOp['t']>(['create', 'write', 'truncate', 'fallocate', 'symlink', 'link', 'unlink', 'data']);

/** The include/exclude patterns of every replicated directory of a module (index = the `d` of operations). */
export class Excludes {
  private readonly dirs: DirFilter[];
  /** no directory leaves anything out: every check is skipped */
  readonly none: boolean;

  constructor(dirs: readonly { backing: string; spec: ReplicatedDir }[]) {
    this.dirs = dirs.map((d) => new DirFilter(d.backing, typeof d.spec === 'string' ? { exclude: [] } : d.spec));
    this.none = this.dirs.every((f) => f.empty);
  }

  /** true when the entry rel of directory d is not replicated; isDir is asked only when include patterns need it */
  skips(d: number, rel: string, isDir?: () => boolean): boolean {
    if (this.none) return false;
    const f = this.dirs[d];
    return f.skips(rel, isDir ?? (() => f.isDir(rel)));
  }

  /**
   * A change made through the primary's view, as the secondary must see it. Left-out entries are
   * never sent. A rename across the boundary becomes what the secondary needs: out of replication
   * (`data` → `data.tmp`), its copy is removed; into replication (`x.tmp` → `x`, the usual atomic
   * replace), the entry is copied as a resync copies it, since the secondary never had its contents.
   * Callers skip it when `none`.
   */
  live(op: PathOp): LiveChange {
    const f = this.dirs[op.d];
    const typeOf = (rel: string) => (DIR_OPS.has(op.t) ? true : FILE_OPS.has(op.t) ? false : f.isDir(rel));
    if (op.t === 'rename') {
      const dir = () => f.isDir(op.to);
      const from = f.skips(op.p, dir);
      const to = f.skips(op.to, dir);
      if (from && to) return {};
      if (to) return { op: { t: 'remove', d: op.d, p: op.p } };
      if (from) return { copy: op.to };
      return f.byLocation && dir() ? { op, copy: op.to } : { op };
    }
    if (op.t === 'link') {
      // p is the new name, to the existing entry
      if (f.skips(op.p, () => false)) return {};
      return f.skips(op.to, () => false) ? { copy: op.p } : { op };
    }
    return f.skips(op.p, () => typeOf(op.p)) ? {} : { op };
  }
}
