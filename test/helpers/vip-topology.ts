import type { ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';
import { createLan, run, type Lan } from './netns.ts';

/**
 * The VIP test and benchmark topology: two cluster nodes, one client and one witness on one bridge,
 * 198.18.4.0/24 (RFC 2544 range), VIP 198.18.4.100. Each node runs a tiny HTTP server on :8080 that
 * answers its own name, so the client can tell which node the VIP leads to.
 */
export const SUBNET = '198.18.4';
export const VIP = `${SUBNET}.100`;
export const VIP_CIDR = `${VIP}/24`;
export const APP_PORT = 8080;
export const NODES = { n1: `${SUBNET}.1`, n2: `${SUBNET}.2` } as const;
export const CLIENT = `${SUBNET}.3`;
export const WITNESS = `${SUBNET}.9`;
export type NodeName = keyof typeof NODES;

export interface VipTopology {
  readonly lan: Lan;
  /** starts the HTTP "application" (answers the node name) on a node; killed by destroy() */
  startApp(node: NodeName, name?: string): ChildProcess;
  /** a plain HTTP server on the witness host (witness `http:` checks) answering 200 on / */
  startWitnessHttp(port?: number): ChildProcess;
  /** does this node hold the VIP right now (`ip addr` in its namespace)? */
  holdsVip(node: NodeName): Promise<boolean>;
  /** the client's ARP entry for the VIP */
  clientVipMac(): Promise<string | undefined>;
  destroy(): Promise<void>;
}

export async function createVipTopology(prefix: string): Promise<VipTopology> {
  const lan = await createLan(prefix, [
    { name: 'n1', addr: `${NODES.n1}/24` },
    { name: 'n2', addr: `${NODES.n2}/24` },
    { name: 'client', addr: `${CLIENT}/24` },
    { name: 'witness', addr: `${WITNESS}/24` },
  ]);
  const procs: ChildProcess[] = [];
  const node = (host: string, code: string) => {
    const c = lan.spawn(host, [process.execPath, '-e', code], { stdio: 'ignore' });
    procs.push(c);
    return c;
  };
  return {
    lan,
    startApp: (n, name = n) => node(n, `require('http').createServer((q, r) => r.end(${JSON.stringify(name)})).listen(${APP_PORT}, '0.0.0.0')`),
    startWitnessHttp: (port = 80) => node('witness', `require('http').createServer((q, r) => r.end('OK')).listen(${port}, '0.0.0.0')`),
    holdsVip: async (n) => (await run(['ip', '-n', lan.ns(n), '-4', '-o', 'addr', 'show', 'dev', 'eth0'])).includes(` ${VIP}/`),
    clientVipMac: async () => {
      const rows = JSON.parse((await lan.exec('client', ['ip', '-j', 'neigh', 'show', 'to', VIP])) || '[]') as { lladdr?: string }[];
      return rows[0]?.lladdr;
    },
    destroy: async () => {
      for (const p of procs) p.kill('SIGKILL');
      await lan.destroy();
    },
  };
}

/** One HTTP request of the client loop: start/end in epoch ms, the answering node's name or the error. */
export interface Sample {
  readonly s: number;
  readonly e: number;
  readonly ok: boolean;
  readonly b: string;
}

export interface ClientLoop {
  readonly samples: Sample[];
  /** resolves with the first sample that satisfies pred (or undefined at the deadline) */
  waitFor(pred: (s: Sample) => boolean, ms: number): Promise<Sample | undefined>;
  stop(): void;
}

/**
 * A request loop in the client namespace: a new connection (no keep-alive) every `period` ms, each
 * with its own `timeout`, so a request lost to the dead node does not delay the next one. Times come
 * from the same host clock as the caller's Date.now().
 */
export function startClientLoop(lan: Lan, opts: { url?: string; period?: number; timeout?: number } = {}): ClientLoop {
  const url = opts.url ?? `http://${VIP}:${APP_PORT}/`;
  const code = `
    const http = require('http');
    const out = (s, ok, b) => process.stdout.write(JSON.stringify({ s, e: Date.now(), ok, b }) + '\\n');
    setInterval(() => {
      const s = Date.now();
      let done = false;
      const fin = (ok, b) => { if (!done) { done = true; out(s, ok, b); } };
      const req = http.get(${JSON.stringify(url)}, { agent: false, timeout: ${opts.timeout ?? 1000} }, (res) => {
        let b = '';
        res.on('data', (d) => (b += d));
        res.on('end', () => fin(res.statusCode === 200, b.trim()));
        res.on('error', (e) => fin(false, e.code || e.message));
      });
      req.on('timeout', () => req.destroy(Object.assign(new Error('timeout'), { code: 'TIMEOUT' })));
      req.on('error', (e) => fin(false, e.code || e.message));
    }, ${opts.period ?? 20});
  `;
  const child = lan.spawn('client', [process.execPath, '-e', code]);
  const samples: Sample[] = [];
  const waiters = new Set<{ pred: (s: Sample) => boolean; resolve: (s: Sample | undefined) => void }>();
  createInterface({ input: child.stdout! }).on('line', (line) => {
    let s: Sample;
    try {
      s = JSON.parse(line) as Sample;
    } catch {
      return;
    }
    samples.push(s);
    for (const w of waiters) {
      if (w.pred(s)) {
        waiters.delete(w);
        w.resolve(s);
      }
    }
  });
  return {
    samples,
    waitFor: (pred, ms) => {
      const hit = samples.find(pred);
      if (hit) return Promise.resolve(hit);
      return new Promise((resolve) => {
        const w = { pred, resolve: (s: Sample | undefined) => { clearTimeout(t); resolve(s); } };
        const t = setTimeout(() => { waiters.delete(w); resolve(undefined); }, ms);
        waiters.add(w);
      });
    },
    stop: () => {
      child.kill('SIGKILL');
    },
  };
}

/**
 * Outage as a client sees it: from the cut to the end of the first successful request answered by
 * `by` among those started after the cut.
 */
export function outageMs(samples: readonly Sample[], cutAt: number, by: string): number | undefined {
  const first = samples.filter((x) => x.ok && x.b === by && x.s >= cutAt).sort((a, b) => a.e - b.e)[0];
  return first ? first.e - cutAt : undefined;
}

export function median(xs: readonly number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? s[m] : Math.round((s[m - 1] + s[m]) / 2);
}

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Polls `pred` every `step` ms until it holds (true) or `ms` have passed (false); a throw counts as false. */
export async function waitUntil(pred: () => Promise<boolean>, ms: number, step = 50): Promise<boolean> {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (await pred().catch(() => false)) return true;
    await sleep(step);
  }
  return false;
}

/**
 * Who holds the VIP, from `ip -o monitor address` in each node namespace: every add and delete with
 * the host time it was seen, so an overlap shorter than any sampling period is still caught.
 */
export interface VipWatch {
  /** ms during which both nodes held the VIP, and how many times that began */
  readonly overlapMs: number;
  readonly overlaps: number;
  readonly events: readonly { t: number; node: NodeName; held: boolean }[];
  holds(node: NodeName): boolean;
  stop(): void;
}

export async function watchVip(topo: VipTopology): Promise<VipWatch> {
  const state: Record<NodeName, boolean> = { n1: false, n2: false };
  const events: { t: number; node: NodeName; held: boolean }[] = [];
  let overlapMs = 0;
  let overlaps = 0;
  let since: number | undefined;
  const set = (node: NodeName, held: boolean) => {
    if (state[node] === held) return;
    const t = Date.now();
    state[node] = held;
    events.push({ t, node, held });
    const both = state.n1 && state.n2;
    if (both && since === undefined) {
      since = t;
      overlaps += 1;
    } else if (!both && since !== undefined) {
      overlapMs += t - since;
      since = undefined;
    }
  };
  const procs = (['n1', 'n2'] as const).map((node) => {
    const p = topo.lan.spawn(node, ['ip', '-o', 'monitor', 'address']);
    createInterface({ input: p.stdout! }).on('line', (line) => {
      if (!line.includes(` ${VIP}/`)) return;
      set(node, !line.startsWith('Deleted'));
    });
    return p;
  });
  await sleep(200); // monitors subscribed before the snapshot
  for (const n of ['n1', 'n2'] as const) set(n, await topo.holdsVip(n));
  return {
    get overlapMs() {
      return overlapMs + (since !== undefined ? Date.now() - since : 0);
    },
    get overlaps() {
      return overlaps;
    },
    events,
    holds: (n) => state[n],
    stop: () => {
      for (const p of procs) p.kill('SIGKILL');
    },
  };
}

/** Rounds of ready.txt requests to both nodes every `period` ms from the client namespace. */
export interface ReadyPoller {
  readonly rounds: readonly { t: number; n1: number; n2: number }[];
  stop(): void;
}

export function pollReady(lan: Lan, url: (node: NodeName) => string, period = 50): ReadyPoller {
  const code = `
    const http = require('http');
    const get = (u) => new Promise((res) => {
      const req = http.get(u, { agent: false, timeout: 500 }, (r) => { r.resume(); res(r.statusCode); });
      req.on('timeout', () => req.destroy(new Error('timeout')));
      req.on('error', () => res(0));
    });
    (async () => {
      for (;;) {
        const t = Date.now();
        const [n1, n2] = await Promise.all([get(${JSON.stringify(url('n1'))}), get(${JSON.stringify(url('n2'))})]);
        process.stdout.write(JSON.stringify({ t, n1, n2 }) + '\\n');
        await new Promise((r) => setTimeout(r, Math.max(0, ${period} - (Date.now() - t))));
      }
    })();
  `;
  const child = lan.spawn('client', [process.execPath, '-e', code]);
  const rounds: { t: number; n1: number; n2: number }[] = [];
  createInterface({ input: child.stdout! }).on('line', (line) => {
    try {
      rounds.push(JSON.parse(line) as { t: number; n1: number; n2: number });
    } catch {
      /* partial line */
    }
  });
  return { rounds, stop: () => child.kill('SIGKILL') };
}
