import * as fsp from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import type { Logger } from '../log/logger.ts';
import { writeFileAtomicAsync } from '../persist/atomic-file.ts';
import { dirPath } from '../config/schema.ts';
import { Applier } from './apply.ts';
import { estimate, estimateNow } from './copy.ts';
import { Excludes } from './excludes.ts';
import { unmountStale } from './fuse/device.ts';
import type { FsyncOp, Op, PathOp } from './ops.ts';
import { PrimaryRole } from './primary.ts';
import { SecondaryRole } from './secondary.ts';
import { Throttle } from './throttle.ts';
import { key, Tracking, type TrackingSnapshot } from './tracking.ts';
import type { LastResync, MirrorDir, MirrorEvent, MirrorInspection, MirrorReplicator, MirrorReplicatorOptions, MirrorStatus } from './types.ts';
import { View, type ViewSink } from './view.ts';
import { AloneGate } from './alone-gate.ts';

/** `<stateDir>/mirror-state.json`: what a restart needs to know (see README.md in this folder) */
interface Persisted extends TrackingSnapshot {
  v: 1;
  lastRole: 'primary' | 'secondary' | null;
  running: boolean;
  stoppedAt: number | null;
  inResync: boolean;
}

const PERSIST_MS = 1000;
const RESOLVED = Promise.resolve();

/**
 * The replication engine of one mirror module: the FUSE views, the tracking and its persistence, and
 * the switch between roles. What each role does lives in `PrimaryRole` and `SecondaryRole`.
 * Transitions (one method each): stopped → prepare → secondary ⇄ primary → stopped.
 */
export class Replicator implements MirrorReplicator, ViewSink {
  private readonly dirs: MirrorDir[];
  private readonly views: View[];
  private readonly applier: Applier;
  private readonly tracking: Tracking;
  private readonly excludes: Excludes;
  private readonly throttle: Throttle;
  /** status() is polled: a large tracking's bytes (a stat per tracked file) are counted in the background, at most once a second */
  private trackedBytes = { at: 0, n: 0, counting: false };
  private readonly log: Logger;
  private readonly sendTimeout: number;
  private role: MirrorStatus['role'] = 'stopped';
  private prepared = false;
  private listeners: ((e: MirrorEvent) => void)[] = [];
  private persisted: Persisted;
  private readonly stateFile: string;
  private persistTimer: NodeJS.Timeout | null = null;
  private lastResync: LastResync | undefined;
  private generation = 0;
  private largestWrite = 0;
  private primary: PrimaryRole | null = null;
  /** the core's durableAlone, and the durability points waiting for it */
  private readonly alone = new AloneGate();
  private secondary: SecondaryRole | null = null;

  constructor(private readonly opts: MirrorReplicatorOptions) {
    const rep = opts.module.replication;
    if (!rep) throw new Error(`module ${opts.module.name} has no replication section`);
    this.log = opts.log.child({ module: opts.module.name, component: 'mirror' });
    this.sendTimeout = rep.send_timeout;
    this.dirs = rep.dirs.map(dirPath).map((mount) => ({ mount, backing: join(dirname(mount), `.${basename(mount)}.vigil-data`) }));
    this.excludes = new Excludes(this.dirs.map((d, i) => ({ backing: d.backing, spec: rep.dirs[i] })));
    this.throttle = new Throttle(rep.resync_bandwidth ?? null);
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
      // a crashed primary may have changes it never tracked; a crashed secondary (or its host) may
      // have lost applied changes that were not yet synced: either way only a comparison is safe
      this.log.warn({ lastRole: this.persisted.lastRole }, 'previous stop was not clean: the next resync compares checksums');
      this.tracking.intact = false;
    } else if (this.persisted.stoppedAt !== null && (await this.changedSince(this.persisted.stoppedAt))) {
      this.log.warn('replicated data changed while Vigil was stopped: the next resync compares checksums');
      this.tracking.intact = false;
    }
    for (const v of this.views) await v.mount();
    this.persisted.running = true;
    await this.persist(true);
    this.persistTimer = setInterval(() => this.persist(false).catch((err) => this.log.error({ err }, 'cannot persist mirror state')), PERSIST_MS);
    this.persistTimer.unref();
    this.prepared = true;
    this.log.info({ dirs: this.dirs, baseline: this.tracking.baseline, intact: this.tracking.intact, tracked: this.tracking.entries.size }, 'mirror prepared (views read-only)');
  }

  /** First start: the configured directory becomes the backing directory, so nothing is copied. */
  private async setupBacking(d: MirrorDir): Promise<void> {
    await unmountStale(d.mount);
    const has = async (p: string) =>
      fsp.lstat(p).catch((e: NodeJS.ErrnoException) => {
        if (e.code === 'ENOENT') return null;
        throw e;
      });
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
      if (opts.fullSync) this.primary?.restartSession('full resync requested by the operator');
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
    for (const v of this.views) v.roleChanged();
    this.persisted.lastRole = 'primary';
    await this.persist(true);
    const rep = this.opts.module.replication!;
    this.log.info({ baseline: this.tracking.baseline, tracked: this.tracking.entries.size, ack: rep.ack, window: rep.window }, 'became primary (view read-write, alone until the secondary syncs)');
    this.primary = new PrimaryRole({
      opts: this.opts,
      log: this.log,
      tracking: this.tracking,
      dirs: this.dirs,
      sendTimeout: this.sendTimeout,
      ack: rep.ack,
      window: rep.window,
      throttle: this.throttle,
      excludes: this.excludes,
      current: () => gen === this.generation && this.role === 'primary',
      persist: (force) => this.persist(force),
      emit: (e) => this.emit(e),
      resynced: (r) => (this.lastResync = r),
    });
    this.primary.start();
  }

  async becomeSecondary(opts: { fullSync?: boolean; divergent?: boolean } = {}): Promise<void> {
    if (!this.prepared) throw new Error('becomeSecondary before prepare');
    const gen = ++this.generation;
    if (this.role === 'primary') await this.leavePrimary();
    if (this.role === 'secondary') await this.leaveSecondary();
    this.role = 'secondary';
    for (const v of this.views) v.roleChanged();
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
        excludes: this.excludes,
        sendTimeout: this.sendTimeout,
        current: () => gen === this.generation && this.role === 'secondary',
        persist: (force) => this.persist(force),
        setInResync: (v) => (this.persisted.inResync = v),
        emit: (e) => this.emit(e),
      },
      opts,
    );
    this.secondary = role;
    role.listen().catch((err) => this.log.error({ err }, 'replication listener failed; not accepting the primary until the next role change'));
  }

  async stop(opts: { remount?: boolean } = {}): Promise<void> {
    if (!this.prepared) return;
    this.generation++;
    if (this.role === 'primary') await this.leavePrimary();
    if (this.role === 'secondary') await this.leaveSecondary();
    this.role = 'stopped';
    if (this.persistTimer) clearInterval(this.persistTimer);
    this.persistTimer = null;
    for (const v of this.views) await v.unmount(opts.remount).catch((err) => this.log.error({ err, dir: v.mountpoint }, 'unmount failed'));
    await this.applier.close();
    this.persisted.running = false;
    this.persisted.stoppedAt = Date.now();
    await this.persist(true);
    this.prepared = false;
    this.log.info('mirror stopped (state persisted, views unmounted)');
  }

  status(): MirrorStatus {
    this.countTracked();
    const passthroughOpens = this.views.reduce((n, v) => n + v.passthroughOpens, 0);
    const base = { role: this.role, trackedBytes: this.trackedBytes.n, resyncBandwidth: this.throttle.rate, largestWrite: this.largestWrite, passthroughOpens, ...(this.lastResync ? { lastResync: this.lastResync } : {}) };
    if (this.role === 'primary' && this.primary) return { ...base, ...this.primary.status() };
    if (this.role === 'secondary') return { ...base, peer: this.secondary?.peer ?? 'disconnected' };
    return { ...base, peer: 'disconnected' };
  }

  private countTracked(): void {
    const c = this.trackedBytes;
    if (c.counting || Date.now() - c.at < 1000) return;
    const now = estimateNow(this.tracking, this.dirs.map((d) => d.backing));
    if (now !== undefined) {
      this.trackedBytes = { at: 0, n: now, counting: false }; // cheap: counted again at the next call
      return;
    }
    c.counting = true;
    estimate(this.tracking, this.dirs.map((d) => d.backing)).then(
      (n) => (this.trackedBytes = { at: Date.now(), n, counting: false }),
      (err) => {
        this.log.warn({ err }, 'cannot count the tracked bytes');
        this.trackedBytes = { ...c, at: Date.now(), counting: false };
      },
    );
  }

  /** replication.resync_bandwidth, changed live: the resync running now (and every later one) goes at this pace */
  setResyncBandwidth(bps: number | null): void {
    this.throttle.set(bps);
    this.log.info({ bps }, bps === null ? 'resync bandwidth: unlimited' : 'resync bandwidth changed');
  }

  inspect(): MirrorInspection {
    return { tracking: this.tracking, dirs: this.dirs, excludes: this.excludes, status: this.status() };
  }

  // ---------------------------------------------------------------- persistence

  private async load(): Promise<void> {
    let text: string;
    try {
      text = await fsp.readFile(this.stateFile, 'utf8');
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return;
      throw e;
    }
    try {
      const p = JSON.parse(text) as Persisted;
      if (p.v !== 1) throw new Error(`unknown version ${String(p.v)}`);
      this.persisted = p;
      this.tracking.restore(p);
    } catch (e) {
      this.log.warn({ err: e, file: this.stateFile }, 'mirror state unreadable: tracking is not trusted, the next resync compares checksums');
      this.tracking.intact = false;
      this.persisted.running = true;
      this.persisted.lastRole = 'primary';
    }
  }

  private persistChain: Promise<void> = Promise.resolve();

  /**
   * Writes the state file (temporary file, fsync, rename, directory fsync: after a crash it is the old
   * or the new one, whole). Calls are serialised; `force` writes even when the tracking did not change.
   */
  private persist(force: boolean): Promise<void> {
    const run = this.persistChain.then(() => this.persistNow(force));
    // the chain goes on after a failure; the caller of that write gets (and reports) the error
    this.persistChain = run.then(
      () => undefined,
      () => undefined,
    );
    return run;
  }

  private async persistNow(force: boolean): Promise<void> {
    if (!force && !this.tracking.changed) return;
    this.tracking.changed = false;
    this.persisted = { ...this.persisted, ...this.tracking.snapshot() };
    try {
      await writeFileAtomicAsync(this.stateFile, JSON.stringify(this.persisted));
    } catch (e) {
      this.tracking.changed = true;
      throw e;
    }
  }

  /** true when any entry of the backing directories changed after t (edits while stopped) */
  private async changedSince(t: number): Promise<boolean> {
    for (const d of this.dirs) {
      const stack = [d.backing];
      while (stack.length) {
        const dir = stack.pop()!;
        const st = await fsp.lstat(dir);
        if (st.ctimeMs > t) return true;
        for (const e of await fsp.readdir(dir, { withFileTypes: true })) {
          const p = join(dir, e.name);
          if (e.isDirectory()) stack.push(p);
          else if ((await fsp.lstat(p)).ctimeMs > t) return true;
        }
      }
    }
    return false;
  }

  // ---------------------------------------------------------------- view sink

  writable(): boolean {
    return this.role === 'primary';
  }

  replicate(_dir: number, op: PathOp): Promise<void> {
    if (this.role !== 'primary' || !this.primary) return Promise.reject(Object.assign(new Error('read-only'), { errno: -30 }));
    if (op.t === 'write' && op.data.length > this.largestWrite) this.largestWrite = op.data.length;
    // ack: write makes every change a durability point
    const durable = (p: Promise<void>) => (this.opts.module.replication!.ack === 'write' ? p.then(() => this.heldAlone()) : p);
    if (this.excludes.none) return durable(this.primary.replicate(op));
    // what the module leaves out never reaches the secondary; a rename across the boundary is turned into what it needs
    const change = this.excludes.live(op);
    const sent = change.op ? this.primary.replicate(change.op) : RESOLVED;
    if (change.copy !== undefined) this.primary.copyAgain(key(op.d, change.copy));
    return durable(sent);
  }

  replicateFsync(_dir: number, op: FsyncOp, local: () => Promise<void>): Promise<void> {
    if (this.role !== 'primary' || !this.primary || this.excludes.skips(op.d, op.p)) return local();
    return this.primary.replicateFsync(op, local).then(() => this.heldAlone());
  }

  durableAlone(allowed: boolean, until: number): void {
    this.alone.set(allowed, until);
  }

  /**
   * A durability point done here: it may be answered when the secondary holds it too (a synced session:
   * acknowledged, or copied by the resync that synced it) or when the core allows answering alone.
   */
  private heldAlone(): Promise<void> {
    return this.alone.pass(this.primary?.status().peer === 'synced');
  }

  diverged(_dir: number, op: PathOp): void {
    this.primary?.diverged(op);
  }

  // ---------------------------------------------------------------- leaving a role

  private async leaveSecondary(): Promise<void> {
    await this.secondary?.leave();
    this.secondary = null;
    await this.applier.close();
    this.role = 'stopped';
    await this.persist(true);
  }

  private async leavePrimary(): Promise<void> {
    // never acknowledged: the application's fsync fails (EIO) rather than claim a durability we lost the right to
    this.alone.fail();
    await this.primary?.leave();
    this.primary = null;
    this.role = 'stopped';
    await this.persist(true);
  }
}
