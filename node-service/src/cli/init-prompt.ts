import { networkInterfaces, hostname } from 'node:os';
import { createInterface } from 'node:readline';
import { CliError } from './client.ts';
import { parseNodeSpec, type InitNode } from './init-plan.ts';

/** The answers a flag did not give; asked one by one. */
export interface InitDraft {
  cluster?: string;
  nodes: InitNode[];
  module?: string;
  mode?: 'mirror' | 'farm';
  vip?: string;
  iface?: string;
  replicate?: string[];
}

/** This host's first non-loopback IPv4 address and its interface, to suggest as node 1. */
function localAddress(): { addr: string; iface: string } | undefined {
  for (const [iface, list] of Object.entries(networkInterfaces())) {
    const a = (list ?? []).find((x) => x.family === 'IPv4' && !x.internal);
    if (a) return { addr: a.address, iface };
  }
  return undefined;
}

/**
 * Asks on stdin/stdout for what is missing. Lines are read through the async iterator, which buffers
 * them, so answers piped in ahead of the questions (a script, a test) are not lost. A blank answer
 * takes the default shown in brackets.
 */
export async function askMissing(p: InitDraft): Promise<InitDraft> {
  const rl = createInterface({ input: process.stdin, terminal: false });
  const lines = rl[Symbol.asyncIterator]();
  const ask = async (question: string, def?: string): Promise<string> => {
    process.stdout.write(`${question}${def ? ` [${def}]` : ''}: `);
    const r = await lines.next();
    if (r.done) throw new CliError(`input ended before the answer to "${question}" (or give it as a flag: vigil init --help)`);
    const v = String(r.value).trim();
    return v === '' ? (def ?? '') : v;
  };
  try {
    const here = localAddress();
    p.cluster ??= await ask('Cluster name', 'vigil');
    p.mode ??= await askMode(ask);
    if (p.nodes.length === 0) {
      p.nodes.push(parseNodeSpec(await ask('This node, NAME=ADDRESS (the address of its heartbeat network)', here ? `${hostname().split('.')[0]}=${here.addr}` : undefined)));
      p.nodes.push(parseNodeSpec(await ask('The other node, NAME=ADDRESS')));
      if (p.mode === 'farm') {
        for (;;) {
          const more = await ask('Another node, NAME=ADDRESS (blank when done)', '');
          if (more === '') break;
          p.nodes.push(parseNodeSpec(more));
        }
      }
    }
    p.module ??= await ask('Module name (the application it protects)', p.mode === 'mirror' ? 'app' : 'web');
    if (p.vip === undefined) {
      const vip = await ask('Virtual IP as ADDRESS/PREFIX (blank for none: a load balancer probes the health URL)', '');
      if (vip !== '') p.vip = vip;
    }
    if (p.vip !== undefined && p.iface === undefined) p.iface = await ask('Interface that carries the virtual IP', here?.iface ?? 'eth0');
    if (p.mode === 'mirror' && p.replicate === undefined) {
      const d = await ask('Directory to replicate synchronously (blank for none)', '');
      p.replicate = d === '' ? [] : [d];
    }
    return p;
  } finally {
    rl.close();
  }
}

async function askMode(ask: (q: string, d?: string) => Promise<string>): Promise<'mirror' | 'farm'> {
  const m = await ask('Mode: mirror (active/passive, replicated) or farm (active/active)', 'mirror');
  if (m !== 'mirror' && m !== 'farm') throw new CliError(`mode "${m}": answer mirror or farm`);
  return m;
}
