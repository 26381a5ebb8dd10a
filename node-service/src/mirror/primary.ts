import { randomUUID } from 'node:crypto';
import type { Logger } from '../log/logger.ts';
import { connectToSecondary, type Channel, type SecondaryReport } from './channel.ts';
import { isPlain } from './secure-socket.ts';
import { copyEntry, estimate } from './copy.ts';
import type { Excludes } from './excludes.ts';
import type { Throttle } from './throttle.ts';
import { buildManifest, diffManifests, type Entry } from './manifest.ts';
import { decodeToPrimary, encodeManifestReq, encodeOp, encodeOpParts, type FsyncOp, type Op, type PathOp } from './ops.ts';
import { key, type Key, type Tracking } from './tracking.ts';
import type { LastResync, MirrorDir, MirrorEvent, MirrorReplicatorOptions, MirrorStatus } from './types.ts';

/** What the primary role needs from the engine that owns it. */
export interface PrimaryContext {
  readonly opts: MirrorReplicatorOptions;
  readonly log: Logger;
  readonly tracking: Tracking;
  readonly dirs: readonly MirrorDir[];
  readonly sendTimeout: number;
  /** fsync: changes return once queued, durability points wait for the peer; write: every change waits */
  readonly ack: 'fsync' | 'write';
  /** unacknowledged bytes on the wire before writers wait */
  readonly window: number;
  /** paces the resync copy (replication.resync_bandwidth, changeable live) */
  readonly throttle: Throttle;
  /** what the module leaves out of replication */
  readonly excludes: Excludes;
  /** false once the engine moved on (another role, stop): loops end, late connections are closed */
  current(): boolean;
  persist(force: boolean): Promise<void>;
  emit(e: MirrorEvent): void;
  resynced(r: LastResync): void;
}

/** One operation sent and not yet acknowledged. */
interface Pending {
  seq: number;
  t0: number;
  bytes: number;
  /** a live change: what to mark in tracking if it is not acknowledged, or fails on the secondary */
  mark?: () => void;
  /** called once: acknowledged (err: the secondary's failure), or the session ended ('lost') */
  done?: (err?: string) => void;
}

/** The primary's side of one connection to the secondary. */
export interface Session {
  ch: Channel;
  report: SecondaryReport;
  phase: 'comparing' | 'copying' | 'synced';
  seq: number;
  /** in sequence order; acknowledged from the front */
  pending: Pending[];
  head: number;
  unacked: number;
  lastSend: number;
  lastProgress: number;
  resync: { mode: 'delta' | 'checksum'; bytesDone: number; bytesTotal: number; entries: number; t0: number; remoteManifest?: Map<string, Entry>; manifestBatch?: () => void; manifestDone?: () => void };
  /** writers waiting for room in the window */
  room: (() => void)[];
  /** the resync copier waiting for room (it leaves half the window to live changes) */
  drained: (() => void)[];
  /** changes the secondary could not apply in this session (its disk full or failing) */
  applyFailures: number;
}

const RESOLVED = Promise.resolve();
const LOST = 'lost';
/**
 * A secondary that cannot apply this many changes in one session (a read-only or failing disk) is
 * disconnected, and the next session waits FAILED_SESSION_PAUSE_MS, doubled per such session up to
 * MAX_FAILED_SESSION_PAUSE_MS: copying its entries again at once would spin (thousands a second, each
 * logged) for as long as its disk stays broken. A full disk frees up within a session or the next.
 */
const MAX_APPLY_FAILURES = 256;
const FAILED_SESSION_PAUSE_MS = 1000;
const MAX_FAILED_SESSION_PAUSE_MS = 10_000;

/** the pause before the next session after one more ended by refused changes (0: none yet) */
export const nextFailedPause = (prev: number): number => Math.min(MAX_FAILED_SESSION_PAUSE_MS, prev === 0 ? FAILED_SESSION_PAUSE_MS : prev * 2);
/** files up to this size are digested for the checksum comparison without waiting for the secondary's listing */
const DIGEST_WITHOUT_ASKING = 1 << 20;
/** resync entries copied at the same time */
const COPIERS = 8;
/** free copier buffers kept (the copier keeps half the window in flight: 2 chunks by default, 8 copiers) */
const KEPT_BUFFERS = 8;
/** resync data above this size is sent without a copy (smaller operations are batched by sendSoon, copied) */
const COPY_FREE = 64 * 1024;
/** the largest resync data operation: fewer frames and larger disk writes (the frame limit is 4 MiB of data) */
const MAX_CHUNK = 4 << 20;

/**
 * The resync's data operations: up to 4 MiB, but a quarter of the window at most, so the copier (which
 * keeps half the window in flight) always has a few in flight and a chunk never holds live writers
 * waiting for room beyond the window; under a bandwidth cap at most 1/8 s of it, so the pace stays even.
 */
export function copyChunk(window: number, bps: number | null): number {
  const cap = Math.min(MAX_CHUNK, window / 4, bps === null ? Infinity : bps / 8);
  return Math.max(64 * 1024, Math.floor(cap / 4096) * 4096);
}

/**
 * The primary side of a mirror module: connects to the secondary, resyncs it, then streams every
 * change the views make, in order, with a bounded window of unacknowledged bytes.
 *
 * Acknowledgement (`replication.ack`): with `fsync` a change returns as soon as it is made locally and
 * queued for the secondary (writers wait only when the window is full); fsync, fdatasync and fsyncdir
 * return when the local sync is done and the secondary has applied everything before them and synced
 * the entry. Concurrent fsyncs are in flight together and one acknowledgement answers them all (group
 * commit). With `write` every change waits for the secondary's acknowledgement.
 */
export class PrimaryRole {
  private session: Session | null = null;
  /** after sessions ended by a secondary that could not apply changes: the pause before the next, and its end */
  private failedPause = 0;
  private connectAfter = 0;
  private tickTimer: NodeJS.Timeout | null = null;
  private windowWaits = 0;
  private remoteSyncs = 0;
  /** the resync copier's read buffers, written and free again */
  private readonly buffers: Buffer[] = [];

  constructor(private readonly ctx: PrimaryContext) {}

  start(): void {
    const tickMs = Math.max(20, Math.min(250, Math.floor(this.ctx.sendTimeout / 4)));
    this.tickTimer = setInterval(() => this.tick(), tickMs);
    this.connectLoop().catch((err) => this.ctx.log.error({ err }, 'replication connect loop failed; alone until the next role change'));
  }

  status(): Pick<MirrorStatus, 'peer' | 'resync' | 'unackedBytes' | 'windowWaits'> & { remoteSyncs: number } {
    const s = this.session;
    const base = { windowWaits: this.windowWaits, remoteSyncs: this.remoteSyncs, unackedBytes: s?.unacked ?? 0 };
    if (!s) return { ...base, peer: 'disconnected' };
    if (s.phase === 'synced') return { ...base, peer: 'synced' };
    const el = (Date.now() - s.resync.t0) / 1000;
    const rate = el > 0 ? s.resync.bytesDone / el : 0;
    const total = Math.max(s.resync.bytesTotal, s.resync.bytesDone);
    return { ...base, peer: 'resyncing', resync: { bytesDone: s.resync.bytesDone, bytesTotal: total, rateBps: Math.round(rate), etaS: rate > 0 ? Math.round((total - s.resync.bytesDone) / rate) : 0, mode: s.resync.mode } };
  }

  // ---------------------------------------------------------------- the views' changes

  /** what to mark in tracking for a change that did not reach the secondary (captures no buffer) */
  private marker(op: PathOp): () => void {
    const t = this.ctx.tracking;
    const k = key(op.d, op.p);
    switch (op.t) {
      case 'write': {
        const { o } = op;
        const len = op.data.length;
        return () => t.markZones(k, o, len);
      }
      case 'fallocate':
        return () => t.markZones(k, op.o, op.l);
      case 'truncate':
        return () => t.markTruncate(k, op.s);
      case 'rename':
        return () => (t.markAll(k), t.markTree(key(op.d, op.to)));
      case 'fsync':
        // the secondary could not sync what it has: its copy of the entry is made again
        return () => t.markAll(k);
      case 'chmod':
      case 'chown':
      case 'utimens':
      case 'setxattr':
      case 'removexattr':
        return () => t.markMeta(k);
      default:
        return () => t.markAll(k);
    }
  }

  /** during a resync copy, a live change only needs marking when it touches what is still to copy */
  private concerns(op: PathOp): boolean {
    const t = this.ctx.tracking;
    if (t.concerns(key(op.d, op.p))) return true;
    if (op.t === 'rename' || op.t === 'link') {
      const from = key(op.d, op.p);
      if (t.concerns(key(op.d, op.to))) return true;
      for (const k of [...t.entries.keys(), ...t.inflight.keys()]) if (k.startsWith(`${from}/`)) return true;
    }
    return false;
  }

  /** a live change, made locally already (writes: being made): resolves when the application may go on */
  replicate(op: PathOp): Promise<void> {
    const s = this.session;
    const mark = this.marker(op);
    if (!s || s.phase === 'comparing') {
      mark();
      return RESOLVED;
    }
    if (s.phase === 'copying' && this.concerns(op)) mark();
    if (this.ctx.ack === 'write') return new Promise((resolve) => this.post(s, op, { mark, done: () => resolve() }));
    this.post(s, op, { mark }, true);
    return this.room(s);
  }

  /** a durability point: the secondary's sync (after everything before it) is started, then the local one; both run together */
  async replicateFsync(op: FsyncOp, local: () => Promise<void>): Promise<void> {
    const s = this.session;
    if (!s || s.phase === 'comparing') return local();
    this.remoteSyncs++;
    const remote = new Promise<void>((resolve) => this.post(s, op, { mark: this.marker(op), done: () => resolve() }));
    await Promise.all([local(), remote]);
  }

  /** the secondary must get entry k (and what is under it) by copy, as a resync sends it: it never had its contents */
  copyAgain(k: Key): void {
    this.recopy(this.session, () => this.ctx.tracking.markTree(k));
  }

  /** a change already sent failed locally: the secondary's copy of that entry is made again */
  diverged(op: PathOp): void {
    this.ctx.log.warn({ op: op.t, path: op.p }, 'a change sent to the secondary failed locally; the entry is copied again');
    this.recopy(this.session, this.marker(op));
  }

  // ---------------------------------------------------------------- the stream

  /** sends one operation; done/mark as for Pending; soon: nobody waits for it, it may leave with what follows in this tick */
  post(s: Session, op: Op, p: Omit<Pending, 'seq' | 't0' | 'bytes'> = {}, soon = false): void {
    const seq = ++s.seq;
    const now = Date.now();
    s.lastSend = now;
    if (op.t === 'data' && op.data.length > COPY_FREE) {
      // a large resync copy's bytes: sent from the copier's buffer, not copied into a frame
      const parts = encodeOpParts(seq, op);
      const bytes = parts[0].length + parts[1].length;
      s.pending.push({ seq, t0: now, bytes, ...p });
      s.unacked += bytes;
      s.ch.send(parts, () => this.giveBack(op.data));
      return;
    }
    // encodeOp copies the bytes: the kernel's write buffer is reused as soon as the view answers
    const buf = encodeOp(seq, op);
    s.pending.push({ seq, t0: now, bytes: buf.length, ...p });
    s.unacked += buf.length;
    if (soon) s.ch.sendSoon(buf);
    else s.ch.send(buf);
  }

  /**
   * A buffer for the resync copier to read chunk bytes into: reused once the socket wrote the last one
   * (a fresh 4 MiB buffer per chunk had the garbage collector take ~30% of the primary's CPU).
   */
  private chunkBuffer(chunk: number): Buffer {
    const b = this.buffers.pop();
    if (b && b.length === chunk) return b;
    return Buffer.allocUnsafeSlow(chunk);
  }

  /** a copier's buffer, written: kept for the next chunk (a resized chunk's old buffers are dropped) */
  private giveBack(data: Buffer): void {
    const whole = Buffer.from(data.buffer, 0, data.buffer.byteLength);
    if (data.byteOffset === 0 && whole.length >= 64 * 1024 && this.buffers.length < KEPT_BUFFERS) this.buffers.push(whole);
  }

  /** sends and resolves when acknowledged: the secondary's error, LOST when the session ended, or undefined */
  acked(s: Session, op: Op): Promise<string | undefined> {
    return new Promise((resolve) => this.post(s, op, { done: resolve }));
  }

  /** resolves when the unacknowledged bytes fit the window again (backpressure on writers) */
  private room(s: Session): Promise<void> {
    if (s.unacked <= this.ctx.window) return RESOLVED;
    this.windowWaits++;
    return new Promise((resolve) => s.room.push(resolve));
  }

  /** the resync copier's turn: it keeps at most half the window in flight */
  copyRoom(s: Session): Promise<void> {
    if (s.unacked <= this.ctx.window / 2 || this.session !== s) return RESOLVED;
    return new Promise((resolve) => s.drained.push(resolve));
  }

  private onAck(s: Session, q: number, errs: [number, string][]): void {
    const failed = errs.length ? new Map(errs) : null;
    while (s.head < s.pending.length && s.pending[s.head].seq <= q) {
      const p = s.pending[s.head++];
      s.unacked -= p.bytes;
      const err = failed?.get(p.seq);
      if (err !== undefined && p.mark) {
        // the first of a session is logged; the rest are counted in the reason the session ends with
        if (s.applyFailures++ === 0) this.ctx.log.warn({ seq: p.seq, err }, 'secondary failed to apply a change; the entry is copied again');
        this.recopy(s, p.mark);
        if (s.applyFailures === MAX_APPLY_FAILURES) {
          this.failedPause = nextFailedPause(this.failedPause);
          this.connectAfter = Date.now() + this.failedPause;
          s.ch.close(`the secondary failed to apply ${MAX_APPLY_FAILURES} changes (last: ${err}): its disk is full or failing; connecting again in ${this.failedPause} ms`);
        }
      }
      p.done?.(err);
    }
    if (s.head > 1024 && s.head * 2 > s.pending.length) {
      s.pending = s.pending.slice(s.head);
      s.head = 0;
    }
    if (s.unacked <= this.ctx.window) for (const w of s.room.splice(0)) w();
    if (s.unacked <= this.ctx.window / 2) for (const w of s.drained.splice(0)) w();
  }

  /** marks an entry whose copies differ and, on an in-sync session, goes back to copying */
  private recopy(s: Session | null, mark: () => void): void {
    mark();
    if (s?.phase === 'synced') {
      s.phase = 'copying';
      // the secondary's copy differs until this resync ends: out of sync meanwhile, it cannot take over
      // (a failover or swap to it would serve without the entry). The core goes ALONE (a new generation,
      // which the secondary sees) until the resync's 'synced'.
      if (this.ctx.tracking.baseline !== null) this.post(s, { t: 'base', id: this.ctx.tracking.baseline });
      this.ctx.emit({ type: 'lost', reason: 'the secondary could not apply a change; copying the entry again' });
      this.resync(s);
    }
  }

  private tick(): void {
    const s = this.session;
    if (!s) return;
    const now = Date.now();
    const first = s.pending[s.head];
    if (first && now - first.t0 > this.ctx.sendTimeout) {
      s.ch.close(`secondary did not acknowledge within ${this.ctx.sendTimeout} ms`);
      return;
    }
    if (now - s.lastSend > Math.min(500, this.ctx.sendTimeout / 4)) this.post(s, { t: 'nop' });
  }

  // ---------------------------------------------------------------- connection and resync

  private async connectLoop(): Promise<void> {
    const port = this.ctx.opts.module.ports.replication;
    let warned = false;
    while (this.ctx.current()) {
      if (!this.session && Date.now() >= this.connectAfter) {
        try {
          const { ch, report } = await connectToSecondary({ addrs: this.ctx.opts.peer.addrs, port, key: this.ctx.opts.secret.key, keys: this.ctx.opts.keys, plain: isPlain(this.ctx.opts.module), module: this.ctx.opts.module.name, node: this.ctx.opts.self.name });
          if (!this.ctx.current()) {
            ch.close('role changed');
            return;
          }
          warned = false;
          this.startSession(ch, report);
        } catch (e) {
          if (!warned) this.ctx.log.info({ reason: (e as Error).message }, 'secondary not reachable; alone, changes tracked');
          warned = true;
        }
      }
      await sleep(this.session ? 200 : 500);
    }
  }

  private startSession(ch: Channel, report: SecondaryReport): void {
    const t = this.ctx.tracking;
    const delta = report.id !== null && report.id === t.baseline && report.clean && t.intact && !report.full && !report.div;
    const s: Session = {
      ch,
      report,
      phase: delta ? 'copying' : 'comparing',
      seq: 0,
      pending: [],
      head: 0,
      unacked: 0,
      lastSend: Date.now(),
      lastProgress: Date.now(),
      resync: { mode: delta ? 'delta' : 'checksum', bytesDone: 0, bytesTotal: 0, entries: 0, t0: Date.now() },
      room: [],
      drained: [],
      applyFailures: 0,
    };
    this.session = s;
    ch.onClose = (reason) => this.lostSession(s, reason);
    ch.start((f) => {
      try {
        const m = decodeToPrimary(f);
        if (m.t === 'ack') this.onAck(s, m.q, m.e);
        else if (s.resync.remoteManifest) {
          for (const e of m.e) s.resync.remoteManifest.set(e.k, e);
          if (m.end) s.resync.manifestDone?.();
          else s.resync.manifestBatch?.();
        }
      } catch (e) {
        s.ch.close((e as Error).message);
      }
    });
    this.ctx.log.info({ peer: report.node, mode: s.resync.mode, ack: this.ctx.ack, window: this.ctx.window, secondaryId: report.id, baseline: t.baseline, intact: t.intact, clean: report.clean, fullSync: report.full, divergent: report.div }, `connected to secondary, ${s.resync.mode} resync`);
    this.resync(s);
  }

  /** runs the resync copy; a failure ends the session (the next one starts over), never silently */
  private resync(s: Session): void {
    this.runResync(s).catch((err) => {
      this.ctx.log.error({ err }, 'resync failed; reconnecting');
      if (this.session === s) s.ch.close(`resync failed: ${(err as Error).message}`);
    });
  }

  private lostSession(s: Session, reason: string): void {
    if (this.session !== s) return;
    this.session = null;
    const wasSynced = s.phase === 'synced';
    this.endSession(s);
    this.ctx.log.warn({ reason, wasSynced }, 'replication to the secondary lost: alone, changes tracked');
    this.ctx.persist(true).catch((err) => this.ctx.log.error({ err }, 'cannot persist mirror state'));
    this.ctx.emit({ type: 'lost', reason });
  }

  /** what was not acknowledged is tracked (resync copies it) and nobody waits any more */
  private endSession(s: Session): void {
    this.ctx.tracking.requeueInflight();
    for (let i = s.head; i < s.pending.length; i++) {
      const p = s.pending[i];
      p.mark?.();
      p.done?.(LOST);
    }
    s.pending = [];
    s.head = 0;
    s.unacked = 0;
    for (const w of s.room.splice(0)) w();
    for (const w of s.drained.splice(0)) w();
    s.resync.manifestDone?.();
  }

  private async runResync(s: Session): Promise<void> {
    const t = this.ctx.tracking;
    const backings = this.ctx.dirs.map((d) => d.backing);
    if (s.phase === 'comparing') {
      const remote = new Map<string, Entry>();
      let listed = false;
      const waiting = new Set<() => void>();
      const wake = () => {
        for (const w of waiting) w();
      };
      const done = new Promise<void>((resolve) => {
        s.resync.remoteManifest = remote;
        s.resync.manifestBatch = wake;
        s.resync.manifestDone = () => ((listed = true), wake(), resolve());
      });
      s.ch.send(encodeManifestReq());
      // Both sides list (and digest) at the same time, in the same order. A file the secondary does not
      // hold is copied whole: digesting it here first would read it twice (a new or emptied secondary:
      // nothing is digested). Small files are digested without asking; a large one waits until the
      // secondary's listing has it or is complete.
      const has = (k: string) => remote.get(k)?.ty === 'f';
      const digests = (k: string, size: number): boolean | Promise<boolean> => {
        if (listed || remote.has(k)) return has(k);
        if (size <= DIGEST_WITHOUT_ASKING) return true;
        return new Promise((resolve) => {
          const check = () => {
            if (!listed && !remote.has(k)) return;
            waiting.delete(check);
            resolve(has(k));
          };
          waiting.add(check);
        });
      };
      const [local] = await Promise.all([buildManifest(backings, t.zoneSize, undefined, this.ctx.excludes, digests), done]);
      if (this.session !== s) return;
      s.resync.remoteManifest = undefined;
      s.resync.manifestBatch = undefined;
      // from here the tracking describes every difference with the secondary's tree
      t.intact = true;
      s.resync.bytesTotal = diffManifests(local, remote, t);
      this.ctx.log.info({ local: local.length, remote: remote.size, toCopy: t.entries.size, bytes: s.resync.bytesTotal }, 'checksum comparison done');
      const id = randomUUID();
      t.baseline = id;
      t.changed = true;
      this.post(s, { t: 'base', id });
      s.phase = 'copying';
    } else if (s.resync.entries === 0 && s.resync.bytesDone === 0) {
      s.resync.bytesTotal = await estimate(t, backings);
      if (t.baseline === null) throw new Error('delta resync without a baseline');
      this.post(s, { t: 'base', id: t.baseline });
    }
    while (this.session === s && s.phase === 'copying') {
      // several entries in flight: small files are bound by round trips to the disk, not by bandwidth
      await Promise.all(Array.from({ length: COPIERS }, () => this.copyWorker(s)));
      if (this.session !== s || s.phase !== 'copying') return;
      if (!t.isEmpty()) {
        if (t.entries.size === 0) await new Promise<void>((r) => s.drained.push(r));
        continue;
      }
      // nothing left: the secondary is in sync once it has applied everything sent so far
      const baseline = t.baseline;
      if (baseline === null) throw new Error('resync finished without a baseline');
      const err = await this.acked(s, { t: 'synced', id: baseline });
      if (err === LOST) return;
      if (err !== undefined) throw new Error(`the secondary refused the end of the resync: ${err}`);
      if (this.session !== s || s.phase !== 'copying' || !t.isEmpty()) continue;
      s.phase = 'synced';
      this.failedPause = 0;
      const last: LastResync = { mode: s.resync.mode, bytesSent: s.resync.bytesDone, entries: s.resync.entries, durationMs: Date.now() - s.resync.t0 };
      this.ctx.resynced(last);
      await this.ctx.persist(true);
      this.ctx.log.info(last, 'secondary in sync: synchronous replication');
      this.ctx.emit({ type: 'synced' });
      return;
    }
  }

  /** copies tracked entries one after the other until none is left to take */
  private async copyWorker(s: Session): Promise<void> {
    const t = this.ctx.tracking;
    const backings = this.ctx.dirs.map((d) => d.backing);
    while (this.session === s && s.phase === 'copying') {
      await this.copyRoom(s);
      if (this.session !== s) return;
      const next = t.take();
      if (!next) return;
      const [k, d] = next;
      const chunk = copyChunk(this.ctx.window, this.ctx.throttle.rate);
      await copyEntry({
        tracking: t,
        backings,
        // a copy the secondary could not apply (its disk full, failing) is copied again, not taken as done
        send: (op, done) => this.post(s, op, { done, mark: () => (d.tree ? t.markTree(k) : t.markAll(k)) }, true),
        sent: (bytes) => (s.resync.bytesDone += bytes),
        room: () => this.copyRoom(s),
        alive: () => this.session === s,
        pace: (n) => this.ctx.throttle.take(n),
        chunk,
        buffer: () => this.chunkBuffer(chunk),
        excludes: this.ctx.excludes,
        finished: () => {
          if (this.session === s) t.done(k, d);
          for (const w of s.drained.splice(0)) w();
        },
        k,
        d,
      });
      s.resync.entries++;
      if (Date.now() - s.lastProgress > 1000) {
        s.lastProgress = Date.now();
        this.ctx.emit({ type: 'progress' });
      }
    }
  }

  /** closes the current connection; the connect loop starts a new session (and resync) */
  restartSession(reason: string): void {
    this.session?.ch.close(reason);
  }

  /** ends the role: what the applications already wrote may reach the secondary first (within send_timeout) */
  async leave(): Promise<void> {
    if (this.tickTimer) clearInterval(this.tickTimer);
    this.tickTimer = null;
    const s = this.session;
    if (!s) return;
    const deadline = Date.now() + this.ctx.sendTimeout;
    while (s.head < s.pending.length && Date.now() < deadline && !s.ch.closed) await sleep(10);
    this.session = null;
    this.endSession(s);
    s.ch.onClose = () => undefined;
    s.ch.close('role change');
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}
