import type { PeerView } from '../core/types.ts';

/**
 * What the module runner needs from the edge. Each capability (vip/, mirror/, farm/) provides a real
 * implementation; the null ones below stand in when a module does not configure that capability.
 */
export interface VipPort {
  takeover(): Promise<void>;
  release(): Promise<void>;
  removeLeftovers(): Promise<void>;
}

export type ReplicationEvent = { type: 'synced' } | { type: 'lost'; reason: string } | { type: 'progress' };

export interface ResyncProgress {
  readonly bytesDone: number;
  readonly bytesTotal: number;
  readonly rateBps: number;
  readonly etaS: number;
  readonly mode?: string;
}

export interface ReplicationPort {
  prepare(): Promise<void>;
  primary(o: { fullSync?: boolean }): Promise<void>;
  secondary(o: { fullSync?: boolean; divergent?: boolean }): Promise<void>;
  /** neither role: views read-only, no stream accepted (the core has not decided yet) */
  idle(): Promise<void>;
  stop(): Promise<void>;
  /** peer heartbeat view changed (lets the no-replication port derive "synced") */
  peerChanged(peer: PeerView | undefined): void;
  /** the core's durableAlone action: whether a durability point may be answered without the secondary, until when (monotonic ms) */
  durableAlone(allowed: boolean, until: number): void;
  status(): { peer?: string; resync?: ResyncProgress; trackedBytes?: number } | undefined;
  onEvent(cb: (e: ReplicationEvent) => void): void;
}

export interface FarmPort {
  /** at daemon start: remove leftovers of a crash, before anything else */
  removeLeftovers(): Promise<void>;
  join(): Promise<void>;
  leave(): Promise<void>;
  /** the members that serve changed (decided by the core; this node included when it serves) */
  membership(alive: readonly string[]): Promise<void>;
  /** whether the VIP interfaces have a link (an observation the core decides on) */
  carrier?(): boolean;
  status(): { buckets?: Record<string, number[]> } | undefined;
}

export const nullVip: VipPort = {
  takeover: async () => {},
  release: async () => {},
  removeLeftovers: async () => {},
};

export const nullFarm: FarmPort = {
  removeLeftovers: async () => {},
  join: async () => {},
  leave: async () => {},
  membership: async () => {},
  status: () => undefined,
};

/**
 * A mirror module without replicated directories (an application whose data lives elsewhere): the
 * secondary is "in sync" as soon as it is a secondary, and the primary is synced while its peer is.
 */
export class NoReplication implements ReplicationPort {
  private role: 'primary' | 'secondary' | 'none' = 'none';
  private peer: PeerView | undefined;
  private cb: (e: ReplicationEvent) => void = () => {};
  private synced = false;
  /** the primary's generation our last "synced" covered: a primary that moves on (a handover makes it
   *  ALONE with a new generation) makes the core drop inSync, so the secondary reports synced again */
  private syncedGen = -1;

  async prepare(): Promise<void> {}
  async primary(): Promise<void> {
    this.role = 'primary';
    this.synced = false;
    queueMicrotask(() => this.evaluate());
  }
  async secondary(): Promise<void> {
    this.role = 'secondary';
    this.syncedGen = this.peer?.gen ?? -1;
    queueMicrotask(() => this.cb({ type: 'synced' }));
  }
  async idle(): Promise<void> {
    this.role = 'none';
  }
  async stop(): Promise<void> {
    this.role = 'none';
  }
  durableAlone(): void {
    // no replicated data: nothing to acknowledge
  }
  peerChanged(peer: PeerView | undefined): void {
    this.peer = peer;
    if (this.role === 'secondary' && peer && peer.gen > this.syncedGen && (peer.state === 'ALONE' || peer.state === 'PRIM')) {
      this.syncedGen = peer.gen;
      queueMicrotask(() => this.cb({ type: 'synced' }));
    }
    this.evaluate();
  }
  status() {
    return undefined;
  }
  onEvent(cb: (e: ReplicationEvent) => void): void {
    this.cb = cb;
  }
  private evaluate(): void {
    if (this.role !== 'primary') return;
    const now = this.peer?.state === 'SECOND';
    if (now && !this.synced) this.cb({ type: 'synced' });
    if (!now && this.synced) this.cb({ type: 'lost', reason: 'peer is not secondary' });
    this.synced = now;
  }
}
