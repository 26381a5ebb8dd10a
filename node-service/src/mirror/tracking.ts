/**
 * What changed on the primary since the secondary last had the same data ("baseline" sync id).
 * Per path: data zones (zone_size bytes each), or the whole entry ("all": contents and metadata), or
 * the whole subtree ("tree", after a directory rename), or only metadata ("meta"). A path whose entry
 * no longer exists on the primary is removed on the secondary at resync.
 */
export interface Dirt {
  zones?: Set<number>;
  all?: boolean;
  tree?: boolean;
  meta?: boolean;
  /** truncated: every zone from this offset to the end is copied */
  from?: number;
}

export type Key = string; // `${dirIndex}:${rel}`

export function key(dir: number, rel: string): Key {
  return `${dir}:${rel}`;
}
export function splitKey(k: Key): { dir: number; rel: string } {
  const i = k.indexOf(':');
  return { dir: Number(k.slice(0, i)), rel: k.slice(i + 1) };
}

export interface TrackingSnapshot {
  baseline: string | null;
  intact: boolean;
  entries: [Key, { z?: number[]; a?: 1; t?: 1; m?: 1; f?: number }][];
}

export class Tracking {
  entries = new Map<Key, Dirt>();
  /** entries the resync took and has not yet seen acknowledged; a change to one of them re-marks it */
  inflight = new Map<Key, Dirt>();
  baseline: string | null = null;
  /** false when changes may have happened that are not recorded (crash, edits while stopped) */
  intact = true;
  changed = false;

  constructor(readonly zoneSize: number) {}

  isEmpty(): boolean {
    return this.entries.size === 0 && this.inflight.size === 0;
  }

  private get(k: Key): Dirt {
    let d = this.entries.get(k);
    if (!d) {
      d = {};
      this.entries.set(k, d);
    }
    this.changed = true;
    return d;
  }

  markZones(k: Key, offset: number, length: number): void {
    const d = this.get(k);
    if (d.all || d.tree) return;
    d.zones ??= new Set();
    const first = Math.floor(offset / this.zoneSize);
    const last = Math.floor((offset + Math.max(length, 1) - 1) / this.zoneSize);
    for (let z = first; z <= last; z++) d.zones.add(z);
  }
  markAll(k: Key): void {
    const d = this.get(k);
    d.all = true;
    d.zones = undefined;
  }
  markTree(k: Key): void {
    const d = this.get(k);
    d.tree = true;
    d.all = true;
    d.zones = undefined;
  }
  markMeta(k: Key): void {
    this.get(k).meta = true;
  }
  markTruncate(k: Key, size: number): void {
    const d = this.get(k);
    d.meta = true;
    d.from = Math.min(d.from ?? size, size);
  }

  /** During resync: a live change to k only needs re-marking when k is marked or being copied. */
  concerns(k: Key): boolean {
    return this.entries.has(k) || this.inflight.has(k);
  }

  /** Takes the next entry to copy (insertion order: parents before children). */
  take(): [Key, Dirt] | undefined {
    const it = this.entries.entries().next();
    if (it.done) return undefined;
    const [k, d] = it.value;
    this.entries.delete(k);
    this.inflight.set(k, d);
    this.changed = true;
    return [k, d];
  }

  /** the copy of k was acknowledged by the secondary */
  done(k: Key, d: Dirt): void {
    if (this.inflight.get(k) === d) this.inflight.delete(k);
  }

  /** the channel was lost: what was being copied is still to copy */
  requeueInflight(): void {
    for (const [k, d] of this.inflight) this.entries.set(k, mergeDirt(this.entries.get(k), d));
    this.inflight.clear();
    this.changed = true;
  }

  /**
   * File bytes a resync would copy: whole entries at their size, marked zones (within the file's size),
   * and everything from a truncation point on. `sizeOf` gives an entry's size on the primary (null:
   * gone, or not a file). A file created while ALONE is marked whole at its create and later writes add
   * no zones to it (markZones returns early), so a count of zones alone said 1 MiB after a 160 MiB write.
   */
  bytesToCopy(sizeOf: (k: Key) => number | null): number {
    let n = 0;
    for (const m of [this.entries, this.inflight]) for (const [k, d] of m) n += this.entryBytes(k, d, sizeOf);
    return n;
  }

  entryBytes(k: Key, d: Dirt, sizeOf: (k: Key) => number | null): number {
    if (!copiesContents(d)) return 0; // metadata only
    const size = sizeOf(k);
    if (size === null) return 0;
    if (d.all || d.tree) return size;
    const zs = this.zoneSize;
    const zones = new Set(d.zones);
    if (d.from !== undefined) for (let z = Math.floor(d.from / zs); z * zs < size; z++) zones.add(z);
    let n = 0;
    for (const z of zones) n += Math.max(0, Math.min(zs, size - z * zs));
    return n;
  }

  clear(baseline: string | null): void {
    this.entries.clear();
    this.inflight.clear();
    this.baseline = baseline;
    this.intact = true;
    this.changed = true;
  }

  /** everything still to copy: the tracked entries with the in-flight ones (not acknowledged yet) merged in */
  merged(): Map<Key, Dirt> {
    const all = new Map(this.entries);
    for (const [k, d] of this.inflight) all.set(k, mergeDirt(all.get(k), d));
    return all;
  }

  snapshot(): TrackingSnapshot {
    const entries: TrackingSnapshot['entries'] = [];
    const add = (k: Key, d: Dirt) =>
      entries.push([k, { ...(d.zones ? { z: [...d.zones] } : {}), ...(d.all ? { a: 1 } : {}), ...(d.tree ? { t: 1 } : {}), ...(d.meta ? { m: 1 } : {}), ...(d.from !== undefined ? { f: d.from } : {}) }]);
    // in-flight entries are not yet acknowledged: persist them as still to copy
    for (const [k, d] of this.merged()) add(k, d);
    return { baseline: this.baseline, intact: this.intact, entries };
  }

  restore(s: TrackingSnapshot): void {
    this.clear(s.baseline);
    this.intact = s.intact;
    for (const [k, e] of s.entries) {
      this.entries.set(k, { ...(e.z ? { zones: new Set(e.z) } : {}), all: !!e.a, tree: !!e.t, meta: !!e.m, ...(e.f !== undefined ? { from: e.f } : {}) });
    }
  }
}

/** whether copying d sends file contents (whole, zones, or from a truncation point on), not only metadata */
export function copiesContents(d: Dirt): boolean {
  return !!(d.all || d.tree || d.zones?.size || d.from !== undefined);
}

export function mergeDirt(a: Dirt | undefined, b: Dirt): Dirt {
  if (!a) return b;
  const all = !!(a.all || b.all);
  const zones = all ? undefined : new Set([...(a.zones ?? []), ...(b.zones ?? [])]);
  const from = a.from === undefined ? b.from : b.from === undefined ? a.from : Math.min(a.from, b.from);
  return { all, tree: !!(a.tree || b.tree), meta: !!(a.meta || b.meta), ...(zones && zones.size ? { zones } : {}), ...(from !== undefined ? { from } : {}) };
}
