import { execFile, execFileSync, spawn, type ChildProcess, type SpawnOptions } from 'node:child_process';
import { promisify } from 'node:util';

const execFileP = promisify(execFile);

/**
 * A throw-away LAN made of network namespaces: one "switch" namespace holding a bridge, one namespace
 * per host, each joined to the bridge by a veth pair. Addresses come from 198.18.0.0/15 and nothing is
 * ever linked to the host's own namespace. Always call destroy() (also registered on exit and Ctrl-C).
 */
export interface HostSpec {
  readonly name: string;
  /** e.g. "198.18.4.1/24" */
  readonly addr: string;
}

export interface Lan {
  readonly prefix: string;
  readonly hosts: ReadonlyMap<string, HostInfo>;
  ns(host: string): string;
  /** runs a command inside a host's namespace and returns stdout (throws on non-zero exit) */
  exec(host: string, cmd: string[], opts?: { timeoutMs?: number }): Promise<string>;
  /** the same, but never throws: returns the exit code */
  tryExec(host: string, cmd: string[]): Promise<{ code: number; stdout: string; stderr: string }>;
  spawn(host: string, cmd: string[], opts?: SpawnOptions): ChildProcess;
  /** takes the host's link down on the switch side: the host is cut off, its own interface stays up */
  cut(host: string): Promise<void>;
  restore(host: string): Promise<void>;
  mac(host: string): Promise<string>;
  destroy(): Promise<void>;
}

export interface HostInfo {
  readonly ns: string;
  readonly addr: string;
  /** interface name inside the host namespace */
  readonly ifname: string;
  /** the switch-side end of the veth */
  readonly port: string;
}

const live = new Set<Lan>();
let hooked = false;

function hookExit(): void {
  if (hooked) return;
  hooked = true;
  const sync = () => {
    for (const lan of live) destroySync(lan);
  };
  process.on('exit', sync);
  for (const sig of ['SIGINT', 'SIGTERM'] as const) {
    process.on(sig, () => {
      sync();
      process.exit(130);
    });
  }
}

function destroySync(lan: Lan): void {
  for (const h of lan.hosts.values()) {
    try {
      execFileSync('ip', ['netns', 'pids', h.ns]).toString().split(/\s+/).filter(Boolean).forEach((p) => {
        try { process.kill(Number(p), 'SIGKILL'); } catch { /* gone */ }
      });
    } catch { /* ns gone */ }
    try { execFileSync('ip', ['netns', 'del', h.ns], { stdio: 'ignore' }); } catch { /* gone */ }
  }
  try { execFileSync('ip', ['netns', 'del', `${lan.prefix}sw`], { stdio: 'ignore' }); } catch { /* gone */ }
}

export async function run(cmd: string[], timeoutMs = 20_000): Promise<string> {
  const { stdout } = await execFileP(cmd[0], cmd.slice(1), { timeout: timeoutMs, maxBuffer: 16 << 20 });
  return stdout;
}

/**
 * prefix: a short unique tag (≤ 5 chars, e.g. "vgv") so parallel suites never collide; leftovers from a
 * previous crashed run with the same prefix are removed first.
 */
export async function createLan(prefix: string, hosts: readonly HostSpec[]): Promise<Lan> {
  if (!/^[a-z][a-z0-9]{1,4}$/.test(prefix)) throw new Error(`netns prefix "${prefix}" must be 2-5 lowercase letters/digits`);
  for (const h of hosts) {
    if (!h.addr.startsWith('198.18.') && !h.addr.startsWith('198.19.')) throw new Error(`${h.addr}: test addresses must be in 198.18.0.0/15`);
  }
  await removeLeftovers(prefix);
  hookExit();
  const sw = `${prefix}sw`;
  const infos = new Map<string, HostInfo>();
  const lan: Lan = {
    prefix,
    hosts: infos,
    ns: (h) => info(h).ns,
    exec: async (h, cmd, opts) => run(['ip', 'netns', 'exec', info(h).ns, ...cmd], opts?.timeoutMs),
    tryExec: (h, cmd) =>
      new Promise((resolve) => {
        execFile('ip', ['netns', 'exec', info(h).ns, ...cmd], { timeout: 20_000 }, (err, stdout, stderr) => {
          resolve({ code: err ? (typeof (err as { code?: unknown }).code === 'number' ? ((err as { code: number }).code) : 1) : 0, stdout, stderr });
        });
      }),
    spawn: (h, cmd, opts) => spawn('ip', ['netns', 'exec', info(h).ns, ...cmd], { stdio: ['ignore', 'pipe', 'pipe'], ...opts }),
    cut: async (h) => { await run(['ip', '-n', sw, 'link', 'set', info(h).port, 'down']); },
    restore: async (h) => { await run(['ip', '-n', sw, 'link', 'set', info(h).port, 'up']); },
    mac: async (h) => {
      const out = await run(['ip', '-n', info(h).ns, '-j', 'link', 'show', info(h).ifname]);
      return (JSON.parse(out) as { address: string }[])[0].address;
    },
    destroy: async () => {
      destroySync(lan);
      live.delete(lan);
    },
  };
  function info(h: string): HostInfo {
    const i = infos.get(h);
    if (!i) throw new Error(`no host "${h}" in this LAN`);
    return i;
  }
  live.add(lan);
  try {
    await run(['ip', 'netns', 'add', sw]);
    await run(['ip', '-n', sw, 'link', 'add', 'br0', 'type', 'bridge', 'stp_state', '0', 'forward_delay', '0']);
    await run(['ip', '-n', sw, 'link', 'set', 'br0', 'up']);
    await run(['ip', '-n', sw, 'link', 'set', 'lo', 'up']);
    let i = 0;
    for (const h of hosts) {
      const ns = `${prefix}-${h.name}`;
      const port = `p${i}`;
      const ifname = 'eth0';
      i += 1;
      await run(['ip', 'netns', 'add', ns]);
      // Create the pair inside the switch namespace, then move one end: nothing touches the host namespace.
      await run(['ip', '-n', sw, 'link', 'add', port, 'type', 'veth', 'peer', 'name', `${port}h`]);
      await run(['ip', '-n', sw, 'link', 'set', `${port}h`, 'netns', ns]);
      await run(['ip', '-n', ns, 'link', 'set', `${port}h`, 'name', ifname]);
      await run(['ip', '-n', sw, 'link', 'set', port, 'master', 'br0']);
      await run(['ip', '-n', sw, 'link', 'set', port, 'up']);
      await run(['ip', '-n', ns, 'addr', 'add', h.addr, 'dev', ifname]);
      await run(['ip', '-n', ns, 'link', 'set', ifname, 'up']);
      await run(['ip', '-n', ns, 'link', 'set', 'lo', 'up']);
      infos.set(h.name, { ns, addr: h.addr.split('/')[0], ifname, port });
    }
  } catch (e) {
    await lan.destroy();
    throw e;
  }
  return lan;
}

async function removeLeftovers(prefix: string): Promise<void> {
  const out = await run(['ip', 'netns', 'list']).catch(() => '');
  for (const line of out.split('\n')) {
    const ns = line.split(' ')[0];
    if (ns === `${prefix}sw` || ns.startsWith(`${prefix}-`)) {
      await run(['ip', 'netns', 'del', ns]).catch(() => undefined);
    }
  }
}
