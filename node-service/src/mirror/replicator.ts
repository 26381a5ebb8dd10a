import { randomUUID } from 'node:crypto';
import { constants as C } from 'node:fs';
import * as fsp from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import type { ModuleConfig } from '../config/index.ts';
import type { Secret } from '../config/secret.ts';
import type { Logger } from '../log/logger.ts';
import { Applier } from './apply.ts';
import { allXattrs } from './fuse/libc.ts';
import { Channel, connectToSecondary, type SecondaryReport } from './channel.ts';
import { buildManifest, diffManifests, type Entry } from './manifest.ts';
import { abs } from './paths.ts';
import { encodeFrame, type Frame } from './protocol.ts';
import { key, splitKey, Tracking, type Dirt, type TrackingSnapshot } from './tracking.ts';
import { SecondaryRole } from './secondary.ts';
import { unmountStale } from './fuse/device.ts';
import { View, type Mutation, type ViewSink } from './view.ts';

export type MirrorEvent = { type: 'synced' } | { type: 'lost'; reason: string } | { type: 'progress' };

export interface ResyncStatus {
  bytesDone: number;
  bytesTotal: number;
  rateBps: number;
  etaS: number;
  mode: 'delta' | 'checksum';
}

export interface MirrorStatus {
  role: 'primary' | 'secondary' | 'stopped';
  peer: 'connected' | 'disconnected' | 'resyncing' | 'synced';
  resync?: ResyncStatus;
  trackedBytes: number;
  /** the last completed resync (primary side): how it was done and how many file bytes it sent */
  lastResync?: { mode: 'delta' | 'checksum'; bytesSent: number; entries: number; durationMs: number };
  /** the largest single write the view received (128 KiB when big_writes works) */
  largestWrite?: number;
}

export interface MirrorReplicator {
  prepare(): Promise<void>;
  /** fullSync: the next resync (or the one running now) compares checksums of both trees */
  becomePrimary(opts?: { fullSync?: boolean }): Promise<void>;
  becomeSecondary(opts?: { fullSync?: boolean; divergent?: boolean }): Promise<void>;
  stop(): Promise<void>;
  status(): MirrorStatus;
  onEvent(cb: (e: MirrorEvent) => void): void;
}

export interface MirrorReplicatorOptions {
  module: ModuleConfig;
  self: { name: string; addrs: readonly string[] };
  peer: { name: string; addrs: readonly string[] };
  secret: Secret;
  stateDir: string;
  log: Logger;
}

interface Persisted extends TrackingSnapshot {
  v: 1;
  lastRole: 'primary' | 'secondary' | null;
  running: boolean;
  stoppedAt: number | null;
  inResync: boolean;
}

interface Pending {
  resolve: () => void;
  t0: number;
  /** a live operation: what to mark in tracking if it is not acknowledged (or fails remotely) */
  mark?: () => void;
  bytes: number;
  onAck?: (err?: string) => void;
}

/** Primary side of one connection. */
interface Session {
  ch: Channel;
  report: SecondaryReport;
  phase: 'comparing' | 'copying' | 'synced';
  seq: number;
  pending: Map<number, Pending>;
  lastSend: number;
  resync: { mode: 'delta' | 'checksum'; bytesDone: number; bytesTotal: number; entries: number; t0: number; remoteManifest?: Map<string, Entry>; manifestDone?: () => void };
  inflightBytes: number;
  drained: (() => void)[];
}

const PERSIST_MS = 1000;
const RESYNC_WINDOW = 8 << 20;
const CHUNK = 1 << 20;

/**
 * The replication engine of one mirror module: FUSE views, the channel, tracking, resync.
 * Transitions (one method each): stopped → prepare → secondary ⇄ primary → stopped.
 */
export class Replicator implements MirrorReplicator, ViewSink {
  private readonly dirs: { mount: string; backing: string }[];
  private readonly views: View[];
  private readonly applier: Applier;
  private readonly tracking: Tracking;
  private readonly log: Logger;
  private readonly sendTimeout: number;
  private role: MirrorStatus['role'] = 'stopped';
  private prepared = false;
  private listeners: ((e: MirrorEvent) => void)[] = [];
  private persisted: Persisted;
  private stateFile: string;
  private persistTimer: NodeJS.Timeout | null = null;
  private lastResync: MirrorStatus['lastResync'];
  private generation = 0;
  private largestWrite = 0;

  // primary
  private session: Session | null = null;
  private tickTimer: NodeJS.Timeout | null = null;
  private secondary: SecondaryRole | null = null;

  constructor(private readonly opts: MirrorReplicatorOptions) {
    const rep = opts.module.replication;
    if (!rep) throw new Error(`module ${opts.module.name} has no replication section`);
    this.log = opts.log.child({ module: opts.module.name, component: 'mirror' });
    this.sendTimeout = rep.send_timeout;
    this.dirs = rep.dirs.map((mount) => ({ mount, backing: join(dirname(mount), `.${basename(mount)}.vigil-data`) }));
    this.views = this.dirs.map((d, i) => new View(i, d.mount, d.backing, this));
    this.applier = new Applier(this.dirs.map((d) => d.backing));
    this.tracking = new Tracking(rep.zone_size);
    this.stateFile = join(opts.stateDir, 'mirror-state.json');
    this.persisted = { v: 1, baseline: null, intact: true, entries: [], lastRole: null, running: false, stoppedAt: null, inResync: false };
  }

  onEvent(cb: (e: MirrorEvent) => void): void {
    this.listeners.push(cb);
  }

  private emit(e: MirrorEvent): void {
    for (const l of this.listeners) {
      try {
        l(e);
      } catch (err) {
        this.log.error({ err }, 'mirror event listener threw');
      }
    }
  }

  // ---------------------------------------------------------------- lifecycle

  async prepare(): Promise<void> {
    if (this.prepared) return;
    await fsp.mkdir(this.opts.stateDir, { recursive: true, mode: 0o700 });
    await this.load();
    for (const d of this.dirs) await this.setupBacking(d);
    await this.applier.init();
    if (this.persisted.running) {
      this.log.warn({ lastRole: this.persisted.lastRole }, 'previous stop was not clean');
      if (this.persisted.lastRole === 'primary') this.tracking.intact = false;
    } else if (this.persisted.stoppedAt !== null && (await this.changedSince(this.persisted.stoppedAt))) {
      this.log.warn('replicated data changed while Vigil was stopped: the next resync compares checksums');
      this.tracking.intact = false;
    }
    for (const v of this.views) await v.mount();
    this.persisted.running = true;
    await this.persist(true);
    this.persistTimer = setInterval(() => void this.persist(false).catch((err) => this.log.error({ err }, 'cannot persist mirror state')), PERSIST_MS);
    this.persistTimer.unref();
    this.prepared = true;
    this.log.info({ dirs: this.dirs, baseline: this.tracking.baseline, intact: this.tracking.intact, tracked: this.tracking.entries.size }, 'mirror prepared (views read-only)');
  }

  /** First start: the configured directory becomes the backing directory, so nothing is copied. */
  private async setupBacking(d: { mount: string; backing: string }): Promise<void> {
    await unmountStale(d.mount);
    const has = async (p: string) => fsp.lstat(p).then((s) => s, () => null);
    if (!(await has(d.backing))) {
      const orig = await has(d.mount);
      if (orig?.isDirectory()) {
        await fsp.rename(d.mount, d.backing);
        await fsp.mkdir(d.mount);
        await fsp.chmod(d.mount, orig.mode & 0o7777);
        await fsp.chown(d.mount, orig.uid, orig.gid);
        this.log.info({ dir: d.mount, backing: d.backing }, 'replicated directory moved aside (rename, no copy)');
      } else {
        await fsp.mkdir(d.backing, { recursive: true, mode: 0o755 });
        await fsp.mkdir(d.mount, { recursive: true, mode: 0o755 });
      }
    } else {
      await fsp.mkdir(d.mount, { recursive: true, mode: 0o755 });
    }
  }

  async becomePrimary(opts: { fullSync?: boolean } = {}): Promise<void> {
    if (!this.prepared) throw new Error('becomePrimary before prepare');
    if (opts.fullSync) {
      this.log.info('full resync requested: the trees are compared by checksum');
      this.tracking.intact = false;
      this.tracking.changed = true;
    }
    if (this.role === 'primary') {
      // reconnecting starts the resync over, now as a checksum comparison
      if (opts.fullSync) this.session?.ch.close('full resync requested by the operator');
      return;
    }
    const gen = ++this.generation;
    if (this.role === 'secondary') await this.leaveSecondary();
    if (this.persisted.inResync) {
      this.log.warn('taking over while a resync was incomplete: data may be partial; next resync compares checksums');
      this.tracking.intact = false;
      this.persisted.inResync = false;
    }
    this.role = 'primary';
    this.persisted.lastRole = 'primary';
    await this.persist(true);
    this.log.info({ baseline: this.tracking.baseline, tracked: this.tracking.entries.size }, 'became primary (view read-write, alone until the secondary syncs)');
    const tickMs = Math.max(20, Math.min(250, Math.floor(this.sendTimeout / 4)));
    this.tickTimer = setInterval(() => this.tick(), tickMs);
    void this.connectLoop(gen);
  }

  async becomeSecondary(opts: { fullSync?: boolean; divergent?: boolean } = {}): Promise<void> {
    if (!this.prepared) throw new Error('becomeSecondary before prepare');
    const gen = ++this.generation;
    if (this.role === 'primary') await this.leavePrimary();
    if (this.role === 'secondary') await this.leaveSecondary();
    this.role = 'secondary';
    this.applier.backupDir = opts.divergent ? join(this.opts.stateDir, `divergent-${new Date().toISOString().replace(/[:.]/g, '-')}`) : null;
    this.persisted.lastRole = 'secondary';
    await this.persist(true);
    this.log.info({ ...opts, baseline: this.tracking.baseline }, 'became secondary (view read-only), waiting for the primary');
    const role = new SecondaryRole(
      {
        opts: this.opts,
        log: this.log,
        tracking: this.tracking,
        applier: this.applier,
        backings: this.dirs.map((d) => d.backing),
        sendTimeout: this.sendTimeout,
        current: () => gen === this.generation && this.role === 'secondary',
        persist: (force) => this.persist(force),
        setInResync: (v) => (this.persisted.inResync = v),
        emit: (e) => this.emit(e),
      },
      opts,
    );
    this.secondary = role;
    void role.listen();
  }

  async stop(): Promise<void> {
    if (!this.prepared) return;
    this.generation++;
    if (this.role === 'primary') await this.leavePrimary();
    if (this.role === 'secondary') await this.leaveSecondary();
    this.role = 'stopped';
    if (this.persistTimer) clearInterval(this.persistTimer);
    this.persistTimer = null;
    for (const v of this.views) await v.unmount().catch((err) => this.log.error({ err }, 'unmount failed'));
    await this.applier.close();
    this.persisted.running = false;
    this.persisted.stoppedAt = Date.now();
    await this.persist(true);
    this.prepared = false;
    this.log.info('mirror stopped (state persisted, views unmounted)');
  }

  status(): MirrorStatus {
    const trackedBytes = this.tracking.zoneBytes() + [...this.tracking.entries.values()].filter((d) => d.all).length * this.tracking.zoneSize;
    const base = { role: this.role, trackedBytes, largestWrite: this.largestWrite, ...(this.lastResync ? { lastResync: this.lastResync } : {}) };
    if (this.role === 'primary') {
      const s = this.session;
      if (!s) return { ...base, peer: 'disconnected' };
      if (s.phase === 'synced') return { ...base, peer: 'synced' };
      const el = (Date.now() - s.resync.t0) / 1000;
      const rate = el > 0 ? s.resync.bytesDone / el : 0;
      const total = Math.max(s.resync.bytesTotal, s.resync.bytesDone);
      return { ...base, peer: 'resyncing', resync: { bytesDone: s.resync.bytesDone, bytesTotal: total, rateBps: Math.round(rate), etaS: rate > 0 ? Math.round((total - s.resync.bytesDone) / rate) : 0, mode: s.resync.mode } };
    }
    if (this.role === 'secondary') return { ...base, peer: this.secondary?.peer ?? 'disconnected' };
    return { ...base, peer: 'disconnected' };
  }

  // ---------------------------------------------------------------- persistence

  private async load(): Promise<void> {
    try {
      const p = JSON.parse(await fsp.readFile(this.stateFile, 'utf8')) as Persisted;
      if (p.v === 1) {
        this.persisted = p;
        this.tracking.restore(p);
      }
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'ENOENT') {
        this.log.warn({ err: e }, 'mirror state unreadable: tracking is not trusted');
        this.tracking.intact = false;
        this.persisted.running = true;
        this.persisted.lastRole = 'primary';
      }
    }
  }

  private persistChain: Promise<void> = Promise.resolve();

  /** writes the state file (tmp + rename); calls are serialised */
  private persist(force: boolean): Promise<void> {
    const run = this.persistChain.then(() => this.persistNow(force));
    this.persistChain = run.catch(() => undefined);
    return run;
  }

  private async persistNow(force: boolean): Promise<void> {
    if (!force && !this.tracking.changed) return;
    this.tracking.changed = false;
    const snap = this.tracking.snapshot();
    this.persisted = { ...this.persisted, ...snap };
    const tmp = `${this.stateFile}.tmp`;
    const fh = await fsp.open(tmp, 'w', 0o600);
    try {
      await fh.writeFile(JSON.stringify(this.persisted));
      if (force) await fh.sync();
    } finally {
      await fh.close();
    }
    await fsp.rename(tmp, this.stateFile);
  }

  /** true when any entry of the backing directories changed after t (edits while stopped) */
  private async changedSince(t: number): Promise<boolean> {
    for (const d of this.dirs) {
      const stack = [d.backing];
      while (stack.length) {
        const dir = stack.pop()!;
        let ents;
        try {
          ents = await fsp.readdir(dir, { withFileTypes: true });
        } catch {
          continue;
        }
        const st = await fsp.lstat(dir).catch(() => null);
        if (st && st.ctimeMs > t) return true;
        for (const e of ents) {
          const p = join(dir, e.name);
          if (e.isDirectory()) stack.push(p);
          else {
            const s = await fsp.lstat(p).catch(() => null);
            if (s && s.ctimeMs > t) return true;
          }
        }
      }
    }
    return false;
  }

  // ---------------------------------------------------------------- view sink (primary)

  writable(): boolean {
    return this.role === 'primary';
  }

  private markFor(dir: number, m: Mutation): void {
    const k = key(dir, m.p);
    const t = this.tracking;
    switch (m.t) {
      case 'write':
        t.markZones(k, m.o, m.data.length);
        break;
      case 'fallocate':
        t.markZones(k, m.o, m.l);
        break;
      case 'truncate':
        t.markTruncate(k, m.s);
        break;
      case 'rename':
        t.markAll(k);
        t.markTree(key(dir, m.t2));
        break;
      case 'fsync':
        break;
      case 'chmod':
      case 'chown':
      case 'utimens':
      case 'setxattr':
      case 'removexattr':
        t.markMeta(k);
        break;
      default:
        t.markAll(k);
    }
  }

  /** during a resync copy, a live change only needs marking when it touches what is still to copy */
  private concerns(dir: number, m: Mutation): boolean {
    const t = this.tracking;
    if (t.concerns(key(dir, m.p))) return true;
    if (m.t === 'rename' || m.t === 'link') {
      const from = key(dir, m.p);
      if (t.concerns(key(dir, m.t2))) return true;
      for (const k of [...t.entries.keys(), ...t.inflight.keys()]) if (k.startsWith(`${from}/`)) return true;
    }
    return false;
  }

  /** a live change as it goes on the wire: the header, and the bytes of a write or an xattr value */
  private frame(dir: number, m: Mutation): { h: Record<string, unknown>; data?: Buffer } {
    switch (m.t) {
      case 'write':
        return { h: { t: 'write', d: dir, p: m.p, o: m.o }, data: m.data };
      case 'setxattr':
        return { h: { t: 'setxattr', d: dir, p: m.p, n: m.n, fl: m.fl }, data: m.v };
      case 'rename':
      case 'link':
        return { h: { t: m.t, d: dir, p: m.p, to: m.t2 } };
      default: {
        const { t, ...rest } = m as Record<string, unknown>;
        return { h: { t, d: dir, ...rest } };
      }
    }
  }

  replicate(dir: number, m: Mutation): Promise<void> {
    if (this.role !== 'primary') return Promise.reject(Object.assign(new Error('read-only'), { errno: -30 }));
    if (m.t === 'write' && m.data.length > this.largestWrite) this.largestWrite = m.data.length;
    const s = this.session;
    if (!s || s.phase === 'comparing') {
      this.markFor(dir, m);
      return Promise.resolve();
    }
    if (s.phase === 'copying' && this.concerns(dir, m)) this.markFor(dir, m);
    const { h, data } = this.frame(dir, m);
    return this.send(s, h, data, { mark: () => this.markFor(dir, m) });
  }

  diverged(dir: number, m: Mutation): void {
    this.log.warn({ op: m.t, path: m.p }, 'a change sent to the secondary failed locally; the entry is copied again');
    this.recopy(this.session, () => this.markFor(dir, m));
  }

  /** marks an entry whose copies differ and, on an in-sync session, goes back to copying */
  private recopy(s: Session | null, mark: () => void): void {
    mark();
    if (s?.phase === 'synced') {
      s.phase = 'copying';
      void this.runResync(s).catch(() => undefined);
    }
  }

  async replicateFsync(dir: number, m: Mutation, local: Promise<void>): Promise<void> {
    const s = this.session;
    if (!s || s.phase === 'comparing' || this.role !== 'primary') return local;
    await Promise.all([local, this.send(s, this.frame(dir, m).h, undefined, {})]);
  }

  private send(s: Session, h: Record<string, unknown>, data: Buffer | undefined, p: Partial<Pending>): Promise<void> {
    const seq = ++s.seq;
    h.q = seq;
    // encodeFrame copies data: the kernel's write buffer may be reused as soon as the view answers
    const buf = encodeFrame(h, data);
    return new Promise<void>((resolve) => {
      const bytes = data?.length ?? 0;
      s.pending.set(seq, { resolve, t0: Date.now(), bytes, ...p });
      s.lastSend = Date.now();
      s.ch.send(buf);
    });
  }

  // ---------------------------------------------------------------- primary: connection, resync, stream

  private async connectLoop(gen: number): Promise<void> {
    const port = this.opts.module.ports.replication;
    let warned = false;
    while (gen === this.generation && this.role === 'primary') {
      if (!this.session) {
        try {
          const { ch, report } = await connectToSecondary({ addrs: this.opts.peer.addrs, port, key: this.opts.secret.key, module: this.opts.module.name, node: this.opts.self.name });
          if (gen !== this.generation || this.role !== 'primary') {
            ch.close('role changed');
            return;
          }
          warned = false;
          this.startSession(ch, report);
        } catch (e) {
          if (!warned) this.log.info({ reason: (e as Error).message }, 'secondary not reachable; alone, changes tracked');
          warned = true;
        }
      }
      await sleep(this.session ? 200 : 500);
    }
  }

  private startSession(ch: Channel, report: SecondaryReport): void {
    const t = this.tracking;
    const delta = report.id !== null && report.id === t.baseline && report.clean && t.intact && !report.full && !report.div;
    const s: Session = {
      ch,
      report,
      phase: delta ? 'copying' : 'comparing',
      seq: 0,
      pending: new Map(),
      lastSend: Date.now(),
      resync: { mode: delta ? 'delta' : 'checksum', bytesDone: 0, bytesTotal: 0, entries: 0, t0: Date.now() },
      inflightBytes: 0,
      drained: [],
    };
    this.session = s;
    ch.onClose = (reason) => this.lostSession(s, reason);
    ch.start((f) => this.onPrimaryFrame(s, f));
    this.log.info({ peer: report.node, mode: s.resync.mode, secondaryId: report.id, baseline: t.baseline, intact: t.intact, clean: report.clean, fullSync: report.full, divergent: report.div }, `connected to secondary, ${s.resync.mode} resync`);
    void this.runResync(s).catch((err) => {
      if (this.session === s) ch.close(`resync failed: ${(err as Error).message}`);
    });
  }

  private onPrimaryFrame(s: Session, f: Frame): void {
    const h = f.h;
    if (h.t === 'ack' && typeof h.q === 'number') {
      const errs = new Map<number, string>();
      if (Array.isArray(h.e)) for (const x of h.e) if (Array.isArray(x)) errs.set(Number(x[0]), String(x[1]));
      for (const [seq, p] of s.pending) {
        if (seq > h.q) break;
        s.pending.delete(seq);
        const err = errs.get(seq);
        if (err !== undefined && p.mark) {
          // the secondary could not apply a live change: copy that entry again
          this.log.warn({ seq, err }, 'secondary failed to apply a change; the entry is copied again');
          this.recopy(s, p.mark);
        }
        p.onAck?.(err);
        p.resolve();
      }
      return;
    }
    if (h.t === 'manifest' && s.resync.remoteManifest) {
      const list = h.e;
      if (Array.isArray(list)) for (const e of list as Entry[]) if (e && typeof e.k === 'string') s.resync.remoteManifest.set(e.k, e);
      if (h.end === true) s.resync.manifestDone?.();
      return;
    }
    s.ch.close(`unexpected frame ${String(h.t)} from the secondary`);
  }

  private tick(): void {
    const s = this.session;
    if (!s) return;
    const now = Date.now();
    const first = s.pending.values().next();
    if (!first.done && now - first.value.t0 > this.sendTimeout) {
      s.ch.close(`secondary did not acknowledge within ${this.sendTimeout} ms`);
      return;
    }
    if (now - s.lastSend > Math.min(500, this.sendTimeout / 4)) void this.send(s, { t: 'nop' }, undefined, {});
  }

  private lostSession(s: Session, reason: string): void {
    if (this.session !== s) return;
    this.session = null;
    const wasSynced = s.phase === 'synced';
    this.tracking.requeueInflight();
    for (const p of s.pending.values()) {
      p.mark?.();
      p.resolve();
    }
    s.pending.clear();
    for (const d of s.drained.splice(0)) d();
    if (s.resync.manifestDone) s.resync.manifestDone();
    this.log.warn({ reason, wasSynced }, 'replication to the secondary lost: alone, changes tracked');
    void this.persist(true).catch(() => undefined);
    this.emit({ type: 'lost', reason });
  }

  private async runResync(s: Session): Promise<void> {
    const t = this.tracking;
    if (s.phase === 'comparing') {
      const remote = new Map<string, Entry>();
      const done = new Promise<void>((resolve) => {
        s.resync.remoteManifest = remote;
        s.resync.manifestDone = resolve;
      });
      s.ch.sendFrame({ t: 'manifest-req' });
      const [local] = await Promise.all([buildManifest(this.dirs.map((d) => d.backing), t.zoneSize), done]);
      if (this.session !== s) return;
      s.resync.remoteManifest = undefined;
      // from here the tracking describes every difference with the secondary's tree
      t.intact = true;
      s.resync.bytesTotal = diffManifests(local, remote, t);
      this.log.info({ local: local.length, remote: remote.size, toCopy: t.entries.size, bytes: s.resync.bytesTotal }, 'checksum comparison done');
      const id = randomUUID();
      t.baseline = id;
      t.changed = true;
      void this.send(s, { t: 'base', id }, undefined, {});
      s.phase = 'copying';
    } else if (s.resync.entries === 0 && s.resync.bytesDone === 0) {
      s.resync.bytesTotal = await this.estimate();
      void this.send(s, { t: 'base', id: t.baseline }, undefined, {});
    }
    let lastProgress = Date.now();
    while (this.session === s && s.phase === 'copying') {
      if (s.inflightBytes > RESYNC_WINDOW) {
        await new Promise<void>((r) => s.drained.push(r));
        continue;
      }
      const next = t.take();
      if (!next) {
        if (t.inflight.size > 0) {
          await new Promise<void>((r) => s.drained.push(r));
          continue;
        }
        // nothing left: the secondary is in sync once it has applied everything sent so far
        await this.send(s, { t: 'synced', id: t.baseline }, undefined, {});
        if (this.session !== s || s.phase !== 'copying' || !t.isEmpty()) continue;
        s.phase = 'synced';
        this.lastResync = { mode: s.resync.mode, bytesSent: s.resync.bytesDone, entries: s.resync.entries, durationMs: Date.now() - s.resync.t0 };
        await this.persist(true);
        this.log.info(this.lastResync, 'secondary in sync: synchronous replication');
        this.emit({ type: 'synced' });
        return;
      }
      await this.copyEntry(s, next[0], next[1]);
      s.resync.entries++;
      if (Date.now() - lastProgress > 1000) {
        lastProgress = Date.now();
        this.emit({ type: 'progress' });
      }
    }
  }

  private async estimate(): Promise<number> {
    let n = this.tracking.zoneBytes();
    if (this.tracking.entries.size > 200_000) return n;
    for (const [k, d] of this.tracking.entries) {
      if (!d.all) continue;
      const { dir, rel } = splitKey(k);
      const st = await fsp.lstat(abs(this.dirs[dir].backing, rel)).catch(() => null);
      if (st?.isFile()) n += st.size;
    }
    return n;
  }

  /** Makes the secondary's copy of one entry equal to the primary's current one. */
  private async copyEntry(s: Session, k: string, d: Dirt): Promise<void> {
    const { dir, rel } = splitKey(k);
    const p = abs(this.dirs[dir].backing, rel);
    const frames: Promise<void>[] = [];
    const out = (h: Record<string, unknown>, data?: Buffer) => {
      const bytes = data?.length ?? 0;
      s.inflightBytes += bytes;
      frames.push(
        this.send(s, { d: dir, p: rel, ...h }, data, {
          onAck: () => {
            s.inflightBytes -= bytes;
            if (s.inflightBytes <= RESYNC_WINDOW) for (const w of s.drained.splice(0)) w();
          },
        }),
      );
    };
    let st;
    try {
      // nanosecond times for the meta frame; sizes and ids fit a number
      st = await fsp.lstat(p, { bigint: true });
    } catch {
      if (rel !== '') out({ t: 'remove' });
      return this.finishEntry(s, k, d, frames);
    }
    const size = Number(st.size);
    const ty = st.isFile() ? 'f' : st.isDirectory() ? 'd' : st.isSymbolicLink() ? 'l' : null;
    if (!ty) return this.finishEntry(s, k, d, frames);
    if (d.tree && rel !== '') out({ t: 'remove' });
    const tg = ty === 'l' ? await fsp.readlink(p).catch(() => '') : undefined;
    out({ t: 'ensure', ty, m: Number(st.mode) & 0o7777, u: Number(st.uid), g: Number(st.gid), s: ty === 'f' ? size : 0, ...(tg !== undefined ? { tg } : {}) });
    if (ty === 'f') {
      const zs = this.tracking.zoneSize;
      const nz = Math.ceil(size / zs);
      let zones: number[];
      if (d.all || d.tree) zones = Array.from({ length: nz }, (_, i) => i);
      else {
        const set = new Set([...(d.zones ?? [])].filter((z) => z < nz));
        if (d.from !== undefined) for (let z = Math.floor(d.from / zs); z < nz; z++) set.add(z);
        zones = [...set].sort((a, b) => a - b);
      }
      if (zones.length) {
        let fh;
        try {
          fh = await fsp.open(p, C.O_RDONLY | C.O_NOFOLLOW);
        } catch {
          zones = [];
        }
        try {
          for (const z of zones) {
            for (let off = z * zs; off < Math.min((z + 1) * zs, size); off += CHUNK) {
              const len = Math.min(CHUNK, (z + 1) * zs - off);
              const buf = Buffer.allocUnsafe(len);
              const { bytesRead } = await fh!.read(buf, 0, len, off);
              if (bytesRead === 0) break;
              out({ t: 'data', o: off }, buf.subarray(0, bytesRead));
              s.resync.bytesDone += bytesRead;
              if (s.inflightBytes > RESYNC_WINDOW) await new Promise<void>((r) => s.drained.push(r));
              if (this.session !== s) return;
            }
          }
        } finally {
          await fh?.close();
        }
      }
    }
    if (ty === 'd' && d.tree) {
      const names = await fsp.readdir(p).catch(() => [] as string[]);
      for (const n of names) this.tracking.markTree(key(dir, rel === '' ? n : `${rel}/${n}`));
    }
    const x = ty === 'l' ? {} : Object.fromEntries(Object.entries(allXattrs(p)).map(([n, v]) => [n, v.toString('base64')]));
    out({ t: 'meta', a: String(st.atimeNs), mt: String(st.mtimeNs), x });
    return this.finishEntry(s, k, d, frames);
  }

  private finishEntry(s: Session, k: string, d: Dirt, frames: Promise<void>[]): void {
    const last = frames[frames.length - 1];
    if (!last) {
      this.tracking.done(k, d);
      return;
    }
    void last.then(() => {
      if (this.session === s) this.tracking.done(k, d);
      for (const w of s.drained.splice(0)) w();
    });
  }

  private async leaveSecondary(): Promise<void> {
    await this.secondary?.leave();
    this.secondary = null;
    await this.applier.close();
    this.role = 'stopped';
    await this.persist(true);
  }

  private async leavePrimary(): Promise<void> {
    if (this.tickTimer) clearInterval(this.tickTimer);
    this.tickTimer = null;
    const s = this.session;
    if (s) {
      // let what the application already wrote reach the secondary before closing
      const deadline = Date.now() + this.sendTimeout;
      while (s.pending.size > 0 && Date.now() < deadline && !s.ch.closed) await sleep(10);
      this.session = null;
      this.tracking.requeueInflight();
      for (const p of s.pending.values()) {
        p.mark?.();
        p.resolve();
      }
      s.ch.onClose = () => undefined;
      s.ch.close('role change');
    }
    this.role = 'stopped';
    await this.persist(true);
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}
