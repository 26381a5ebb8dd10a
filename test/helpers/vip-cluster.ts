import type { ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { APP_PORT, NODES, VIP_CIDR, WITNESS, type NodeName, type VipTopology } from './vip-topology.ts';
import { spawnDaemon } from './daemon-proc.ts';

export const MODULE = 'web';
export const API_PORT = 9010;

export interface VigilClusterOptions {
  /** heartbeat pulse/timeout as written in YAML ("100ms", "500ms"); omitted: the daemon's defaults */
  readonly pulse?: string;
  readonly timeout?: string;
  /** module checkers, as YAML objects (per node when a function: both nodes share one host's /proc) */
  readonly checkers?: readonly Record<string, unknown>[] | ((node: NodeName) => readonly Record<string, unknown>[]);
  /** scripts (name → shell text) written into the module's scripts_dir */
  readonly scripts?: Readonly<Record<string, string>>;
  /** @default ping 198.18.4.9 */
  readonly witness?: { readonly ping?: readonly string[]; readonly http?: readonly string[]; readonly grace?: string };
  readonly arp?: { readonly count?: number; readonly interval?: string; readonly refresh?: string };
  readonly defaultPrimary?: NodeName;
  readonly logLevel?: string;
}

export interface VigilCluster {
  readonly dir: string;
  readonly token: string;
  configFile(node: NodeName): string;
  /** starts `node bin/vigil.mjs daemon --config FILE --node NAME` in the node's namespace */
  start(node: NodeName): ChildProcess;
  /** SIGTERM, then SIGKILL after 5 s */
  stop(node: NodeName): Promise<void>;
  /** health URL status (200 ready / 404 not), or 0 when the API does not answer; asked from the client host */
  ready(node: NodeName): Promise<number>;
  /** the module's JSON state from the admin API (undefined when the API does not answer) */
  state(node: NodeName): Promise<{ state?: string; [k: string]: unknown } | undefined>;
  /** the daemon's stdout/stderr lines */
  logs(node: NodeName): string[];
  destroy(): Promise<void>;
}

function yamlConfig(node: NodeName, dir: string, opts: VigilClusterOptions): string {
  const hb = opts.pulse || opts.timeout ? `    heartbeat: { ${[opts.pulse && `pulse: ${opts.pulse}`, opts.timeout && `timeout: ${opts.timeout}`].filter(Boolean).join(', ')} }\n` : '';
  const w = opts.witness ?? { ping: [WITNESS] };
  const witness = `    witness: { ping: [${(w.ping ?? []).join(', ')}], http: [${(w.http ?? []).map((u) => JSON.stringify(u)).join(', ')}]${w.grace ? `, grace: ${w.grace}` : ''} }\n`;
  const arp = opts.arp ? `    arp: ${JSON.stringify(opts.arp)}\n` : '';
  const list = typeof opts.checkers === 'function' ? opts.checkers(node) : opts.checkers;
  const checkers = list?.length ? `    checkers:\n${list.map((c) => `      - ${JSON.stringify(c)}\n`).join('')}` : '';
  const scripts = opts.scripts ? `    scripts_dir: ${join(dir, 'scripts')}\n` : '';
  return `cluster: vipbench
secret_file: ${join(dir, 'cluster.key')}
state_dir: ${join(dir, `state-${node}`)}
api: { port: ${API_PORT}, admin_token_file: ${join(dir, 'admin.token')} }
log: { level: ${opts.logLevel ?? 'info'} }
nodes:
  - { name: n1, addrs: [${NODES.n1}] }
  - { name: n2, addrs: [${NODES.n2}] }
modules:
  - name: ${MODULE}
    mode: mirror
    id: 1
${hb}    vip: [ { addr: ${VIP_CIDR}, interface: eth0 } ]
    default_primary: ${opts.defaultPrimary ?? 'n1'}
${witness}${arp}${checkers}${scripts}`;
}

export function createVigilCluster(topo: VipTopology, opts: VigilClusterOptions = {}): VigilCluster {
  const dir = mkdtempSync(join(tmpdir(), 'vigil-vip-'));
  const token = randomBytes(16).toString('hex');
  writeFileSync(join(dir, 'cluster.key'), randomBytes(24).toString('hex'), { mode: 0o600 });
  writeFileSync(join(dir, 'admin.token'), token, { mode: 0o600 });
  // the application the e2e scripts start: answers its node name on :8080 (argv: vipapp.cjs NODE)
  writeFileSync(join(dir, 'vipapp.cjs'), `require('http').createServer((q, r) => r.end(process.argv[2])).listen(${APP_PORT}, '0.0.0.0');\n`);
  if (opts.scripts) {
    mkdirSync(join(dir, 'scripts'));
    for (const [name, text] of Object.entries(opts.scripts)) writeFileSync(join(dir, 'scripts', name), `#!/bin/sh\n${text}\n`, { mode: 0o755 });
  }
  for (const n of Object.keys(NODES) as NodeName[]) {
    mkdirSync(join(dir, `state-${n}`));
    writeFileSync(join(dir, `${n}.yaml`), yamlConfig(n, dir, opts));
  }
  const procs = new Map<NodeName, ChildProcess>();
  const logs = new Map<NodeName, string[]>();
  const cfgFile = (n: NodeName) => join(dir, `${n}.yaml`);

  const curl = async (args: string[]): Promise<{ code: number; stdout: string }> => {
    const r = await topo.lan.tryExec('client', ['curl', '-s', '--max-time', '1', ...args]);
    return { code: r.code, stdout: r.stdout };
  };

  const cluster: VigilCluster = {
    dir,
    token,
    configFile: cfgFile,
    start: (n) => {
      const lines = logs.get(n) ?? [];
      logs.set(n, lines);
      const child = spawnDaemon(topo.lan, n, cfgFile(n), lines, 2000);
      procs.set(n, child);
      return child;
    },
    stop: async (n) => {
      const c = procs.get(n);
      procs.delete(n);
      if (!c || c.exitCode !== null || c.signalCode !== null) return;
      await new Promise<void>((res) => {
        const t = setTimeout(() => c.kill('SIGKILL'), 5000);
        c.once('exit', () => {
          clearTimeout(t);
          res();
        });
        c.kill('SIGTERM');
      });
    },
    ready: async (n) => {
      const r = await curl(['-o', '/dev/null', '-w', '%{http_code}', `http://${NODES[n]}:${API_PORT}/var/modules/${MODULE}/ready.txt`]);
      return Number(r.stdout.trim()) || 0;
    },
    state: async (n) => {
      const r = await curl(['-H', `authorization: Bearer ${token}`, `http://${NODES[n]}:${API_PORT}/api/v1/modules/${MODULE}`]);
      if (r.code !== 0) return undefined;
      try {
        return JSON.parse(r.stdout) as { state?: string };
      } catch {
        return undefined;
      }
    },
    logs: (n) => logs.get(n) ?? [],
    destroy: async () => {
      await Promise.all((Object.keys(NODES) as NodeName[]).map((n) => cluster.stop(n)));
      rmSync(dir, { recursive: true, force: true });
    },
  };
  return cluster;
}

export { APP_PORT };
