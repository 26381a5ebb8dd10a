import { entrySizes } from './copy.ts';
import { buildManifest, diffManifests, type Entry } from './manifest.ts';
import { abs } from './paths.ts';
import { copiesContents, splitKey, Tracking, type Dirt, type Key } from './tracking.ts';
import type { MirrorInspection, MirrorStatus } from './types.ts';

/**
 * What `vigil verify` and `vigil diff` read from each node (GET /modules/M/mirror/listing and
 * /mirror/plan) and how they compare it. Nothing here changes either copy.
 */

/** one node's copy, as the checksum resync lists it (what the module leaves out is not listed) */
export interface MirrorListing {
  dirs: string[];
  zoneSize: number;
  entries: Entry[];
}

/** what the tracking of one node says a resync would copy (and whether a delta resync is possible) */
export interface MirrorPlan {
  dirs: string[];
  zoneSize: number;
  /** the sync id the tracking counts from, and whether it holds every change since (no crash, no edit while stopped) */
  baseline: string | null;
  intact: boolean;
  /** nothing tracked: as a secondary, its data is exactly `baseline` */
  clean: boolean;
  status: MirrorStatus;
  items: PlanItem[];
  bytes: number;
}

/** one entry a resync copies: whole, some zones, its metadata only, or its removal from the secondary */
export interface PlanItem {
  path: string;
  what: 'whole' | 'zones' | 'meta' | 'remove';
  bytes: number;
}

/** one difference between the two copies */
export interface Difference {
  path: string;
  kind: 'missing' | 'extra' | 'type' | 'content' | 'meta';
  detail: string;
}

export async function listing(m: MirrorInspection): Promise<MirrorListing> {
  const entries = await buildManifest(
    m.dirs.map((d) => d.backing),
    m.tracking.zoneSize,
    undefined,
    m.excludes,
  );
  return { dirs: m.dirs.map((d) => d.mount), zoneSize: m.tracking.zoneSize, entries };
}

/** a key as the operator knows it: the path under the replicated directory's mount point */
export function showPath(dirs: readonly string[], k: Key): string {
  const { dir, rel } = splitKey(k);
  return rel === '' ? dirs[dir] : `${dirs[dir]}/${rel}`;
}

/** what is tracked and not left out, with the primary's sizes (no size: the entry is gone) */
function tracked(t: Tracking, skip: (k: Key) => boolean): Map<Key, Dirt> {
  const all = t.merged();
  for (const k of all.keys()) if (skip(k)) all.delete(k);
  return all;
}

function items(t: Tracking, all: ReadonlyMap<Key, Dirt>, dirs: readonly string[], sizes: ReadonlyMap<Key, number | null>): PlanItem[] {
  const out: PlanItem[] = [];
  for (const [k, d] of all) {
    const what = !sizes.has(k) ? 'remove' : d.all || d.tree ? 'whole' : copiesContents(d) ? 'zones' : 'meta';
    out.push({ path: showPath(dirs, k), what, bytes: what === 'remove' ? 0 : t.entryBytes(k, d, (x) => sizes.get(x) ?? null) });
  }
  return out;
}

/** what this node's tracking would make a resync copy (a delta resync: exactly this) */
export async function trackedPlan(m: MirrorInspection): Promise<MirrorPlan> {
  const backings = m.dirs.map((d) => d.backing);
  const dirs = m.dirs.map((d) => d.mount);
  const t = m.tracking;
  const all = tracked(t, (k) => {
    const { dir, rel } = splitKey(k);
    return m.excludes.skips(dir, rel);
  });
  const list = items(t, all, dirs, await entrySizes([...all.keys()], backings));
  return { dirs, zoneSize: t.zoneSize, baseline: t.baseline, intact: t.intact, clean: t.intact && t.isEmpty(), status: m.status, items: list, bytes: list.reduce((n, i) => n + i.bytes, 0) };
}

/** what a checksum resync would copy from `primary` to `secondary` (the comparison the resync makes) */
export function checksumPlan(primary: MirrorListing, secondary: MirrorListing): { items: PlanItem[]; bytes: number } {
  const t = new Tracking(primary.zoneSize);
  const byKey = new Map(primary.entries.map((e) => [e.k, e]));
  diffManifests(primary.entries, new Map(secondary.entries.map((e) => [e.k, e])), t);
  const all = tracked(t, () => false);
  const sizes = new Map<Key, number | null>();
  for (const k of all.keys()) {
    const e = byKey.get(k);
    if (e) sizes.set(k, e.ty === 'f' ? e.s : null);
  }
  const list = items(t, all, primary.dirs, sizes);
  return { items: list, bytes: list.reduce((n, i) => n + i.bytes, 0) };
}

const TYPE = { f: 'file', d: 'directory', l: 'symlink' } as const;

/** every difference between two listings of the same module, in the primary's order then the secondary's extras */
export function compareListings(primary: MirrorListing, secondary: MirrorListing): Difference[] {
  const other = new Map(secondary.entries.map((e) => [e.k, e]));
  const out: Difference[] = [];
  const path = (k: Key) => showPath(primary.dirs, k);
  for (const e of primary.entries) {
    const o = other.get(e.k);
    other.delete(e.k);
    if (!o) {
      out.push({ path: path(e.k), kind: 'missing', detail: `${TYPE[e.ty]} missing on the secondary` });
      continue;
    }
    if (o.ty !== e.ty) {
      out.push({ path: path(e.k), kind: 'type', detail: `${TYPE[e.ty]} on the primary, ${TYPE[o.ty]} on the secondary` });
      continue;
    }
    if (e.ty === 'f') {
      const zones: number[] = [];
      for (let z = 0; z < Math.max(e.h?.length ?? 0, o.h?.length ?? 0); z++) if (e.h?.[z] !== o.h?.[z]) zones.push(z);
      if (e.s !== o.s) out.push({ path: path(e.k), kind: 'content', detail: `size ${e.s} on the primary, ${o.s} on the secondary` });
      else if (zones.length) {
        const zs = primary.zoneSize;
        const shown = zones.slice(0, 8).map((z) => `${z * zs}-${Math.min((z + 1) * zs, e.s) - 1}`);
        out.push({ path: path(e.k), kind: 'content', detail: `same size, different bytes in ${zones.length} zone(s): ${shown.join(', ')}${zones.length > 8 ? ', …' : ''}` });
      }
    }
    const meta: string[] = [];
    if (e.m !== o.m) meta.push(`mode ${e.m.toString(8)} vs ${o.m.toString(8)}`);
    if (e.u !== o.u || e.g !== o.g) meta.push(`owner ${e.u}:${e.g} vs ${o.u}:${o.g}`);
    if (e.tg !== o.tg) meta.push(`target ${JSON.stringify(e.tg)} vs ${JSON.stringify(o.tg)}`);
    if (e.x !== o.x) meta.push('extended attributes differ');
    if (meta.length) out.push({ path: path(e.k), kind: 'meta', detail: meta.join(', ') });
  }
  for (const o of other.values()) out.push({ path: path(o.k), kind: 'extra', detail: `${TYPE[o.ty]} only on the secondary` });
  return out;
}
