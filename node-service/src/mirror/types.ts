import type { ModuleConfig } from '../config/index.ts';
import type { Secret } from '../config/secret.ts';
import type { KeyRing } from '../secure/keyring.ts';
import type { Logger } from '../log/logger.ts';
import type { Excludes } from './excludes.ts';
import type { Tracking } from './tracking.ts';

/** What the engine tells the daemon: the pair is in sync, the peer is lost, a resync progressed. */
export type MirrorEvent = { type: 'synced' } | { type: 'lost'; reason: string } | { type: 'progress' };

export interface ResyncStatus {
  bytesDone: number;
  bytesTotal: number;
  rateBps: number;
  etaS: number;
  mode: 'delta' | 'checksum';
}

export interface LastResync {
  mode: 'delta' | 'checksum';
  bytesSent: number;
  entries: number;
  durationMs: number;
}

export interface MirrorStatus {
  role: 'primary' | 'secondary' | 'stopped';
  peer: 'connected' | 'disconnected' | 'resyncing' | 'synced';
  resync?: ResyncStatus;
  /** file bytes the next resync would copy for what is tracked (whole files at their size, marked zones) */
  trackedBytes: number;
  /** replication.resync_bandwidth now in force, bytes per second (null: unlimited) */
  resyncBandwidth?: number | null;
  /** the last completed resync (primary side): how it was done and how many file bytes it sent */
  lastResync?: LastResync;
  /** the largest single write the view received (1 MiB when max_pages works) */
  largestWrite?: number;
  /** primary: bytes sent and not yet acknowledged by the secondary (bounded by replication.window) */
  unackedBytes?: number;
  /** primary: writers that waited for room in the window, since the role began */
  windowWaits?: number;
  /** primary: durability points (fsync, fdatasync, fsyncdir, O_SYNC/O_DSYNC writes) that waited for the secondary */
  remoteSyncs?: number;
  /** opens served with FUSE passthrough (reads bypass the daemon) since the view was mounted */
  passthroughOpens?: number;
}

export interface MirrorReplicator {
  prepare(): Promise<void>;
  /** fullSync: the next resync (or the one running now) compares checksums of both trees */
  becomePrimary(opts?: { fullSync?: boolean }): Promise<void>;
  becomeSecondary(opts?: { fullSync?: boolean; divergent?: boolean }): Promise<void>;
  /** remount: prepare() follows at once (a role change): the directory stays shielded meanwhile (fuse/device.ts shield) */
  stop(opts?: { remount?: boolean }): Promise<void>;
  status(): MirrorStatus;
  onEvent(cb: (e: MirrorEvent) => void): void;
  /**
   * the core's durableAlone (core/types.ts): while false, or once `until` (monotonic ms, clock.ts) has
   * passed, a durability point the secondary does not hold (no synced session) waits, and fails with EIO
   * if the primary role ends first
   */
  durableAlone(allowed: boolean, until: number): void;
  /** replication.resync_bandwidth changed while the module runs (bytes per second, null: unlimited) */
  setResyncBandwidth(bps: number | null): void;
  /** what verify and diff read: the tracking, the directories and what they leave out (read-only use) */
  inspect(): MirrorInspection;
}

export interface MirrorInspection {
  readonly tracking: Tracking;
  readonly dirs: readonly MirrorDir[];
  readonly excludes: Excludes;
  readonly status: MirrorStatus;
}

export interface MirrorReplicatorOptions {
  module: ModuleConfig;
  self: { name: string; addrs: readonly string[] };
  peer: { name: string; addrs: readonly string[] };
  secret: Secret;
  /** the daemon's live keys (secret_file and next_secret_file, reloadable); default: from `secret` */
  keys?: KeyRing;
  stateDir: string;
  log: Logger;
}

/** A replicated directory: where applications see it, and where its data lives. */
export interface MirrorDir {
  mount: string;
  backing: string;
}
