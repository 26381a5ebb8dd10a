/**
 * Real daemons on a farm test bed: one `vigil daemon` per node namespace, driving the farm filter
 * from heartbeats (no harness plans). Config, secret and token live in a temporary directory.
 */
import type { ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { toYaml } from '../../node-service/src/config/index.ts';
import type { FarmLan, FarmRuleRaw } from './farm-lan.ts';
import { spawnDaemon } from './daemon-proc.ts';

export interface FarmDaemons {
  readonly dir: string;
  readonly config: Record<string, unknown>;
  start(node: string): void;
  /** SIGTERM, SIGKILL after 5 s */
  stop(node: string): Promise<void>;
  /** the module's state from the node's admin API (asked from a client namespace), undefined if it does not answer */
  state(node: string): Promise<string | undefined>;
  /** what the node's kernel filter enforces (read back with FarmFilter.status) */
  kernel(node: string): Promise<{ installed: boolean; buckets: number[]; responder: boolean; draining: number[]; vips: { present: boolean }[] }>;
  logs(node: string): string[];
  destroy(): Promise<void>;
}

export function createFarmDaemons(f: FarmLan, rules: FarmRuleRaw[], opts: { power?: Record<string, number>; nodes?: readonly string[]; pulse?: string; timeout?: string } = {}): FarmDaemons {
  const dir = mkdtempSync(join(tmpdir(), 'vigil-farm-'));
  const token = randomBytes(16).toString('hex');
  writeFileSync(join(dir, 'cluster.key'), randomBytes(24).toString('hex'), { mode: 0o600 });
  writeFileSync(join(dir, 'admin.token'), token, { mode: 0o600 });
  const on = opts.nodes ?? f.nodes;
  const base = f.config(rules, opts.power ?? {}, on) as { modules: Record<string, unknown>[] };
  const config = {
    ...base,
    secret_file: join(dir, 'cluster.key'),
    state_dir: join(dir, 'state'),
    api: { port: 9010, admin_token_file: join(dir, 'admin.token') },
    modules: base.modules.map((m) => ({ ...m, heartbeat: { pulse: opts.pulse ?? '100ms', timeout: opts.timeout ?? '1s' } })),
  };
  const procs = new Map<string, ChildProcess>();
  const logs = new Map<string, string[]>();
  const cfgFile = (n: string) => join(dir, `${n}.yaml`);
  for (const n of on) {
    mkdirSync(join(dir, `state-${n}`), { recursive: true });
    writeFileSync(cfgFile(n), toYaml({ ...config, state_dir: join(dir, `state-${n}`) } as unknown as Parameters<typeof toYaml>[0]));
  }
  const addr = (n: string) => `198.18.5.${f.nodes.indexOf(n) + 1}`;

  const d: FarmDaemons = {
    dir,
    config,
    start: (n) => {
      const lines = logs.get(n) ?? [];
      logs.set(n, lines);
      const child = spawnDaemon(f.lan, n, cfgFile(n), lines, 3000);
      procs.set(n, child);
    },
    stop: async (n) => {
      const c = procs.get(n);
      procs.delete(n);
      if (!c || c.exitCode !== null || c.signalCode !== null) return;
      await new Promise<void>((res) => {
        const t = setTimeout(() => c.kill('SIGKILL'), 5000);
        c.once('exit', () => { clearTimeout(t); res(); });
        c.kill('SIGTERM');
      });
    },
    state: async (n) => {
      const client = f.clients[0];
      const r = await f.lan.tryExec(client, ['curl', '-s', '--max-time', '1', '-H', `authorization: Bearer ${token}`, `http://${addr(n)}:9010/api/v1/modules/web`]);
      if (r.code !== 0) return undefined;
      try { return (JSON.parse(r.stdout) as { state?: string }).state; } catch { return undefined; }
    },
    kernel: (n) => f.call(n, 'inspect', { config, module: 'web' }),
    logs: (n) => logs.get(n) ?? [],
    destroy: async () => {
      await Promise.all([...procs.keys()].map((n) => d.stop(n)));
      rmSync(dir, { recursive: true, force: true });
    },
  };
  return d;
}
