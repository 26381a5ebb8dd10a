import type { VipConfig } from '../config/schema.ts';
import type { Logger } from '../log/logger.ts';
import { Announcer } from './announce.ts';
import { IpBatch } from './batch.ts';
import { holds, listAddrs, localSys, netnsSys, parseVip, type Exec, type Sys, type Vip } from './ip.ts';

export { canonicalAddr, listAddrs, localSys, netnsSys, parseVip, type Exec, type Sys, type Vip } from './ip.ts';

export interface VipManagerOptions {
  /** the module's VIPs (IPv4 and IPv6, any interfaces) */
  readonly vips: readonly VipConfig[];
  /**
   * Gratuitous ARP after takeover: `count` packets `interval` ms apart (count 0: none), then one every
   * `refresh` ms while held (default: no refresh). Durations in ms, as the config loader yields them.
   */
  readonly arp: { readonly count: number; readonly interval: number; readonly refresh?: number };
  readonly log: Logger;
  /** run everything inside this named network namespace (`ip netns exec`) instead of the current one */
  readonly netns?: string;
  /** @default the real `ip`, `arping` and /proc/sys of the current namespace (or of `netns`) */
  readonly sys?: Sys;
}

/**
 * Adds and removes a module's virtual IPs in the current network namespace (the daemon runs in the
 * node's namespace). Operations are serialised: a release issued while a takeover is running waits
 * for it, then removes everything.
 *
 * IPv4: `ip addr replace` (through one `ip -batch` helper shared by every module of the daemon), then
 * a burst of gratuitous ARP in the background (vip/announce.ts).
 * IPv6: the kernel sends an unsolicited neighbour advertisement (override flag) when DAD completes on
 * an interface with `ndisc_notify=1`; DAD is switched off on the interface for the time of the add
 * (`accept_dad=0`, restored right after) so the address is usable at once and the NA leaves at once.
 * keepalived also skips DAD (`nodad`) for its VIPs: a VIP is expected to move between nodes.
 */
export class VipManager {
  private readonly vips: readonly Vip[];
  private readonly exec: Exec;
  private readonly sys: Sys;
  private readonly announcer: Announcer;
  private readonly batch: IpBatch;
  private chain: Promise<unknown> = Promise.resolve();
  private wanted = false;

  constructor(private readonly opts: VipManagerOptions) {
    this.vips = opts.vips.map((v) => parseVip(v.addr, v.interface));
    this.sys = opts.sys ?? (opts.netns ? netnsSys(opts.netns) : localSys());
    this.exec = this.sys.exec;
    this.announcer = new Announcer(opts.log, this.sys.arping, this.sys.garp);
    this.batch = IpBatch.shared(this.sys.ipBatch, opts.log);
    // start the helper now, so that the first takeover finds it running
    if (this.vips.length > 0 && !opts.sys) void this.batch.run(['link', 'show', 'dev', 'lo']).catch(() => undefined);
  }

  /** True between takeover() and release(). */
  get held(): boolean {
    return this.wanted;
  }

  /** Gratuitous ARP packets sent so far (for tests and metrics). */
  get arpSent(): number {
    return this.announcer.sent;
  }

  /**
   * Adds every VIP that is not already there, then announces them (the burst continues in the
   * background). Resolves once every address is on its interface; rejects, after trying all of them,
   * naming those that could not be added.
   */
  takeover(): Promise<void> {
    return this.serial(async () => {
      this.wanted = true;
      const t0 = Date.now();
      const errors: string[] = [];
      // `ip addr replace` is idempotent: no listing first, one process per VIP on the failover path
      const toAdd = this.vips;
      await this.prepareInterfaces(toAdd);
      const restoreDad = await this.disableDad(toAdd.filter((v) => v.family === 6));
      try {
        for (const v of toAdd) {
          try {
            await this.ip(['addr', 'replace', `${v.addr}/${v.prefix}`, 'dev', v.dev]);
            this.opts.log.info({ vip: v.text, dev: v.dev }, 'VIP added');
          } catch (e) {
            errors.push((e as Error).message);
          }
        }
        if (restoreDad.length > 0) await this.waitNotTentative(toAdd.filter((v) => v.family === 6));
      } finally {
        for (const r of restoreDad) await this.sys.writeSysctl(r.path, r.value);
      }
      this.announcer.burst(this.vips, this.opts.arp.count, this.opts.arp.interval);
      if (this.opts.arp.refresh) this.announcer.refresh(this.vips, this.opts.arp.refresh);
      this.opts.log.info({ vips: this.vips.map((v) => v.text), ms: Date.now() - t0 }, 'VIPs taken over');
      if (errors.length > 0) throw new Error(`could not add VIPs: ${errors.join('; ')}`);
    });
  }

  /** Stops announcing and removes every VIP; idempotent (an absent VIP or interface is not an error). */
  release(): Promise<void> {
    return this.serial(async () => {
      this.wanted = false;
      this.announcer.stop();
      await this.removeAll('VIP removed');
    });
  }

  /**
   * At daemon start, before anything else: removes the module's VIPs that a crashed run left on this
   * node (the state machine has not decided yet that this node is primary). What it removed is in
   * `leftovers` afterwards.
   */
  removeLeftovers(): Promise<void> {
    return this.serial(async () => {
      this.wanted = false;
      this.announcer.stop();
      this.leftovers = await this.removeAll('leftover VIP removed (previous run did not release it)');
    });
  }

  /** the VIPs the last removeLeftovers() found and removed */
  leftovers: readonly string[] = [];

  /** VIPs that should be held (after takeover) but are not on their interface, or failed DAD. [] when not held. */
  async missing(): Promise<string[]> {
    if (!this.wanted) return [];
    const present = await listAddrs(this.exec);
    return this.vips.filter((v) => {
      const h = holds(present, v);
      return !h || h.dadfailed;
    }).map((v) => v.text);
  }

  /** The configured VIPs currently on this node, whatever this manager believes. */
  async present(): Promise<string[]> {
    const present = await listAddrs(this.exec);
    return this.vips.filter((v) => holds(present, v)).map((v) => v.text);
  }

  /** Stops timers, arping children and (with its last user) the ip helper without touching addresses (daemon shutdown after release). */
  close(): void {
    this.announcer.stop();
    this.batch.release();
  }

  /** One `ip` command through the long-lived batch helper; a fresh `ip` process if the helper fails. */
  private async ip(args: string[]): Promise<void> {
    try {
      await this.batch.run(args);
    } catch (e) {
      const msg = (e as Error).message;
      if (/ip batch|ip -batch/.test(msg)) {
        this.opts.log.debug({ err: msg }, 'ip batch helper unavailable: running ip');
        await this.exec('ip', args);
      } else throw new Error(`ip ${args.join(' ')}: ${msg}`);
    }
  }

  /** No listing first (an `ip` process each, forked from a daemon that may be large): deleting an absent address is answered as such. */
  private async removeAll(what: string): Promise<string[]> {
    const removed: string[] = [];
    const errors: string[] = [];
    for (const v of this.vips) {
      if (v.family === 4) await this.promoteSecondaries(v.dev);
      try {
        await this.ip(['addr', 'del', `${v.addr}/${v.prefix}`, 'dev', v.dev]);
        removed.push(v.text);
        this.opts.log.info({ vip: v.text, dev: v.dev }, what);
      } catch (e) {
        const msg = (e as Error).message;
        // not there (EADDRNOTAVAIL: "Address not found" from newer ip) or no such interface: nothing to remove
        if (/Cannot assign requested address|Address not found|Cannot find device|does not exist/i.test(msg)) continue;
        errors.push(msg);
      }
    }
    if (errors.length > 0) throw new Error(`could not remove VIPs: ${errors.join('; ')}`);
    return removed;
  }

  /** IPv4: removing a primary address also removes its secondaries unless promote_secondaries is on (keepalived sets it too). */
  private async promoteSecondaries(dev: string): Promise<void> {
    const path = `ipv4/conf/${dev}/promote_secondaries`;
    if ((await this.sys.readSysctl(path)) === '0') await this.sys.writeSysctl(path, '1');
  }

  private async prepareInterfaces(vips: readonly Vip[]): Promise<void> {
    for (const dev of new Set(vips.filter((v) => v.family === 4).map((v) => v.dev))) await this.promoteSecondaries(dev);
    for (const dev of new Set(vips.filter((v) => v.family === 6).map((v) => v.dev))) {
      const path = `ipv6/conf/${dev}/ndisc_notify`;
      if ((await this.sys.readSysctl(path)) === '0') await this.sys.writeSysctl(path, '1');
    }
  }

  private async disableDad(vips: readonly Vip[]): Promise<{ path: string; value: string }[]> {
    const restore: { path: string; value: string }[] = [];
    for (const dev of new Set(vips.map((v) => v.dev))) {
      const path = `ipv6/conf/${dev}/accept_dad`;
      const value = await this.sys.readSysctl(path);
      if (value !== undefined && value !== '0' && (await this.sys.writeSysctl(path, '0'))) restore.push({ path, value });
    }
    if (vips.length > 0 && Number((await this.sys.readSysctl('ipv6/conf/all/accept_dad')) ?? '0') > 0) {
      this.opts.log.warn('net.ipv6.conf.all.accept_dad > 0: IPv6 VIPs will be usable and announced only after DAD (about 1 s)');
    }
    return restore;
  }

  /** The kernel runs DAD from a work queue: wait (briefly) until it has read accept_dad before restoring it. */
  private async waitNotTentative(vips: readonly Vip[]): Promise<void> {
    const deadline = Date.now() + 300;
    while (Date.now() < deadline) {
      const present = await listAddrs(this.exec);
      if (vips.every((v) => !holds(present, v)?.tentative)) return;
      await new Promise((r) => setTimeout(r, 5));
    }
  }

  private serial<T>(fn: () => Promise<T>): Promise<T> {
    const next = this.chain.then(fn, fn);
    this.chain = next.catch(() => undefined);
    return next;
  }
}
