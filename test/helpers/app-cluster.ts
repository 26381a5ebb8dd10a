import { type ChildProcess, spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { createInterface } from 'node:readline';
import { parse } from 'yaml';
import { NsCluster } from '../../node-service/src/demo/ns-cluster.ts';
import { run } from '../../node-service/src/demo/lan.ts';
import { newModule, type NewModule } from '../../node-service/src/modules/index.ts';

const REPO = resolve(import.meta.dirname, '../..');
export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export interface AppClusterOptions {
  /** netns prefix (vga…/vgw…) */
  readonly prefix: string;
  readonly subnet: string;
  readonly template: string;
  /** template parameters (VIP, paths under `private`, DISTRO_SERVICE='' so no host service is touched) */
  readonly set: Readonly<Record<string, string>>;
  /** per-node private folder (bind-mounted in each node's mount namespace): data, sockets, logs */
  readonly privatePath: string;
  /** replicated directories to create (empty) in each node's private folder before the first start */
  readonly dataDirs?: readonly string[];
  readonly nodes?: number;
  /** files to write into each node's private folder before the first start: path under privatePath → content */
  readonly privateFiles?: (node: string) => Readonly<Record<string, string>>;
  /** edits of the module entry the template wrote (e.g. default_primary) */
  readonly module?: Readonly<Record<string, unknown>>;
}

/**
 * A Vigil cluster in network namespaces whose one module comes from a template, instantiated by the
 * product's own `newModule` (what `vigil module new` writes), run by real daemons: each node in its
 * own network and mount namespace, a client host on the LAN.
 */
export class AppCluster {
  private constructor(
    readonly c: NsCluster,
    readonly mod: NewModule,
    readonly moduleDir: string,
    readonly privatePath: string,
  ) {}

  static async create(o: AppClusterOptions): Promise<AppCluster> {
    const moduleDir = mkdtempSync(join(tmpdir(), `vigil-${o.prefix}-module-`));
    const mod = newModule({ template: o.template, dir: moduleDir, force: true, set: o.set });
    const snippet = parse(mod.snippet) as Record<string, unknown>;
    // replication keys (e.g. ack) are merged into the template's block, not put in its place
    const replication = o.module?.replication ? { replication: { ...(snippet.replication as object), ...(o.module.replication as object) } } : {};
    const entry = { ...snippet, ...o.module, ...replication } as { name: string };
    const c = await NsCluster.create({ prefix: o.prefix, subnet: o.subnet, nodes: o.nodes, extraHosts: ['client'], privatePath: o.privatePath, module: entry });
    for (const n of c.nodes) {
      for (const d of o.dataDirs ?? []) mkdirSync(join(n.root, 'private', d.slice(o.privatePath.length)), { recursive: true });
      for (const [rel, text] of Object.entries(o.privateFiles?.(n.name) ?? {})) {
        const f = join(n.root, 'private', rel);
        mkdirSync(dirname(f), { recursive: true });
        writeFileSync(f, text);
      }
    }
    return new AppCluster(c, mod, moduleDir, o.privatePath);
  }

  get vip(): string {
    return (this.mod.values.VIP ?? '').split('/')[0];
  }

  /** the daemon's pid (it runs in the node's network and mount namespaces) */
  pid(node: string): number {
    const p = this.c.node(node).proc;
    if (!p?.pid || p.exitCode !== null || p.signalCode !== null) throw new Error(`${node}: daemon not running`);
    return p.pid;
  }

  /** Runs a command in a node's network and mount namespace (sees its private folder and replicated view). */
  inside(node: string, cmd: string[], timeoutMs = 30_000): Promise<string> {
    return run(['nsenter', '-t', String(this.pid(node)), '-m', '-n', '--', ...cmd], timeoutMs);
  }

  /**
   * The node dies as a machine does: its link goes down and every process in its network namespace
   * (the daemon, the server, the scripts) gets kill -9. Without the cut, the dead node's kernel would
   * still hold its addresses and filter rules and answer for them (RSTs, ARP replies for the VIP).
   */
  async killNamespace(node: string): Promise<number> {
    const ns = this.c.lan.ns(node);
    await this.c.lan.cut(node);
    const pids = (await run(['ip', 'netns', 'pids', ns])).split(/\s+/).filter(Boolean).map(Number);
    for (const p of pids) {
      try {
        process.kill(p, 'SIGKILL');
      } catch {
        /* gone */
      }
    }
    await this.c.kill(node).catch(() => undefined);
    for (let i = 0; i < 100; i++) {
      if ((await run(['ip', 'netns', 'pids', ns])).trim() === '') break;
      await sleep(50);
    }
    return pids.length;
  }

  /** A killed node is powered on again: link up, daemon started (it clears the VIP and filter the dead one left). */
  async revive(node: string): Promise<void> {
    await this.c.lan.restore(node);
    this.c.start(node);
  }

  async destroy(): Promise<void> {
    await this.c.destroy({ keepDir: process.env.VIGIL_APP_KEEP === '1' });
    rmSync(this.moduleDir, { recursive: true, force: true });
    // the mount point each node's private folder was bound on (empty on the host)
    try {
      rmdirSync(this.privatePath);
    } catch {
      /* not empty or gone: leave it */
    }
  }
}

/** One transaction of the client: number, start and end (epoch ms), success. */
export interface Commit {
  readonly n: number;
  readonly s: number;
  readonly e: number;
  readonly ok: boolean;
}

export interface CommitClient {
  readonly results: Commit[];
  /** the numbers whose commit the client saw succeed */
  committed(): number[];
  /** the first successful commit started after `t`, waiting up to `ms` */
  firstOkAfter(t: number, ms: number): Promise<Commit | undefined>;
  stop(): Promise<void>;
}

/**
 * A client in the LAN's client namespace that commits one row per transaction, one after the other:
 * `argv` with {N} replaced by the row's number is run as a new process (a new connection through the
 * VIP), killed after `timeoutMs` if it hangs (a connection to a dead primary). A row counts as
 * committed only when the client program exited 0, i.e. the server acknowledged the COMMIT.
 */
export function startCommitClient(c: NsCluster, argv: readonly string[], opts: { env?: Record<string, string>; timeoutMs?: number; pauseMs?: number; first?: number } = {}): CommitClient {
  const code = `
    const { spawn } = require('child_process');
    const argv = ${JSON.stringify(argv)};
    let n = ${opts.first ?? 1};
    const one = () => {
      const s = Date.now();
      const me = n++;
      // its own process group: a hung client (and whatever its shell started) is killed whole
      const p = spawn(argv[0], argv.slice(1).map((a) => a.split('{N}').join(String(me))), { stdio: ['ignore', 'ignore', 'pipe'], detached: true });
      let err = '';
      p.stderr.on('data', (d) => (err = (err + d).slice(-300)));
      const t = setTimeout(() => { try { process.kill(-p.pid, 'SIGKILL'); } catch {} }, ${opts.timeoutMs ?? 2000});
      p.on('close', (code) => {
        clearTimeout(t);
        process.stdout.write(JSON.stringify({ n: me, s, e: Date.now(), ok: code === 0, err: code === 0 ? undefined : err.trim().split('\\n').pop() }) + '\\n');
        setTimeout(one, ${opts.pauseMs ?? 10});
      });
    };
    one();
  `;
  const child: ChildProcess = c.lan.spawn('client', [process.execPath, '-e', code], { env: { ...process.env, ...opts.env }, cwd: REPO });
  const results: Commit[] = [];
  const waiters = new Set<{ t: number; resolve: (x: Commit | undefined) => void }>();
  createInterface({ input: child.stdout! }).on('line', (line) => {
    let r: Commit;
    try {
      r = JSON.parse(line) as Commit;
    } catch {
      return;
    }
    results.push(r);
    if (process.env.VIGIL_APP_DEBUG && !r.ok) console.log('commit failed', line);
    for (const w of waiters) {
      if (r.ok && r.s >= w.t) {
        waiters.delete(w);
        w.resolve(r);
      }
    }
  });
  return {
    results,
    committed: () => results.filter((r) => r.ok).map((r) => r.n),
    firstOkAfter: (t, ms) => {
      const hit = results.find((r) => r.ok && r.s >= t);
      if (hit) return Promise.resolve(hit);
      return new Promise((resolve) => {
        const w = { t, resolve: (x: Commit | undefined) => (clearTimeout(timer), resolve(x)) };
        const timer = setTimeout(() => (waiters.delete(w), resolve(undefined)), ms);
        waiters.add(w);
      });
    },
    stop: () =>
      new Promise<void>((r) => {
        if (child.exitCode !== null || child.signalCode !== null) return r();
        child.once('exit', () => r());
        child.kill('SIGKILL');
      }),
  };
}

/** Runs a program in the client namespace; returns stdout (throws on failure). */
export function clientExec(c: NsCluster, argv: string[], env: Record<string, string> = {}, timeoutMs = 20_000): Promise<string> {
  return new Promise((resolve, reject) => {
    const p = spawn('ip', ['netns', 'exec', c.lan.ns('client'), ...argv], { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    p.stdout.on('data', (d) => (out += d));
    p.stderr.on('data', (d) => (err += d));
    const t = setTimeout(() => p.kill('SIGKILL'), timeoutMs);
    p.on('close', (code) => {
      clearTimeout(t);
      if (code === 0) resolve(out);
      else reject(new Error(`${argv.join(' ')}: exit ${code}: ${err.trim().slice(-500)}`));
    });
  });
}

/** Every number the client logged as committed that the table does not hold. */
export function missingCommits(logged: readonly number[], stored: Iterable<number>): number[] {
  const have = new Set(stored);
  return logged.filter((n) => !have.has(n));
}
