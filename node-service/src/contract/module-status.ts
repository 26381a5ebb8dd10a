/**
 * The object `vigil state --json` prints (one per module and line) and `GET /api/v1/modules[/:m]`
 * answers (contract: docs/ARCHITECTURE.md "CLI"). The contract fields are
 * {module, node, mode, state, ready, peers: [{node, state}], resync: {...}}; the daemon adds more
 * (target, gen, inSync, reason, checkers, buckets), which readers may use and must tolerate.
 * Readers outside the node (the cloud functions) parse with these schemas instead of guessing.
 */
import { z } from 'zod';
import { moduleModeSchema, moduleStateSchema, type ModuleMode, type ModuleState } from './states.ts';

export interface ModuleStatus {
  readonly module: string;
  readonly node: string;
  readonly mode: ModuleMode;
  readonly state: ModuleState;
  readonly ready: boolean;
  readonly target: ModuleState;
  readonly peers: { node: string; state: ModuleState | 'UNKNOWN' }[];
  readonly resync: Record<string, unknown>;
  readonly gen: number;
  readonly inSync: boolean;
  readonly reason: string;
  readonly checkers: Record<string, boolean>;
  readonly buckets?: Record<string, number[]>;
  /** mirror: automatic failover allowed on this node (`failover` in the config, `vigil failover on|off`) */
  readonly failover?: 'on' | 'off';
  /** mirror with an `arbiter:`: the lease as this node knows it (docs/ARCHITECTURE.md "Arbiter") */
  readonly arbiter?: ArbiterStatus;
}

export interface ArbiterStatus {
  readonly type: string;
  /** held: this node may serve; taken: the peer holds it; fenced: our data is older than the last
   *  holder's; unreachable: the store did not answer (both nodes unreachable: nobody serves); none: not asked */
  readonly lease: 'held' | 'taken' | 'fenced' | 'unreachable' | 'none';
  readonly holder?: string;
  readonly holderGen?: number;
  readonly reason?: string;
  /** held: how long this node may still serve without a renewal */
  readonly servesForMs?: number;
  readonly unreachableForMs?: number;
}

/** The contract part, checked strictly; other fields pass through. */
export const moduleStatusSchema = z
  .object({
    module: z.string().min(1),
    node: z.string().min(1),
    mode: moduleModeSchema,
    state: moduleStateSchema,
    ready: z.boolean(),
    peers: z.array(z.object({ node: z.string(), state: z.union([moduleStateSchema, z.literal('UNKNOWN')]) }).passthrough()),
    resync: z.record(z.string(), z.unknown()),
  })
  .passthrough();

/** GET /api/v1/modules answers an array of module statuses. */
export const moduleStatusListSchema = z.array(moduleStatusSchema);

export type ContractModuleStatus = z.infer<typeof moduleStatusSchema>;
