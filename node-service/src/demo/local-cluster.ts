import { type ChildProcess, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chmodSync, createWriteStream, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { toYaml } from '../config/emit.ts';
import type { RawCluster } from '../config/schema.ts';
import type { ModuleStatus } from '../daemon/module-runner.ts';
import { waitForStates } from './wait-for.ts';

const VIGIL_BIN = resolve(dirname(fileURLToPath(import.meta.url)), '../../../bin/vigil.mjs');

type RawModule = NonNullable<RawCluster['modules']>[number];

export interface LocalClusterOptions {
  /** node count (2 for mirror) */
  readonly nodes?: number;
  readonly module?: Partial<RawModule>;
  /** script name → shell script body, written executable into the module's scripts_dir */
  readonly scripts?: Readonly<Record<string, string>>;
  /** a loopback /24 of its own (127.X.Y.0), so several clusters never share addresses or ports */
  readonly subnet?: string;
  readonly apiPort?: number;
  readonly dir?: string;
}

export interface LocalNode {
  readonly name: string;
  readonly addr: string;
  proc?: ChildProcess;
  readonly logFile: string;
}

/**
 * A cluster of real daemons on one machine: every node gets its own loopback address (Linux routes
 * all of 127.0.0.0/8 to lo), so each binds the same ports, as on separate servers.
 */
export class LocalCluster {
  readonly dir: string;
  readonly configFile: string;
  readonly token: string;
  readonly nodes: LocalNode[];
  readonly moduleName: string;
  readonly apiPort: number;
  readonly scriptsDir: string;

  constructor(o: LocalClusterOptions = {}) {
    this.dir = o.dir ?? mkdtempSync(join(tmpdir(), 'vigil-'));
    mkdirSync(this.dir, { recursive: true });
    const subnet = o.subnet ?? `127.${10 + (randomBytes(1)[0] % 200)}.${randomBytes(1)[0]}`;
    const count = o.nodes ?? 2;
    this.nodes = Array.from({ length: count }, (_, i) => ({ name: `node${i + 1}`, addr: `${subnet}.${i + 1}`, logFile: join(this.dir, `node${i + 1}.log`) }));
    this.apiPort = o.apiPort ?? 9010;
    this.token = randomBytes(16).toString('hex');
    const secretFile = join(this.dir, 'cluster.key');
    writeFileSync(secretFile, randomBytes(32).toString('base64'), { mode: 0o600 });
    const tokenFile = join(this.dir, 'admin.token');
    writeFileSync(tokenFile, this.token, { mode: 0o600 });
    this.scriptsDir = join(this.dir, 'scripts');
    mkdirSync(this.scriptsDir, { recursive: true });
    for (const [name, body] of Object.entries(o.scripts ?? {})) {
      const f = join(this.scriptsDir, name);
      writeFileSync(f, `#!/bin/sh\n${body}\n`);
      chmodSync(f, 0o755);
    }
    this.moduleName = o.module?.name ?? 'app';
    const raw: RawCluster = {
      cluster: 'local',
      secret_file: secretFile,
      state_dir: join(this.dir, 'state'),
      api: { port: this.apiPort, admin_token_file: tokenFile },
      nodes: this.nodes.map((n) => ({ name: n.name, addrs: [n.addr] })),
      modules: [
        {
          name: this.moduleName,
          mode: 'mirror',
          id: 1,
          heartbeat: { pulse: '100ms', timeout: '1s' },
          scripts_dir: this.scriptsDir,
          ...o.module,
        } as RawModule,
      ],
    };
    this.configFile = join(this.dir, 'cluster.yaml');
    writeFileSync(this.configFile, toYaml(raw));
  }

  node(name: string): LocalNode {
    const n = this.nodes.find((x) => x.name === name);
    if (!n) throw new Error(`no node ${name}`);
    return n;
  }

  /** starts a node's daemon as a separate process; each node keeps its own state dir */
  start(name: string, env: NodeJS.ProcessEnv = {}): ChildProcess {
    const n = this.node(name);
    const out = createWriteStream(n.logFile, { flags: 'a' });
    const stateDir = join(this.dir, 'state', name);
    mkdirSync(stateDir, { recursive: true });
    const proc = spawn(process.execPath, [VIGIL_BIN, 'daemon', '--config', this.nodeConfig(name), '--node', name], {
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, ...env },
    });
    proc.stdout!.pipe(out);
    proc.stderr!.pipe(out);
    n.proc = proc;
    return proc;
  }

  /** each node gets its own copy of the config whose state_dir is its own (same file otherwise) */
  private nodeConfig(name: string): string {
    const file = join(this.dir, `cluster-${name}.yaml`);
    const text = readText(this.configFile).replace(/^state_dir: .*$/m, `state_dir: ${join(this.dir, 'state', name)}`);
    writeFileSync(file, text);
    return file;
  }

  kill(name: string, signal: NodeJS.Signals = 'SIGKILL'): Promise<void> {
    const p = this.node(name).proc;
    if (!p || p.exitCode !== null || p.signalCode !== null) return Promise.resolve();
    return new Promise((r) => {
      p.once('exit', () => r());
      p.kill(signal);
    });
  }

  url(name: string, path: string): string {
    return `http://${this.node(name).addr}:${this.apiPort}${path}`;
  }

  async ready(name: string): Promise<boolean> {
    try {
      const r = await fetch(this.url(name, `/var/modules/${this.moduleName}/ready.txt`), { signal: AbortSignal.timeout(1000) });
      await r.text();
      return r.status === 200;
    } catch {
      return false;
    }
  }

  async status(name: string): Promise<ModuleStatus | undefined> {
    try {
      const r = await fetch(this.url(name, `/api/v1/modules/${this.moduleName}`), { headers: { authorization: `Bearer ${this.token}` }, signal: AbortSignal.timeout(1000) });
      return r.status === 200 ? ((await r.json()) as ModuleStatus) : undefined;
    } catch {
      return undefined;
    }
  }

  async command(name: string, verb: string, body: object = {}): Promise<{ status: number; body: { ok?: boolean; message?: string; error?: string } }> {
    const r = await fetch(this.url(name, `/api/v1/modules/${this.moduleName}/${verb}`), {
      method: 'POST',
      headers: { authorization: `Bearer ${this.token}`, 'content-type': 'application/json' },
      body: JSON.stringify(body),
    });
    return { status: r.status, body: (await r.json()) as { ok?: boolean; message?: string } };
  }

  /** polls until every named node reports the wanted state */
  async waitFor(want: Readonly<Record<string, string>>, timeoutMs = 20_000): Promise<void> {
    await waitForStates(want, async (n) => (await this.status(n))?.state, { timeoutMs, everyMs: 50 });
  }


  async destroy(opts: { keepDir?: boolean } = {}): Promise<void> {
    await Promise.all(this.nodes.map((n) => this.kill(n.name, 'SIGKILL')));
    if (!opts.keepDir) rmSync(this.dir, { recursive: true, force: true });
  }
}

function readText(f: string): string {
  return readFileSync(f, 'utf8');
}
