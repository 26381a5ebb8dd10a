import { Replicator } from './replicator.ts';
import type { MirrorReplicator, MirrorReplicatorOptions } from './types.ts';

export type { MirrorEvent, MirrorReplicator, MirrorReplicatorOptions, MirrorStatus, ResyncStatus } from './types.ts';

/**
 * The replication engine of one mirror module (see README.md in this folder). The daemon calls
 * prepare() once at start, then becomePrimary()/becomeSecondary() as the state machine decides, and
 * stop() at the end; events tell it when the pair is in sync or the peer is lost.
 */
export function createMirrorReplicator(opts: MirrorReplicatorOptions): MirrorReplicator {
  return new Replicator(opts);
}
