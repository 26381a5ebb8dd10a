import { seeded } from './rng.ts';

/**
 * The nemesis: a seeded, printable schedule of episodes, each one fault or two overlapping ones, aimed
 * at a role (P: whichever node is primary when the fault starts, S: the other) so a schedule replays
 * the same way whatever node happens to hold the role.
 */
export const KINDS = [
  'kill-daemon',
  'kill-node',
  'cut',
  'oneway-loss',
  'loss',
  'hb-delay',
  'hb-loss',
  'repl-slow',
  'disk-full',
  'disk-stall',
  'disk-error',
  'sigstop',
  'resync-restart',
  'swap',
  'arbiter-cut',
  'arbiter-down',
] as const;
export type Kind = (typeof KINDS)[number];
export type Role = 'P' | 'S';

export interface Fault {
  readonly kind: Kind;
  readonly role: Role;
  /** after the episode's start */
  readonly offsetMs: number;
  readonly holdMs: number;
  /** loss percentage, or kbit for a slowed path */
  readonly amount: number;
  readonly dir: 'in' | 'out' | 'both';
}

export interface Episode {
  readonly index: number;
  readonly faults: readonly Fault[];
  /** quiet time after the pair recovered, before the next episode */
  readonly gapMs: number;
}

const WEIGHTS: Record<Kind, number> = {
  'kill-daemon': 3,
  'kill-node': 2,
  cut: 3,
  'oneway-loss': 2,
  loss: 1,
  'hb-delay': 1,
  'hb-loss': 1,
  'repl-slow': 1,
  'disk-full': 2,
  'disk-stall': 1,
  'disk-error': 1,
  sigstop: 2,
  'resync-restart': 2,
  swap: 1,
  'arbiter-cut': 2,
  'arbiter-down': 1,
};
/** what may run beside another fault (the second of an episode) */
const COMPANIONS: readonly Kind[] = ['oneway-loss', 'loss', 'hb-delay', 'repl-slow', 'swap', 'disk-stall', 'sigstop', 'kill-daemon', 'disk-full', 'arbiter-cut', 'arbiter-down'];
/** faults of the arbiter (etcd holding the lease): only in a topology that has one */
export const ARBITER_KINDS: readonly Kind[] = ['arbiter-cut', 'arbiter-down'];
/** faults aimed only at the secondary: the node whose disk the issue fills and breaks */
const SECONDARY_ONLY: readonly Kind[] = ['disk-full', 'disk-error', 'resync-restart'];

function pick<T>(r: () => number, items: readonly T[], weight: (t: T) => number): T {
  const total = items.reduce((s, t) => s + weight(t), 0);
  let x = r() * total;
  for (const t of items) {
    x -= weight(t);
    if (x < 0) return t;
  }
  return items[items.length - 1];
}

function fault(r: () => number, kind: Kind, offsetMs: number, heartbeatTimeoutMs: number): Fault {
  const between = (a: number, b: number) => Math.round(a + r() * (b - a));
  const role: Role = SECONDARY_ONLY.includes(kind) || kind === 'swap' ? (kind === 'swap' ? 'P' : 'S') : r() < 0.5 ? 'P' : 'S';
  const hold: Record<Kind, [number, number]> = {
    'kill-daemon': [500, 6000],
    'kill-node': [1000, 8000],
    cut: [1000, 10_000],
    'oneway-loss': [2000, 10_000],
    loss: [2000, 10_000],
    'hb-delay': [2000, 8000],
    'hb-loss': [2000, 8000],
    'repl-slow': [3000, 10_000],
    'disk-full': [3000, 12_000],
    'disk-stall': [1000, 6000],
    'disk-error': [2000, 6000],
    // longer than the heartbeat timeout: the peer declares the stopped daemon dead
    sigstop: [heartbeatTimeoutMs * 1.5, heartbeatTimeoutMs * 4],
    'resync-restart': [0, 3000],
    swap: [0, 0],
    // the node (P or S) loses the store; for the primary, longer than the lease's ttl half the time
    'arbiter-cut': [1000, 8000],
    // nobody reaches the store: the primary steps down at the margin, nobody serves until it is back
    'arbiter-down': [1000, 8000],
  };
  const amount = kind === 'oneway-loss' ? pick(r, [100, 100, 70, 40], () => 1) : kind === 'loss' ? between(5, 40) : kind === 'hb-loss' ? between(50, 100) : kind === 'hb-delay' ? between(1, 4) : kind === 'repl-slow' ? between(64, 512) : 0;
  const dir = kind === 'oneway-loss' ? (r() < 0.5 ? 'in' : 'out') : 'both';
  return { kind, role, offsetMs, holdMs: between(...hold[kind]), amount, dir };
}

/**
 * Faults after which, without an arbiter, both nodes can serve at once and the side that loses the
 * split brain has its acknowledged records moved aside: the primary falls silent to its peer while it
 * is alive and still reaches the witness (stopped, its disk stalled, the peer's heartbeats or
 * replication lost one way). soak/README.md, "Known limitation"; an arbiter (issue 16) closes it.
 */
export const SPLIT_BRAIN_KINDS: readonly Kind[] = ['sigstop', 'disk-stall', 'oneway-loss', 'loss', 'hb-loss', 'hb-delay'];

/** `kinds`: only these (default: all); the same seed with the same kinds gives the same schedule */
export function schedule(seed: number, count: number, heartbeatTimeoutMs: number, kinds: readonly Kind[] = KINDS): Episode[] {
  const r = seeded(seed);
  const out: Episode[] = [];
  const companions = COMPANIONS.filter((k) => kinds.includes(k));
  for (let i = 0; i < count; i++) {
    const first = fault(r, pick(r, kinds, (k) => WEIGHTS[k]), 0, heartbeatTimeoutMs);
    const faults = [first];
    if (r() < 0.35 && companions.some((k) => k !== first.kind)) {
      const kind = pick(r, companions.filter((k) => k !== first.kind), () => 1);
      faults.push(fault(r, kind, Math.round(r() * Math.max(500, first.holdMs)), heartbeatTimeoutMs));
    }
    out.push({ index: i, faults, gapMs: Math.round(1000 + r() * 3000) });
  }
  return out;
}

export function describeFault(f: Fault): string {
  const extra =
    f.kind === 'oneway-loss' ? ` ${f.dir} ${f.amount}%` : f.kind === 'loss' || f.kind === 'hb-loss' ? ` ${f.amount}%` : f.kind === 'hb-delay' ? ` ${f.amount}kbit` : f.kind === 'repl-slow' ? ` ${f.amount}kbit` : '';
  return `+${f.offsetMs}ms ${f.kind} ${f.role}${extra} hold ${f.holdMs}ms`;
}

export function describeEpisode(e: Episode): string {
  return `#${e.index}: ${e.faults.map(describeFault).join(' ; ')} (gap ${e.gapMs}ms)`;
}

/**
 * faults during which the nodes cannot (fully) hear each other: without an arbiter, two serving nodes
 * are then allowed (with one, never)
 */
export function separates(kind: Kind): boolean {
  return !['repl-slow', 'disk-full', 'swap', 'arbiter-cut', 'arbiter-down'].includes(kind);
}
