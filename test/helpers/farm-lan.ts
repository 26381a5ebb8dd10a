/**
 * A farm test bed: nodes and clients on one bridge (namespaces prefixed "vgf", subnet 198.18.5.0/24),
 * one farm-agent per namespace, and a static-membership driver that computes plans and applies them
 * on the nodes (what the daemon will do from heartbeats).
 *
 * Addresses: node i = 198.18.5.i, client j = 198.18.5.(10+j), VIP 198.18.5.200. Client j can also use
 * any source address in 198.19.(50+j).0/24 (an AnyIP local route, routed by the nodes via the client):
 * many client addresses for `client_ip` balancing without adding hundreds of addresses.
 */
import type { ChildProcess } from 'node:child_process';
import { dirname, resolve } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { planBuckets, planTransition, type BucketPlan } from '../../node-service/src/farm/index.ts';
import { createLan, type Lan } from './netns.ts';

const here = dirname(fileURLToPath(import.meta.url));
export const REPO = resolve(here, '../..');
export const VIP = '198.18.5.200';
export const HTTP_PORT = 8080;
export const ECHO_PORT = 8081;

export interface FarmRuleRaw { port?: number; proto?: 'tcp' | 'udp'; balance: 'client_ip' | 'client_session' }

export interface ConvergeOptions {
  /** what each node sees as live (default: `alive` for every installed node) */
  readonly views?: Readonly<Record<string, readonly string[]>>;
  /** wait between the handover and the final plans; @default 200 */
  readonly graceMs?: number;
  /** runs after the handover plans are applied (e.g. restore a cut link) */
  readonly afterHandover?: () => Promise<void>;
}

export interface FarmLan {
  readonly lan: Lan;
  readonly nodes: readonly string[];
  readonly clients: readonly string[];
  /** stderr of every agent (logs), for failure messages */
  readonly logs: string[];
  call<T = unknown>(host: string, op: string, args?: Record<string, unknown>, timeoutMs?: number): Promise<T>;
  /** the cluster config the nodes use */
  config(rules: FarmRuleRaw[], power?: Record<string, number>, nodes?: readonly string[]): Record<string, unknown>;
  /** installs the farm filter on `nodes` (default all) from a fresh config; forgets previous plans */
  install(rules: FarmRuleRaw[], power?: Record<string, number>, nodes?: readonly string[]): Promise<void>;
  /**
   * Static membership: each node in `views` applies the transition to the plan of the live set it
   * sees (default: every installed node sees `alive`). Nodes that only release go first, then every
   * handover plan, then (after `graceMs`) the final plans — the order the daemon's grace guarantees.
   */
  converge(alive: readonly string[], opts?: ConvergeOptions): Promise<BucketPlan>;
  /** the source addresses client j may bind (count of them, from its AnyIP /24) */
  sources(client: string, count: number): string[];
  destroy(): Promise<void>;
}

export async function createFarmLan(opts: { nodes?: number; clients?: number } = {}): Promise<FarmLan> {
  const nodes = Array.from({ length: opts.nodes ?? 3 }, (_, i) => `n${i + 1}`);
  const clients = Array.from({ length: opts.clients ?? 3 }, (_, i) => `c${i + 1}`);
  const lan = await createLan('vgf', [
    ...nodes.map((n, i) => ({ name: n, addr: `198.18.5.${i + 1}/24` })),
    ...clients.map((c, j) => ({ name: c, addr: `198.18.5.${11 + j}/24` })),
  ]);
  const logs: string[] = [];
  const agents = new Map<string, { child: ChildProcess; pending: Map<number, { resolve: (v: unknown) => void; reject: (e: Error) => void }> }>();
  let seq = 1;
  let power: Record<string, number> = {};
  let installed: readonly string[] = [];
  const current = new Map<string, BucketPlan | null>();
  const dead = new Set<string>();

  try {
    for (const [j, c] of clients.entries()) {
      await lan.exec(c, ['ip', 'route', 'add', 'local', `198.19.${51 + j}.0/24`, 'dev', 'lo']);
      await lan.exec(c, ['sysctl', '-qw', 'net.ipv4.conf.all.arp_announce=2']);
      for (const n of nodes) await lan.exec(n, ['ip', 'route', 'add', `198.19.${51 + j}.0/24`, 'via', `198.18.5.${11 + j}`]);
    }
    await Promise.all([...nodes.map((n) => start(n, 'node')), ...clients.map((c) => start(c, 'client'))]);
  } catch (e) {
    await destroy();
    throw e;
  }

  function start(host: string, role: string): Promise<void> {
    const child = lan.spawn(host, [process.execPath, '--import', 'tsx', resolve(here, 'farm-agent.ts'), role, host], {
      cwd: REPO,
      stdio: ['pipe', 'pipe', 'pipe'],
      env: { ...process.env, VIGIL_LOG_LEVEL: 'info' },
    });
    const pending = new Map<number, { resolve: (v: unknown) => void; reject: (e: Error) => void }>();
    agents.set(host, { child, pending });
    child.stderr!.on('data', (d: Buffer) => { logs.push(`[${host}] ${d.toString().trimEnd()}`); if (logs.length > 2000) logs.shift(); });
    return new Promise((ready, fail) => {
      const timer = setTimeout(() => fail(new Error(`agent ${host} did not start: ${logs.filter((l) => l.startsWith(`[${host}]`)).join('\n')}`)), 30_000);
      child.on('exit', (code) => {
        clearTimeout(timer);
        dead.add(host);
        for (const p of pending.values()) p.reject(new Error(`agent ${host} exited (${code})`));
        fail(new Error(`agent ${host} exited (${code}): ${logs.filter((l) => l.startsWith(`[${host}]`)).slice(-5).join('\n')}`));
      });
      createInterface({ input: child.stdout! }).on('line', (line) => {
        let msg: { id: number; ok: boolean; result?: unknown; error?: string };
        try { msg = JSON.parse(line); } catch { logs.push(`[${host}] ${line}`); return; }
        if (msg.id === 0) { clearTimeout(timer); ready(); return; }
        const p = pending.get(msg.id);
        pending.delete(msg.id);
        if (msg.ok) p?.resolve(msg.result); else p?.reject(new Error(`${host} ${msg.error}`));
      });
    });
  }

  function call<T>(host: string, op: string, args: Record<string, unknown> = {}, timeoutMs = 60_000): Promise<T> {
    const a = agents.get(host);
    if (!a) throw new Error(`no agent on ${host}`);
    if (dead.has(host)) return Promise.reject(new Error(`agent ${host} is dead: ${logs.filter((l) => l.startsWith(`[${host}]`)).slice(-5).join('\n')}`));
    const id = seq++;
    return new Promise<T>((res, rej) => {
      const timer = setTimeout(() => { a.pending.delete(id); rej(new Error(`${host} ${op}: no answer in ${timeoutMs} ms`)); }, timeoutMs);
      a.pending.set(id, {
        resolve: (v) => { clearTimeout(timer); res(v as T); },
        reject: (e) => { clearTimeout(timer); rej(e); },
      });
      a.child.stdin!.write(`${JSON.stringify({ id, op, ...args })}\n`);
    });
  }

  function config(rules: FarmRuleRaw[], pw: Record<string, number> = {}, on: readonly string[] = nodes): Record<string, unknown> {
    return {
      cluster: 'farmtest',
      secret_file: '/nonexistent/cluster.key',
      api: { admin_token_file: '/nonexistent/admin.token' },
      nodes: nodes.map((n, i) => ({ name: n, addrs: [`198.18.5.${i + 1}`] })),
      modules: [{ name: 'web', mode: 'farm', id: 2, nodes: [...on], vip: [{ addr: `${VIP}/24`, interface: 'eth0' }], farm: { rules, power: pw } }],
    };
  }

  async function install(rules: FarmRuleRaw[], pw: Record<string, number> = {}, on: readonly string[] = nodes): Promise<void> {
    power = pw;
    installed = on;
    current.clear();
    for (const n of nodes.filter((x) => !on.includes(x))) await call(n, 'remove');
    await Promise.all(on.map((n) => call(n, 'install', { config: config(rules, pw, on), module: 'web' })));
    for (const n of on) current.set(n, null);
  }

  async function converge(alive: readonly string[], o: ConvergeOptions = {}): Promise<BucketPlan> {
    const steps = installed.map((n) => {
      const view = o.views?.[n] ?? alive;
      const t = planTransition({ nodes: installed, power, alive: new Set(view), self: n, prev: current.get(n) ?? null });
      return { n, t };
    });
    // releases first (handover plans), then the final plans after the grace
    const withHandover = steps.filter((s) => s.t.handover !== null);
    await Promise.all(withHandover.map((s) => call(s.n, 'apply', { plan: s.t.handover })));
    await o.afterHandover?.();
    if (withHandover.length > 0) await new Promise((r) => setTimeout(r, o.graceMs ?? 200));
    await Promise.all(steps.map((s) => call(s.n, 'apply', { plan: s.t.next })));
    for (const s of steps) current.set(s.n, s.t.next);
    return planBuckets({ nodes: installed, power, alive: new Set(alive) });
  }

  function sources(client: string, count: number): string[] {
    const j = clients.indexOf(client);
    return Array.from({ length: count }, (_, i) => `198.19.${51 + j}.${1 + (i % 254)}`);
  }

  async function destroy(): Promise<void> {
    for (const a of agents.values()) { a.child.stdin?.end(); a.child.kill('SIGKILL'); }
    await lan.destroy();
  }

  return { lan, nodes, clients, logs, call, config, install, converge, sources, destroy };
}
