import type { ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Lan } from './netns.ts';

/**
 * Debian's keepalived as the failover baseline, one VRRP instance per namespace: unicast peers,
 * `advert_int` 1 s, config and pid files in a temp dir (never /etc, never the host namespace),
 * VRRP subsystem only, no fork, logs on the console. Always call stop() (also done on process exit).
 */
export interface KeepalivedNode {
  readonly host: string;
  readonly addr: string;
  readonly priority: number;
}

export interface KeepalivedOptions {
  readonly nodes: readonly KeepalivedNode[];
  /** "198.18.4.100/24" */
  readonly vip: string;
  readonly iface?: string;
  /** seconds @default 1 */
  readonly advertInt?: number;
  readonly routerId?: number;
  /** the highest priority takes the VIP back when it returns @default true (keepalived's default) */
  readonly preempt?: boolean;
}

export interface Keepalived {
  readonly dir: string;
  readonly procs: ReadonlyMap<string, ChildProcess>;
  /** console output per host (for diagnostics) */
  readonly output: ReadonlyMap<string, string[]>;
  stop(): Promise<void>;
}

const running = new Set<Keepalived>();
let hooked = false;

export function keepalivedConfig(self: KeepalivedNode, opts: KeepalivedOptions): string {
  const iface = opts.iface ?? 'eth0';
  const peers = opts.nodes.filter((n) => n.host !== self.host).map((n) => `    ${n.addr}`).join('\n');
  const top = Math.max(...opts.nodes.map((n) => n.priority));
  return `global_defs {
  router_id ${self.host}
  vrrp_garp_master_delay 1
  vrrp_garp_master_repeat 5
  vrrp_garp_interval 0.001
  script_user root
  enable_script_security
}

vrrp_instance vigil_bench {
  state ${self.priority === top ? 'MASTER' : 'BACKUP'}
  interface ${iface}
  virtual_router_id ${opts.routerId ?? 51}
  priority ${self.priority}
  advert_int ${opts.advertInt ?? 1}
  ${opts.preempt === false ? 'nopreempt' : ''}
  unicast_src_ip ${self.addr}
  unicast_peer {
${peers}
  }
  virtual_ipaddress {
    ${opts.vip} dev ${iface}
  }
}
`;
}

export function startKeepalived(lan: Lan, opts: KeepalivedOptions): Keepalived {
  const dir = mkdtempSync(join(tmpdir(), 'vigil-keepalived-'));
  const procs = new Map<string, ChildProcess>();
  const output = new Map<string, string[]>();
  for (const n of opts.nodes) {
    const conf = join(dir, `${n.host}.conf`);
    writeFileSync(conf, keepalivedConfig(n, opts));
    const argv = [
      'keepalived', '-n', '-l', '-G', '-D', '-P',
      '-f', conf,
      '-p', join(dir, `${n.host}.pid`),
      '-r', join(dir, `${n.host}.vrrp.pid`),
      '-c', join(dir, `${n.host}.checkers.pid`),
    ];
    const child = lan.spawn(n.host, argv);
    const lines: string[] = [];
    output.set(n.host, lines);
    const keep = (b: Buffer) => {
      lines.push(...b.toString().split('\n').filter(Boolean));
      if (lines.length > 500) lines.splice(0, lines.length - 500);
    };
    child.stdout?.on('data', keep);
    child.stderr?.on('data', keep);
    procs.set(n.host, child);
  }
  const k: Keepalived = {
    dir,
    procs,
    output,
    stop: async () => {
      running.delete(k);
      await Promise.all(
        [...procs.values()].map(
          (c) =>
            new Promise<void>((resolve) => {
              if (c.exitCode !== null || c.signalCode !== null) return resolve();
              const t = setTimeout(() => c.kill('SIGKILL'), 3000);
              c.once('exit', () => {
                clearTimeout(t);
                resolve();
              });
              c.kill('SIGTERM'); // keepalived removes its VIPs on SIGTERM
            }),
        ),
      );
      // the VRRP child is a separate process in the same namespace: make sure none is left
      for (const n of opts.nodes) await lan.tryExec(n.host, ['pkill', '-KILL', '-F', join(dir, `${n.host}.vrrp.pid`)]);
      rmSync(dir, { recursive: true, force: true });
    },
  };
  running.add(k);
  if (!hooked) {
    hooked = true;
    process.on('exit', () => {
      for (const r of running) for (const c of r.procs.values()) c.kill('SIGKILL');
    });
  }
  return k;
}
