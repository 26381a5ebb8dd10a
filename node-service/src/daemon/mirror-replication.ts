import type { PeerView } from '../core/types.ts';
import type { MirrorReplicator } from '../mirror/index.ts';
import type { ReplicationEvent, ReplicationPort } from './ports.ts';

/**
 * The daemon's replication port on top of the mirror engine. WAIT ("idle") has no role of its own in
 * the engine: a node that leaves a role without taking the other one gets its views remounted
 * read-only with no stream accepted (stop + prepare), so nothing can diverge while it waits.
 */
export class MirrorReplication implements ReplicationPort {
  /** 'stopped': the engine was stopped (vigil stop, stopstart, forcestop) and must be prepared again before any role */
  private role: 'none' | 'primary' | 'secondary' | 'stopped' = 'none';

  constructor(private readonly engine: MirrorReplicator) {}

  prepare(): Promise<void> {
    return this.engine.prepare();
  }

  async primary(o: { fullSync?: boolean } = {}): Promise<void> {
    await this.prepareAfterStop();
    await this.engine.becomePrimary(o);
    this.role = 'primary';
  }

  async secondary(o: { fullSync?: boolean; divergent?: boolean }): Promise<void> {
    await this.prepareAfterStop();
    await this.engine.becomeSecondary(o);
    this.role = 'secondary';
  }

  async idle(): Promise<void> {
    if (this.role === 'none') return;
    if (this.role === 'stopped') return this.prepareAfterStop();
    await this.engine.stop({ remount: true });
    await this.engine.prepare();
    this.role = 'none';
  }

  async stop(): Promise<void> {
    await this.engine.stop();
    this.role = 'stopped';
  }

  /** a module started again after a stop: views back, read-only, before it takes a role */
  private async prepareAfterStop(): Promise<void> {
    if (this.role !== 'stopped') return;
    await this.engine.prepare();
    this.role = 'none';
  }

  durableAlone(allowed: boolean, until: number): void {
    this.engine.durableAlone(allowed, until);
  }

  peerChanged(_peer: PeerView | undefined): void {
    // the engine learns about its peer from the replication channel itself
  }

  status() {
    const s = this.engine.status();
    return { peer: s.peer, resync: s.resync, trackedBytes: s.trackedBytes, ...(s.lastResync ? { lastResync: s.lastResync } : {}) };
  }

  onEvent(cb: (e: ReplicationEvent) => void): void {
    this.engine.onEvent(cb);
  }
}
