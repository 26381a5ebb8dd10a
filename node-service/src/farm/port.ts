/**
 * FarmEdge: the daemon's farm port (daemon/ports.ts FarmPort) on top of FarmFilter and the pure plan
 * functions. It turns "the UP members are now X" into the right sequence of filter applies:
 * release at once, take over from live nodes only after a grace, re-plan when membership changes in
 * between (latest membership wins; applies never overlap).
 */
import { readFileSync } from 'node:fs';
import type { ModuleConfig } from '../config/index.ts';
import type { FarmPort } from '../daemon/ports.ts';
import type { Logger } from '../log/logger.ts';
import { FarmFilter } from './filter.ts';
import { planTransition, type BucketPlan } from './plan.ts';

export interface FarmEdgeOptions {
  readonly module: ModuleConfig;
  readonly self: string;
  readonly log: Logger;
  /** @default a FarmFilter for the module */
  readonly filter?: FarmFilter;
  /** wait between releasing and taking over buckets from live nodes; @default max(800 ms, 2 heartbeat pulses) */
  readonly graceMs?: number;
  /** whether the VIP interfaces have a link; @default reads /sys/class/net/IF/carrier */
  readonly carrier?: () => boolean;
}

export class FarmEdge implements FarmPort {
  readonly filter: FarmFilter;
  private readonly module: ModuleConfig;
  private readonly self: string;
  private readonly log: Logger;
  private readonly graceMs: number;
  private joined = false;
  private prev: BucketPlan | null = null;
  private desired: readonly string[] = [];
  private worker: Promise<void> | undefined;
  private dirty = false;
  /** whether the VIP interfaces have a link: reported to the core, which decides (core/farm-step.ts) */
  readonly carrier: () => boolean;

  constructor(opts: FarmEdgeOptions) {
    this.module = opts.module;
    this.self = opts.self;
    this.log = opts.log.child({ component: 'farm' });
    this.filter = opts.filter ?? new FarmFilter({ module: opts.module, self: opts.self, log: opts.log });
    // A client SYN dropped during the grace is retransmitted after 1 s anyway, so any grace below
    // that costs the same; a long one covers the skew between nodes hearing each other under load.
    this.graceMs = opts.graceMs ?? Math.max(800, 2 * opts.module.heartbeat.pulse);
    const ifaces = [...new Set(opts.module.vip.map((v) => v.interface))];
    this.carrier = opts.carrier ?? (() => ifaces.every((i) => {
      try { return readFileSync(`/sys/class/net/${i}/carrier`, 'utf8').trim() === '1'; } catch { return true; }
    }));
  }

  removeLeftovers(): Promise<void> {
    return this.filter.remove();
  }

  /** entering the farm: VIP and filter installed, owning nothing until membership() includes self */
  async join(): Promise<void> {
    await this.settle();
    await this.filter.install();
    this.prev = null;
    this.joined = true;
    this.kick();
    await this.settle();
  }

  /** leaving the farm (STOP/WAIT): VIP and filter removed; the others take the buckets when they see it */
  async leave(): Promise<void> {
    this.joined = false;
    await this.settle();
    await this.filter.remove();
    this.prev = null;
  }

  async membership(alive: readonly string[]): Promise<void> {
    this.desired = alive.filter((n) => this.module.nodes.includes(n));
    this.kick();
    await this.settle();
  }

  status(): { buckets?: Record<string, number[]> } | undefined {
    if (!this.prev) return undefined;
    const buckets: Record<string, number[]> = {};
    this.prev.owners.forEach((o, b) => { if (o !== null) (buckets[o] ??= []).push(b); });
    return { buckets };
  }

  private kick(): void {
    this.dirty = true;
    if (!this.worker) this.worker = this.run().finally(() => { this.worker = undefined; });
  }

  private async settle(): Promise<void> {
    while (this.worker) await this.worker;
  }

  private async run(): Promise<void> {
    while (this.dirty && this.joined) {
      this.dirty = false;
      const alive = new Set(this.desired);
      if (this.prev === null && !alive.has(this.self)) continue; // just installed: already owns nothing
      const t = planTransition({ nodes: this.module.nodes, power: this.module.farm?.power ?? {}, alive, self: this.self, prev: this.prev });
      if (!t.handover && this.prev && samePlan(this.prev, t.next)) continue; // nothing changed
      try {
        if (t.handover) {
          await this.filter.apply(t.handover);
          this.prev = t.handover;
          await new Promise((r) => setTimeout(r, this.graceMs));
          if (this.dirty) continue; // membership changed during the grace: re-plan from the handover
        }
        await this.filter.apply(t.next);
        this.prev = t.next;
      } catch (e) {
        this.log.error({ err: (e as Error).message }, 'farm filter update failed');
        throw e;
      }
    }
  }
}

function samePlan(a: BucketPlan, b: BucketPlan): boolean {
  return a.responder === b.responder && a.owners.every((o, i) => o === b.owners[i]);
}
