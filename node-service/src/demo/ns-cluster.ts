import { type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chmodSync, createWriteStream, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { toYaml } from '../config/emit.ts';
import type { RawCluster } from '../config/schema.ts';
import type { ModuleStatus } from '../daemon/module-runner.ts';
import { waitForStates } from './wait-for.ts';
import { createLan, type Lan } from './lan.ts';

const VIGIL_BIN = resolve(dirname(fileURLToPath(import.meta.url)), '../../../bin/vigil.mjs');
type RawModule = NonNullable<RawCluster['modules']>[number];

export interface NsClusterOptions {
  /** netns prefix (2-5 chars) */
  readonly prefix: string;
  /** first three octets inside 198.18.0.0/15, e.g. "198.18.1" */
  readonly subnet: string;
  readonly nodes?: number;
  readonly module: Partial<RawModule> & { name: string };
  readonly scripts?: Readonly<Record<string, string>>;
  /** extra hosts on the LAN (client, witness), numbered from .10 */
  readonly extraHosts?: readonly string[];
  /** this path is private to each node: a per-node folder is bind-mounted on it in the node's mount namespace */
  readonly privatePath?: string;
}

export interface NsNode {
  readonly name: string;
  readonly addr: string;
  readonly root: string;
  proc?: ChildProcess;
}

/**
 * Real daemons, each in its own network namespace (and mount namespace, so a replicated directory
 * can have the same path on every node), on a bridge with optional client and witness hosts.
 */
export class NsCluster {
  readonly dir: string;
  readonly configFile: string;
  readonly token: string;
  readonly nodes: NsNode[];
  readonly moduleName: string;
  readonly scriptsDir: string;

  private constructor(
    readonly lan: Lan,
    readonly o: NsClusterOptions,
    dir: string,
  ) {
    this.dir = dir;
    const count = o.nodes ?? 2;
    this.nodes = Array.from({ length: count }, (_, i) => ({ name: `node${i + 1}`, addr: `${o.subnet}.${i + 1}`, root: join(dir, `node${i + 1}-root`) }));
    this.token = randomBytes(16).toString('hex');
    const secretFile = join(dir, 'cluster.key');
    writeFileSync(secretFile, randomBytes(32).toString('base64'), { mode: 0o600 });
    const tokenFile = join(dir, 'admin.token');
    writeFileSync(tokenFile, this.token, { mode: 0o600 });
    this.scriptsDir = join(dir, 'scripts');
    mkdirSync(this.scriptsDir, { recursive: true });
    for (const [name, body] of Object.entries(o.scripts ?? {})) {
      const f = join(this.scriptsDir, name);
      writeFileSync(f, body.startsWith('#!') ? body : `#!/bin/sh\n${body}\n`);
      chmodSync(f, 0o755);
    }
    this.moduleName = o.module.name;
    const raw: RawCluster = {
      cluster: o.prefix,
      secret_file: secretFile,
      state_dir: '/var/lib/vigil',
      api: { port: 9010, admin_token_file: tokenFile },
      nodes: this.nodes.map((n) => ({ name: n.name, addrs: [n.addr] })),
      modules: [{ mode: 'mirror', id: 1, scripts_dir: this.scriptsDir, ...o.module } as RawModule],
    };
    this.configFile = join(dir, 'cluster.yaml');
    writeFileSync(this.configFile, toYaml(raw));
  }

  static async create(o: NsClusterOptions): Promise<NsCluster> {
    const count = o.nodes ?? 2;
    const hosts = [
      ...Array.from({ length: count }, (_, i) => ({ name: `node${i + 1}`, addr: `${o.subnet}.${i + 1}/24` })),
      ...(o.extraHosts ?? []).map((name, i) => ({ name, addr: `${o.subnet}.${10 + i}/24` })),
    ];
    const lan = await createLan(o.prefix, hosts);
    return new NsCluster(lan, o, mkdtempSync(join(tmpdir(), `vigil-${o.prefix}-`)));
  }

  node(name: string): NsNode {
    const n = this.nodes.find((x) => x.name === name);
    if (!n) throw new Error(`no node ${name}`);
    return n;
  }

  addr(host: string): string {
    return this.lan.hosts.get(host)!.addr;
  }

  /** Starts a node's daemon in its namespaces. Its state dir (/var/lib/vigil) and private path are its own. */
  start(name: string): ChildProcess {
    const n = this.node(name);
    mkdirSync(join(n.root, 'state'), { recursive: true });
    mkdirSync(join(n.root, 'private'), { recursive: true });
    const mounts = [`mkdir -p /var/lib/vigil && mount --bind '${join(n.root, 'state')}' /var/lib/vigil`];
    if (this.o.privatePath) mounts.push(`mkdir -p '${this.o.privatePath}' && mount --bind '${join(n.root, 'private')}' '${this.o.privatePath}'`);
    const script = `${mounts.join(' && ')} && exec '${process.execPath}' '${VIGIL_BIN}' daemon --config '${this.configFile}' --node ${name}`;
    const proc = this.lan.spawn(name, ['unshare', '-m', '--propagation', 'private', 'sh', '-c', script]);
    const out = createWriteStream(join(this.dir, `${name}.log`), { flags: 'a' });
    proc.stdout!.pipe(out);
    proc.stderr!.pipe(out);
    n.proc = proc;
    return proc;
  }

  async kill(name: string, signal: NodeJS.Signals = 'SIGKILL'): Promise<void> {
    const p = this.node(name).proc;
    if (!p || p.exitCode !== null || p.signalCode !== null) return;
    // `ip netns exec` and `sh` exec into node, so the child's pid is the daemon's
    await new Promise<void>((r) => {
      p.once('exit', () => r());
      p.kill(signal);
    });
  }

  /** An HTTP GET from a host of the LAN (curl in its namespace); undefined when nothing answers. */
  async get(from: string, url: string, headers: Record<string, string> = {}): Promise<{ status: number; body: string } | undefined> {
    const args = ['curl', '-s', '-m', '1', '-w', '\\n%{http_code}', ...Object.entries(headers).flatMap(([k, v]) => ['-H', `${k}: ${v}`]), url];
    const r = await this.lan.tryExec(from, args);
    const i = r.stdout.lastIndexOf('\n');
    const status = Number(r.stdout.slice(i + 1));
    if (!status) return undefined;
    return { status, body: r.stdout.slice(0, i) };
  }

  async status(name: string, from = name): Promise<ModuleStatus | undefined> {
    const r = await this.get(from, `http://${this.node(name).addr}:9010/api/v1/modules/${this.moduleName}`, { authorization: `Bearer ${this.token}` });
    return r?.status === 200 ? (JSON.parse(r.body) as ModuleStatus) : undefined;
  }

  async command(name: string, verb: string): Promise<{ status: number; body: string } | undefined> {
    const r = await this.lan.tryExec(name, ['curl', '-s', '-m', '5', '-w', '\\n%{http_code}', '-X', 'POST', '-H', `authorization: Bearer ${this.token}`, `http://${this.node(name).addr}:9010/api/v1/modules/${this.moduleName}/${verb}`]);
    const i = r.stdout.lastIndexOf('\n');
    return { status: Number(r.stdout.slice(i + 1)), body: r.stdout.slice(0, i) };
  }

  async waitFor(want: Readonly<Record<string, string>>, timeoutMs = 30_000): Promise<void> {
    await waitForStates(want, async (n) => (await this.status(n))?.state, { timeoutMs, everyMs: 100, hint: `logs in ${this.dir}` });
  }


  async destroy(opts: { keepDir?: boolean } = {}): Promise<void> {
    for (const n of this.nodes) await this.kill(n.name).catch(() => undefined);
    await this.lan.destroy();
    if (!opts.keepDir) rmSync(this.dir, { recursive: true, force: true });
  }
}
