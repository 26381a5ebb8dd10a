/** Module states and modes are contract: declared once in contract/states.ts. */
import type { ModuleState } from '../contract/states.ts';
import type { LeaseAnswer } from './lease.ts';
export { type ModuleState, type ModuleMode, PRIMARY_STATES, isPrimary, isReady } from '../contract/states.ts';

export type ScriptName =
  | 'prestart'
  | 'start_prim'
  | 'stop_prim'
  | 'start_second'
  | 'stop_second'
  | 'start_both'
  | 'stop_both'
  | 'poststop';

export type OnFailure = 'restart' | 'stopstart' | 'wait' | 'failover';

/** What a node keeps in its state directory so that decisions survive restarts and crashes. */
export interface Persisted {
  /** data generation: bumped whenever this node accepts writes its peer does not get (ALONE) */
  readonly gen: number;
  /** the generation at which this node last became primary; the older primary wins a split-brain tie */
  readonly primaryEpoch: number;
  /** state at the last stop or crash */
  readonly lastState: ModuleState;
  /** secondary only: the data was a synchronous copy of the primary's at the last moment we knew */
  readonly inSync: boolean;
  /** the operator stopped the module: it stays STOP across daemon restarts */
  readonly stopped: boolean;
  /** `vigil failover on|off`: the operator's choice, kept across restarts (absent: the config's `failover`) */
  readonly failover?: boolean;
}

export const FRESH: Persisted = { gen: 0, primaryEpoch: 0, lastState: 'STOP', inSync: false, stopped: false };

/** What a heartbeat tells about the peer's module. */
export interface PeerView {
  readonly node: string;
  readonly state: ModuleState;
  /** where the peer's queued transitions lead: a primary that is stepping down has target WAIT/SECOND/STOP */
  readonly target: ModuleState;
  readonly gen: number;
  readonly primaryEpoch: number;
  readonly inSync: boolean;
  /** the peer is releasing primary to us (swap, second, checker failure) */
  readonly handover: boolean;
  /** the peer asks the primary (us) to swap */
  readonly swapRequest: boolean;
  /** during the last split, the peer reached no witness: it was the node cut off */
  readonly isolated: boolean;
  /** the peer has never been primary nor in sync: a first start */
  readonly fresh: boolean;
}

export type Command =
  | { readonly type: 'start' }
  | { readonly type: 'stop' }
  /** daemon shutdown (SIGTERM): stops like `stop` but the module starts again with the daemon */
  | { readonly type: 'shutdown' }
  | { readonly type: 'restart' }
  | { readonly type: 'prim'; readonly force: boolean; readonly fullSync?: boolean }
  | { readonly type: 'second'; readonly fullSync: boolean }
  | { readonly type: 'swap' }
  /** stop at once: the running script is killed, queued transitions dropped, no script runs */
  | { readonly type: 'forcestop' }
  /** stop, then start again (a primary with an in-sync peer lets the peer take over) */
  | { readonly type: 'stopstart' }
  /** allow or forbid automatic failover when the peer is lost */
  | { readonly type: 'failover'; readonly on: boolean };

export type CoreEvent =
  /** daemon start; time enters as `now` (ms, monotonic) on every event that needs it */
  | { readonly type: 'boot'; readonly now: number }
  | { readonly type: 'tick'; readonly now: number }
  | { readonly type: 'command'; readonly command: Command; readonly now: number }
  /** a valid heartbeat heard from a peer (the edge's observation; core/liveness.ts decides what it means) */
  | { readonly type: 'heard'; readonly view: PeerView; readonly now: number }
  /** farm: whether the VIP interfaces have a link, reported when it changes */
  | { readonly type: 'carrier'; readonly up: boolean; readonly now: number }
  /** decided: the peer is alive with this view (from heard + ticks; simulators feed it directly) */
  | { readonly type: 'peer'; readonly peer: PeerView; readonly now: number }
  | { readonly type: 'peerLost'; readonly node: string; readonly now: number }
  | { readonly type: 'replication'; readonly status: 'synced' | 'lost'; readonly reason: string; readonly now: number }
  | { readonly type: 'transitionDone'; readonly id: number; readonly ok: boolean; readonly detail: string; readonly now: number }
  | { readonly type: 'checker'; readonly checker: string; readonly up: boolean; readonly reason: string; readonly onFailure: OnFailure; readonly maxRestarts?: number; readonly restartWindow?: number; readonly now: number }
  | { readonly type: 'witness'; readonly reachable: boolean; readonly now: number }
  /** the arbiter store's answer to a lease claim (core/lease.ts) */
  | ({ readonly type: 'lease'; readonly now: number } & LeaseAnswer);

/** One effect of a transition, executed in order by the daemon. */
export type Step =
  | { readonly type: 'script'; readonly script: ScriptName; readonly stop: boolean }
  | { readonly type: 'vip'; readonly op: 'add' | 'remove' }
  | { readonly type: 'replication'; readonly op: 'primary' | 'secondary' | 'idle' | 'stop'; readonly fullSync?: boolean; readonly divergent?: boolean }
  | { readonly type: 'farm'; readonly op: 'join' | 'leave' };

export interface Transition {
  readonly id: number;
  readonly from: ModuleState;
  readonly to: ModuleState;
  readonly reason: string;
  readonly steps: readonly Step[];
}

export type Action =
  /** run steps in order and report transitionDone(id); on a failed step, drop every queued transition
   *  (they assumed this one succeeds) before reporting */
  | { readonly type: 'transition'; readonly transition: Transition }
  | { readonly type: 'persist'; readonly data: Persisted }
  /** kill the running script and drop every queued transition (forcestop); the transitionDone of the
   *  dropped ones is ignored by the core */
  | { readonly type: 'abort' }
  /** state or advertised fields changed: send a heartbeat now, refresh ready.txt, notify listeners */
  | { readonly type: 'publish' }
  /** start polling the split-brain witnesses (peer silent) or stop */
  | { readonly type: 'witness'; readonly poll: boolean }
  /** a peer became alive or changed (view), or was declared lost (no view): for replication, metrics, the log */
  | { readonly type: 'peerView'; readonly node: string; readonly view?: PeerView; readonly silentMs?: number; readonly everHeard?: boolean }
  /** farm: the members that serve now (this node included when it does); the edge re-plans the buckets */
  | { readonly type: 'membership'; readonly nodes: readonly string[] }
  /** ask the arbiter store for the lease (acquire, or renew the one we hold) carrying our data
   *  generation as the fencing token (`force`: the operator overrides the fence), or give it up;
   *  a claim is answered by a `lease` event */
  | { readonly type: 'lease'; readonly op: 'claim'; readonly gen: number; readonly force: boolean }
  | { readonly type: 'lease'; readonly op: 'release' }
  /**
   * mirror primary: whether a durability point (fsync, or every write with ack: write) may be answered
   * without the secondary's acknowledgement (ALONE, or the secondary lost while it waited). With an
   * arbiter, only once the store recorded our data generation as its fence (core/lease.ts recordedGen);
   * until then such an answer waits, and fails if the node steps down. `until` (monotonic ms): the
   * lease's serve-until, checked at the moment of answering, so a daemon that stalled past its lease
   * (a frozen disk, a stopped process) answers nothing alone before the core stepped it down.
   */
  | { readonly type: 'durableAlone'; readonly allowed: boolean; readonly until: number }
  | { readonly type: 'log'; readonly level: 'info' | 'warn' | 'error'; readonly msg: string };

export interface StepResult<S> {
  readonly state: S;
  readonly actions: readonly Action[];
  /** the answer to a command: accepted, or refused with the reason */
  readonly reply?: { readonly ok: boolean; readonly message: string };
}

/** An event before the daemon stamps it with the time (tests and simulators). */
export type UntimedEvent = CoreEvent extends infer E ? (E extends unknown ? Omit<E, 'now'> : never) : never;
