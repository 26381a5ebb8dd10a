import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdirSync, rmSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { createInterface } from 'node:readline';
import { createLan, type Lan } from './netns.ts';

const ROOT = resolve(import.meta.dirname, '../..');
export const HARNESS = join(ROOT, 'test/helpers/mirror-harness.ts');

/** One node: a harness process in its own network and mount namespace. */
export class MirrorNode {
  proc: ChildProcess | null = null;
  events: { type: string; reason?: string }[] = [];
  stderr = '';
  private nextId = 1;
  private waiters = new Map<number, { resolve: (v: unknown) => void; reject: (e: Error) => void }>();
  private eventWaiters: { type: string; resolve: () => void }[] = [];

  constructor(
    readonly lan: Lan,
    readonly name: string,
    readonly cfg: Record<string, unknown>,
  ) {}

  get addr(): string {
    return this.lan.hosts.get(this.name)!.addr;
  }

  start(): void {
    this.events = [];
    const p = this.lan.spawn(this.name, ['unshare', '-m', '--propagation', 'private', process.execPath, '--import', 'tsx', HARNESS, JSON.stringify(this.cfg)], {
      stdio: ['pipe', 'pipe', 'pipe'],
      cwd: ROOT,
    });
    this.proc = p;
    p.stderr!.on('data', (d: Buffer) => {
      this.stderr += d.toString();
      if (this.stderr.length > 20_000_000) this.stderr = this.stderr.slice(-10_000_000);
      if (process.env.MIRROR_DEBUG) process.stderr.write(`[${this.name}] ${d}`);
    });
    createInterface({ input: p.stdout! }).on('line', (line) => {
      let m: { id?: number; ok?: boolean; result?: unknown; error?: string; event?: { type: string; reason?: string } };
      try {
        m = JSON.parse(line);
      } catch {
        return;
      }
      if (m.event) {
        this.events.push(m.event);
        for (const w of [...this.eventWaiters]) {
          if (w.type === m.event.type) {
            this.eventWaiters.splice(this.eventWaiters.indexOf(w), 1);
            w.resolve();
          }
        }
        return;
      }
      const w = this.waiters.get(m.id!);
      if (!w) return;
      this.waiters.delete(m.id!);
      if (m.ok) w.resolve(m.result);
      else w.reject(new Error(`${this.name}: ${m.error}`));
    });
    p.on('exit', () => {
      for (const w of this.waiters.values()) w.reject(new Error(`${this.name} exited\n${this.stderr.slice(-2000)}`));
      this.waiters.clear();
    });
  }

  call<T = unknown>(cmd: string, opts?: object, timeoutMs = 60_000): Promise<T> {
    const id = this.nextId++;
    return new Promise<T>((resolve, reject) => {
      const t = setTimeout(() => reject(new Error(`${this.name}: ${cmd} timed out\n${this.stderr.slice(-2000)}`)), timeoutMs);
      this.waiters.set(id, {
        resolve: (v) => (clearTimeout(t), resolve(v as T)),
        reject: (e) => (clearTimeout(t), reject(e)),
      });
      this.proc!.stdin!.write(`${JSON.stringify({ id, cmd, opts })}\n`);
    });
  }

  /** resolves at the next event of that type (or immediately if `already` and one was seen) */
  waitEvent(type: string, timeoutMs = 60_000, already = false): Promise<void> {
    if (already && this.events.some((e) => e.type === type)) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const t = setTimeout(() => reject(new Error(`${this.name}: no ${type} event within ${timeoutMs} ms\n${this.stderr.slice(-3000)}`)), timeoutMs);
      this.eventWaiters.push({ type, resolve: () => (clearTimeout(t), resolve()) });
    });
  }

  /** runs a command inside this node's network and mount namespace (sees its view) */
  spawnInside(cmd: string[]): ChildProcess {
    const pid = this.proc!.pid!;
    return spawn('nsenter', ['-t', String(pid), '-m', '-n', `--wd=${ROOT}`, '--', ...cmd], { stdio: ['ignore', 'pipe', 'pipe'] });
  }

  /** runs cmd inside this node's namespaces; resolves with stdout, rejects with the output on failure */
  inside(cmd: string[], timeoutMs = 180_000): Promise<string> {
    return new Promise((res, rej) => {
      const p = this.spawnInside(cmd);
      let out = '';
      let err = '';
      const t = setTimeout(() => p.kill('SIGKILL'), timeoutMs);
      p.stdout!.on('data', (d) => (out += d));
      p.stderr!.on('data', (d) => (err += d));
      p.on('exit', (c) => {
        clearTimeout(t);
        if (c === 0) res(out);
        else rej(new Error(`${cmd.join(' ')} (on ${this.name}): exit ${c}\n${err}${out}`));
      });
    });
  }

  kill9(): void {
    this.proc?.kill('SIGKILL');
    this.proc = null;
  }

  async exit(): Promise<void> {
    const p = this.proc;
    if (!p) return;
    await this.call('stop', undefined, 30_000).catch(() => undefined);
    p.stdin!.end();
    await new Promise<void>((r) => {
      const t = setTimeout(() => (p.kill('SIGKILL'), r()), 5000);
      p.on('exit', () => (clearTimeout(t), r()));
      if (p.exitCode !== null) (clearTimeout(t), r());
    });
    this.proc = null;
  }
}

export interface Pair {
  lan: Lan;
  a: MirrorNode;
  b: MirrorNode;
  root: string;
  destroy(): Promise<void>;
}

/**
 * Two nodes a (198.18.3.1) and b (198.18.3.2) on a namespace LAN "vgm", each with its own data
 * directory under root (so a test can compare the two backing trees from outside).
 */
export async function createPair(opts: { root: string; sendTimeoutMs?: number; zoneSize?: number; secretB?: string; prefix?: string; ack?: 'fsync' | 'write'; window?: number; encryption?: 'tls' | 'none' }): Promise<Pair> {
  rmSync(opts.root, { recursive: true, force: true });
  mkdirSync(opts.root, { recursive: true });
  const lan = await createLan(opts.prefix ?? 'vgm', [
    { name: 'a', addr: '198.18.3.1/24' },
    { name: 'b', addr: '198.18.3.2/24' },
  ]);
  const secret = randomBytes(32).toString('hex');
  const mk = (name: string, peer: string, self: string, other: string, sec: string) =>
    new MirrorNode(lan, name, {
      name,
      dirs: [join(opts.root, name, 'data')],
      stateDir: join(opts.root, name, 'state'),
      selfAddrs: [self],
      peer,
      peerAddrs: [other],
      secretHex: sec,
      sendTimeoutMs: opts.sendTimeoutMs ?? 1000,
      zoneSize: opts.zoneSize,
      ack: opts.ack,
      window: opts.window,
      encryption: opts.encryption,
    });
  const a = mk('a', 'b', '198.18.3.1', '198.18.3.2', secret);
  const b = mk('b', 'a', '198.18.3.2', '198.18.3.1', opts.secretB ?? secret);
  for (const n of [a, b]) mkdirSync(join(opts.root, n.name), { recursive: true });
  return {
    lan,
    a,
    b,
    root: opts.root,
    destroy: async () => {
      for (const n of [a, b]) n.kill9();
      await lan.destroy();
      rmSync(opts.root, { recursive: true, force: true });
    },
  };
}

export function backing(root: string, node: string): string {
  return join(root, node, '.data.vigil-data');
}

/** Both harnesses started and prepared, b secondary; with `sync`, a primary and b in sync. */
export async function startPair(opts: Parameters<typeof createPair>[0], sync: boolean): Promise<Pair> {
  const pair = await createPair(opts);
  pair.a.start();
  pair.b.start();
  await Promise.all([pair.a.call('prepare'), pair.b.call('prepare')]);
  await pair.b.call('secondary');
  if (sync) {
    const synced = pair.a.waitEvent('synced', 30_000);
    await pair.a.call('primary');
    await synced;
  }
  return pair;
}

/** Ends both harnesses and tears the namespaces down (safe on a pair that failed to start). */
export async function closePair(pair: Pair | undefined): Promise<void> {
  await pair?.a.exit();
  await pair?.b.exit();
  await pair?.destroy();
}

/** Restarts b's harness as a secondary and waits until the primary a reports it in sync. */
export async function rejoinSecondary(pair: Pair, timeoutMs = 120_000): Promise<void> {
  const synced = pair.a.waitEvent('synced', timeoutMs);
  pair.b.start();
  await pair.b.call('prepare');
  await pair.b.call('secondary');
  await synced;
}

/**
 * Resolves once the primary has nothing unacknowledged (with ack: fsync a change returns before the
 * secondary has it; a test comparing both trees waits for the stream to drain first).
 */
export async function drained(primary: MirrorNode, timeoutMs = 30_000): Promise<void> {
  const t0 = Date.now();
  for (;;) {
    const st = (await primary.call('status')) as { unackedBytes?: number; peer: string };
    if (!st.unackedBytes) return;
    if (Date.now() - t0 > timeoutMs) throw new Error(`${primary.name}: ${st.unackedBytes} bytes still unacknowledged after ${timeoutMs} ms (peer ${st.peer})`);
    await new Promise((r) => setTimeout(r, 20));
  }
}
