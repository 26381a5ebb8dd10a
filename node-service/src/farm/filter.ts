/**
 * FarmFilter: the edge adapter that makes this node hold the farm VIPs and accept only its buckets.
 * It runs `nft`, `ip` and `bridge` in the current network namespace; all decisions (which buckets,
 * who answers ARP) come in as a BucketPlan from planBuckets().
 */
import { spawn } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import type { ModuleConfig } from '../config/index.ts';
import type { Logger } from '../log/logger.ts';
import { bucketSet, farmSpec, interfacesOf, NOTHING, parseListing, renderApply, renderInstall, renderRemove, type FarmSpec, type FilterState } from './nft.ts';
import { bucketsOf, type BucketPlan } from './plan.ts';

/** Runs a command; resolves stdout, rejects with an Error carrying stderr on non-zero exit. */
export type Exec = (cmd: string, args: readonly string[], input?: string) => Promise<string>;

export interface FarmFilterOptions {
  /** the farm module (mode: farm, at least one IPv4 vip) */
  readonly module: ModuleConfig;
  /** this node's name (one of module.nodes) */
  readonly self: string;
  readonly log: Logger;
  /** @default runs the command with child_process.spawn, 10 s timeout */
  readonly exec?: Exec;
  /** where the interface sysctls live; @default "/proc/sys/net/ipv4/conf" */
  readonly sysctlDir?: string;
  /**
   * How long a bucket given to another live node keeps its established TCP connections here (new
   * connections go to the new owner at once). Meanwhile this node also receives and drops (after
   * conntrack) the new owner's packets of that bucket. 0 disables draining. @default 120000
   */
  readonly drainMs?: number;
}

export interface FarmStatus {
  /** the module's nft table exists */
  readonly installed: boolean;
  /** the buckets the kernel filter accepts on this node, ascending */
  readonly buckets: readonly number[];
  /** this node answers ARP for the VIPs and takes the traffic no rule balances */
  readonly responder: boolean;
  /** buckets given to another node whose established TCP connections still end here */
  readonly draining: readonly number[];
  /** each VIP and whether it is on its interface */
  readonly vips: readonly { readonly addr: string; readonly iface: string; readonly present: boolean }[];
}

export class FarmFilter {
  readonly spec: FarmSpec;
  private readonly self: string;
  private readonly log: Logger;
  private readonly exec: Exec;
  private readonly sysctlDir: string;
  private readonly savedAnnounce = new Map<string, string>();
  private current: FilterState = NOTHING;
  private readonly drainMs: number;
  private readonly drainSince = new Map<number, number>();
  private drainTimer: NodeJS.Timeout | undefined;
  private lastPlan: BucketPlan | undefined;
  private queue: Promise<unknown> = Promise.resolve();

  constructor(opts: FarmFilterOptions) {
    this.spec = farmSpec(opts.module);
    if (!opts.module.nodes.includes(opts.self)) {
      throw new Error(`farm module "${opts.module.name}": node "${opts.self}" is not one of ${opts.module.nodes.join(', ')}`);
    }
    this.self = opts.self;
    this.log = opts.log.child({ component: 'farm-filter', table: this.spec.table });
    this.exec = opts.exec ?? run;
    this.sysctlDir = opts.sysctlDir ?? '/proc/sys/net/ipv4/conf';
    this.drainMs = opts.drainMs ?? 120_000;
  }

  /**
   * Makes the node a farm member that owns nothing yet: replaces any leftover table with a fresh one
   * (drops all VIP traffic, silences ARP for the VIPs), sets arp_announce=2 on the VIP interfaces (so
   * the node never uses a VIP as the sender of its own ARP requests), lets the NIC receive the virtual
   * MACs, and only then adds the VIPs. Idempotent. Call apply() next.
   */
  install(): Promise<void> {
    return this.serial(async () => {
      for (const iface of interfacesOf(this.spec)) await this.exec('ip', ['link', 'show', 'dev', iface]).catch(() => {
        throw new Error(`farm module "${this.spec.module}": interface ${iface} does not exist`);
      });
      await this.exec('nft', ['-f', '-'], renderInstall(this.spec));
      this.forget();
      for (const iface of interfacesOf(this.spec)) this.setAnnounce(iface);
      for (const v of this.spec.vips) {
        // Let a real NIC pass frames for the vMAC up (on veth this is a no-op); promiscuous mode is the fallback.
        await this.exec('bridge', ['fdb', 'replace', v.vmac, 'dev', v.iface, 'self', 'permanent']).catch(async (e: Error) => {
          this.log.warn({ err: e.message, vmac: v.vmac, iface: v.iface }, 'cannot add the virtual MAC to the interface filter; switching it to promiscuous mode');
          await this.exec('ip', ['link', 'set', 'dev', v.iface, 'promisc', 'on']);
        });
        await this.exec('ip', ['addr', 'replace', `${v.addr}/${v.prefix}`, 'dev', v.iface]);
      }
      this.log.info({ vips: this.spec.vips.map((v) => `${v.addr}/${v.prefix} ${v.iface} ${v.vmac}`) }, 'farm filter installed, owning no bucket yet');
    });
  }

  /**
   * Enforces this node's part of a plan in ONE nft transaction: accept the buckets the plan gives
   * this node, answer ARP if it is the plan's responder. Buckets that keep their owner are never
   * disturbed (their connections go on). Returns what the node now owns.
   */
  apply(plan: BucketPlan): Promise<FilterState> {
    return this.serial(async () => {
      const buckets = bucketsOf(plan, this.self);
      const mine = new Set(buckets);
      // buckets leaving this node keep their established TCP connections here for drainMs
      const now = Date.now();
      for (const b of this.current.buckets) if (!mine.has(b)) this.drainSince.set(b, now);
      for (const b of [...this.drainSince.keys()]) if (mine.has(b) || now - this.drainSince.get(b)! >= this.drainMs) this.drainSince.delete(b);
      const draining = [...this.drainSince.keys()].sort((a, b) => a - b);
      const next: FilterState = { buckets, responder: plan.responder === this.self, draining };
      const before = new Set(this.current.buckets);
      const gained = next.buckets.filter((b) => !before.has(b));
      const kept = new Set(next.buckets);
      const lost = this.current.buckets.filter((b) => !kept.has(b));
      await this.exec('nft', ['-f', '-'], renderApply(this.spec, next)).catch((e: Error) => {
        throw new Error(`farm module "${this.spec.module}": cannot apply the plan (was install() called?): ${e.message}`);
      });
      const reason = `now owns ${next.buckets.length}/256 buckets (+${gained.length} −${lost.length}, ${draining.length} draining) with live nodes ${plan.alive.join(', ') || 'none'}${next.responder ? ', ARP responder' : ''}`;
      this.log.info({ buckets: next.buckets.length, gained: bucketSet(gained), lost: bucketSet(lost), draining: draining.length, responder: next.responder, alive: plan.alive }, reason);
      this.current = next;
      this.lastPlan = plan;
      this.scheduleDrainEnd();
      return next;
    });
  }

  /** when the oldest draining bucket expires, re-apply the last plan (which drops it) */
  private scheduleDrainEnd(): void {
    clearTimeout(this.drainTimer);
    this.drainTimer = undefined;
    if (this.drainSince.size === 0) return;
    const oldest = Math.min(...this.drainSince.values());
    this.drainTimer = setTimeout(() => {
      const plan = this.lastPlan;
      if (plan) this.apply(plan).catch((e: Error) => this.log.error({ err: e.message }, 'farm filter: ending the drain failed'));
    }, Math.max(0, oldest + this.drainMs - Date.now()) + 10);
    this.drainTimer.unref();
  }

  private forget(): void {
    this.current = NOTHING;
    this.lastPlan = undefined;
    this.drainSince.clear();
    clearTimeout(this.drainTimer);
    this.drainTimer = undefined;
  }

  /**
   * Removes everything the filter put on the node: the VIPs first (so the node stops being a target),
   * then the nft table and the vMAC filter entries; restores arp_announce when this process changed it.
   * Also cleans the leftovers of a crashed daemon: call it at daemon start before install(). Idempotent.
   */
  remove(): Promise<void> {
    return this.serial(async () => {
      for (const v of this.spec.vips) {
        await this.exec('ip', ['addr', 'del', `${v.addr}/${v.prefix}`, 'dev', v.iface]).catch(() => undefined);
      }
      await this.exec('nft', ['-f', '-'], renderRemove(this.spec));
      for (const v of this.spec.vips) {
        await this.exec('bridge', ['fdb', 'del', v.vmac, 'dev', v.iface, 'self']).catch(() => undefined);
      }
      for (const [iface, value] of this.savedAnnounce) {
        try { writeFileSync(`${this.sysctlDir}/${iface}/arp_announce`, value); } catch { /* interface gone */ }
      }
      this.savedAnnounce.clear();
      this.forget();
      this.log.info('farm filter removed');
    });
  }

  /** What the kernel enforces now (read back from nft and ip, not from memory). */
  status(): Promise<FarmStatus> {
    return this.serial(async () => {
      let state: FilterState = NOTHING;
      let installed = true;
      try {
        state = parseListing(await this.exec('nft', ['-j', 'list', 'table', 'netdev', this.spec.table]));
      } catch {
        installed = false;
      }
      const vips = [];
      for (const v of this.spec.vips) {
        const out = await this.exec('ip', ['-j', '-4', 'addr', 'show', 'dev', v.iface]).catch(() => '[]');
        const addrs = (JSON.parse(out) as { addr_info?: { local: string }[] }[]).flatMap((l) => l.addr_info ?? []);
        vips.push({ addr: v.addr, iface: v.iface, present: addrs.some((a) => a.local === v.addr) });
      }
      return { installed, buckets: state.buckets, responder: state.responder, draining: state.draining ?? [], vips };
    });
  }

  private setAnnounce(iface: string): void {
    const file = `${this.sysctlDir}/${iface}/arp_announce`;
    try {
      const old = readFileSync(file, 'utf8').trim();
      if (old !== '2') {
        if (!this.savedAnnounce.has(iface)) this.savedAnnounce.set(iface, old);
        writeFileSync(file, '2');
      }
    } catch (e) {
      this.log.warn({ err: (e as Error).message, iface }, 'cannot set arp_announce=2; the node may send ARP requests from a VIP');
    }
  }

  private serial<T>(f: () => Promise<T>): Promise<T> {
    const p = this.queue.then(f, f);
    this.queue = p.catch(() => undefined);
    return p;
  }
}

const run: Exec = (cmd, args, input) =>
  new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { stdio: [input === undefined ? 'ignore' : 'pipe', 'pipe', 'pipe'], timeout: 10_000 });
    let out = '';
    let err = '';
    child.stdout!.on('data', (d: Buffer) => { out += d.toString(); });
    child.stderr!.on('data', (d: Buffer) => { err += d.toString(); });
    child.on('error', reject);
    child.on('close', (code, signal) => {
      if (code === 0) resolve(out);
      else reject(new Error(`${cmd} ${args.join(' ')}: ${signal ? `killed by ${signal}` : `exit ${code}`}: ${err.trim().split('\n').slice(0, 3).join(' | ')}`));
    });
    if (child.stdin) {
      child.stdin.on('error', () => undefined); // a command that exits early: its exit status tells
      child.stdin.end(input);
    }
  });
