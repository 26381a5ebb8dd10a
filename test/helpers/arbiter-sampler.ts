import type { ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';
import type { Lan } from '../../node-service/src/demo/lan.ts';

/** One look at one node: ready.txt's status (0: no answer) and whether the VIP is on its interface. */
export interface Sample {
  readonly t: number;
  readonly node: string;
  readonly ready: number;
  readonly vip: boolean;
}

export const serving = (s: Sample): boolean => s.ready === 200 || s.vip;

/**
 * Samples every node every `period` ms from inside its own network namespace (so a node cut from the
 * LAN is still seen): its own ready.txt over HTTP and the VIP among its addresses (getifaddrs).
 */
export class ServingSampler {
  readonly samples: Sample[] = [];
  private readonly procs: ChildProcess[] = [];

  constructor(lan: Lan, nodes: readonly string[], url: (node: string) => string, vip: string, period = 20) {
    for (const node of nodes) {
      const code = `
        const http = require('http'); const os = require('os');
        const get = () => new Promise((res) => {
          const req = http.get(${JSON.stringify(url(node))}, { agent: false, timeout: ${period * 5} }, (r) => { r.resume(); res(r.statusCode); });
          req.on('timeout', () => req.destroy(new Error('timeout')));
          req.on('error', () => res(0));
        });
        const hasVip = () => Object.values(os.networkInterfaces()).flat().some((a) => a && a.address === ${JSON.stringify(vip)});
        (async () => { for (;;) {
          const t = Date.now(); const vip = hasVip(); const ready = await get();
          process.stdout.write(JSON.stringify({ t, ready, vip: vip || hasVip() }) + '\\n');
          await new Promise((r) => setTimeout(r, Math.max(0, ${period} - (Date.now() - t))));
        } })();`;
      const p = lan.spawn(node, [process.execPath, '-e', code]);
      createInterface({ input: p.stdout! }).on('line', (line) => {
        try {
          this.samples.push({ node, ...(JSON.parse(line) as { t: number; ready: number; vip: boolean }) });
        } catch {
          /* partial line at exit */
        }
      });
      this.procs.push(p);
    }
  }

  /** samples from `from` on, in time order */
  since(from: number): Sample[] {
    return this.samples.filter((s) => s.t >= from).sort((a, b) => a.t - b.t);
  }

  /** Samples (of either node) at which both nodes' latest samples say serving. */
  static dualServing(samples: readonly Sample[]): number {
    const last = new Map<string, Sample>();
    let dual = 0;
    for (const s of samples) {
      last.set(s.node, s);
      if (last.size >= 2 && [...last.values()].every(serving)) dual += 1;
    }
    return dual;
  }

  /** the first sample time at or after `from` at which `node` serves */
  static firstServing(samples: readonly Sample[], node: string, from: number): number | undefined {
    return samples.find((s) => s.node === node && s.t >= from && serving(s))?.t;
  }

  stop(): void {
    for (const p of this.procs) p.kill('SIGKILL');
  }
}
