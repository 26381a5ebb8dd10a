import { execFile } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { isIP } from 'node:net';
import { GarpSocket } from './garp.ts';

/** Runs a command and resolves with its stdout; rejects with an Error carrying stderr. */
export type Exec = (cmd: string, args: readonly string[]) => Promise<string>;

export const execCommand: Exec = (cmd, args) =>
  new Promise((resolve, reject) => {
    execFile(cmd, args as string[], { timeout: 5000, maxBuffer: 8 << 20 }, (err, stdout, stderr) => {
      if (err) {
        const detail = String(stderr || err.message).trim();
        reject(Object.assign(new Error(`${cmd} ${args.join(' ')}: ${detail}`), { stderr: String(stderr ?? '') }));
      } else resolve(String(stdout));
    });
  });

/** A VIP as the kernel sees it: canonical address text, prefix, family, interface. */
export interface Vip {
  /** as configured, e.g. "198.18.4.100/24" */
  readonly text: string;
  readonly addr: string;
  readonly prefix: number;
  readonly family: 4 | 6;
  readonly dev: string;
}

export function canonicalAddr(addr: string): string {
  if (isIP(addr) !== 6) return addr;
  return new URL(`http://[${addr}]/`).hostname.slice(1, -1);
}

export function parseVip(text: string, dev: string): Vip {
  const [addr, prefixText] = text.split('/');
  const family = isIP(addr);
  if (family === 0 || prefixText === undefined) throw new Error(`VIP "${text}" must be an address with its prefix length`);
  return { text, addr: canonicalAddr(addr), prefix: Number(prefixText), family: family as 4 | 6, dev };
}

export interface HeldAddr {
  readonly dev: string;
  readonly addr: string;
  readonly prefix: number;
  readonly family: 4 | 6;
  /** IPv6: still doing duplicate address detection, or DAD failed (not usable) */
  readonly tentative: boolean;
  readonly dadfailed: boolean;
}

interface IpJsonLink {
  ifname: string;
  addr_info?: { family: string; local: string; prefixlen: number; tentative?: boolean; dadfailed?: boolean }[];
}

/** Every address on every interface of the current network namespace (`ip -j addr show`). */
export async function listAddrs(exec: Exec): Promise<HeldAddr[]> {
  const out = await exec('ip', ['-j', 'addr', 'show']);
  const links = JSON.parse(out || '[]') as IpJsonLink[];
  const res: HeldAddr[] = [];
  for (const l of links) {
    for (const a of l.addr_info ?? []) {
      if (a.family !== 'inet' && a.family !== 'inet6') continue;
      res.push({
        dev: l.ifname,
        addr: canonicalAddr(a.local),
        prefix: a.prefixlen,
        family: a.family === 'inet' ? 4 : 6,
        tentative: a.tentative === true,
        dadfailed: a.dadfailed === true,
      });
    }
  }
  return res;
}

export function holds(addrs: readonly HeldAddr[], v: Vip): HeldAddr | undefined {
  return addrs.find((a) => a.dev === v.dev && a.addr === v.addr && a.family === v.family);
}

/**
 * Reads /proc/sys/net/<path>; undefined when it does not exist. Synchronous on purpose: procfs never
 * waits for a disk, and libuv's pool, where an async read would queue, is full of the fsyncs of every
 * module taking over at the same time (the VIP step then waited up to 1.5 s for a sysctl).
 */
export async function readSysctl(path: string): Promise<string | undefined> {
  try {
    return readFileSync(`/proc/sys/net/${path}`, 'utf8').trim();
  } catch {
    return undefined;
  }
}

export async function writeSysctl(path: string, value: string): Promise<boolean> {
  try {
    writeFileSync(`/proc/sys/net/${path}`, value);
    return true;
  } catch {
    return false;
  }
}

/**
 * Where the VIP commands run. The daemon uses the current namespace; tests (and an operator who keeps
 * the service interface in a named namespace) can point everything at `ip netns exec NAME`.
 */
export interface Sys {
  readonly exec: Exec;
  readSysctl(path: string): Promise<string | undefined>;
  writeSysctl(path: string, value: string): Promise<boolean>;
  /** argv prefix that runs arping */
  readonly arping: readonly string[];
  /** the daemon's own packet socket for gratuitous ARP (no process per packet); undefined: arping is run */
  readonly garp?: GarpSocket;
  /** argv of a long-lived `ip -force -batch -` in the same namespace */
  readonly ipBatch: readonly string[];
}

/** opened once for the process: every module's VIPs are on this namespace's interfaces */
let garpSocket: GarpSocket | null | undefined;

export function localSys(exec: Exec = execCommand, arping = 'arping'): Sys {
  if (garpSocket === undefined) garpSocket = GarpSocket.open() ?? null;
  return { exec, readSysctl, writeSysctl, arping: [arping], garp: garpSocket ?? undefined, ipBatch: ['ip', '-force', '-batch', '-'] };
}

/**
 * /proc/sys/net belongs to the opener's namespace, so sysctls go through `sysctl` inside the namespace;
 * gratuitous ARP through `arping` there (a packet socket of ours would send in our own namespace).
 */
export function netnsSys(ns: string): Sys {
  const exec: Exec = (cmd, args) => execCommand('ip', ['netns', 'exec', ns, cmd, ...args]);
  return {
    exec,
    readSysctl: (path) => exec('sysctl', ['-n', `net/${path}`]).then((s) => s.trim(), () => undefined),
    writeSysctl: (path, value) => exec('sysctl', ['-q', '-w', `net/${path}=${value}`]).then(() => true, () => false),
    arping: ['ip', 'netns', 'exec', ns, 'arping'],
    ipBatch: ['ip', '-n', ns, '-force', '-batch', '-'],
  };
}
