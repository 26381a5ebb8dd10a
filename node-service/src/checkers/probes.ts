import { spawnDetached } from '../scripts/spawn-detached.ts';
import { readdirSync, readFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { connect } from 'node:net';
import type { ProbeOutcome } from './poll.ts';

/** "host:port" or "[v6]:port". */
export function splitHostPort(target: string): { host: string; port: number } {
  const i = target.lastIndexOf(':');
  let host = target.slice(0, i);
  if (host.startsWith('[') && host.endsWith(']')) host = host.slice(1, -1);
  return { host, port: Number(target.slice(i + 1)) };
}

/** tcp: a connection accepted within the timeout. */
export function tcpProbe(target: string): (signal: AbortSignal) => Promise<ProbeOutcome> {
  const { host, port } = splitHostPort(target);
  return (signal) =>
    new Promise((resolve) => {
      const sock = connect({ host, port });
      const done = (o: ProbeOutcome) => {
        sock.destroy();
        signal.removeEventListener('abort', onAbort);
        resolve(o);
      };
      const onAbort = () => done({ ok: false, reason: `connect ${target}: aborted` });
      signal.addEventListener('abort', onAbort);
      sock.once('connect', () => done({ ok: true, reason: `connected to ${target}` }));
      sock.once('error', (e: NodeJS.ErrnoException) => done({ ok: false, reason: `connect ${target}: ${e.code ?? e.message}` }));
    });
}

export interface CommandResult {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
  readonly output: string;
}

/**
 * Runs argv in its own process group; on abort the whole group is killed (a script's children too).
 * Output is capped to the last 4 KiB.
 */
export function runCommand(argv: readonly string[], signal: AbortSignal, env?: NodeJS.ProcessEnv): Promise<CommandResult> {
  return new Promise((resolve, reject) => {
    const child = spawnDetached(argv, { env });
    let output = '';
    const keep = (b: Buffer) => {
      output = (output + b.toString()).slice(-4096);
    };
    child.stdout.on('data', keep);
    child.stderr.on('data', keep);
    const kill = () => {
      try {
        if (child.pid) process.kill(-child.pid, 'SIGKILL');
      } catch {
        /* already gone */
      }
    };
    if (signal.aborted) kill();
    signal.addEventListener('abort', kill, { once: true });
    child.once('error', (e) => {
      signal.removeEventListener('abort', kill);
      reject(e);
    });
    child.once('close', (code, sig) => {
      signal.removeEventListener('abort', kill);
      resolve({ code, signal: sig, output: output.trim() });
    });
  });
}

function lastLine(s: string): string {
  const lines = s.split('\n').filter((l) => l.trim() !== '');
  return lines.length ? lines[lines.length - 1].slice(0, 200) : '';
}

/** ping: one ICMP echo answered within the timeout (`ping -c1 -W`). */
export function pingProbe(target: string, timeoutMs: number, prefix: readonly string[] = []): (signal: AbortSignal) => Promise<ProbeOutcome> {
  // ping gives up a little before the poller's timeout so that its own reason is reported
  const wait = Math.max(0.1, (timeoutMs * 0.8) / 1000).toFixed(1);
  return async (signal) => {
    const r = await runCommand([...prefix, 'ping', '-n', '-q', '-c', '1', '-W', wait, target], signal);
    return r.code === 0 ? { ok: true, reason: `${target} answers ping` } : { ok: false, reason: `${target} does not answer ping${r.output ? `: ${lastLine(r.output)}` : ''}` };
  };
}

/** script: exit status 0 within the timeout. */
export function scriptProbe(command: string, prefix: readonly string[] = [], env?: NodeJS.ProcessEnv): (signal: AbortSignal) => Promise<ProbeOutcome> {
  return async (signal) => {
    const r = await runCommand([...prefix, '/bin/sh', '-c', command], signal, env);
    if (r.code === 0) return { ok: true, reason: `script exited 0` };
    const why = r.code !== null ? `exit status ${r.code}` : `killed by ${r.signal}`;
    const tail = lastLine(r.output);
    return { ok: false, reason: `script ${why}${tail ? `: ${tail}` : ''}` };
  };
}

export interface LinkState {
  readonly exists: boolean;
  readonly operstate: string;
  /** undefined when the kernel cannot tell (interface down) */
  readonly carrier: boolean | undefined;
}

/** Reads /sys/class/net/<if>/{operstate,carrier} (sysfs of the current network namespace). */
export async function readLinkSysfs(ifname: string): Promise<LinkState> {
  try {
    const operstate = (await readFile(`/sys/class/net/${ifname}/operstate`, 'utf8')).trim();
    const carrier = await readFile(`/sys/class/net/${ifname}/carrier`, 'utf8').then((s) => s.trim() === '1', () => undefined);
    return { exists: true, operstate, carrier };
  } catch {
    return { exists: false, operstate: 'absent', carrier: undefined };
  }
}

/** The same through `ip -n NS -j link show` (for an interface in another namespace). */
export async function readLinkIp(ifname: string, netns: string, signal: AbortSignal): Promise<LinkState> {
  const r = await runCommand(['ip', '-n', netns, '-j', 'link', 'show', 'dev', ifname], signal);
  if (r.code !== 0) return { exists: false, operstate: 'absent', carrier: undefined };
  const [l] = JSON.parse(r.output) as { operstate: string; flags: string[] }[];
  const up = l.flags.includes('UP');
  return { exists: true, operstate: l.operstate.toLowerCase(), carrier: up ? !l.flags.includes('NO-CARRIER') : undefined };
}

/** interface: administratively up, with carrier (operstate "unknown" is fine for loopback and tun). */
export function linkOutcome(ifname: string, s: LinkState): ProbeOutcome {
  if (!s.exists) return { ok: false, reason: `interface ${ifname} does not exist` };
  if (s.carrier === false) return { ok: false, reason: `interface ${ifname} has no carrier (link down)` };
  if (s.carrier === undefined || ['down', 'lowerlayerdown', 'notpresent'].includes(s.operstate)) {
    return { ok: false, reason: `interface ${ifname} is ${s.operstate}` };
  }
  return { ok: true, reason: `interface ${ifname} is ${s.operstate}` };
}

export interface ProcInfo {
  readonly pid: number;
  /** /proc/PID/comm, the kernel's name (at most 15 characters); '' when listProcesses was not asked for it */
  readonly comm: string;
  readonly argv: readonly string[];
}

/**
 * Live user processes from /proc. Only /proc/PID/cmdline is read (comm only when asked): /proc/PID/stat
 * is much dearer for the kernel. A zombie (killed, not yet reaped) and a kernel thread have an empty
 * command line, so they never count. Synchronous on purpose: procfs answers from memory, and hundreds
 * of small reads through the libuv thread pool take far longer on a loaded machine.
 */
export function listProcesses(withComm = false): ProcInfo[] {
  const res: ProcInfo[] = [];
  for (const d of readdirSync('/proc')) {
    const c0 = d.charCodeAt(0);
    if (c0 < 48 || c0 > 57) continue;
    try {
      const raw = readFileSync(`/proc/${d}/cmdline`, 'utf8');
      if (raw.length === 0) continue;
      const argv = raw.replace(/\0$/, '').split('\0');
      const comm = withComm ? readFileSync(`/proc/${d}/comm`, 'utf8').trim() : '';
      res.push({ pid: Number(d), comm, argv });
    } catch {
      /* exited while we looked */
    }
  }
  return res;
}

/**
 * Does this process match? Plain: the name equals the base name of argv[0] or the kernel's `comm`
 * (15 characters at most; read only when argv[0] does not match). Regex: tested against the whole
 * command line joined by spaces.
 */
export function processMatcher(match: string, regex: boolean): (p: ProcInfo) => boolean {
  if (regex) {
    const re = new RegExp(match);
    return (p) => re.test(p.argv.join(' '));
  }
  return (p) => {
    if (p.argv[0] !== undefined && p.argv[0].split('/').pop() === match) return true;
    if (p.comm) return p.comm === match;
    try {
      return readFileSync(`/proc/${p.pid}/comm`, 'utf8').trim() === match;
    } catch {
      return false;
    }
  };
}

export function processProbe(cfg: { match: string; regex: boolean; at_least: number; at_most?: number }): () => Promise<ProbeOutcome> {
  const matches = processMatcher(cfg.match, cfg.regex);
  const self = process.pid;
  return async () => {
    const found = listProcesses().filter((p) => p.pid !== self && matches(p));
    const n = found.length;
    const what = `${n} process${n === 1 ? '' : 'es'} matching ${cfg.regex ? `/${cfg.match}/` : `"${cfg.match}"`}`;
    if (n < cfg.at_least) return { ok: false, reason: `${what}, at least ${cfg.at_least} required` };
    if (cfg.at_most !== undefined && n > cfg.at_most) return { ok: false, reason: `${what}, at most ${cfg.at_most} allowed` };
    return { ok: true, reason: `${what}${n ? ` (pid ${found.slice(0, 5).map((p) => p.pid).join(', ')})` : ''}` };
  };
}
