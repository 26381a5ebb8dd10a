import { checkRel } from './paths.ts';
import { encodeFrame, encodeFrameHead, FrameError, type Frame } from './protocol.ts';
import type { Entry } from './manifest.ts';

/**
 * The replication protocol: one discriminated union of operations, from the view (live changes) and
 * the resync copier on the primary to the applier on the secondary. The same shape is built by the
 * view, framed by `encodeOp`, checked by `decodeToSecondary` and applied by `Applier.apply`.
 *
 * `d` is the index of the replicated directory, `p` a path relative to it (see `checkRel`).
 */
export type Op =
  // live changes, as the view makes them
  | { t: 'write'; d: number; p: string; o: number; data: Buffer }
  | { t: 'truncate'; d: number; p: string; s: number }
  | { t: 'create' | 'mkdir'; d: number; p: string; m: number; u: number; g: number }
  | { t: 'unlink' | 'rmdir'; d: number; p: string }
  /** rename p to `to`; link: `p` is the new name, `to` the existing entry */
  | { t: 'rename' | 'link'; d: number; p: string; to: string }
  | { t: 'symlink'; d: number; p: string; tg: string; u: number; g: number }
  | { t: 'chmod'; d: number; p: string; m: number }
  | { t: 'chown'; d: number; p: string; u: number; g: number }
  /** times as decimal nanoseconds since the epoch (beyond a double's precision) */
  | { t: 'utimens'; d: number; p: string; a: string; mt: string }
  | { t: 'fallocate'; d: number; p: string; o: number; l: number; mode: number }
  | { t: 'setxattr'; d: number; p: string; n: string; fl: number; v: Buffer }
  | { t: 'removexattr'; d: number; p: string; n: string }
  /** durability point: acknowledged once the secondary applied everything before it and synced p */
  | { t: 'fsync'; d: number; p: string; ds: boolean }
  // resync copies
  | { t: 'ensure'; d: number; p: string; ty: 'f' | 'd' | 'l'; m: number; u: number; g: number; s: number; tg?: string }
  | { t: 'data'; d: number; p: string; o: number; data: Buffer }
  /** times and extended attributes (name → base64 value) of a copied entry */
  | { t: 'meta'; d: number; p: string; a: string; mt: string; x?: Record<string, string> }
  | { t: 'remove'; d: number; p: string }
  // stream control
  | { t: 'nop' }
  /** the secondary's data now corresponds to sync id `id` plus what follows (a resync starts) */
  | { t: 'base'; id: string }
  /** everything before this made the secondary equal to the primary at sync id `id` */
  | { t: 'synced'; id: string };

export type OpType = Op['t'];
export type PathOp = Extract<Op, { p: string }>;
export type FsyncOp = Extract<Op, { t: 'fsync' }>;

/** What the primary sends: sequenced operations, and the request for the secondary's tree listing. */
export type ToSecondary = { t: 'op'; q: number; op: Op } | { t: 'manifest-req' };

/** What the secondary sends: cumulative acknowledgements (with per-operation failures) and its listing. */
export type ToPrimary = { t: 'ack'; q: number; e: [number, string][] } | { t: 'manifest'; e: Entry[]; end: boolean };

type Kind = 'uint' | 'u32' | 'mode' | 'path' | 'name' | 'str' | 'ns' | 'bool' | 'ty' | 'xattrs' | 'id';

/** Every operation's header fields and their kinds ('?' marks an optional field); `data` ops carry bytes. */
const FIELDS: { [K in OpType]: { f: Record<string, Kind | `${Kind}?`>; data?: 'data' | 'v' } } = {
  write: { f: { d: 'uint', p: 'path', o: 'uint' }, data: 'data' },
  data: { f: { d: 'uint', p: 'path', o: 'uint' }, data: 'data' },
  truncate: { f: { d: 'uint', p: 'path', s: 'uint' } },
  create: { f: { d: 'uint', p: 'path', m: 'mode', u: 'u32', g: 'u32' } },
  mkdir: { f: { d: 'uint', p: 'path', m: 'mode', u: 'u32', g: 'u32' } },
  unlink: { f: { d: 'uint', p: 'path' } },
  rmdir: { f: { d: 'uint', p: 'path' } },
  rename: { f: { d: 'uint', p: 'path', to: 'path' } },
  link: { f: { d: 'uint', p: 'path', to: 'path' } },
  symlink: { f: { d: 'uint', p: 'path', tg: 'str', u: 'u32', g: 'u32' } },
  chmod: { f: { d: 'uint', p: 'path', m: 'mode' } },
  chown: { f: { d: 'uint', p: 'path', u: 'u32', g: 'u32' } },
  utimens: { f: { d: 'uint', p: 'path', a: 'ns', mt: 'ns' } },
  fallocate: { f: { d: 'uint', p: 'path', o: 'uint', l: 'uint', mode: 'u32' } },
  setxattr: { f: { d: 'uint', p: 'path', n: 'name', fl: 'u32' }, data: 'v' },
  removexattr: { f: { d: 'uint', p: 'path', n: 'name' } },
  fsync: { f: { d: 'uint', p: 'path', ds: 'bool' } },
  ensure: { f: { d: 'uint', p: 'path', ty: 'ty', m: 'mode', u: 'u32', g: 'u32', s: 'uint', tg: 'str?' } },
  meta: { f: { d: 'uint', p: 'path', a: 'ns', mt: 'ns', x: 'xattrs?' } },
  remove: { f: { d: 'uint', p: 'path' } },
  nop: { f: {} },
  base: { f: { id: 'id' } },
  synced: { f: { id: 'id' } },
};

function bad(field: string, what: string): never {
  throw new FrameError(`field ${field} must be ${what}`);
}

function check(k: Kind, field: string, v: unknown): unknown {
  switch (k) {
    case 'uint':
      return typeof v === 'number' && Number.isSafeInteger(v) && v >= 0 ? v : bad(field, 'a non-negative integer');
    case 'u32':
      return typeof v === 'number' && Number.isInteger(v) && v >= 0 && v <= 0xffffffff ? v : bad(field, 'a 32-bit unsigned integer');
    case 'mode':
      return typeof v === 'number' && Number.isInteger(v) && v >= 0 && v <= 0o7777 ? v : bad(field, 'a permission mode (0 to 07777)');
    case 'path':
      return checkRel(v);
    case 'name':
      return typeof v === 'string' && v.length > 0 && v.length <= 255 && !v.includes('\0') ? v : bad(field, 'a name of 1 to 255 characters');
    case 'str':
      return typeof v === 'string' && v.length <= 4096 && !v.includes('\0') ? v : bad(field, 'a string of at most 4096 characters');
    case 'ns':
      return typeof v === 'string' && /^-?[0-9]{1,20}$/.test(v) ? v : bad(field, 'a time in decimal nanoseconds');
    case 'bool':
      return typeof v === 'boolean' ? v : bad(field, 'true or false');
    case 'ty':
      return v === 'f' || v === 'd' || v === 'l' ? v : bad(field, '"f", "d" or "l"');
    case 'id':
      return typeof v === 'string' && v.length > 0 && v.length <= 64 ? v : bad(field, 'a sync id');
    case 'xattrs': {
      if (typeof v !== 'object' || v === null || Array.isArray(v)) bad(field, 'an object of extended attributes');
      for (const [n, x] of Object.entries(v as Record<string, unknown>)) {
        check('name', `${field}.name`, n);
        if (typeof x !== 'string') bad(`${field}.${n}`, 'a base64 string');
      }
      return v;
    }
  }
}

/** One sequenced operation as a frame: header fields (plus q), and its bytes (write/data, xattr value). */
export function encodeOp(q: number, op: Op): Buffer {
  switch (op.t) {
    case 'write':
    case 'data': {
      const { data, ...h } = op;
      return encodeFrame({ ...h, q }, data);
    }
    case 'setxattr': {
      const { v, ...h } = op;
      return encodeFrame({ ...h, q }, v);
    }
    default:
      return encodeFrame({ ...op, q });
  }
}

/**
 * encodeOp as the parts to send: a resync copy's data goes out from the copier's own buffer, behind its
 * header, without being copied into the frame (a live write's bytes are copied: the kernel reuses its
 * buffer as soon as the view answers).
 */
export function encodeOpParts(q: number, op: Op): Buffer[] {
  if (op.t !== 'data') return [encodeOp(q, op)];
  const { data, ...h } = op;
  return [encodeFrameHead({ ...h, q }, data.length), data];
}

/** A frame from the primary, validated: every field of its operation is present and well-formed. */
export function decodeToSecondary(f: Frame): ToSecondary {
  const h = f.h;
  if (h.t === 'manifest-req') return { t: 'manifest-req' };
  const spec = Object.hasOwn(FIELDS, h.t as string) ? FIELDS[h.t as OpType] : undefined;
  if (!spec) throw new FrameError(`unknown operation ${JSON.stringify(String(h.t).slice(0, 40))}`);
  const q = check('uint', 'q', h.q) as number;
  const op: Record<string, unknown> = { t: h.t };
  for (const [field, kind] of Object.entries(spec.f)) {
    const optional = kind.endsWith('?');
    const v = h[field];
    if (v === undefined && optional) continue;
    op[field] = check((optional ? kind.slice(0, -1) : kind) as Kind, field, v);
  }
  if (spec.data) op[spec.data] = f.data;
  else if (f.data.length > 0) throw new FrameError(`${String(h.t)} carries no data`);
  return { t: 'op', q, op: op as Op };
}

/** A frame from the secondary, validated. */
export function decodeToPrimary(f: Frame): ToPrimary {
  const h = f.h;
  if (h.t === 'ack') {
    const q = check('uint', 'q', h.q) as number;
    const e: [number, string][] = [];
    if (h.e !== undefined) {
      if (!Array.isArray(h.e)) bad('e', 'a list of [seq, error]');
      for (const x of h.e) {
        if (!Array.isArray(x) || typeof x[0] !== 'number' || typeof x[1] !== 'string') bad('e', 'a list of [seq, error]');
        e.push([x[0], x[1].slice(0, 200)]);
      }
    }
    return { t: 'ack', q, e };
  }
  if (h.t === 'manifest') {
    if (!Array.isArray(h.e)) bad('e', 'a list of entries');
    for (const x of h.e as unknown[]) {
      const en = x as Entry;
      if (typeof en !== 'object' || en === null || typeof en.k !== 'string') bad('e', 'a list of entries with a key');
    }
    return { t: 'manifest', e: h.e as Entry[], end: h.end === true };
  }
  throw new FrameError(`unexpected frame ${JSON.stringify(String(h.t).slice(0, 40))} from the secondary`);
}

export function encodeToPrimary(m: ToPrimary): Buffer {
  return encodeFrame(m.t === 'ack' ? { t: 'ack', q: m.q, ...(m.e.length ? { e: m.e } : {}) } : { t: 'manifest', e: m.e, ...(m.end ? { end: true } : {}) });
}

export function encodeManifestReq(): Buffer {
  return encodeFrame({ t: 'manifest-req' });
}

/** bytes an operation carries (what counts against the window besides its header) */
export function payloadBytes(op: Op): number {
  return op.t === 'write' || op.t === 'data' ? op.data.length : op.t === 'setxattr' ? op.v.length : 0;
}
