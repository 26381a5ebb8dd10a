import { spawn, type ChildProcess } from 'node:child_process';
import type { Logger } from '../log/logger.ts';
import { type GarpSocket, NOT_ETHERNET } from './garp.ts';
import type { Vip } from './ip.ts';

/**
 * Gratuitous ARP for IPv4 VIPs, one packet at a time so that the interval is ours to choose in
 * milliseconds and a release can stop a burst that is still running. Each packet goes out through the
 * daemon's packet socket (vip/garp.ts) when it has one; otherwise (VIPs in another namespace, no
 * CAP_NET_RAW, a link that is not Ethernet) through one `arping -U` (iputils) per packet. arping keeps waiting for replies that
 * never come to an unsolicited ARP: it is left to exit by itself (-w 1), or killed by stop().
 *
 * IPv6 VIPs get their unsolicited neighbour advertisement from the kernel when they are added (see
 * VipManager), so there is nothing to repeat here for them.
 */
export class Announcer {
  private readonly timers = new Set<NodeJS.Timeout>();
  private readonly children = new Set<ChildProcess>();
  private refreshTimer: NodeJS.Timeout | undefined;
  private missingTool = false;
  /** number of packets handed to arping since creation (tests, metrics) */
  sent = 0;

  constructor(private readonly log: Logger, private readonly arping: readonly string[] = ['arping'], private readonly socket?: GarpSocket) {}

  /** Sends one gratuitous ARP per VIP now, then count-1 more every intervalMs. */
  burst(vips: readonly Vip[], count: number, intervalMs: number): void {
    const v4 = vips.filter((v) => v.family === 4);
    if (v4.length === 0 || count <= 0) return;
    this.sendAll(v4);
    for (let i = 1; i < count; i++) {
      const t = setTimeout(() => {
        this.timers.delete(t);
        this.sendAll(v4);
      }, i * intervalMs);
      this.timers.add(t);
    }
  }

  /** One gratuitous ARP per VIP every everyMs until stop(). */
  refresh(vips: readonly Vip[], everyMs: number): void {
    const v4 = vips.filter((v) => v.family === 4);
    if (v4.length === 0 || everyMs <= 0) return;
    clearInterval(this.refreshTimer);
    this.refreshTimer = setInterval(() => this.sendAll(v4), everyMs);
    this.refreshTimer.unref();
  }

  stop(): void {
    for (const t of this.timers) clearTimeout(t);
    this.timers.clear();
    clearInterval(this.refreshTimer);
    this.refreshTimer = undefined;
    for (const c of this.children) c.kill('SIGKILL');
    this.children.clear();
  }

  private sendAll(vips: readonly Vip[]): void {
    for (const v of vips) this.send(v);
  }

  private send(v: Vip): void {
    if (this.socket) {
      try {
        this.socket.send(v.dev, v.addr);
        this.sent += 1;
        return;
      } catch (e) {
        // another link type (InfiniBand, ...): arping knows its ARP
        if ((e as NodeJS.ErrnoException).code !== NOT_ETHERNET) {
          this.sent += 1;
          this.log.warn({ vip: v.text, dev: v.dev, err: (e as Error).message }, 'gratuitous ARP not sent');
          return;
        }
      }
    }
    if (this.missingTool) return;
    const child = spawn(this.arping[0], [...this.arping.slice(1), '-q', '-U', '-c', '1', '-w', '1', '-I', v.dev, '-s', v.addr, v.addr], { stdio: 'ignore' });
    this.sent += 1;
    this.children.add(child);
    child.on('error', (err: NodeJS.ErrnoException) => {
      this.children.delete(child);
      if (err.code === 'ENOENT') {
        this.missingTool = true;
        this.log.error({ tool: this.arping }, 'arping not found: gratuitous ARP disabled (install iputils-arping)');
      } else this.log.warn({ vip: v.text, err: err.message }, 'gratuitous ARP failed');
    });
    child.on('exit', (code, signal) => {
      this.children.delete(child);
      // exit 1 = "no reply", which is normal for -U; 2 = the address is not (any more) ours.
      if (code !== null && code > 1) this.log.warn({ vip: v.text, dev: v.dev, code }, 'gratuitous ARP not sent');
      else if (signal && signal !== 'SIGKILL') this.log.debug({ vip: v.text, signal }, 'arping ended by signal');
    });
  }
}
