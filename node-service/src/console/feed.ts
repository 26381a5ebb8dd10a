import type { LogRecord, ModuleRunner, ModuleStatus } from '../daemon/module-runner.ts';

/** What one node says about itself: the unit the console shows per node, and what peers relay. */
export interface NodeSnapshot {
  readonly node: string;
  readonly cluster: string;
  readonly modules: readonly ModuleStatus[];
  /** per module: virtual IPs from the config (who holds them follows from the states) */
  readonly vips: Readonly<Record<string, readonly string[]>>;
  /** per module: the configured checkers' names (a checker reports only its changes: absent from a status means no failure yet) */
  readonly checkers: Readonly<Record<string, readonly string[]>>;
  /** per module: the most recent transitions, script runs and notes, oldest first */
  readonly logs: Readonly<Record<string, readonly LogRecord[]>>;
}

export const FEED_EVERY_MS = 200;
const LOG_TAIL = 40;

/**
 * This node's snapshot, sampled every FEED_EVERY_MS while someone watches and passed on only when it
 * changed. Sampling the runners in-process costs nothing measurable and keeps the module runner free
 * of console code; a state change reaches a watcher within one period.
 */
export class NodeFeed {
  private readonly watchers = new Set<(s: NodeSnapshot) => void>();
  private timer?: NodeJS.Timeout;
  private last = '';
  private current?: NodeSnapshot;

  constructor(
    private readonly node: string,
    private readonly cluster: string,
    private readonly runners: ReadonlyMap<string, ModuleRunner>,
    private readonly vips: Readonly<Record<string, readonly string[]>>,
    private readonly checkers: Readonly<Record<string, readonly string[]>>,
  ) {}

  snapshot(): NodeSnapshot {
    const modules = [...this.runners.values()].map((r) => r.status());
    const logs = Object.fromEntries([...this.runners].map(([m, r]) => [m, r.events.recent(LOG_TAIL)]));
    return { node: this.node, cluster: this.cluster, modules, vips: this.vips, checkers: this.checkers, logs };
  }

  /** calls `cb` at once with the current snapshot, then on every change; returns the unsubscribe */
  watch(cb: (s: NodeSnapshot) => void): () => void {
    if (!this.current) {
      this.current = this.snapshot();
      this.last = JSON.stringify(this.current);
    }
    this.watchers.add(cb);
    cb(this.current);
    this.timer ??= setInterval(() => this.sample(), FEED_EVERY_MS);
    return () => {
      this.watchers.delete(cb);
      if (this.watchers.size === 0) {
        clearInterval(this.timer);
        this.timer = undefined;
        this.current = undefined;
        this.last = '';
      }
    };
  }

  private sample(): NodeSnapshot {
    const s = this.snapshot();
    const text = JSON.stringify(s);
    if (text !== this.last) {
      this.last = text;
      this.current = s;
      for (const w of this.watchers) w(s);
    }
    return s;
  }
}
