import { type ChildProcess, spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { createInterface } from 'node:readline';
import { run } from '../node-service/src/demo/lan.ts';
import type { SoakTopology, NodeName } from './topology.ts';
import { NODES } from './topology.ts';

export interface Violation {
  readonly kind: 'durable_lost' | 'dual_serving' | 'no_recovery' | 'rss_growth' | 'unhandled_error' | 'corrupt' | 'service_gone';
  readonly t: number;
  readonly episode: number;
  readonly detail: string;
}

/** one acknowledged client request */
export interface Ack {
  readonly seq: number;
  readonly op: 'append' | 'put';
  readonly slot?: number;
  readonly node: string;
  readonly end: number;
}

export interface AppState {
  node: string;
  ranges: [number, number][];
  bad: number;
  slots: Record<string, number>;
  /** records.log through the view: stat size and bytes read */
  statSize?: number;
  readBytes?: number;
}

/** Watches the VIP on each node's interface through `ip monitor address`: exact, not sampled. */
export class VipWatch {
  readonly held = new Map<NodeName, boolean>();
  private readonly procs: ChildProcess[] = [];

  constructor(private readonly t: SoakTopology) {}

  async start(): Promise<void> {
    for (const n of NODES) {
      const ns = this.t.c.lan.ns(n);
      const p = spawn('ip', ['-n', ns, 'monitor', 'address'], { stdio: ['ignore', 'pipe', 'ignore'] });
      this.procs.push(p);
      createInterface({ input: p.stdout! }).on('line', (l) => {
        if (!l.includes(` ${this.t.vip}/`)) return;
        this.held.set(n, !l.startsWith('Deleted'));
      });
      const now = await run(['ip', '-n', ns, '-4', '-o', 'addr', 'show']);
      this.held.set(n, now.includes(` ${this.t.vip}/`));
    }
  }

  /** its processes live in the nodes' network namespaces: the nemesis must spare them */
  pids(): number[] {
    return this.procs.map((p) => p.pid!).filter(Boolean);
  }

  stop(): void {
    for (const p of this.procs) p.kill('SIGKILL');
  }
}

/** sorted, merged [a,b] ranges: is seq inside one? */
function inRanges(ranges: readonly [number, number][], seq: number): boolean {
  let lo = 0;
  let hi = ranges.length - 1;
  while (lo <= hi) {
    const mid = (lo + hi) >> 1;
    if (seq < ranges[mid][0]) hi = mid - 1;
    else if (seq > ranges[mid][1]) lo = mid + 1;
    else return true;
  }
  return false;
}

/**
 * What the application on the serving node holds, against what the client was told was durable: every
 * acknowledged append is in records.log, every slot holds its last acknowledged rename or a later one.
 * `reported` keeps one violation per lost record across checks.
 */
export function missingDurable(acks: readonly Ack[], s: AppState, reported: Set<string>): string[] {
  const lost: string[] = [];
  const lastPut = new Map<number, Ack>();
  for (const a of acks) {
    if (a.op === 'append') {
      if (!inRanges(s.ranges, a.seq) && !reported.has(`a${a.seq}`)) {
        reported.add(`a${a.seq}`);
        lost.push(`append ${a.seq} (acknowledged by ${a.node} at ${new Date(a.end).toISOString()})`);
      }
    } else if ((lastPut.get(a.slot!)?.seq ?? -1) < a.seq) lastPut.set(a.slot!, a);
  }
  for (const [slot, a] of lastPut) {
    const have = s.slots[String(slot)] ?? -1;
    if (have < a.seq && !reported.has(`p${a.seq}`)) {
      reported.add(`p${a.seq}`);
      lost.push(`rename slot ${slot}: holds ${have < 0 ? 'nothing' : have}, ${a.seq} was acknowledged by ${a.node} at ${new Date(a.end).toISOString()}`);
    }
  }
  return lost;
}

/** resident memory of a process in MiB, undefined when it is gone */
export function rssMb(pid: number | undefined): number | undefined {
  if (!pid) return undefined;
  try {
    const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) / 1024 : undefined;
  } catch {
    return undefined;
  }
}

/** user+system CPU seconds a process used */
export function cpuSeconds(pid: number): number {
  const f = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const after = f.slice(f.lastIndexOf(')') + 2).split(' ');
  return (Number(after[11]) + Number(after[12])) / 100;
}

/**
 * Lines of a daemon log that mean an error escaped: a stack trace or message outside the JSON log
 * (Node prints those when a rejection or exception is not handled), a fatal record, or a record naming
 * an unhandled or uncaught error.
 */
export function unhandledLines(text: string): string[] {
  const out: string[] = [];
  for (const line of text.split('\n')) {
    if (!line.trim()) continue;
    if (line.startsWith('{')) {
      try {
        const r = JSON.parse(line) as { level?: number | string; msg?: string };
        if (r.level === 'fatal' || (typeof r.level === 'number' && r.level >= 60) || /unhandled|uncaught/i.test(r.msg ?? '')) out.push(line);
      } catch {
        out.push(line);
      }
    } else if (/^\(node:\d+\) \[?[A-Z]*\d*\]? ?\w*Warning/.test(line)) continue; // warnings: warningLines()
    else if (/error|unhandled|uncaught|^\s+at /i.test(line)) out.push(line);
  }
  return out;
}

/** Node's own warnings in a daemon log (deprecations, leaks): reported, not counted as errors */
export function warningLines(text: string): string[] {
  return text.split('\n').filter((l) => /^\(node:\d+\) .*Warning/.test(l));
}

/**
 * RSS growth of one daemon incarnation (a restart starts afresh): the median of its last 30 s minus
 * that of its second minute (start-up and warm-up left out); 0 for one that lived under 2 minutes.
 */
export function rssGrowth(samples: readonly { t: number; mb: number }[]): number {
  if (samples.length < 2 || samples.at(-1)!.t - samples[0].t < 120_000) return 0;
  const med = (xs: number[]) => {
    const s = [...xs].sort((a, b) => a - b);
    return s[Math.floor(s.length / 2)];
  };
  const t0 = samples[0].t;
  const end = samples.at(-1)!.t;
  const warm = samples.filter((s) => s.t - t0 >= 60_000 && s.t - t0 < 120_000).map((s) => s.mb);
  const last = samples.filter((s) => end - s.t <= 30_000).map((s) => s.mb);
  return med(last) - med(warm);
}
